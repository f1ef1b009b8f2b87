// CUDA kernels of the grid-sample ops: one thread per output point, looping
// over channels, with the per-point math of grid_sample.h.  Gradients with
// respect to the input are accumulated with atomics into an opmath buffer
// (float for half and bfloat16) and converted at the end.  Indexing is 64-bit.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <tuple>
#include <type_traits>

#include "../grid_sample.h"
#include "../grid_sample_host.h"

namespace torchsample {
namespace {

constexpr int kThreads = 256;

int64_t blocks_for(int64_t points) {
  return (points + kThreads - 1) / kThreads;
}

// ---------------------------------------------------------------- forward --

template <typename scalar_t>
__global__ void forward_kernel(const scalar_t* __restrict__ in, const scalar_t* __restrict__ g,
                               scalar_t* __restrict__ out, Layout l, Geometry geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= l.N * l.P) {
    return;
  }
  const int64_t n = i / l.P, p = i - n * l.P;
  opmath_t coord[3];
  load_coord(g + i * geo.dims, geo.dims, coord);
  Stencil<opmath_t> st;
  make_stencil(coord, geo, 0, &st);
  const scalar_t* in_n = in + n * l.in_sN;
  for (int64_t c = 0; c < l.C; ++c) {
    const scalar_t* in_c = in_n + c * l.in_sC;
    opmath_t acc = nan_bias(st);
    for (int k = 0; k < st.size; ++k) {
      acc += st.weight[k] * static_cast<opmath_t>(in_c[st.offset[k]]);
    }
    out[(n * l.C + c) * l.P + p] = static_cast<scalar_t>(acc);
  }
}

template <typename coord_t, typename scalar_t>
__global__ void nearest_offsets_kernel(const scalar_t* __restrict__ g,
                                       int64_t* __restrict__ offsets, int64_t total,
                                       Geometry geo) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) {
    return;
  }
  coord_t coord[3];
  load_coord(g + i * geo.dims, geo.dims, coord);
  Stencil<coord_t> st;
  make_stencil(coord, geo, 0, &st);
  offsets[i] = st.size ? st.offset[0] : -1;
}

// --------------------------------------------------------------- backward --

template <typename scalar_t>
__global__ void backward_kernel(const scalar_t* __restrict__ go,
                                const scalar_t* __restrict__ in,
                                const scalar_t* __restrict__ g,
                                at::opmath_type<scalar_t>* __restrict__ gin,
                                at::opmath_type<scalar_t>* __restrict__ ggrid, Layout l,
                                Geometry geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= l.N * l.P) {
    return;
  }
  const int64_t n = i / l.P, p = i - n * l.P;
  const int dims = geo.dims;
  opmath_t coord[3];
  load_coord(g + i * dims, dims, coord);
  Stencil<opmath_t> st;
  make_stencil(coord, geo, ggrid ? 1 : 0, &st);
  const opmath_t bias = nan_bias(st);
  opmath_t acc[3] = {bias, bias, bias};
  for (int64_t c = 0; c < l.C; ++c) {
    const opmath_t gout = static_cast<opmath_t>(go[n * l.go_sN + c * l.go_sC + p * l.go_sP]);
    const int64_t base = n * l.in_sN + c * l.in_sC;
    for (int k = 0; k < st.size; ++k) {
      if (gin) {
        gpuAtomicAdd(gin + base + st.offset[k], st.weight[k] * gout);
      }
      if (ggrid) {
        const opmath_t v = static_cast<opmath_t>(in[base + st.offset[k]]) * gout;
        for (int d = 0; d < dims; ++d) {
          acc[d] += st.grad[d][k] * v;
        }
      }
    }
  }
  if (ggrid) {
    for (int d = 0; d < dims; ++d) {
      ggrid[i * dims + d] = acc[d];
    }
  }
}

// -------------------------------------------------------- double backward --

