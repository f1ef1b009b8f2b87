// Multi-resolution grid encoding on the CPU: forward, backward and double
// backward of every level in one call.
//
// Every pass goes one level at a time. Per-point outputs (features,
// coordinate gradients) are computed with the level's points in parallel;
// table gradients are scattered with each level owned by one thread, in
// point order, so the accumulation needs no atomics and is deterministic.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <numeric>
#include <tuple>
#include <vector>

#include "../multires_host.h"

namespace torchsample {
namespace multires {
namespace {

// Points per task of the per-point passes: enough work to pay for a task.
constexpr int64_t kGrain = 1024;
// Points whose stencils are built, and their table rows prefetched, ahead of
// the arithmetic on them (see for_each_stencil).
constexpr int64_t kBlock = 64;

template <typename scalar_t>
struct Tables {
  std::vector<const scalar_t*> data;
  std::vector<Level> levels;
  int64_t features;
};

template <typename scalar_t>
Tables<scalar_t> view_tables(const std::vector<at::Tensor>& tables,
                             const std::vector<Level>& levels, int64_t features) {
  Tables<scalar_t> view{{}, levels, features};
  for (const auto& table : tables) view.data.push_back(table.data_ptr<scalar_t>());
  return view;
}

// Calls fn(dims, features) with both as integral constants: the dimension,
// and the features per level where a compiled-in count lets the per-feature
// loops unroll (Instant-NGP's default of 2), else 0 for a count read at run
// time.
template <typename Fn>
void dispatch_shape(int64_t dims, int64_t features, Fn fn) {
  dispatch_dims(dims, [&](auto d) {
    if (features == 2) {
      fn(d, std::integral_constant<int, 2>());
    } else {
      fn(d, std::integral_constant<int, 0>());
    }
  });
}

// Feature f of table row `row`, in the level's layout.
inline int64_t offset(const Level& level, int64_t features, int64_t row, int64_t f) {
  return level.hashed ? row * features + f : f * level.rows + row;
}

// Per-point values of all levels (features, their gradients) are
// (n, levels * features) at the op's boundary, but (levels, n, features)
// inside: a pass over one level then reads and writes them contiguously,
// instead of a few bytes of every point's row, which would cost a cache
// line per point and level. Copies between the two layouts, a tile of
// points at a time so that both sides stream.
template <bool TO_LEVEL_MAJOR, typename T>
void swap_layout(const T* from, T* to, int64_t n, int64_t levels, int64_t features) {
  constexpr int64_t kTile = 64;
  at::parallel_for(0, n, 4 * kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t first = begin; first < end; first += kTile) {
      const int64_t last = std::min(end, first + kTile);
      for (int64_t l = 0; l < levels; ++l) {
        for (int64_t p = first; p < last; ++p) {
          const int64_t point_major = (p * levels + l) * features;
          const int64_t level_major = (l * n + p) * features;
          for (int64_t f = 0; f < features; ++f) {
            if (TO_LEVEL_MAJOR) {
              to[level_major + f] = from[point_major + f];
            } else {
              to[point_major + f] = from[level_major + f];
            }
          }
        }
      }
    }
  });
}

// (n, levels * features) -> (levels, n, features).
inline at::Tensor level_major(const at::Tensor& per_point, int64_t levels, int64_t features) {
  const int64_t n = per_point.size(0);
  at::Tensor out = at::empty({levels, n, features}, per_point.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, per_point.scalar_type(),
                                  "multires_level_major", [&] {
    swap_layout<true>(per_point.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), n, levels,
                      features);
  });
  return out;
}

// (levels, n, features) -> (n, levels * features).
inline at::Tensor point_major(const at::Tensor& per_level) {
  const int64_t levels = per_level.size(0), n = per_level.size(1), features = per_level.size(2);
  at::Tensor out = at::empty({n, levels * features}, per_level.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, per_level.scalar_type(),
                                  "multires_point_major", [&] {
    swap_layout<false>(per_level.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), n, levels,
                       features);
  });
  return out;
}

// Asks for the cache line at `address`. On x86-64 as an instruction the
// compiler must keep (prefetcht0, what __builtin_prefetch emits there for
// reads and writes alike): GCC drops __builtin_prefetch from some of the
// loops below.
inline void prefetch(const void* address) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(address)));
#elif defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(address);
#endif
}

