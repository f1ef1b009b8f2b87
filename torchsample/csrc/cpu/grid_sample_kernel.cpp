// CPU kernels of the grid-sample ops.  Beside this file: the order points
// are visited in (point_order.h), the loops over a point's channels
// (channel_math.h), huge-page advice for large buffers (huge_pages.h) and
// the channels_last_copy op (channels_last_copy.cpp).
//
// Gathers (the forward pass, and gradients with respect to the grid alone)
// run over points in order, in tiles (see for_each_tile).  Passes that
// scatter into the input gradient visit points grouped by slab of the input
// (see Buckets), which makes them race-free without atomics and lets one
// visit of a point compute its grid gradient as well.  Arithmetic runs in
// at::opmath_type (float for half and bfloat16).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../grid_sample.h"
#include "../grid_sample_host.h"
#include "channel_math.h"
#include "huge_pages.h"
#include "linear_block.h"
#include "point_order.h"

namespace torchsample {
namespace {

// Calls body(std::integral_constant<int, DIMS>) for the input's number of
// spatial dimensions, so that kernels unroll their loops over axes.
template <typename F>
void with_dims(const Geometry& geo, const F& body) {
  if (geo.dims == 2) {
    body(std::integral_constant<int, 2>());
  } else {
    body(std::integral_constant<int, 3>());
  }
}

// Batch element of the flattened point index i (a division only when needed).
inline int64_t batch_of(int64_t i, const Layout& l) {
  return l.N == 1 ? 0 : i / l.P;
}

// Runs body(j, i, stencil) for j < count over the points i = index(j),
// building each stencil (and prefetching its taps in `read` and `write`,
// where given) one point early: on an input larger than the cache every tap is
// a miss, and this overlaps the misses of two points.
template <int DIMS, typename T, typename scalar_t, typename Index, typename F>
void for_each_stencil(const scalar_t* grid, const Geometry& geo, int order, const Layout& l,
                      const scalar_t* read, const T* write, int64_t count, const Index& index,
                      const F& body) {
  Stencil<T> st[2];
  auto prepare = [&](int64_t i, Stencil<T>* s) {
    T coord[3];
    load_coord(grid + i * DIMS, DIMS, coord);
    make_stencil<DIMS>(coord, geo, order, s);
    const int64_t base = batch_of(i, l) * l.in_sN;
    for (int k = 0; k < s->size; ++k) {
      if (read != nullptr) {
        __builtin_prefetch(read + base + s->offset[k]);
      }
      if (write != nullptr) {
        __builtin_prefetch(write + base + s->offset[k], 1);
      }
    }
  };
  if (count > 0) {
    prepare(index(0), &st[0]);
  }
  for (int64_t j = 0; j < count; ++j) {
    const int now = j & 1;
    if (j + 1 < count) {
      prepare(index(j + 1), &st[now ^ 1]);
    }
    body(j, index(j), st[now]);
  }
}

// ---------------------------------------------------------------- forward --

template <int DIMS, typename scalar_t>
void forward_kernel(const at::Tensor& input, const at::Tensor& grid, const at::Tensor& output,
                    const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const Layout l = make_layout(input, grid, at::Tensor());
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  scalar_t* out = output.mutable_data_ptr<scalar_t>();
  for_each_range(l.N * l.P, l.C, [&](int64_t begin, int64_t end) {
    std::vector<opmath_t> tile(kTile * l.C);
    for_each_tile(begin, end, l.P, [&](int64_t i0, int64_t n, int64_t p0, int64_t size) {
      const scalar_t* in_n = in + n * l.in_sN;
      for_each_stencil<DIMS, opmath_t>(
          g, geo, 0, l, in, static_cast<const opmath_t*>(nullptr), size,
          [&](int64_t j) { return i0 + j; },
          [&](int64_t j, int64_t, const Stencil<opmath_t>& st) {
            opmath_t* acc = tile.data() + j * l.C;
            std::fill(acc, acc + l.C, nan_bias(st));
            sum_taps(st.size, st.weight, st.offset, in_n, l.in_sC, l.C, acc);
          });
      store_tile(tile.data(), size, l.C, l.P, out + n * l.C * l.P + p0);
    });
  });
}

// Integer and bool inputs, nearest only: copy the value of the one tap (or
// zero), in the input's own dtype.  Coordinates are computed in the grid's
// dtype, as for floating inputs.
template <typename coord_t>
at::Tensor nearest_offsets(const at::Tensor& grid, const Geometry& geo) {
  const int64_t N = grid.size(0), P = grid.size(1);
  at::Tensor offsets = at::empty({N, P}, grid.options().dtype(at::kLong));
  const coord_t* g = grid.const_data_ptr<coord_t>();
  int64_t* off = offsets.mutable_data_ptr<int64_t>();
  for_each_range(N * P, 1, [&](int64_t begin, int64_t end) {
    Stencil<coord_t> st;
    coord_t coord[3];
    for (int64_t i = begin; i < end; ++i) {
      load_coord(g + i * geo.dims, geo.dims, coord);
      make_stencil(coord, geo, 0, &st);
      off[i] = st.size ? st.offset[0] : -1;
    }
  });
  return offsets;
}

at::Tensor nearest_integer_forward(const at::Tensor& input, const at::Tensor& grid,
                                   const Geometry& geo) {
  at::Tensor offsets = AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grid.scalar_type(), "torchsample_nearest_offsets",
      [&] { return nearest_offsets<at::opmath_type<scalar_t>>(grid, geo); });
  return gather_nearest(input, offsets, geo);
}

// ---------------------------------------------------------- drivers --

// Per-point data of `bytes` bytes per point, or none.
struct PointRow {
  const char* data = nullptr;
  int64_t bytes = 0;
};
using PointRows = std::array<PointRow, 2>;

template <typename T>
PointRow point_row(const T* data, int64_t per_point) {
  return {reinterpret_cast<const char*>(data), static_cast<int64_t>(per_point * sizeof(T))};
}

// How the backward kernels visit points.  `body(i, stencil, gout, out)` gets
// the gradient of the output at point i (C values) and, when outputs per
// point are wanted, C values to fill.
//
// Gather-only passes run over tiles in point order.  Passes that add into
// `scattered` (an input-shaped buffer in opmath, uninitialized; undefined
// for gather-only passes) run over Buckets, reading the output gradient from
// a point-major copy.  `out` values go to `out_tensor` ((b, c, p), may be
// undefined).  `rows` are per-point data the body reads (gg_grid directions,
// tap products), prefetched ahead in bucket order.
template <int DIMS, typename scalar_t, typename F>
void visit_points(const at::Tensor& grad_output, const at::Tensor& grid, const Layout& l,
                  const Geometry& geo, int order, const scalar_t* read,
                  const at::Tensor& scattered, const PointRows& rows,
                  const at::Tensor& out_tensor, const F& body) {
  constexpr int64_t kLookahead = 4;
  constexpr int64_t kLineItems = 64 / sizeof(at::opmath_type<scalar_t>);
  using opmath_t = at::opmath_type<scalar_t>;
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
  scalar_t* out = out_tensor.defined() ? out_tensor.mutable_data_ptr<scalar_t>() : nullptr;
  if (!scattered.defined()) {
    for_each_range(l.N * l.P, l.C, [&](int64_t begin, int64_t end) {
      std::vector<opmath_t> gout(kTile * l.C), outs(out ? kTile * l.C : 0);
      for_each_tile(begin, end, l.P, [&](int64_t i0, int64_t n, int64_t p0, int64_t size) {
        load_tile(go + n * l.go_sN + p0 * l.go_sP, l.go_sC, l.go_sP, size, l.C, gout.data());
        for_each_stencil<DIMS, opmath_t>(
            g, geo, order, l, read, static_cast<const opmath_t*>(nullptr), size,
            [&](int64_t j) { return i0 + j; },
            [&](int64_t j, int64_t i, const Stencil<opmath_t>& st) {
              body(i, st, gout.data() + j * l.C, out ? outs.data() + j * l.C : nullptr);
            });
        if (out) {
          store_tile(outs.data(), size, l.C, l.P, out + n * l.C * l.P + p0);
        }
      });
    });
    return;
  }
  const at::Tensor point_major = on_huge_pages(at::empty(
      {l.N, l.P, l.C}, grad_output.options().dtype(at::toOpMathType(grad_output.scalar_type()))));
  opmath_t* gout = point_major.mutable_data_ptr<opmath_t>();
  for_each_range(l.N * l.P, l.C, [&](int64_t begin, int64_t end) {
    for_each_tile(begin, end, l.P, [&](int64_t i0, int64_t n, int64_t p0, int64_t size) {
      load_tile(go + n * l.go_sN + p0 * l.go_sP, l.go_sC, l.go_sP, size, l.C, gout + i0 * l.C);
    });
  });
  const Buckets buckets = make_buckets<scalar_t, opmath_t>(g, l.N, l.P, geo);
  const opmath_t* write = scattered.const_data_ptr<opmath_t>();
  const int64_t extent = geo.size[geo.dims - 1];
  for_each_bucket(buckets, [&](int64_t batch, int64_t slab, const int64_t* points,
                               int64_t count) {
    // Each even bucket first zeroes the two slabs its points write into (no
    // other bucket of its pass touches them; the odd pass and the wide
    // points come later).  Zeroing the whole buffer beforehand would write
    // it to memory once more, and the scatter would read it back.
    if (slab >= 0 && slab % 2 == 0) {
      const int64_t first = slab * buckets.thickness;
      const int64_t last = std::min(extent, first + 2 * buckets.thickness);
      if (last > first) {
        scattered.select(0, batch).narrow(1, first, last - first).zero_();
      }
    }
    std::vector<opmath_t> outs(out ? l.C : 0);
    for_each_stencil<DIMS, opmath_t>(
        g, geo, order, l, read, write, count, [&](int64_t j) { return points[j]; },
        [&](int64_t j, int64_t i, const Stencil<opmath_t>& st) {
          // A bucket's points are scattered over the point range: fetch the
          // rows of later points early, their coordinates included (without
          // which building the next stencil waits on a cache miss).
          if (j + kLookahead < count) {
            const int64_t later = points[j + kLookahead];
            __builtin_prefetch(g + later * DIMS);
            for (int64_t c = 0; c < l.C; c += kLineItems) {
              __builtin_prefetch(gout + later * l.C + c);
            }
            for (const PointRow& row : rows) {
              if (row.data != nullptr) {
                __builtin_prefetch(row.data + later * row.bytes);
              }
            }
          }
          body(i, st, gout + i * l.C, out ? outs.data() : nullptr);
          if (out) {
            const int64_t n = batch_of(i, l), p = i - n * l.P;
            for (int64_t c = 0; c < l.C; ++c) {
              out[(n * l.C + c) * l.P + p] = static_cast<scalar_t>(outs[c]);
            }
          }
        });
  });
}

// --------------------------------------------------------------- backward --

template <int DIMS, typename scalar_t>
void backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                     const at::Tensor& grid, const at::Tensor& grad_input,
                     const at::Tensor& grad_grid, const at::Tensor& tap_products,
                     const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const Layout l = make_layout(input, grid, grad_output);
  const bool want_input = grad_input.defined(), want_grid = grad_grid.defined();
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  opmath_t* ggrid = want_grid ? grad_grid.mutable_data_ptr<opmath_t>() : nullptr;
  opmath_t* gin = want_input ? grad_input.mutable_data_ptr<opmath_t>() : nullptr;
  opmath_t* products =
      tap_products.defined() ? tap_products.mutable_data_ptr<opmath_t>() : nullptr;
  const int64_t taps = taps_per_point(geo);
  constexpr int dims = DIMS;
  visit_points<DIMS, scalar_t>(
      grad_output, grid, l, geo, want_grid ? 1 : 0, in, grad_input, PointRows{}, at::Tensor(),
      [&](int64_t i, const Stencil<opmath_t>& st, const opmath_t* gout, opmath_t*) {
        const int64_t base = batch_of(i, l) * l.in_sN;
        if (want_grid || products != nullptr) {
          const opmath_t bias = nan_bias(st);
          opmath_t acc[3] = {bias, bias, bias};
          for (int k = 0; k < st.size; ++k) {
            const opmath_t v = dot_channels(gout, in + base + st.offset[k], l.in_sC, l.C);
            for (int d = 0; d < dims; ++d) {
              acc[d] += st.grad[d][k] * v;
            }
            if (products != nullptr) {
              products[i * taps + k] = v;
            }
          }
          if (products != nullptr) {
            std::fill(products + i * taps + st.size, products + (i + 1) * taps, opmath_t(0));
          }
          if (want_grid) {
            for (int d = 0; d < dims; ++d) {
              ggrid[i * dims + d] = acc[d];
            }
          }
        }
        if (want_input) {
          for (int k = 0; k < st.size; ++k) {
            scatter_channels(st.weight[k], gout, l.in_sC, l.C, gin + base + st.offset[k]);
          }
        }
      });
}

