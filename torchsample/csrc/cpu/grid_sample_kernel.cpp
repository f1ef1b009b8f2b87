// CPU kernels of the grid-sample ops.
//
// Work is split over points (gathers) or, when a kernel scatters into a
// buffer shaped like the input, over disjoint channel ranges so that no two
// threads ever add into the same element.  Per-point reductions over channels
// (the grid gradients) then come out per channel range and are summed at the
// end.  Arithmetic runs in at::opmath_type (float for half and bfloat16).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "../grid_sample.h"
#include "../grid_sample_host.h"

namespace torchsample {
namespace {

// A range of points of one batch element and a range of channels.
struct Task {
  int64_t batch, point_begin, point_end, channel_begin, channel_end, chunk;
};

// Channel ranges per batch element for scattering kernels: enough to keep
// every thread busy, bounded because each range holds its own copy of the
// per-point partial sums.
int64_t channel_chunks(int64_t batch, int64_t channels) {
  const int64_t threads = at::get_num_threads();
  const int64_t wanted = (threads + batch - 1) / std::max<int64_t>(batch, 1);
  return std::max<int64_t>(1, std::min<int64_t>({channels, wanted, 16}));
}

template <typename F>
void for_each_task(int64_t batch, int64_t points, int64_t channels, int64_t chunks,
                   bool scatter, const F& body) {
  if (batch == 0 || points == 0) {
    return;
  }
  if (scatter) {
    at::parallel_for(0, batch * chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t chunk = t % chunks;
        body(Task{t / chunks, 0, points, channels * chunk / chunks,
                  channels * (chunk + 1) / chunks, chunk});
      }
    });
    return;
  }
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(channels, 1));
  at::parallel_for(0, batch * points, grain, [&](int64_t begin, int64_t end) {
    while (begin < end) {
      const int64_t n = begin / points;
      const int64_t stop = std::min(end, (n + 1) * points);
      body(Task{n, begin - n * points, stop - n * points, 0, channels, 0});
      begin = stop;
    }
  });
}

template <typename scalar_t, typename T>
void load_coord(const scalar_t* grid, int dims, T* coord) {
  for (int d = 0; d < dims; ++d) {
    coord[d] = static_cast<T>(grid[d]);
  }
}

// ---------------------------------------------------------------- forward --