// Asks for the cache lines of a stencil's rows in `table`. A hashed row's
// features are adjacent; a dense level keeps each feature in its own plane.
template <typename T, typename acc_t, int DIMS>
inline void prefetch_rows(const Level& level, int64_t features, const T* table,
                          const Stencil<acc_t, DIMS>& s) {
  const int64_t row_size = level.hashed ? features : 1;
  const int64_t planes = level.hashed ? 1 : features;
  for (int k = 0; k < s.kCorners; ++k) {
    for (int64_t f = 0; f < planes; ++f) prefetch(table + s.row[k] * row_size + f * level.rows);
  }
}

// Runs fn(p, s) for the points begin..end of one level, s being point p's
// stencil. A stencil reads a few cache lines at scattered rows of a table
// of megabytes; one point at a time, the core would wait for each point's
// misses in turn. So stencils are built a block of points ahead, and
// `prefetch(s)` asks for their lines, keeping many misses in flight while
// fn works on the previous block. Points still run in order.
template <typename acc_t, int DIMS, typename Prefetch, typename Fn>
void for_each_stencil(const acc_t* x, int64_t begin, int64_t end, const Level& level,
                      bool smoothstep, Prefetch prefetch, Fn fn) {
  Stencil<acc_t, DIMS> blocks[2][kBlock];
  const auto stage = [&](int64_t first, Stencil<acc_t, DIMS>* block) {
    const int64_t last = std::min(end, first + kBlock);
    for (int64_t p = first; p < last; ++p) {
      build_stencil<acc_t, DIMS>(x + p * DIMS, level, smoothstep, block[p - first]);
      prefetch(block[p - first]);
    }
  };
  int current = 0;
  if (begin < end) stage(begin, blocks[current]);
  for (int64_t first = begin; first < end; first += kBlock, current ^= 1) {
    if (first + kBlock < end) stage(first + kBlock, blocks[current ^ 1]);
    const int64_t last = std::min(end, first + kBlock);
    for (int64_t p = first; p < last; ++p) fn(p, blocks[current][p - first]);
  }
}

// Runs fn(l, p, s) for every level l and point p: one level at a time, its
// points in parallel. All threads then read the same table, which stays in
// the last-level cache for the whole level; interleaving the levels per
// chunk of points would cycle through all tables, more than the cache
// holds. A point's sums over levels are accumulated in level order,
// whatever the number of threads. `prefetch(l, s)` asks for what fn reads.
template <typename acc_t, int DIMS, typename Prefetch, typename Fn>
void by_level(const acc_t* x, int64_t n_points, const std::vector<Level>& levels,
              bool smoothstep, Prefetch prefetch, Fn fn) {
  using S = Stencil<acc_t, DIMS>;
  for (size_t l = 0; l < levels.size(); ++l) {
    at::parallel_for(0, n_points, kGrain, [&](int64_t begin, int64_t end) {
      for_each_stencil<acc_t, DIMS>(
          x, begin, end, levels[l], smoothstep, [&](const S& s) { prefetch(l, s); },
          [&](int64_t p, const S& s) { fn(l, p, s); });
    });
  }
}