// -------------------------------------------------------- double backward --

template <int DIMS, typename scalar_t>
void double_backward_kernel(const at::Tensor& gg_input, const at::Tensor& gg_grid,
                            const at::Tensor& grad_output, const at::Tensor& input,
                            const at::Tensor& grid, const at::Tensor& tap_products,
                            const at::Tensor& gg_output,
                            const at::Tensor& grad_input,
                            const at::Tensor& grad_grid, const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const Layout l = make_layout(input, grid, grad_output);
  const bool has_ggi = gg_input.defined(), has_ggg = gg_grid.defined();
  const bool want_ggo = gg_output.defined(), want_grid = grad_grid.defined();
  // The input gradient only flows through gg_grid.
  const bool want_input = grad_input.defined() && has_ggg;
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* ggi = has_ggi ? gg_input.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* ggg = has_ggg ? gg_grid.const_data_ptr<scalar_t>() : nullptr;
  opmath_t* ggrid = want_grid ? grad_grid.mutable_data_ptr<opmath_t>() : nullptr;
  opmath_t* gin = want_input ? grad_input.mutable_data_ptr<opmath_t>() : nullptr;
  const opmath_t* products =
      tap_products.defined() ? tap_products.const_data_ptr<opmath_t>() : nullptr;
  const int64_t taps = taps_per_point(geo);
  constexpr int dims = DIMS;
  if (!(want_ggo || want_grid || want_input)) {
    return;
  }
  // Prefetch the taps of the input the pass reads most: none of it in the
  // usual eikonal call (gg_grid only, tap products given).
  const bool reads_input = has_ggg && (want_ggo || (want_grid && products == nullptr));
  const scalar_t* prefetched = reads_input ? in : ggi;
  visit_points<DIMS, scalar_t>(
      grad_output, grid, l, geo, (has_ggg && want_grid) ? 2 : 1, prefetched,
      want_input ? grad_input : at::Tensor(),
      PointRows{point_row(ggg, dims), point_row(products, taps)}, gg_output,
      [&](int64_t i, const Stencil<opmath_t>& st, const opmath_t* gout, opmath_t* out) {
        opmath_t a[kMaxTaps];
        opmath_t b[3][kMaxTaps];
        if (has_ggg) {
          opmath_t dir[3];
          load_coord(ggg + i * dims, dims, dir);
          directional(st, dims, dir, a, want_grid ? b : nullptr);
        }
        const opmath_t bias = nan_bias(st);
        opmath_t acc[3] = {bias, bias, bias};
        const int64_t base = batch_of(i, l) * l.in_sN;
        if (want_ggo) {
          std::fill(out, out + l.C, bias);
          if (has_ggi) {
            sum_taps(st.size, st.weight, st.offset, ggi + base, l.in_sC, l.C, out);
          }
          if (has_ggg) {
            sum_taps(st.size, a, st.offset, in + base, l.in_sC, l.C, out);
          }
        }
        for (int k = 0; k < st.size; ++k) {
          const int64_t at = base + st.offset[k];
          if (has_ggi) {
            if (want_grid) {
              const opmath_t v = dot_channels(gout, ggi + at, l.in_sC, l.C);
              for (int e = 0; e < dims; ++e) {
                acc[e] += st.grad[e][k] * v;
              }
            }
          }
          if (has_ggg) {
            if (want_grid) {
              const opmath_t v = products != nullptr ? products[i * taps + k]
                                                     : dot_channels(gout, in + at, l.in_sC, l.C);
              for (int e = 0; e < dims; ++e) {
                acc[e] += b[e][k] * v;
              }
            }
            if (want_input) {
              scatter_channels(a[k], gout, l.in_sC, l.C, gin + at);
            }
          }
        }
        if (want_grid) {
          for (int d = 0; d < dims; ++d) {
            ggrid[i * dims + d] = acc[d];
          }
        }
      });
}