template <typename scalar_t>
__global__ void double_backward_kernel(const scalar_t* __restrict__ ggi,
                                       const scalar_t* __restrict__ ggg,
                                       const scalar_t* __restrict__ go,
                                       const scalar_t* __restrict__ in,
                                       const scalar_t* __restrict__ g,
                                       scalar_t* __restrict__ ggo,
                                       at::opmath_type<scalar_t>* __restrict__ gin,
                                       at::opmath_type<scalar_t>* __restrict__ ggrid, Layout l,
                                       Geometry geo) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= l.N * l.P) {
    return;
  }
  const int64_t n = i / l.P, p = i - n * l.P;
  const int dims = geo.dims;
  const int order = (ggg && ggrid) ? 2 : 1;
  opmath_t coord[3];
  load_coord(g + i * dims, dims, coord);
  Stencil<opmath_t> st;
  make_stencil(coord, geo, order, &st);
  // Per tap: the weight's derivative along gg_grid (a) and the gradient of
  // that directional derivative (b).
  opmath_t a[kMaxTaps];
  opmath_t b[3][kMaxTaps];
  if (ggg) {
    opmath_t dir[3];
    load_coord(ggg + i * dims, dims, dir);
    directional(st, dims, dir, a, order == 2 ? b : nullptr);
  }
  const opmath_t bias = nan_bias(st);
  opmath_t acc[3] = {bias, bias, bias};
  for (int64_t c = 0; c < l.C; ++c) {
    const opmath_t gout = static_cast<opmath_t>(go[n * l.go_sN + c * l.go_sC + p * l.go_sP]);
    const int64_t base = n * l.in_sN + c * l.in_sC;
    opmath_t out = nan_bias(st);
    for (int k = 0; k < st.size; ++k) {
      const int64_t at = base + st.offset[k];
      if (ggi) {
        const opmath_t v = static_cast<opmath_t>(ggi[at]);
        out += st.weight[k] * v;
        if (ggrid) {
          for (int e = 0; e < dims; ++e) {
            acc[e] += gout * st.grad[e][k] * v;
          }
        }
      }
      if (ggg) {
        const opmath_t v = static_cast<opmath_t>(in[at]);
        out += a[k] * v;
        if (gin) {
          gpuAtomicAdd(gin + at, a[k] * gout);
        }
        if (ggrid) {
          for (int e = 0; e < dims; ++e) {
            acc[e] += gout * b[e][k] * v;
          }
        }
      }
    }
    if (ggo) {
      ggo[(n * l.C + c) * l.P + p] = static_cast<scalar_t>(out);
    }
  }
  if (ggrid) {
    for (int d = 0; d < dims; ++d) {
      ggrid[i * dims + d] = acc[d];
    }
  }
}

// ------------------------------------------------------------ op wrappers --

template <typename T>
T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<T>() : nullptr;
}

template <typename T>
const T* const_data_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