// A pass that scatters table gradients, of the form sum over points and
// corners of c_k * g[l, p, :]: row k of point p in level l receives c_k
// times the point's gradient g (levels, n, features, level-major) there.
// visit(l, p, s, c) sets c for point p with stencil s, and does whatever
// per-point work of that level the pass shares the stencil with;
// prefetch(l, s) asks for what visit reads. Returns one opmath buffer per
// level in the tables' dtype. Each level is scattered by one thread, which
// takes the next level off a queue, costliest (most rows) first, so that
// levels of unequal cost still share the threads evenly; its points go in
// order, so the sums are deterministic.
template <typename scalar_t, int DIMS, int FEATURES, typename Prefetch, typename Visit>
std::vector<at::Tensor> scatter_pass(const Tables<scalar_t>& tables,
                                     const std::vector<at::Tensor>& like,
                                     const at::Tensor& coords, bool smoothstep,
                                     const scalar_t* g, Prefetch prefetch, Visit visit) {
  using acc_t = at::opmath_type<scalar_t>;
  using S = Stencil<acc_t, DIMS>;
  const auto acc_dtype = c10::CppTypeToScalarType<acc_t>::value;
  const size_t n_levels = tables.levels.size();
  const int64_t features = FEATURES > 0 ? FEATURES : tables.features;
  const int64_t n = coords.size(0);
  const acc_t* x = coords.data_ptr<acc_t>();
  std::vector<at::Tensor> grads;
  for (const auto& table : like) {
    grads.push_back(at::empty(table.sizes(), table.options().dtype(acc_dtype)));
  }
  std::vector<size_t> queue(n_levels);
  std::iota(queue.begin(), queue.end(), size_t(0));
  std::stable_sort(queue.begin(), queue.end(), [&](size_t a, size_t b) {
    return tables.levels[a].rows > tables.levels[b].rows;
  });
  std::atomic<size_t> next{0};
  const int64_t workers =
      std::min<int64_t>(at::get_num_threads(), static_cast<int64_t>(n_levels));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    for (size_t i = next++; i < n_levels; i = next++) {
      const size_t l = queue[i];
      const Level& level = tables.levels[l];
      const scalar_t* gl = g + static_cast<int64_t>(l) * n * features;
      // Zeroed by the thread that scatters into it, which then has its lines.
      acc_t* grad = grads[l].zero_().data_ptr<acc_t>();
      for_each_stencil<acc_t, DIMS>(
          x, 0, n, level, smoothstep,
          [&](const S& s) {
            prefetch_rows(level, features, grad, s);
            prefetch(l, s);
          },
          [&](int64_t p, const S& s) {
            const scalar_t* gp = gl + p * features;
            acc_t c[S::kCorners];
            visit(l, p, s, c);
            for (int k = 0; k < s.kCorners; ++k) {
              for (int64_t f = 0; f < features; ++f) {
                grad[offset(level, features, s.row[k], f)] += c[k] * acc_t(gp[f]);
              }
            }
          });
    }
  });
  for (auto& grad : grads) grad = grad.to(like[0].scalar_type());
  return grads;
}

// grad_coords[p] = sum over levels l of by_level[l, p], added in level order.
template <typename acc_t, int DIMS>
void sum_levels(const at::Tensor& by_level, at::Tensor& grad_coords) {
  const int64_t n_levels = by_level.size(0), n = by_level.size(1);
  const acc_t* in = by_level.data_ptr<acc_t>();
  acc_t* out = grad_coords.data_ptr<acc_t>();
  at::parallel_for(0, n, 4 * kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      for (int a = 0; a < DIMS; ++a) {
        acc_t total = 0;
        for (int64_t l = 0; l < n_levels; ++l) total += in[(l * n + p) * DIMS + a];
        out[p * DIMS + a] = total;
      }
    }
  });
}

// Runs point(l, p, s, total, c) for every level and point, where total
// (DIMS values, zeroed) is the point's share of the coordinate gradient from
// that level, summed into grad_coords in level order. With table gradients
// (need_tables), c is not null: point also sets the corner weights c of the
// level's table scatter, which a scatter pass visiting the levels does,
// keeping the per-level shares apart until the end. Without, c is null and
// the levels' points run in parallel (by_level).
template <typename scalar_t, int DIMS, int FEATURES, typename Prefetch, typename Point>
void coordinate_and_table_pass(const Tables<scalar_t>& tables,
                               const std::vector<at::Tensor>& table_tensors,
                               const at::Tensor& coords, bool smoothstep, const scalar_t* g,
                               bool need_tables, at::Tensor* grad_coords, Prefetch prefetch,
                               Point point, std::vector<at::Tensor>& grad_tables) {
  using acc_t = at::opmath_type<scalar_t>;
  using S = Stencil<acc_t, DIMS>;
  const int64_t n = coords.size(0);
  if (!need_tables) {
    acc_t* gx = grad_coords ? grad_coords->zero_().data_ptr<acc_t>() : nullptr;
    by_level<acc_t, DIMS>(coords.data_ptr<acc_t>(), n, tables.levels, smoothstep, prefetch,
                          [&](size_t l, int64_t p, const S& s) {
                            acc_t total[DIMS] = {};
                            point(l, p, s, total, static_cast<acc_t*>(nullptr));
                            if (gx) {
                              for (int a = 0; a < DIMS; ++a) gx[p * DIMS + a] += total[a];
                            }
                          });
    return;
  }
  const auto n_levels = static_cast<int64_t>(tables.levels.size());
  at::Tensor shares = grad_coords ? at::empty({n_levels, n, DIMS}, coords.options()) : at::Tensor();
  acc_t* share = grad_coords ? shares.data_ptr<acc_t>() : nullptr;
  grad_tables = scatter_pass<scalar_t, DIMS, FEATURES>(
      tables, table_tensors, coords, smoothstep, g, prefetch,
      [&](size_t l, int64_t p, const S& s, acc_t(&c)[S::kCorners]) {
        acc_t total[DIMS] = {};
        point(l, p, s, total, c);
        if (share) {
          for (int a = 0; a < DIMS; ++a) share[(static_cast<int64_t>(l) * n + p) * DIMS + a] = total[a];
        }
      });
  if (grad_coords) sum_levels<acc_t, DIMS>(shares, *grad_coords);
}