// ------------------------------------------------- few-channel block path --
//
// (Bi/tri)linear calls with few channels build their stencils a block at a
// time (linear_block.h) and read the input in its own layout, channel plane
// by channel plane: with few channels the stencil is the whole cost, and a
// transposed copy of the input buys nothing.  Scatters run over contiguous
// ranges of points ("parts"), each adding into a buffer of its own (see
// ScatterParts) instead of grouping points by slab.

// Channels up to which (bi/tri)linear calls take the block kernels.  The
// Python side reads channels-first inputs in place up to the same count
// (ops/compiled.py, BLOCK_KERNEL_MAX_CHANNELS).
constexpr int64_t kBlockMaxChannels = 4;

bool takes_block_path(const at::Tensor& input, const Geometry& geo) {
  // locate_block computes indices and offsets in 32 bits.
  return geo.interpolation == kBilinear && input.size(1) <= kBlockMaxChannels &&
         input.numel() > 0 && input.numel() < (int64_t(1) << 31);
}

// Whether a pass that scatters into the input gradient (`scatters`) takes
// the block path.  Its scatter runs in one part per thread only where a copy
// of the map per extra thread costs less than the scatter (points x channels
// x corners additions); otherwise a map with several channels goes to the
// per-point stencils, whose slab buckets scatter in parallel, reading the
// channels-last copy ops/compiled.py makes for such calls (it mirrors this
// rule).  One channel stays on the block path, faster even in one part.
bool block_path_scatters(const at::Tensor& input, const at::Tensor& flat_grid,
                         const Geometry& geo, bool scatters) {
  if (!takes_block_path(input, geo)) {
    return false;
  }
  const int64_t channels = input.size(1);
  const int64_t work = flat_grid.size(0) * flat_grid.size(1) * channels * taps_per_point(geo);
  return !scatters || channels == 1 || (at::get_num_threads() - 1) * input.numel() <= work;
}

