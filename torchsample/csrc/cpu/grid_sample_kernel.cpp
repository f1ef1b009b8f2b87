// CPU kernels of the grid-sample ops.
//
// Gathers are split over points; scatters into the input gradient over
// slabs of the input (see for_each_slab).  Arithmetic runs in
// at::opmath_type (float for half and bfloat16).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

#include "../grid_sample.h"
#include "../grid_sample_host.h"

namespace torchsample {
namespace {

// Points per parallel chunk: waking threads costs more than small work
// (about at::internal::GRAIN_SIZE channel reads per chunk).
int64_t point_grain(int64_t channels) {
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / 4 / std::max<int64_t>(channels, 1));
}

// Runs body(begin, end) over ranges of the flattened (batch, point) index.
template <typename F>
void for_each_range(int64_t total, int64_t channels, const F& body) {
  if (total == 0) {
    return;
  }
  at::parallel_for(0, total, point_grain(channels), body);
}

// Scatters into the input gradient race-free without atomics or private
// copies: each thread owns a slab of the input along its slowest spatial
// axis, visits every point and applies only the taps inside its slab.
// body(lo, hi) gets the slab's index range along that axis.
template <typename F>
void for_each_slab(int64_t total, int64_t channels, const Geometry& geo, const F& body) {
  if (total == 0) {
    return;
  }
  const int64_t extent = geo.size[geo.dims - 1];
  const int64_t threads = total < point_grain(channels) ? 1 : at::get_num_threads();
  const int64_t slabs = std::max<int64_t>(1, std::min<int64_t>(threads, extent));
  at::parallel_for(0, slabs, 1, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      body(extent * s / slabs, extent * (s + 1) / slabs);
    }
  });
}

// Whether a point has a tap in the slab [lo, hi) (cheap: one axis only).
template <typename T>
bool touches_slab(const T* coord, const Geometry& geo, int64_t lo, int64_t hi) {
  const int axis = geo.dims - 1;
  if (lo == 0 && hi == geo.size[axis]) {
    return true;
  }
  AxisTaps<T> taps;
  axis_taps(coord[axis], geo.size[axis], geo, &taps);
  for (int k = 0; k < taps.size; ++k) {
    if (taps.index[k] >= lo && taps.index[k] < hi) {
      return true;
    }
  }
  return false;
}

// Derivative of each tap's weight along `dir` (a), and optionally the
// gradient of that directional derivative (b).
template <typename T>
void directional(const Stencil<T>& st, const T* dir, int dims, T* a, T (*b)[3]) {
  for (int k = 0; k < st.size; ++k) {
    a[k] = 0;
    for (int d = 0; d < dims; ++d) {
      a[k] += dir[d] * st.grad[k][d];
    }
    if (b != nullptr) {
      for (int e = 0; e < dims; ++e) {
        b[k][e] = 0;
        for (int d = 0; d < dims; ++d) {
          b[k][e] += dir[d] * st.hessian[k][hessian_slot(d, e)];
        }
      }
    }
  }
}

template <typename scalar_t, typename T>
void load_coord(const scalar_t* grid, int dims, T* coord) {
  for (int d = 0; d < dims; ++d) {
    coord[d] = static_cast<T>(grid[d]);
  }
}

// Channels are processed in blocks held in small local arrays, so that with a
// channels-last input (channel stride 1) the loops over a block are
// contiguous and vectorize.
constexpr int64_t kBlock = 64;

template <typename scalar_t, typename T>
void load_block(const scalar_t* src, int64_t stride, int64_t count, T* dst) {
  for (int64_t c = 0; c < count; ++c) {
    dst[c] = static_cast<T>(src[c * stride]);
  }
}

// dst[c] += w * src[c * stride] for a block of channels.
template <typename scalar_t, typename T>
inline void axpy_block(T w, const scalar_t* src, int64_t stride, int64_t count, T* dst) {
  if (stride == 1) {
    for (int64_t c = 0; c < count; ++c) {
      dst[c] += w * static_cast<T>(src[c]);
    }
  } else {
    for (int64_t c = 0; c < count; ++c) {
      dst[c] += w * static_cast<T>(src[c * stride]);
    }
  }
}