// Features of every level, (levels, n, features).
template <typename scalar_t, int DIMS, int FEATURES>
void forward_kernel(const Tables<scalar_t>& tables, const at::Tensor& coords, bool smoothstep,
                    at::Tensor& features_by_level) {
  using acc_t = at::opmath_type<scalar_t>;
  using S = Stencil<acc_t, DIMS>;
  const int64_t features = FEATURES > 0 ? FEATURES : tables.features;
  const int64_t n = coords.size(0);
  scalar_t* out = features_by_level.data_ptr<scalar_t>();
  by_level<acc_t, DIMS>(
      coords.data_ptr<acc_t>(), n, tables.levels, smoothstep,
      [&](size_t l, const S& s) {
        prefetch_rows(tables.levels[l], features, tables.data[l], s);
      },
      [&](size_t l, int64_t p, const S& s) {
        const Level& level = tables.levels[l];
        const scalar_t* table = tables.data[l];
        scalar_t* op = out + (static_cast<int64_t>(l) * n + p) * features;
        for (int64_t f = 0; f < features; ++f) {
          acc_t sum = 0;
          for (int k = 0; k < s.kCorners; ++k) {
            sum += s.weight[k] * acc_t(table[offset(level, features, s.row[k], f)]);
          }
          op[f] = static_cast<scalar_t>(sum);
        }
      });
}

// `g` is the incoming gradient, level-major (levels, n, features).
template <typename scalar_t, int DIMS, int FEATURES>
void backward_kernel(const Tables<scalar_t>& tables, const std::vector<at::Tensor>& table_tensors,
                     const at::Tensor& g_by_level, const at::Tensor& coords, bool smoothstep,
                     bool need_coords, bool need_tables, at::Tensor& grad_coords,
                     std::vector<at::Tensor>& grad_tables) {
  using acc_t = at::opmath_type<scalar_t>;
  using S = Stencil<acc_t, DIMS>;
  const int64_t features = FEATURES > 0 ? FEATURES : tables.features;
  const int64_t n = coords.size(0);
  const scalar_t* g = g_by_level.data_ptr<scalar_t>();
  coordinate_and_table_pass<scalar_t, DIMS, FEATURES>(
      tables, table_tensors, coords, smoothstep, g, need_tables,
      need_coords ? &grad_coords : nullptr,
      [&](size_t l, const S& s) {
        if (need_coords) prefetch_rows(tables.levels[l], features, tables.data[l], s);
      },
      [&](size_t l, int64_t p, const S& s, acc_t(&total)[DIMS], acc_t* c) {
        if (c) {
          for (int k = 0; k < S::kCorners; ++k) c[k] = s.weight[k];
        }
        if (!need_coords) return;
        const Level& level = tables.levels[l];
        const scalar_t* table = tables.data[l];
        const scalar_t* gp = g + (static_cast<int64_t>(l) * n + p) * features;
        acc_t gradient[DIMS][S::kCorners];
        corner_gradients(s, gradient);
        for (int k = 0; k < s.kCorners; ++k) {
          // Sum over features of the incoming gradient times the vertex value.
          acc_t gv = 0;
          for (int64_t f = 0; f < features; ++f) {
            gv += acc_t(gp[f]) * acc_t(table[offset(level, features, s.row[k], f)]);
          }
          for (int a = 0; a < DIMS; ++a) total[a] += gradient[a][k] * gv;
        }
      },
      grad_tables);
}