// Points of one block path scatter, cut into `parts` contiguous ranges of
// the flattened (batch, point) index.  Part 0 adds into the gradient itself
// (zeroed), part q > 0 into copy q - 1 (zeroed by the thread that fills it),
// and finish() adds the copies into the gradient in part order, so the
// result is the same from run to run for a given part count.  There are as
// many parts as threads, fewer when the copies would outweigh the scatter.
template <typename T>
class ScatterParts {
 public:
  ScatterParts(const at::Tensor& gradient, int64_t total, int64_t work) : gradient_(gradient) {
    const int64_t numel = gradient.defined() ? gradient.numel() : 0;
    parts_ = std::max<int64_t>(
        1, std::min<int64_t>(at::get_num_threads(), total / point_grain(1)));
    while (parts_ > 1 && (parts_ - 1) * numel > work) {
      --parts_;
    }
    if (gradient.defined() && parts_ > 1) {
      copies_ = on_huge_pages(at::empty({parts_ - 1, numel}, gradient.options()));
    }
    total_ = total;
  }

  // Runs body(begin, end, target) for every part, in parallel.  `target` is
  // null where no gradient is scattered.
  template <typename F>
  void run(const F& body) {
    const int64_t chunk = (total_ + parts_ - 1) / parts_;
    at::parallel_for(0, parts_, 1, [&](int64_t first, int64_t last) {
      for (int64_t q = first; q < last; ++q) {
        T* target = nullptr;
        if (gradient_.defined()) {
          target = q == 0 ? gradient_.mutable_data_ptr<T>() : copy(q);
          if (q > 0) {
            std::fill(target, target + gradient_.numel(), T(0));
          }
        }
        body(q * chunk, std::min(total_, (q + 1) * chunk), target);
      }
    });
  }

