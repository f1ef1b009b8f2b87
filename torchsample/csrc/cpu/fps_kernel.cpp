// Farthest point sampling on the CPU, exact and tree-pruned.
//
// Brute force costs n distance updates per sample. Here the cloud is first arranged as
// a kd-tree (median splits along the widest axis) whose leaves are small buckets of
// points, and every node keeps its bounding box and the largest running distance
// below it. A new sample s can only lower distances inside a node whose box is closer
// to s than that node's largest distance, so whole subtrees are skipped once a few
// samples are spread out, and the next sample is read off the root. The result is
// identical to brute force: the box bound uses the same floating-point operations as
// the point distances, and rounding is monotone.
//
// Clouds of a batch run in parallel; a single large cloud splits its tree build and
// its first, widest steps across threads instead.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>
#include <type_traits>

#include "../fps_host.h"

namespace torchsample {
namespace {

constexpr int64_t kLeafSize = 128;
// Least work, in points, handed to another thread. Waking threads costs microseconds
// on an idle machine and far more on a busy one, so only the tree build and the first
// steps of a large cloud (which update most of it) are split.
constexpr int64_t kPointsPerTask = 1 << 15;

template <typename scalar_t>
struct Node {
  int64_t begin;  // range of bucket-ordered positions below the node
  int64_t end;
  scalar_t lo[3];
  scalar_t hi[3];
  scalar_t best_distance;
  int64_t best_index;  // original index of the farthest point below the node
};

// A point while the tree is built; a 32-bit index keeps float entries at 16 bytes.
template <typename scalar_t>
struct Entry {
  scalar_t p[3];
  int32_t index;
};

template <typename scalar_t>
inline scalar_t squared_distance(scalar_t dx, scalar_t dy, scalar_t dz) {
  return dx * dx + dy * dy + dz * dz;
}

template <typename scalar_t>
class PrunedCloud {
 public:
  PrunedCloud(const scalar_t* points, int64_t n, const scalar_t* initial_distances) {
    // Leaves all sit at one depth of a complete binary tree stored heap-style (children
    // of node i are 2i+1 and 2i+2), so every subtree's nodes are known before building.
    int depth = 0;
    while (((n + (int64_t{1} << depth) - 1) >> depth) > kLeafSize) ++depth;
    first_leaf_ = (int64_t{1} << depth) - 1;
    nodes_.resize(2 * first_leaf_ + 1);

    std::vector<Entry<scalar_t>> entries(n);
    scalar_t lo[3], hi[3];
    for (int axis = 0; axis < 3; ++axis) {
      lo[axis] = std::numeric_limits<scalar_t>::infinity();
      hi[axis] = -std::numeric_limits<scalar_t>::infinity();
    }
    for (int64_t i = 0; i < n; ++i) {
      for (int axis = 0; axis < 3; ++axis) {
        entries[i].p[axis] = points[3 * i + axis];
        lo[axis] = std::min(lo[axis], entries[i].p[axis]);
        hi[axis] = std::max(hi[axis], entries[i].p[axis]);
      }
      entries[i].index = static_cast<int32_t>(i);
    }
    build(entries.data(), 0, 0, n, lo, hi);

    x_.resize(n);
    y_.resize(n);
    z_.resize(n);
    order_.resize(n);
    distance_.resize(n);
    position_.resize(n);
    for (int64_t pos = 0; pos < n; ++pos) {
      const int64_t index = entries[pos].index;
      x_[pos] = entries[pos].p[0];
      y_[pos] = entries[pos].p[1];
      z_[pos] = entries[pos].p[2];
      order_[pos] = index;
      distance_[pos] = initial_distances ? initial_distances[index]
                                         : std::numeric_limits<scalar_t>::infinity();
      position_[index] = pos;
    }
    // Children come after their parent, so a backward sweep fills leaves first.
    for (int64_t id = static_cast<int64_t>(nodes_.size()) - 1; id >= 0; --id) {
      Node<scalar_t>& node = nodes_[id];
      if (id >= first_leaf_) {
        set_box(node);
        refresh_leaf(node);
      } else {
        const Node<scalar_t>& a = nodes_[2 * id + 1];
        const Node<scalar_t>& b = nodes_[2 * id + 2];
        for (int axis = 0; axis < 3; ++axis) {
          node.lo[axis] = std::min(a.lo[axis], b.lo[axis]);
          node.hi[axis] = std::max(a.hi[axis], b.hi[axis]);
        }
        refresh_inner(id);
      }
    }
  }