// `g` level-major as in backward_kernel; grad_grad_output comes back
// level-major too.
template <typename scalar_t, int DIMS, int FEATURES>
void double_backward_kernel(const Tables<scalar_t>& tables,
                            const std::vector<at::Tensor>& table_tensors,
                            const at::Tensor& gg_coords, const Tables<scalar_t>* gg_tables,
                            const at::Tensor& g_by_level, const at::Tensor& coords,
                            bool smoothstep, bool need_grad_output, bool need_coords,
                            bool need_tables, at::Tensor& ggo_by_level,
                            at::Tensor& grad_coords, std::vector<at::Tensor>& grad_tables) {
  using acc_t = at::opmath_type<scalar_t>;
  using S = Stencil<acc_t, DIMS>;
  const int64_t features = FEATURES > 0 ? FEATURES : tables.features;
  const int64_t n = coords.size(0);
  const bool has_gg_coords = gg_coords.defined();
  const scalar_t* g = g_by_level.data_ptr<scalar_t>();
  const acc_t* ggx = has_gg_coords ? gg_coords.data_ptr<acc_t>() : nullptr;
  scalar_t* ggo = need_grad_output ? ggo_by_level.data_ptr<scalar_t>() : nullptr;
  const bool per_point = need_grad_output || need_coords;
  // The table gradient is the directional derivative's: none without gg_coords.
  const bool scatter = need_tables && has_gg_coords;
  if (need_tables && !has_gg_coords) {
    grad_tables.clear();
    for (const auto& table : table_tensors) grad_tables.push_back(at::zeros_like(table));
  }
  if (!per_point && !scatter) return;
  // Without gg_coords the direction is zero everywhere.
  const acc_t no_direction[DIMS] = {};
  // One instantiation per presence of gg_tables keeps the common case
  // (none, as in an eikonal loss) free of its terms.
  const auto pass = [&](auto with_gg_tables) {
    constexpr bool kGgTables = decltype(with_gg_tables)::value;
    coordinate_and_table_pass<scalar_t, DIMS, FEATURES>(
        tables, table_tensors, coords, smoothstep, g, scatter,
        need_coords ? &grad_coords : nullptr,
        [&](size_t l, const S& s) {
          if (!per_point) return;
          prefetch_rows(tables.levels[l], features, tables.data[l], s);
          if (kGgTables) prefetch_rows(tables.levels[l], features, gg_tables->data[l], s);
        },
        [&](size_t l, int64_t p, const S& s, acc_t(&total)[DIMS], acc_t* c) {
          const acc_t* gg = has_gg_coords ? ggx + p * DIMS : no_direction;
          // d weight / d x along gg: the table scatter's corner weights too.
          acc_t directional[S::kCorners];
          weight_directional(s, gg, directional);
          if (c) {
            for (int k = 0; k < S::kCorners; ++k) c[k] = directional[k];
          }
          if (!per_point) return;
          const Level& level = tables.levels[l];
          const scalar_t* table = tables.data[l];
          const scalar_t* gg_table = kGgTables ? gg_tables->data[l] : nullptr;
          const int64_t at_point = (static_cast<int64_t>(l) * n + p) * features;
          const scalar_t* gl = g + at_point;
          // d (d weight / d x) along gg.
          acc_t second[DIMS][S::kCorners];
          gradient_directional(s, gg, second);
          acc_t gradient[DIMS][S::kCorners];
          if (kGgTables) corner_gradients(s, gradient);
          acc_t out[kMaxFeatures] = {};
          for (int k = 0; k < s.kCorners; ++k) {
            acc_t g_dot_value = 0;
            acc_t g_dot_gg_value = 0;
            for (int64_t f = 0; f < features; ++f) {
              const int64_t at = offset(level, features, s.row[k], f);
              const acc_t value = acc_t(table[at]);
              out[f] += directional[k] * value;
              g_dot_value += acc_t(gl[f]) * value;
              if (kGgTables) {
                const acc_t gg_value = acc_t(gg_table[at]);
                out[f] += s.weight[k] * gg_value;
                g_dot_gg_value += acc_t(gl[f]) * gg_value;
              }
            }
            for (int b = 0; b < DIMS; ++b) {
              total[b] += second[b][k] * g_dot_value;
              if (kGgTables) total[b] += gradient[b][k] * g_dot_gg_value;
            }
          }
          if (ggo) {
            for (int64_t f = 0; f < features; ++f) ggo[at_point + f] = static_cast<scalar_t>(out[f]);
          }
        },
        grad_tables);
  };
  if (gg_tables) {
    pass(std::true_type());
  } else {
    pass(std::false_type());
  }
}