  void finish() {
    if (!copies_.defined()) {
      return;
    }
    T* sum = gradient_.mutable_data_ptr<T>();
    at::parallel_for(0, gradient_.numel(), at::internal::GRAIN_SIZE, [&](int64_t b, int64_t e) {
      for (int64_t q = 1; q < parts_; ++q) {
        const T* part = copy(q);
        for (int64_t i = b; i < e; ++i) {
          sum[i] += part[i];
        }
      }
    });
  }

 private:
  T* copy(int64_t q) {
    return copies_.mutable_data_ptr<T>() + (q - 1) * gradient_.numel();
  }

  at::Tensor gradient_, copies_;
  int64_t parts_ = 1, total_ = 0;
};

template <int DIMS, typename scalar_t>
void block_forward_kernel(const at::Tensor& input, const at::Tensor& grid,
                          const at::Tensor& output, const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int kCorners = LinearBlock<DIMS, opmath_t>::kCorners;
  const Layout l = make_layout(input, grid, at::Tensor());
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  scalar_t* out = output.mutable_data_ptr<scalar_t>();
  for_each_range(l.N * l.P, l.C, [&](int64_t begin, int64_t end) {
    LinearBlock<DIMS, opmath_t> b;
    opmath_t v[kCorners][kTile];
    for_each_tile(begin, end, l.P, [&](int64_t i0, int64_t n, int64_t p0, int64_t size) {
      locate_block<DIMS>(g + i0 * DIMS, size, geo, 0, &b);
      for (int64_t c = 0; c < l.C; ++c) {
        gather_corners(b, in + n * l.in_sN + c * l.in_sC, size, v);
        scalar_t* row = out + (n * l.C + c) * l.P + p0;
        for (int64_t j = 0; j < size; ++j) {
          opmath_t acc = 0;
          for (int k = 0; k < kCorners; ++k) {
            acc += b.weight[k][j] * v[k][j];
          }
          row[j] = static_cast<scalar_t>(acc);
        }
      }
    });
  });
}

// Tap products of the block's point j, stored and loaded in make_stencil's
// order (taps outside the input dropped, zeros after), the layout the
// stencil kernels use: either path may read what the other wrote.
template <int DIMS, typename T>
void store_products(const LinearBlock<DIMS, T>& b, const T (*prod)[kTile], int64_t j,
                    T* products) {
  int n = 0;
  for (int k = 0; k < LinearBlock<DIMS, T>::kCorners; ++k) {
    if (b.inside[k][j]) {
      products[n++] = prod[k][j];
    }
  }
  std::fill(products + n, products + LinearBlock<DIMS, T>::kCorners, T(0));
}

template <int DIMS, typename T>
void load_products(const LinearBlock<DIMS, T>& b, const T* products, int64_t j,
                   T (*prod)[kTile]) {
  int n = 0;
  for (int k = 0; k < LinearBlock<DIMS, T>::kCorners; ++k) {
    prod[k][j] = b.inside[k][j] ? products[n++] : T(0);
  }
}

// target[offset of corner k] += w[k][j] * a[j] over the block's inside taps.
template <int DIMS, typename T>
void scatter_corners(const LinearBlock<DIMS, T>& b, const T (*w)[kTile], const T* a,
                     int64_t count, T* target) {
  for (int64_t j = 0; j < count; ++j) {
    for (int k = 0; k < LinearBlock<DIMS, T>::kCorners; ++k) {
      if (b.inside[k][j]) {
        target[b.offset[k][j]] += w[k][j] * a[j];
      }
    }
  }
}

// row[j * stride] for j < count, in opmath.
template <typename scalar_t, typename T>
void load_row(const scalar_t* row, int64_t stride, int64_t count, T* dst) {
  for (int64_t j = 0; j < count; ++j) {
    dst[j] = static_cast<T>(row[j * stride]);
  }
}