// sum_c a[c] * src[c * stride] for a block of channels.
template <typename scalar_t, typename T>
inline T dot_block(const T* a, const scalar_t* src, int64_t stride, int64_t count) {
  T sum = 0;
  if (stride == 1) {
    for (int64_t c = 0; c < count; ++c) {
      sum += a[c] * static_cast<T>(src[c]);
    }
  } else {
    for (int64_t c = 0; c < count; ++c) {
      sum += a[c] * static_cast<T>(src[c * stride]);
    }
  }
  return sum;
}

// dst[c * stride] += w * a[c] for a block of channels.
template <typename T>
inline void scatter_block(T w, const T* a, int64_t stride, int64_t count, T* dst) {
  if (stride == 1) {
    for (int64_t c = 0; c < count; ++c) {
      dst[c] += w * a[c];
    }
  } else {
    for (int64_t c = 0; c < count; ++c) {
      dst[c * stride] += w * a[c];
    }
  }
}

// Runs body(i, stencil) over points [begin, end), building each stencil (and
// prefetching its taps in `input`) one point early: on an input larger than
// the cache every tap is a miss, and this overlaps the misses of two points.
template <typename scalar_t, typename T, typename F>
void for_each_stencil(const scalar_t* grid, const scalar_t* input, const Layout& l,
                      const Geometry& geo, int order, int64_t begin, int64_t end,
                      const F& body) {
  Stencil<T> st[2];
  auto prepare = [&](int64_t i, Stencil<T>* s) {
    T coord[3];
    load_coord(grid + i * geo.dims, geo.dims, coord);
    make_stencil(coord, geo, order, s);
    const scalar_t* base = input + (i / l.P) * l.in_sN;
    for (int k = 0; k < s->size; ++k) {
      __builtin_prefetch(base + s->offset[k]);
    }
  };
  if (begin < end) {
    prepare(begin, &st[0]);
  }
  for (int64_t i = begin; i < end; ++i) {
    const int now = (i - begin) & 1;
    if (i + 1 < end) {
      prepare(i + 1, &st[now ^ 1]);
    }
    body(i, st[now]);
  }
}

// ---------------------------------------------------------------- forward --