  void sample(int64_t start, int64_t n_samples, int64_t* out, bool split_steps) {
    out[0] = start;
    for (int64_t k = 1; k < n_samples; ++k) {
      const int64_t pos = position_[out[k - 1]];
      const scalar_t s[3] = {x_[pos], y_[pos], z_[pos]};
      distance_[pos] = scalar_t(-1);

      leaves_.clear();
      inner_.clear();
      collect(0, s, pos);
      const auto update = [&](int64_t first, int64_t last) {
        for (int64_t t = first; t < last; ++t) {
          update_leaf(nodes_[leaves_[t]], s);
        }
      };
      const int64_t n_leaves = static_cast<int64_t>(leaves_.size());
      if (split_steps) {
        at::parallel_for(0, n_leaves, kPointsPerTask / kLeafSize, update);
      } else {
        update(0, n_leaves);
      }
      // Collected parents precede their children, so refresh them in reverse.
      for (auto it = inner_.rbegin(); it != inner_.rend(); ++it) {
        refresh_inner(*it);
      }
      out[k] = nodes_[0].best_index;
    }
  }

 private:
  // Larger distance wins; among equal distances the smaller original index does.
  static bool better(scalar_t d, int64_t index, scalar_t best_d, int64_t best_index) {
    return d > best_d || (d == best_d && index < best_index);
  }

  // Median split along the widest axis of a box that bounds the entries; children
  // inherit the box cut at the median, which is enough to choose their axes.
  void build(Entry<scalar_t>* entries, int64_t id, int64_t begin, int64_t end,
             const scalar_t* lo, const scalar_t* hi) {
    nodes_[id].begin = begin;
    nodes_[id].end = end;
    if (id >= first_leaf_) return;
    int axis = 0;
    for (int a = 1; a < 3; ++a) {
      if (hi[a] - lo[a] > hi[axis] - lo[axis]) axis = a;
    }
    const int64_t middle = begin + (end - begin) / 2;
    std::nth_element(entries + begin, entries + middle, entries + end,
                     [axis](const Entry<scalar_t>& a, const Entry<scalar_t>& b) {
                       return a.p[axis] < b.p[axis];
                     });
    scalar_t cut_lo[3] = {lo[0], lo[1], lo[2]};
    scalar_t cut_hi[3] = {hi[0], hi[1], hi[2]};
    cut_lo[axis] = cut_hi[axis] = entries[middle].p[axis];
    const auto build_children = [&](int64_t first, int64_t last) {
      for (int64_t child = first; child < last; ++child) {
        if (child == 0) {
          build(entries, 2 * id + 1, begin, middle, lo, cut_hi);
        } else {
          build(entries, 2 * id + 2, middle, end, cut_lo, hi);
        }
      }
    };
    // Only the root's halves of a large cloud go to separate threads; nested calls
    // run inline.
    at::parallel_for(0, 2, end - begin >= 2 * kPointsPerTask ? 1 : 2, build_children);
  }

  // Gathers the leaves a new sample s at position pos may change, and their ancestors.
  void collect(int64_t id, const scalar_t* s, int64_t pos) {
    const Node<scalar_t>& node = nodes_[id];
    const bool holds_sample = node.begin <= pos && pos < node.end;
    // The margin keeps the skip exact even if the compiler contracts the box and point
    // distances into fused multiply-adds differently.
    if (!holds_sample && box_distance(node, s) * scalar_t(1 - 1e-5) >= node.best_distance) {
      return;
    }
    if (id >= first_leaf_) {
      leaves_.push_back(id);
      return;
    }
    inner_.push_back(id);
    collect(2 * id + 1, s, pos);
    collect(2 * id + 2, s, pos);
  }

  static scalar_t box_distance(const Node<scalar_t>& node, const scalar_t* s) {
    scalar_t gap[3];
    for (int axis = 0; axis < 3; ++axis) {
      gap[axis] = s[axis] < node.lo[axis]   ? node.lo[axis] - s[axis]
                  : s[axis] > node.hi[axis] ? s[axis] - node.hi[axis]
                                            : scalar_t(0);
    }
    return squared_distance(gap[0], gap[1], gap[2]);
  }

  void set_box(Node<scalar_t>& leaf) {
    for (int axis = 0; axis < 3; ++axis) {
      leaf.lo[axis] = std::numeric_limits<scalar_t>::infinity();
      leaf.hi[axis] = -std::numeric_limits<scalar_t>::infinity();
    }
    for (int64_t pos = leaf.begin; pos < leaf.end; ++pos) {
      const scalar_t p[3] = {x_[pos], y_[pos], z_[pos]};
      for (int axis = 0; axis < 3; ++axis) {
        leaf.lo[axis] = std::min(leaf.lo[axis], p[axis]);
        leaf.hi[axis] = std::max(leaf.hi[axis], p[axis]);
      }
    }
  }