at::Tensor multires_encode_cpu(const at::Tensor& coords, at::TensorList tables,
                               at::IntArrayRef resolutions, bool smoothstep) {
  const Prepared args = prepare("multires_encode", coords, tables, resolutions);
  const auto n_levels = static_cast<int64_t>(args.levels.size());
  at::Tensor by_level =
      at::empty({n_levels, coords.size(0), args.features}, args.tables[0].options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                  "multires_encode_cpu", [&] {
    const auto view = view_tables<scalar_t>(args.tables, args.levels, args.features);
    dispatch_shape(coords.size(1), args.features, [&](auto dims, auto features) {
      forward_kernel<scalar_t, decltype(dims)::value, decltype(features)::value>(
          view, args.coords, smoothstep, by_level);
    });
  });
  return point_major(by_level);
}

std::tuple<at::Tensor, std::vector<at::Tensor>> multires_encode_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& coords, at::TensorList tables,
    at::IntArrayRef resolutions, bool smoothstep, std::array<bool, 2> output_mask) {
  const Prepared args =
      prepare("multires_encode_backward", coords, tables, resolutions, &grad_output);
  at::Tensor grad_coords = empty_unless(output_mask[0], args.coords);
  std::vector<at::Tensor> grad_tables = empty_like_each(args.tables);
  if (!output_mask[0] && !output_mask[1]) return {grad_coords, grad_tables};
  const auto n_levels = static_cast<int64_t>(args.levels.size());
  const at::Tensor g_by_level = level_major(args.grad_output, n_levels, args.features);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                  "multires_encode_backward_cpu", [&] {
    const auto view = view_tables<scalar_t>(args.tables, args.levels, args.features);
    dispatch_shape(coords.size(1), args.features, [&](auto dims, auto features) {
      backward_kernel<scalar_t, decltype(dims)::value, decltype(features)::value>(
          view, args.tables, g_by_level, args.coords, smoothstep, output_mask[0],
          output_mask[1], grad_coords, grad_tables);
    });
  });
  return {grad_coords, grad_tables};
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>> multires_encode_double_backward_cpu(
    const std::optional<at::Tensor>& gg_coords, at::TensorList gg_tables,
    const at::Tensor& grad_output, const at::Tensor& coords, at::TensorList tables,
    at::IntArrayRef resolutions, bool smoothstep, std::array<bool, 3> output_mask) {
  const Prepared args = prepare("multires_encode_double_backward", coords, tables, resolutions,
                                &grad_output, &gg_coords, gg_tables);
  at::Tensor grad_coords = empty_unless(output_mask[1], args.coords);
  std::vector<at::Tensor> grad_tables = empty_like_each(args.tables);
  const auto n_levels = static_cast<int64_t>(args.levels.size());
  if (!output_mask[0] && !output_mask[1] && !output_mask[2]) {
    return {empty_unless(false, args.grad_output), grad_coords, grad_tables};
  }
  const at::Tensor g_by_level = level_major(args.grad_output, n_levels, args.features);
  at::Tensor ggo_by_level = empty_unless(output_mask[0], g_by_level);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                  "multires_encode_double_backward_cpu", [&] {
    const auto view = view_tables<scalar_t>(args.tables, args.levels, args.features);
    const auto gg_view = view_tables<scalar_t>(args.gg_tables, args.levels, args.features);
    dispatch_shape(coords.size(1), args.features, [&](auto dims, auto features) {
      double_backward_kernel<scalar_t, decltype(dims)::value, decltype(features)::value>(
          view, args.tables, args.gg_coords, args.gg_tables.empty() ? nullptr : &gg_view,
          g_by_level, args.coords, smoothstep, output_mask[0], output_mask[1], output_mask[2],
          ggo_by_level, grad_coords, grad_tables);
    });
  });
  at::Tensor grad_grad_output =
      output_mask[0] ? point_major(ggo_by_level) : empty_unless(false, args.grad_output);
  return {grad_grad_output, grad_coords, grad_tables};
}

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CPU, m) {
  m.impl("multires_encode", &multires_encode_cpu);
  m.impl("multires_encode_backward", &multires_encode_backward_cpu);
  m.impl("multires_encode_double_backward", &multires_encode_double_backward_cpu);
}

}  // namespace multires
}  // namespace torchsample