template <typename scalar_t>
void forward_kernel(const at::Tensor& input, const at::Tensor& grid, const at::Tensor& output,
                    const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t N = input.size(0), C = input.size(1), P = grid.size(1);
  const int64_t in_sN = input.stride(0), in_sC = input.stride(1);
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  scalar_t* out = output.mutable_data_ptr<scalar_t>();
  for_each_task(N, P, C, 1, false, [&](const Task& task) {
    Stencil<opmath_t> st;
    opmath_t coord[3];
    const scalar_t* in_n = in + task.batch * in_sN;
    for (int64_t p = task.point_begin; p < task.point_end; ++p) {
      load_coord(g + (task.batch * P + p) * geo.dims, geo.dims, coord);
      make_stencil(coord, geo, 0, &st);
      scalar_t* out_p = out + task.batch * C * P + p;
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* in_c = in_n + c * in_sC;
        opmath_t acc = 0;
        for (int k = 0; k < st.size; ++k) {
          acc += st.weight[k] * static_cast<opmath_t>(in_c[st.offset[k]]);
        }
        out_p[c * P] = static_cast<scalar_t>(acc);
      }
    }
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
  for_each_task(N, P, 1, 1, false, [&](const Task& task) {
    Stencil<coord_t> st;
    coord_t coord[3];
    for (int64_t p = task.point_begin; p < task.point_end; ++p) {
      const int64_t i = task.batch * P + p;
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
  // Offsets address one channel of `input` through its own spatial strides;
  // gather them from a (b, c, spatial) view with the same strides.
  const int64_t N = input.size(0), C = input.size(1);
  const at::Tensor valid = offsets.ge(0).unsqueeze(1);
  const at::Tensor index = offsets.clamp_min(0).unsqueeze(1).expand({N, C, offsets.size(1)});
  int64_t last_offset = 0;
  for (int d = 0; d < geo.dims; ++d) {
    last_offset += (geo.size[d] - 1) * geo.stride[d];
  }
  const at::Tensor storage_view =
      input.as_strided({N, C, last_offset + 1}, {input.stride(0), input.stride(1), 1});
  return storage_view.gather(2, index).masked_fill(valid.logical_not(), 0);
}

// --------------------------------------------------------------- backward --

template <typename scalar_t>
void backward_kernel(const at::Tensor& grad_output, const at::Tensor& input,
                     const at::Tensor& grid, const at::Tensor& grad_input,
                     const at::Tensor& grad_grid, int64_t chunks, const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t N = input.size(0), C = input.size(1), P = grid.size(1);
  const int64_t in_sN = input.stride(0), in_sC = input.stride(1);
  const int64_t go_sN = grad_output.stride(0), go_sC = grad_output.stride(1),
                go_sP = grad_output.stride(2);
  const bool want_input = grad_input.defined(), want_grid = grad_grid.defined();
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
  opmath_t* gin = want_input ? grad_input.mutable_data_ptr<opmath_t>() : nullptr;
  opmath_t* ggrid = want_grid ? grad_grid.mutable_data_ptr<opmath_t>() : nullptr;
  const int dims = geo.dims;
  for_each_task(N, P, C, chunks, want_input, [&](const Task& task) {
    Stencil<opmath_t> st;
    opmath_t coord[3];
    const int64_t n = task.batch;
    for (int64_t p = task.point_begin; p < task.point_end; ++p) {
      load_coord(g + (n * P + p) * dims, dims, coord);
      make_stencil(coord, geo, want_grid ? 1 : 0, &st);
      opmath_t acc[3] = {0, 0, 0};
      for (int64_t c = task.channel_begin; c < task.channel_end; ++c) {
        const opmath_t gout = static_cast<opmath_t>(go[n * go_sN + c * go_sC + p * go_sP]);
        const int64_t base = n * in_sN + c * in_sC;
        for (int k = 0; k < st.size; ++k) {
          if (want_input) {
            gin[base + st.offset[k]] += st.weight[k] * gout;
          }
          if (want_grid) {
            const opmath_t v = static_cast<opmath_t>(in[base + st.offset[k]]) * gout;
            for (int d = 0; d < dims; ++d) {
              acc[d] += st.grad[k][d] * v;
            }
          }
        }
      }
      if (want_grid) {
        opmath_t* out = ggrid + ((task.chunk * N + n) * P + p) * dims;
        for (int d = 0; d < dims; ++d) {
          out[d] = acc[d];
        }
      }
    }
  });
}

// -------------------------------------------------------- double backward --

template <typename scalar_t>
void double_backward_kernel(const at::Tensor& gg_input, const at::Tensor& gg_grid,
                            const at::Tensor& grad_output, const at::Tensor& input,
                            const at::Tensor& grid, const at::Tensor& gg_output,
                            const at::Tensor& grad_input, const at::Tensor& grad_grid,
                            int64_t chunks, const Geometry& geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t N = input.size(0), C = input.size(1), P = grid.size(1);
  const int64_t in_sN = input.stride(0), in_sC = input.stride(1);
  const int64_t go_sN = grad_output.stride(0), go_sC = grad_output.stride(1),
                go_sP = grad_output.stride(2);
  const bool has_ggi = gg_input.defined(), has_ggg = gg_grid.defined();
  const bool want_ggo = gg_output.defined(), want_input = grad_input.defined(),
             want_grid = grad_grid.defined();
  const scalar_t* in = input.const_data_ptr<scalar_t>();
  const scalar_t* g = grid.const_data_ptr<scalar_t>();
  const scalar_t* go = grad_output.const_data_ptr<scalar_t>();
  const scalar_t* ggi = has_ggi ? gg_input.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* ggg = has_ggg ? gg_grid.const_data_ptr<scalar_t>() : nullptr;
  scalar_t* ggo = want_ggo ? gg_output.mutable_data_ptr<scalar_t>() : nullptr;
  opmath_t* gin = want_input ? grad_input.mutable_data_ptr<opmath_t>() : nullptr;
  opmath_t* ggrid = want_grid ? grad_grid.mutable_data_ptr<opmath_t>() : nullptr;
  const int dims = geo.dims;
  const int order = (has_ggg && want_grid) ? 2 : 1;
  for_each_task(N, P, C, chunks, want_input, [&](const Task& task) {
    Stencil<opmath_t> st;
    opmath_t coord[3];
    // Per tap: the weight's derivative along gg_grid (a) and the gradient of
    // that directional derivative (b).
    opmath_t a[kMaxTaps];
    opmath_t b[kMaxTaps][3];
    const int64_t n = task.batch;
    for (int64_t p = task.point_begin; p < task.point_end; ++p) {
      load_coord(g + (n * P + p) * dims, dims, coord);
      make_stencil(coord, geo, order, &st);
      if (has_ggg) {
        opmath_t dir[3];
        load_coord(ggg + (n * P + p) * dims, dims, dir);
        for (int k = 0; k < st.size; ++k) {
          a[k] = 0;
          for (int d = 0; d < dims; ++d) {
            a[k] += dir[d] * st.grad[k][d];
          }
          if (order == 2) {
            for (int e = 0; e < dims; ++e) {
              b[k][e] = 0;
              for (int d = 0; d < dims; ++d) {
                b[k][e] += dir[d] * st.hessian[k][hessian_slot(d, e)];
              }
            }
          }
        }
      }
      opmath_t acc[3] = {0, 0, 0};
      for (int64_t c = task.channel_begin; c < task.channel_end; ++c) {
        const opmath_t gout = static_cast<opmath_t>(go[n * go_sN + c * go_sC + p * go_sP]);
        const int64_t base = n * in_sN + c * in_sC;
        opmath_t out = 0;
        for (int k = 0; k < st.size; ++k) {
          const int64_t at = base + st.offset[k];
          if (has_ggi) {
            const opmath_t v = static_cast<opmath_t>(ggi[at]);
            out += st.weight[k] * v;
            if (want_grid) {
              for (int e = 0; e < dims; ++e) {
                acc[e] += gout * st.grad[k][e] * v;
              }
            }
          }
          if (has_ggg) {
            const opmath_t v = static_cast<opmath_t>(in[at]);
            out += a[k] * v;
            if (want_input) {
              gin[at] += a[k] * gout;
            }
            if (want_grid) {
              for (int e = 0; e < dims; ++e) {
                acc[e] += gout * b[k][e] * v;
              }
            }
          }
        }
        if (want_ggo) {
          ggo[(n * C + c) * P + p] = static_cast<scalar_t>(out);
        }
      }
      if (want_grid) {
        opmath_t* dst = ggrid + ((task.chunk * N + n) * P + p) * dims;
        for (int d = 0; d < dims; ++d) {
          dst[d] = acc[d];
        }
      }
    }
  });
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

// grad_output (b, c, *points) -> (b, c, p), strides kept where possible.
at::Tensor flat_grad_output(const at::Tensor& grad_output) {
  return grad_output.reshape({grad_output.size(0), grad_output.size(1), -1});
}

std::tuple<at::Tensor, at::Tensor> grid_sample_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input_, const at::Tensor& grid,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 2> output_mask) {
  check_grid_sample_args(input_, grid, interpolation, padding, smoothstep);
  const at::Tensor input = dense_input(input_);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const int64_t N = input.size(0), P = flat.size(1);
  const int64_t chunks = output_mask[0] ? channel_chunks(N, input.size(1)) : 1;
  const auto acc = input.options().dtype(opmath_dtype(input));
  at::Tensor grad_input = output_mask[0] ? at::zeros_like(input, acc) : at::Tensor();
  at::Tensor partial = output_mask[1] ? at::empty({chunks, N, P, geo.dims}, acc) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, input.scalar_type(), "torchsample_grid_sample_backward_cpu", [&] {
        backward_kernel<scalar_t>(flat_grad_output(grad_output), input, flat, grad_input, partial,
                                  chunks, geo);
      });
  return {output_mask[0] ? grad_input.to(input.scalar_type()) : at::empty({0}, input.options()),
          output_mask[1] ? finish_grid_grad(partial, grid) : at::empty({0}, grid.options())};
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
  // The input gradient only flows through gg_grid.
  const bool scatter = output_mask[1] && gg_grid.defined();
  const int64_t chunks = scatter ? channel_chunks(N, C) : 1;
  const auto acc = input.options().dtype(opmath_dtype(input));
  at::Tensor gg_output = output_mask[0] ? at::zeros({N, C, P}, input.options()) : at::Tensor();
  at::Tensor grad_input = output_mask[1] ? at::zeros_like(input, acc) : at::Tensor();
  at::Tensor partial = output_mask[2] ? at::zeros({chunks, N, P, geo.dims}, acc) : at::Tensor();
  if (gg_input.defined() || gg_grid.defined()) {
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, input.scalar_type(),
        "torchsample_grid_sample_double_backward_cpu", [&] {
          double_backward_kernel<scalar_t>(gg_input, gg_grid, flat_grad_output(grad_output),
                                           input, flat, gg_output,
                                           scatter ? grad_input : at::Tensor(), partial, chunks,
                                           geo);
        });
  }
  return {output_mask[0] ? gg_output.view(grad_output.sizes()) : at::empty({0}, input.options()),
          output_mask[1] ? grad_input.to(input.scalar_type()) : at::empty({0}, input.options()),
          output_mask[2] ? finish_grid_grad(partial, grid) : at::empty({0}, grid.options())};
}

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CPU, m) {
  m.impl("grid_sample", &grid_sample_cpu);
  m.impl("grid_sample_backward", &grid_sample_backward_cpu);
  m.impl("grid_sample_double_backward", &grid_sample_double_backward_cpu);
}

}  // namespace torchsample