at::Tensor grid_sample_cuda(const at::Tensor& input, const at::Tensor& grid,
                            int64_t interpolation, int64_t padding, bool align_corners,
                            bool smoothstep) {
  check_grid_sample_args("torchsample::grid_sample", input, grid, interpolation, padding,
                         smoothstep);
  const c10::cuda::CUDAGuard guard(input.device());
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const std::vector<int64_t> shape = output_shape(input, grid);
  const int64_t total = flat.size(0) * flat.size(1);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  if (!input.is_floating_point()) {
    at::Tensor offsets = at::empty({flat.size(0), flat.size(1)}, flat.options().dtype(at::kLong));
    if (total > 0) {
      AT_DISPATCH_FLOATING_TYPES_AND2(
          at::kHalf, at::kBFloat16, flat.scalar_type(), "torchsample_nearest_offsets_cuda", [&] {
            nearest_offsets_kernel<at::opmath_type<scalar_t>, scalar_t>
                <<<blocks_for(total), kThreads, 0, stream>>>(
                    flat.const_data_ptr<scalar_t>(), offsets.mutable_data_ptr<int64_t>(), total,
                    geo);
            C10_CUDA_KERNEL_LAUNCH_CHECK();
          });
    }
    return gather_nearest(input, offsets, geo).view(shape);
  }
  at::Tensor output = at::empty({input.size(0), input.size(1), flat.size(1)}, input.options());
  if (total > 0 && input.size(1) > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, input.scalar_type(), "torchsample_grid_sample_cuda", [&] {
          forward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
              input.const_data_ptr<scalar_t>(), flat.const_data_ptr<scalar_t>(),
              output.mutable_data_ptr<scalar_t>(), make_layout(input, flat, at::Tensor()), geo);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return output.view(shape);
}

// Returns no tap products (an empty tensor): the CUDA double backward
// recomputes them.
std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input_, const at::Tensor& grid,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask) {
  check_grid_sample_backward_args("torchsample::grid_sample_backward", grad_output, input_, grid,
                                  interpolation, padding, smoothstep);
  const c10::cuda::CUDAGuard guard(input_.device());
  const at::Tensor input = dense_input(input_);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const at::Tensor go = flat_grad_output(grad_output, grid);
  const auto acc = input.options().dtype(at::toOpMathType(input.scalar_type()));
  if (output_mask[0]) {
    // Atomic additions into the input gradient: their order, and so the
    // rounding, varies from run to run.  Alerts as ATen's grid sampler does.
    at::globalContext().alertNotDeterministic("torchsample::grid_sample_backward (CUDA)");
  }
  at::Tensor grad_input = output_mask[0] ? at::zeros_like(input, acc) : at::Tensor();
  at::Tensor grad_grid = output_mask[1] ? at::zeros(flat.sizes(), acc) : at::Tensor();
  const int64_t total = flat.size(0) * flat.size(1);
  if (total > 0 && input.size(1) > 0 && (output_mask[0] || output_mask[1])) {
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, input.scalar_type(), "torchsample_grid_sample_backward_cuda",
        [&] {
          using opmath_t = at::opmath_type<scalar_t>;
          backward_kernel<scalar_t>
              <<<blocks_for(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
                  go.const_data_ptr<scalar_t>(), input.const_data_ptr<scalar_t>(),
                  flat.const_data_ptr<scalar_t>(), data_or_null<opmath_t>(grad_input),
                  data_or_null<opmath_t>(grad_grid), make_layout(input, flat, go), geo);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return {output_mask[0] ? grad_input.to(input.scalar_type()) : at::empty({0}, input.options()),
          output_mask[1] ? finish_grid_grad(grad_grid, grid) : at::empty({0}, grid.options()),
          at::empty({0}, acc)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> grid_sample_double_backward_cuda(
    const std::optional<at::Tensor>& gg_input_, const std::optional<at::Tensor>& gg_grid_,
    const at::Tensor& grad_output, const at::Tensor& input_, const at::Tensor& grid,
    const std::optional<at::Tensor>& tap_products, int64_t interpolation, int64_t padding,
    bool align_corners, bool smoothstep, std::array<bool, 3> output_mask) {
  // Checked like on CPU, so that both devices accept the same calls, but
  // recomputed here.
  check_grid_sample_double_backward_args("torchsample::grid_sample_double_backward", gg_input_,
                                         gg_grid_, grad_output, input_, grid, tap_products,
                                         interpolation, padding, smoothstep);
  const c10::cuda::CUDAGuard guard(input_.device());
  const at::Tensor input = dense_input(input_);
  const Geometry geo = make_geometry(input, interpolation, padding, align_corners, smoothstep);
  const at::Tensor flat = flat_grid(grid);
  const at::Tensor go = flat_grad_output(grad_output, grid);
  const at::Tensor gg_input = gg_input_.has_value() && gg_input_->defined()
                                  ? with_layout_of(*gg_input_, input)
                                  : at::Tensor();
  const at::Tensor gg_grid =
      gg_grid_.has_value() && gg_grid_->defined() ? flat_grid(*gg_grid_) : at::Tensor();
  const int64_t N = input.size(0), C = input.size(1), P = flat.size(1);
  const auto acc = input.options().dtype(at::toOpMathType(input.scalar_type()));
  if (output_mask[1] && gg_grid.defined()) {
    // The input gradient is accumulated with atomics, as in the backward.
    at::globalContext().alertNotDeterministic("torchsample::grid_sample_double_backward (CUDA)");
  }
  at::Tensor gg_output = output_mask[0] ? at::zeros({N, C, P}, input.options()) : at::Tensor();
  at::Tensor grad_input = output_mask[1] ? at::zeros_like(input, acc) : at::Tensor();
  at::Tensor grad_grid = output_mask[2] ? at::zeros(flat.sizes(), acc) : at::Tensor();
  const int64_t total = N * P;
  if (total > 0 && C > 0 && (gg_input.defined() || gg_grid.defined())) {
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kHalf, at::kBFloat16, input.scalar_type(),
        "torchsample_grid_sample_double_backward_cuda", [&] {
          using opmath_t = at::opmath_type<scalar_t>;
          double_backward_kernel<scalar_t>
              <<<blocks_for(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
                  const_data_or_null<scalar_t>(gg_input), const_data_or_null<scalar_t>(gg_grid),
                  go.const_data_ptr<scalar_t>(), input.const_data_ptr<scalar_t>(),
                  flat.const_data_ptr<scalar_t>(), data_or_null<scalar_t>(gg_output),
                  gg_grid.defined() ? data_or_null<opmath_t>(grad_input) : nullptr,
                  data_or_null<opmath_t>(grad_grid), make_layout(input, flat, go), geo);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
  }
  return {output_mask[0] ? gg_output.view(grad_output.sizes()) : at::empty({0}, input.options()),
          output_mask[1] ? grad_input.to(input.scalar_type()) : at::empty({0}, input.options()),
          output_mask[2] ? finish_grid_grad(grad_grid, grid) : at::empty({0}, grid.options())};
}

static_assert(std::is_same_v<decltype(grid_sample_cuda), GridSampleFn>);
static_assert(std::is_same_v<decltype(grid_sample_backward_cuda), GridSampleBackwardFn>);
static_assert(
    std::is_same_v<decltype(grid_sample_double_backward_cuda), GridSampleDoubleBackwardFn>);

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CUDA, m) {
  m.impl("grid_sample", &grid_sample_cuda);
  m.impl("grid_sample_backward", &grid_sample_backward_cuda);
  m.impl("grid_sample_double_backward", &grid_sample_double_backward_cuda);
}

}  // namespace torchsample