template <int DIMS, typename scalar_t>
void block_backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                           const at::Tensor& grid, const at::Tensor& grad_input,
                           const at::Tensor& grad_grid, const at::Tensor& tap_products,
                           const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int kCorners = LinearBlock<DIMS, opmath_t>::kCorners;
  const Layout l = make_layout(input, grid, grad_output);
  const bool want_grid = grad_grid.defined();
  const bool want_products = want_grid || tap_products.defined();
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
  opmath_t* ggrid = want_grid ? grad_grid.mutable_data_ptr<opmath_t>() : nullptr;
  opmath_t* products =
      tap_products.defined() ? tap_products.mutable_data_ptr<opmath_t>() : nullptr;
  ScatterParts<opmath_t> parts(grad_input, l.N * l.P, l.N * l.P * l.C * kCorners);
  parts.run([&](int64_t begin, int64_t end, opmath_t* gin) {
    LinearBlock<DIMS, opmath_t> b;
    opmath_t v[kCorners][kTile], prod[kCorners][kTile], gout[kTile];
    for_each_tile(begin, end, l.P, [&](int64_t i0, int64_t n, int64_t p0, int64_t size) {
      locate_block<DIMS>(g + i0 * DIMS, size, geo, want_grid ? 1 : 0, &b);
      if (want_products) {
        std::fill(&prod[0][0], &prod[0][0] + kCorners * kTile, opmath_t(0));
      }
      for (int64_t c = 0; c < l.C; ++c) {
        load_row(go + n * l.go_sN + c * l.go_sC + p0 * l.go_sP, l.go_sP, size, gout);
        if (want_products) {
          gather_corners(b, in + n * l.in_sN + c * l.in_sC, size, v);
          for (int k = 0; k < kCorners; ++k) {
            for (int64_t j = 0; j < size; ++j) {
              prod[k][j] += gout[j] * v[k][j];
            }
          }
        }
        if (gin != nullptr) {
          scatter_corners(b, b.weight, gout, size, gin + n * l.in_sN + c * l.in_sC);
        }
      }
      for (int64_t j = 0; j < size; ++j) {
        if (want_grid) {
          for (int d = 0; d < DIMS; ++d) {
            opmath_t acc = 0;
            for (int k = 0; k < kCorners; ++k) {
              acc += b.grad[d][k][j] * prod[k][j];
            }
            ggrid[(i0 + j) * DIMS + d] = acc;
          }
        }
        if (products != nullptr) {
          store_products(b, prod, j, products + (i0 + j) * kCorners);
        }
      }
    });
  });
  parts.finish();
}

template <int DIMS, typename scalar_t>
void block_double_backward_kernel(const at::Tensor& gg_input, const at::Tensor& gg_grid,
                                  const at::Tensor& grad_output, const at::Tensor& input,
                                  const at::Tensor& grid, const at::Tensor& tap_products,
                                  const at::Tensor& gg_output, const at::Tensor& grad_input,
                                  const at::Tensor& grad_grid, const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  constexpr int kCorners = LinearBlock<DIMS, opmath_t>::kCorners;
  const Layout l = make_layout(input, grid, grad_output);
  const bool has_ggi = gg_input.defined(), has_ggg = gg_grid.defined();
  const bool want_ggo = gg_output.defined(), want_grid = grad_grid.defined();
  const bool want_input = grad_input.defined() && has_ggg;
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
  const scalar_t* ggi = has_ggi ? gg_input.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* ggg = has_ggg ? gg_grid.const_data_ptr<scalar_t>() : nullptr;
  scalar_t* ggo = want_ggo ? gg_output.mutable_data_ptr<scalar_t>() : nullptr;
  opmath_t* ggrid = want_grid ? grad_grid.mutable_data_ptr<opmath_t>() : nullptr;
  const opmath_t* products =
      tap_products.defined() ? tap_products.const_data_ptr<opmath_t>() : nullptr;
  // Which sums over channels the pass needs: the input's taps against the
  // output gradient (`prod`, unless given) and the gg_input's (`q`).
  const bool sum_prod = has_ggg && want_grid && products == nullptr;
  const bool sum_q = has_ggi && want_grid;
  const bool read_input = (has_ggg && want_ggo) || sum_prod;
  const bool read_ggi = has_ggi && (want_ggo || want_grid);
  ScatterParts<opmath_t> parts(want_input ? grad_input : at::Tensor(), l.N * l.P,
                               l.N * l.P * l.C * kCorners);
  parts.run([&](int64_t begin, int64_t end, opmath_t* gin) {
    LinearBlock<DIMS, opmath_t> b;
    opmath_t v[kCorners][kTile], u[kCorners][kTile], a[kCorners][kTile];
    opmath_t prod[kCorners][kTile], q[kCorners][kTile], bdir[DIMS][kCorners][kTile];
    opmath_t gout[kTile], acc[kTile];
    for_each_tile(begin, end, l.P, [&](int64_t i0, int64_t n, int64_t p0, int64_t size) {
      locate_block<DIMS>(g + i0 * DIMS, size, geo, (has_ggg && want_grid) ? 2 : 1, &b);
      if (has_ggg) {
        const scalar_t* dir = ggg + i0 * DIMS;
        for (int k = 0; k < kCorners; ++k) {
          for (int64_t j = 0; j < size; ++j) {
            opmath_t s = static_cast<opmath_t>(dir[j * DIMS]) * b.grad[0][k][j] +
                         static_cast<opmath_t>(dir[j * DIMS + 1]) * b.grad[1][k][j];
            if (DIMS == 3) {
              s += static_cast<opmath_t>(dir[j * DIMS + DIMS - 1]) * b.grad[DIMS - 1][k][j];
            }
            a[k][j] = s;
          }
        }
        for (int e = 0; e < (want_grid ? DIMS : 0); ++e) {
          for (int k = 0; k < kCorners; ++k) {
            for (int64_t j = 0; j < size; ++j) {
              opmath_t s =
                  static_cast<opmath_t>(dir[j * DIMS]) * b.hessian[hessian_slot(0, e)][k][j] +
                  static_cast<opmath_t>(dir[j * DIMS + 1]) * b.hessian[hessian_slot(1, e)][k][j];
              if (DIMS == 3) {
                s += static_cast<opmath_t>(dir[j * DIMS + DIMS - 1]) *
                     b.hessian[hessian_slot(DIMS - 1, e)][k][j];
              }
              bdir[e][k][j] = s;
            }
          }
        }
      }
      if (sum_prod) {
        std::fill(&prod[0][0], &prod[0][0] + kCorners * kTile, opmath_t(0));
      } else if (has_ggg && want_grid) {
        for (int64_t j = 0; j < size; ++j) {
          load_products(b, products + (i0 + j) * kCorners, j, prod);
        }
      }
      if (sum_q) {
        std::fill(&q[0][0], &q[0][0] + kCorners * kTile, opmath_t(0));
      }
      for (int64_t c = 0; c < l.C; ++c) {
        load_row(go + n * l.go_sN + c * l.go_sC + p0 * l.go_sP, l.go_sP, size, gout);
        const int64_t plane = n * l.in_sN + c * l.in_sC;
        if (read_input) {
          gather_corners(b, in + plane, size, v);
        }
        if (read_ggi) {
          gather_corners(b, ggi + plane, size, u);
        }
        if (want_ggo) {
          scalar_t* row = ggo + (n * l.C + c) * l.P + p0;
          for (int64_t j = 0; j < size; ++j) {
            opmath_t s = 0;
            for (int k = 0; k < (has_ggi ? kCorners : 0); ++k) {
              s += b.weight[k][j] * u[k][j];
            }
            for (int k = 0; k < (has_ggg ? kCorners : 0); ++k) {
              s += a[k][j] * v[k][j];
            }
            row[j] = static_cast<scalar_t>(s);
          }
        }
        for (int k = 0; k < kCorners; ++k) {
          for (int64_t j = 0; j < size; ++j) {
            if (sum_q) {
              q[k][j] += gout[j] * u[k][j];
            }
            if (sum_prod) {
              prod[k][j] += gout[j] * v[k][j];
            }
          }
        }
        if (want_input) {
          scatter_corners(b, a, gout, size, gin + plane);
        }
      }
      for (int d = 0; d < (want_grid ? DIMS : 0); ++d) {
        std::fill(acc, acc + size, opmath_t(0));
        for (int k = 0; k < kCorners; ++k) {
          for (int64_t j = 0; j < size; ++j) {
            if (has_ggi) {
              acc[j] += b.grad[d][k][j] * q[k][j];
            }
            if (has_ggg) {
              acc[j] += bdir[d][k][j] * prod[k][j];
            }
          }
        }
        for (int64_t j = 0; j < size; ++j) {
          ggrid[(i0 + j) * DIMS + d] = acc[j];
        }
      }
    });
  });
  parts.finish();
}