template <typename scalar_t>
void forward_kernel(const at::Tensor& input, const at::Tensor& grid, const at::Tensor& output,
                    const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const Layout l = make_layout(input, grid, at::Tensor());
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  scalar_t* out = output.mutable_data_ptr<scalar_t>();
  for_each_range(l.N * l.P, l.C, [&](int64_t begin, int64_t end) {
    opmath_t acc[kBlock];
    for_each_stencil<scalar_t, opmath_t>(
        g, in, l, geo, 0, begin, end, [&](int64_t i, const Stencil<opmath_t>& st) {
      const int64_t n = i / l.P, p = i - n * l.P;
      for (int64_t c0 = 0; c0 < l.C; c0 += kBlock) {
        const int64_t count = std::min(kBlock, l.C - c0);
        std::fill(acc, acc + count, nan_bias(st));
        const scalar_t* in_c = in + n * l.in_sN + c0 * l.in_sC;
        for (int k = 0; k < st.size; ++k) {
          axpy_block(st.weight[k], in_c + st.offset[k], l.in_sC, count, acc);
        }
        scalar_t* out_c = out + (n * l.C + c0) * l.P + p;
        for (int64_t c = 0; c < count; ++c) {
          out_c[c * l.P] = static_cast<scalar_t>(acc[c]);
        }
      }
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

// --------------------------------------------------------------- backward --

template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                     const at::Tensor& grid, const at::Tensor& grad_input,
                     const at::Tensor& grad_grid, const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const Layout l = make_layout(input, grid, grad_output);
  const bool want_input = grad_input.defined(), want_grid = grad_grid.defined();
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
  opmath_t* ggrid = want_grid ? grad_grid.mutable_data_ptr<opmath_t>() : nullptr;
  const int dims = geo.dims;
  opmath_t* gin = want_input ? grad_input.mutable_data_ptr<opmath_t>() : nullptr;
  if (want_grid) {
    for_each_range(l.N * l.P, l.C, [&](int64_t begin, int64_t end) {
      opmath_t gout[kBlock];
      for_each_stencil<scalar_t, opmath_t>(
          g, in, l, geo, 1, begin, end, [&](int64_t i, const Stencil<opmath_t>& st) {
        const int64_t n = i / l.P, p = i - n * l.P;
        const opmath_t bias = nan_bias(st);
        opmath_t acc[3] = {bias, bias, bias};
        for (int64_t c0 = 0; c0 < l.C; c0 += kBlock) {
          const int64_t count = std::min(kBlock, l.C - c0);
          load_block(go + n * l.go_sN + c0 * l.go_sC + p * l.go_sP, l.go_sC, count, gout);
          const int64_t base = n * l.in_sN + c0 * l.in_sC;
          for (int k = 0; k < st.size; ++k) {
            const opmath_t v = dot_block(gout, in + base + st.offset[k], l.in_sC, count);
            for (int d = 0; d < dims; ++d) {
              acc[d] += st.grad[k][d] * v;
            }
          }
        }
        for (int d = 0; d < dims; ++d) {
          ggrid[i * dims + d] = acc[d];
        }
      });
    });
  }
  if (want_input) {
    for_each_slab(l.N * l.P, l.C, geo, [&](int64_t lo, int64_t hi) {
      Stencil<opmath_t> st;
      opmath_t coord[3];
      opmath_t gout[kBlock];
      for (int64_t i = 0; i < l.N * l.P; ++i) {
        load_coord(g + i * dims, dims, coord);
        if (!touches_slab(coord, geo, lo, hi)) {
          continue;
        }
        const int64_t n = i / l.P, p = i - n * l.P;
        make_stencil(coord, geo, 0, &st);
        for (int64_t c0 = 0; c0 < l.C; c0 += kBlock) {
          const int64_t count = std::min(kBlock, l.C - c0);
          load_block(go + n * l.go_sN + c0 * l.go_sC + p * l.go_sP, l.go_sC, count, gout);
          opmath_t* dst = gin + n * l.in_sN + c0 * l.in_sC;
          for (int k = 0; k < st.size; ++k) {
            if (st.slow[k] >= lo && st.slow[k] < hi) {
              scatter_block(st.weight[k], gout, l.in_sC, count, dst + st.offset[k]);
            }
          }
        }
      }
    });
  }
}

// -------------------------------------------------------- double backward --

template <typename scalar_t>
void double_backward_kernel(const at::Tensor& gg_input, const at::Tensor& gg_grid,
                            const at::Tensor& grad_output, const at::Tensor& input,
                            const at::Tensor& grid, const at::Tensor& gg_output,
                            const at::Tensor& grad_input,
                            const at::Tensor& grad_grid, const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const Layout l = make_layout(input, grid, grad_output);
  const bool has_ggi = gg_input.defined(), has_ggg = gg_grid.defined();
  const bool want_ggo = gg_output.defined(), want_input = grad_input.defined(),
             want_grid = grad_grid.defined();
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
  const scalar_t* ggi = has_ggi ? gg_input.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* ggg = has_ggg ? gg_grid.const_data_ptr<scalar_t>() : nullptr;
  scalar_t* ggo = want_ggo ? gg_output.mutable_data_ptr<scalar_t>() : nullptr;
  opmath_t* ggrid = want_grid ? grad_grid.mutable_data_ptr<opmath_t>() : nullptr;
  const int dims = geo.dims;
  const int order = (has_ggg && want_grid) ? 2 : 1;
  opmath_t* gin = want_input ? grad_input.mutable_data_ptr<opmath_t>() : nullptr;
  if (want_ggo || want_grid) {
    // Prefetching the taps in `input` suits the usual gg_grid-only call
    // (eikonal losses); gg_input reads are as cheap or as dear as before.
    for_each_range(l.N * l.P, l.C, [&](int64_t begin, int64_t end) {
      opmath_t gout[kBlock];
      opmath_t out[kBlock];
      opmath_t a[kMaxTaps];
      opmath_t b[kMaxTaps][3];
      const scalar_t* prefetched = has_ggg ? in : ggi;
      for_each_stencil<scalar_t, opmath_t>(
          g, prefetched, l, geo, order, begin, end, [&](int64_t i, const Stencil<opmath_t>& st) {
        const int64_t n = i / l.P, p = i - n * l.P;
        if (has_ggg) {
          opmath_t dir[3];
          load_coord(ggg + i * dims, dims, dir);
          directional<opmath_t>(st, dir, dims, a, order == 2 ? b : nullptr);
        }
        const opmath_t bias = nan_bias(st);
        opmath_t acc[3] = {bias, bias, bias};
        for (int64_t c0 = 0; c0 < l.C; c0 += kBlock) {
          const int64_t count = std::min(kBlock, l.C - c0);
          load_block(go + n * l.go_sN + c0 * l.go_sC + p * l.go_sP, l.go_sC, count, gout);
          std::fill(out, out + count, bias);
          const int64_t base = n * l.in_sN + c0 * l.in_sC;
          for (int k = 0; k < st.size; ++k) {
            const int64_t at = base + st.offset[k];
            if (has_ggi) {
              if (want_ggo) {
                axpy_block(st.weight[k], ggi + at, l.in_sC, count, out);
              }
              if (want_grid) {
                const opmath_t v = dot_block(gout, ggi + at, l.in_sC, count);
                for (int e = 0; e < dims; ++e) {
                  acc[e] += st.grad[k][e] * v;
                }
              }
            }
            if (has_ggg) {
              if (want_ggo) {
                axpy_block(a[k], in + at, l.in_sC, count, out);
              }
              if (want_grid) {
                const opmath_t v = dot_block(gout, in + at, l.in_sC, count);
                for (int e = 0; e < dims; ++e) {
                  acc[e] += b[k][e] * v;
                }
              }
            }
          }
          if (want_ggo) {
            scalar_t* dst = ggo + (n * l.C + c0) * l.P + p;
            for (int64_t c = 0; c < count; ++c) {
              dst[c * l.P] = static_cast<scalar_t>(out[c]);
            }
          }
        }
        if (want_grid) {
          for (int d = 0; d < dims; ++d) {
            ggrid[i * dims + d] = acc[d];
          }
        }
      });
    });
  }
  // The input gradient only flows through gg_grid.
  if (want_input && has_ggg) {
    for_each_slab(l.N * l.P, l.C, geo, [&](int64_t lo, int64_t hi) {
      Stencil<opmath_t> st;
      opmath_t coord[3];
      opmath_t gout[kBlock];
      opmath_t a[kMaxTaps];
      for (int64_t i = 0; i < l.N * l.P; ++i) {
        load_coord(g + i * dims, dims, coord);
        if (!touches_slab(coord, geo, lo, hi)) {
          continue;
        }
        const int64_t n = i / l.P, p = i - n * l.P;
        make_stencil(coord, geo, 1, &st);
        opmath_t dir[3];
        load_coord(ggg + i * dims, dims, dir);
        directional<opmath_t>(st, dir, dims, a, nullptr);
        for (int64_t c0 = 0; c0 < l.C; c0 += kBlock) {
          const int64_t count = std::min(kBlock, l.C - c0);
          load_block(go + n * l.go_sN + c0 * l.go_sC + p * l.go_sP, l.go_sC, count, gout);
          opmath_t* dst = gin + n * l.in_sN + c0 * l.in_sC;
          for (int k = 0; k < st.size; ++k) {
            if (st.slow[k] >= lo && st.slow[k] < hi) {
              scatter_block(a[k], gout, l.in_sC, count, dst + st.offset[k]);
            }
          }
        }
      }
    });
  }
}

// ------------------------------------------------------------ op wrappers --

at::ScalarType opmath_dtype(const at::Tensor& t) {
  return at::toOpMathType(t.scalar_type());
}

at::Tensor grid_sample_cpu(const at::Tensor& input, const at::Tensor& grid,
                           int64_t interpolation, int64_t padding, bool align_corners,
                           bool smoothstep) {
  check_grid_sample_args(input, grid, interpolation, padding, smoothstep);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const std::vector<int64_t> shape = output_shape(input, grid);
  if (!input.is_floating_point()) {
    return nearest_integer_forward(input, flat, geo).view(shape);
  }
  at::Tensor output = at::empty({input.size(0), input.size(1), flat.size(1)}, input.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(),
                                  "torchsample_grid_sample_cpu",
                                  [&] { forward_kernel<scalar_t>(input, flat, output, geo); });
  return output.view(shape);
}

std::tuple<at::Tensor, at::Tensor> grid_sample_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input_, const at::Tensor& grid,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 2> output_mask) {
  check_grid_sample_args(input_, grid, interpolation, padding, smoothstep);
  const at::Tensor input = dense_input(input_);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const auto acc = input.options().dtype(opmath_dtype(input));
  at::Tensor grad_input = output_mask[0] ? at::zeros_like(input, acc) : at::Tensor();
  at::Tensor grad_grid = output_mask[1] ? at::empty(flat.sizes(), acc) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "torchsample_grid_sample_backward_cpu", [&] {
        backward_kernel<scalar_t>(flat_grad_output(grad_output, grid), input, flat, grad_input, grad_grid,
                                  geo);
      });
  return {output_mask[0] ? grad_input.to(input.scalar_type()) : at::empty({0}, input.options()),
          output_mask[1] ? finish_grid_grad(grad_grid, grid) : at::empty({0}, grid.options())};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_double_backward_cpu(
    const std::optional<at::Tensor>& gg_input_, const std::optional<at::Tensor>& gg_grid_,
    const at::Tensor& grad_output, const at::Tensor& input_, const at::Tensor& grid,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask) {
  check_grid_sample_args(input_, grid, interpolation, padding, smoothstep);
  const at::Tensor input = dense_input(input_);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const at::Tensor gg_input = gg_input_.has_value() && gg_input_->defined()
                                  ? with_layout_of(*gg_input_, input)
                                  : at::Tensor();
  const at::Tensor gg_grid =
      gg_grid_.has_value() && gg_grid_->defined() ? flat_grid(*gg_grid_) : at::Tensor();
  const int64_t N = input.size(0), C = input.size(1), P = flat.size(1);
  const auto acc = input.options().dtype(opmath_dtype(input));
  at::Tensor gg_output = output_mask[0] ? at::zeros({N, C, P}, input.options()) : at::Tensor();
  at::Tensor grad_input = output_mask[1] ? at::zeros_like(input, acc) : at::Tensor();
  at::Tensor grad_grid = output_mask[2] ? at::zeros(flat.sizes(), acc) : at::Tensor();
  if (gg_input.defined() || gg_grid.defined()) {
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, input.scalar_type(),
        "torchsample_grid_sample_double_backward_cpu", [&] {
          double_backward_kernel<scalar_t>(gg_input, gg_grid, flat_grad_output(grad_output, grid),
                                           input, flat, gg_output, grad_input, grad_grid, geo);
        });
  }
  return {output_mask[0] ? gg_output.view(grad_output.sizes()) : at::empty({0}, input.options()),
          output_mask[1] ? grad_input.to(input.scalar_type()) : at::empty({0}, input.options()),
          output_mask[2] ? finish_grid_grad(grad_grid, grid) : at::empty({0}, grid.options())};
}

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CPU, m) {
  m.impl("grid_sample", &grid_sample_cpu);
  m.impl("grid_sample_backward", &grid_sample_backward_cpu);
  m.impl("grid_sample_double_backward", &grid_sample_double_backward_cpu);
}

}  // namespace torchsample