  void update_leaf(Node<scalar_t>& leaf, const scalar_t* s) {
    scalar_t* distance = distance_.data();
    const scalar_t *x = x_.data(), *y = y_.data(), *z = z_.data();
    for (int64_t pos = leaf.begin; pos < leaf.end; ++pos) {
      const scalar_t d = squared_distance(x[pos] - s[0], y[pos] - s[1], z[pos] - s[2]);
      distance[pos] = d < distance[pos] ? d : distance[pos];
    }
    refresh_leaf(leaf);
  }

  void refresh_leaf(Node<scalar_t>& leaf) {
    const scalar_t* distance = distance_.data();
    // Independent partial maxima let the compiler vectorize the reduction.
    constexpr int kLanes = 8;
    scalar_t lane_best[kLanes];
    std::fill(lane_best, lane_best + kLanes, -std::numeric_limits<scalar_t>::infinity());
    int64_t pos = leaf.begin;
    for (; pos + kLanes <= leaf.end; pos += kLanes) {
      for (int lane = 0; lane < kLanes; ++lane) {
        const scalar_t d = distance[pos + lane];
        lane_best[lane] = d > lane_best[lane] ? d : lane_best[lane];
      }
    }
    for (; pos < leaf.end; ++pos) {
      lane_best[0] = distance[pos] > lane_best[0] ? distance[pos] : lane_best[0];
    }
    const scalar_t best = *std::max_element(lane_best, lane_best + kLanes);
    // Among equal distances the smallest original index wins.
    int64_t best_index = std::numeric_limits<int64_t>::max();
    for (pos = leaf.begin; pos < leaf.end; ++pos) {
      if (distance[pos] == best) best_index = std::min(best_index, order_[pos]);
    }
    // Only NaN distances (from NaN initial distances) match nothing.
    if (best_index == std::numeric_limits<int64_t>::max()) best_index = order_[leaf.begin];
    leaf.best_distance = best;
    leaf.best_index = best_index;
  }

  void refresh_inner(int64_t id) {
    Node<scalar_t>& node = nodes_[id];
    const Node<scalar_t>& a = nodes_[2 * id + 1];
    const Node<scalar_t>& b = nodes_[2 * id + 2];
    const Node<scalar_t>& winner =
        better(b.best_distance, b.best_index, a.best_distance, a.best_index) ? b : a;
    node.best_distance = winner.best_distance;
    node.best_index = winner.best_index;
  }

  std::vector<int64_t> order_;     // bucket position -> original index
  std::vector<int64_t> position_;  // original index -> bucket position
  std::vector<scalar_t> x_, y_, z_, distance_;
  std::vector<Node<scalar_t>> nodes_;  // nodes_[0] is the root
  int64_t first_leaf_;
  std::vector<int64_t> leaves_, inner_;  // scratch of one step
};

at::Tensor farthest_point_sample_cpu(const at::Tensor& points, const at::Tensor& lengths,
                                     int64_t n_samples, const at::Tensor& start_indices,
                                     const std::optional<at::Tensor>& initial_distances) {
  const FarthestPointArgs args =
      farthest_point_args(points, lengths, n_samples, start_indices, initial_distances);
  const int64_t batch = points.size(0);
  const int64_t n = points.size(1);
  TORCH_CHECK(n <= std::numeric_limits<int32_t>::max(), "clouds of more than 2^31 - 1 points ",
              "are not supported, got ", n);
  at::Tensor out = at::empty({batch, n_samples}, points.options().dtype(at::kLong));

  const int64_t* length_ptr = args.lengths.data_ptr<int64_t>();
  const int64_t* start_ptr = args.start_indices.data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "farthest_point_sample_cpu", [&] {
    const scalar_t* point_ptr = args.points.data_ptr<scalar_t>();
    const scalar_t* initial_ptr = args.initial_distances.defined()
                                        ? args.initial_distances.data_ptr<scalar_t>()
                                        : nullptr;
    int64_t* out_ptr = out.data_ptr<int64_t>();
    // A lone cloud (or a batch smaller than the thread pool) splits each step instead.
    const bool split_steps = batch < at::get_num_threads();
    at::parallel_for(0, batch, 1, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        PrunedCloud<scalar_t> cloud(point_ptr + i * n * 3, length_ptr[i],
                                      initial_ptr ? initial_ptr + i * n : nullptr);
        cloud.sample(start_ptr[i], n_samples, out_ptr + i * n_samples, split_steps);
      }
    });
  });
  return out;
}

static_assert(std::is_same_v<decltype(farthest_point_sample_cpu), FarthestPointSampleFn>);

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CPU, m) {
  m.impl("farthest_point_sample", &farthest_point_sample_cpu);
}

}  // namespace torchsample