// ------------------------------------------------------------ op wrappers --

at::ScalarType opmath_dtype(const at::Tensor& t) {
  return at::toOpMathType(t.scalar_type());
}

// An uninitialized input-shaped buffer in opmath, for a gradient that the
// scatter pass zeroes slab by slab as it goes (see visit_points).
at::Tensor scattered_gradient(const at::Tensor& input) {
  return on_huge_pages(at::empty_like(input, input.options().dtype(opmath_dtype(input))));
}

at::Tensor grid_sample_cpu(const at::Tensor& input, const at::Tensor& grid,
                           int64_t interpolation, int64_t padding, bool align_corners,
                           bool smoothstep) {
  check_grid_sample_args("torchsample::grid_sample", input, grid, interpolation, padding,
                         smoothstep);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const std::vector<int64_t> shape = output_shape(input, grid);
  if (!input.is_floating_point()) {
    return nearest_integer_forward(input, flat, geo).view(shape);
  }
  at::Tensor output =
      on_huge_pages(at::empty({input.size(0), input.size(1), flat.size(1)}, input.options()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "torchsample_grid_sample_cpu",
                                  [&] {
                                    with_dims(geo, [&](auto dims) {
                                      if (takes_block_path(input, geo)) {
                                        block_forward_kernel<dims(), scalar_t>(input, flat,
                                                                               output, geo);
                                      } else {
                                        forward_kernel<dims(), scalar_t>(input, flat, output,
                                                                         geo);
                                      }
                                    });
                                  });
  return output.view(shape);
}

// The tap products a double backward was given (checked), or an undefined
// tensor when there are none (absent or empty) and it must compute them.
at::Tensor given_tap_products(const std::optional<at::Tensor>& products) {
  return products.has_value() && products->defined() && products->numel() > 0
             ? products->contiguous()
             : at::Tensor();
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input_, const at::Tensor& grid,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask) {
  check_grid_sample_backward_args("torchsample::grid_sample_backward", grad_output, input_, grid,
                                  interpolation, padding, smoothstep);
  const at::Tensor input = dense_input(input_);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const auto acc = input.options().dtype(opmath_dtype(input));
  const bool block = block_path_scatters(input, flat, geo, output_mask[0]);
  at::Tensor grad_input = !output_mask[0] ? at::Tensor()
                          : block         ? scattered_gradient(input).zero_()
                                          : scattered_gradient(input);
  at::Tensor grad_grid = output_mask[1] ? at::empty(flat.sizes(), acc) : at::Tensor();
  at::Tensor tap_products =
      output_mask[2]
          ? on_huge_pages(at::empty({flat.size(0), flat.size(1), taps_per_point(geo)}, acc))
          : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "torchsample_grid_sample_backward_cpu", [&] {
        with_dims(geo, [&](auto dims) {
          const at::Tensor go = flat_grad_output(grad_output, grid);
          if (block) {
            block_backward_kernel<dims(), scalar_t>(go, input, flat, grad_input, grad_grid,
                                                    tap_products, geo);
          } else {
            backward_kernel<dims(), scalar_t>(go, input, flat, grad_input, grad_grid,
                                              tap_products, geo);
          }
        });
      });
  return {output_mask[0] ? grad_input.to(input.scalar_type()) : at::empty({0}, input.options()),
          output_mask[1] ? finish_grid_grad(grad_grid, grid) : at::empty({0}, grid.options()),
          output_mask[2] ? tap_products : at::empty({0}, acc)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_double_backward_cpu(
    const std::optional<at::Tensor>& gg_input_, const std::optional<at::Tensor>& gg_grid_,
    const at::Tensor& grad_output, const at::Tensor& input_, const at::Tensor& grid,
    const std::optional<at::Tensor>& tap_products_, int64_t interpolation, int64_t padding,
    bool align_corners, bool smoothstep, std::array<bool, 3> output_mask) {
  check_grid_sample_double_backward_args("torchsample::grid_sample_double_backward", gg_input_,
                                         gg_grid_, grad_output, input_, grid, tap_products_,
                                         interpolation, padding, smoothstep);
  const at::Tensor input = dense_input(input_);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const at::Tensor gg_input = gg_input_.has_value() && gg_input_->defined()
                                  ? with_layout_of(*gg_input_, input)
                                  : at::Tensor();
  const at::Tensor gg_grid =
      gg_grid_.has_value() && gg_grid_->defined() ? flat_grid(*gg_grid_) : at::Tensor();
  const int64_t N = input.size(0), C = input.size(1), P = flat.size(1);
  const at::Tensor tap_products = given_tap_products(tap_products_);
  const auto acc = input.options().dtype(opmath_dtype(input));
  at::Tensor gg_output =
      output_mask[0] ? on_huge_pages(at::empty({N, C, P}, input.options())).zero_() : at::Tensor();
  // The input gradient only flows through gg_grid; without it, it is zero.
  // The block path adds into it from the start.
  const bool block = block_path_scatters(input, flat, geo, output_mask[1] && gg_grid.defined());
  at::Tensor grad_input = !output_mask[1]               ? at::Tensor()
                          : gg_grid.defined() && !block ? scattered_gradient(input)
                                                        : scattered_gradient(input).zero_();
  at::Tensor grad_grid = output_mask[2] ? at::zeros(flat.sizes(), acc) : at::Tensor();
  if (gg_input.defined() || gg_grid.defined()) {
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, input.scalar_type(),
        "torchsample_grid_sample_double_backward_cpu", [&] {
          with_dims(geo, [&](auto dims) {
            const at::Tensor go = flat_grad_output(grad_output, grid);
            if (block) {
              block_double_backward_kernel<dims(), scalar_t>(gg_input, gg_grid, go, input, flat,
                                                             tap_products, gg_output,
                                                             grad_input, grad_grid, geo);
            } else {
              double_backward_kernel<dims(), scalar_t>(gg_input, gg_grid, go, input, flat,
                                                       tap_products, gg_output, grad_input,
                                                       grad_grid, geo);
            }
          });
        });
  }
  return {output_mask[0] ? gg_output.view(grad_output.sizes()) : at::empty({0}, input.options()),
          output_mask[1] ? grad_input.to(input.scalar_type()) : at::empty({0}, input.options()),
          output_mask[2] ? finish_grid_grad(grad_grid, grid) : at::empty({0}, grid.options())};
}

static_assert(std::is_same_v<decltype(grid_sample_cpu), GridSampleFn>);
static_assert(std::is_same_v<decltype(grid_sample_backward_cpu), GridSampleBackwardFn>);
static_assert(
    std::is_same_v<decltype(grid_sample_double_backward_cpu), GridSampleDoubleBackwardFn>);

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CPU, m) {
  m.impl("grid_sample", &grid_sample_cpu);
  m.impl("grid_sample_backward", &grid_sample_backward_cpu);
  m.impl("grid_sample_double_backward", &grid_sample_double_backward_cpu);
}

}  // namespace torchsample
