// Multi-resolution grid encoding on CUDA: one launch per level, one thread
// per point (the tiny-cuda-nn layout: a level's points read one table, and
// the hash keeps the x-neighbours of a vertex in neighbouring slots).
//
// Launches run in level order on one stream, so per-point outputs that sum
// over levels (coordinate gradients) are accumulated without atomics and
// deterministically. Table gradients are scattered with atomic additions;
// their rounding varies from run to run, so those passes alert under
// torch.use_deterministic_algorithms, as ATen's grid sampler does.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/Atomic.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>
#include <vector>

#include "../multires_host.h"

namespace torchsample {
namespace multires {
namespace {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

C10_HOST_DEVICE inline int64_t offset(const Level& level, int64_t features, int64_t row, int64_t f) {
  return level.hashed ? row * features + f : f * level.rows + row;
}

// What one launch needs: one level's table (and optional second-order table
// input), the per-point tensors, the output column block of the level.
template <typename scalar_t>
struct LevelArgs {
  const scalar_t* table;
  const scalar_t* gg_table;  // may be null
  Level level;
  int64_t features;
  int64_t width;    // features * levels: row length of output / grad_output
  int64_t column;   // first column of this level
  bool smoothstep;
};

template <typename scalar_t, int DIMS>
__global__ void forward_kernel(LevelArgs<scalar_t> args, const at::opmath_type<scalar_t>* x,
                               scalar_t* out, int64_t n) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= n) return;
  Stencil<acc_t, DIMS> s;
  build_stencil<acc_t, DIMS>(x + p * DIMS, args.level, args.smoothstep, s);
  for (int64_t f = 0; f < args.features; ++f) {
    acc_t sum = 0;
    for (int k = 0; k < s.kCorners; ++k) {
      sum += s.weight[k] * acc_t(args.table[offset(args.level, args.features, s.row[k], f)]);
    }
    out[p * args.width + args.column + f] = static_cast<scalar_t>(sum);
  }
}

// Adds this level's share of the coordinate gradient (first order) and
// scatters its table gradient.
template <typename scalar_t, int DIMS>
__global__ void backward_kernel(LevelArgs<scalar_t> args, const at::opmath_type<scalar_t>* x,
                                const scalar_t* g, at::opmath_type<scalar_t>* grad_coords,
                                at::opmath_type<scalar_t>* grad_table, int64_t n) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= n) return;
  Stencil<acc_t, DIMS> s;
  build_stencil<acc_t, DIMS>(x + p * DIMS, args.level, args.smoothstep, s);
  const scalar_t* gl = g + p * args.width + args.column;
  acc_t gradient[DIMS][Stencil<acc_t, DIMS>::kCorners];
  if (grad_coords) corner_gradients(s, gradient);
  acc_t total[DIMS] = {};
  for (int k = 0; k < s.kCorners; ++k) {
    acc_t g_dot_value = 0;
    for (int64_t f = 0; f < args.features; ++f) {
      const int64_t at = offset(args.level, args.features, s.row[k], f);
      if (grad_coords) g_dot_value += acc_t(gl[f]) * acc_t(args.table[at]);
      if (grad_table) gpuAtomicAdd(grad_table + at, s.weight[k] * acc_t(gl[f]));
    }
    if (grad_coords) {
      for (int a = 0; a < DIMS; ++a) total[a] += gradient[a][k] * g_dot_value;
    }
  }
  if (grad_coords) {
    for (int a = 0; a < DIMS; ++a) grad_coords[p * DIMS + a] += total[a];
  }
}

template <typename scalar_t, int DIMS>
__global__ void double_backward_kernel(LevelArgs<scalar_t> args,
                                       const at::opmath_type<scalar_t>* x,
                                       const at::opmath_type<scalar_t>* gg_coords,
                                       const scalar_t* g, scalar_t* grad_grad_output,
                                       at::opmath_type<scalar_t>* grad_coords,
                                       at::opmath_type<scalar_t>* grad_table, int64_t n) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= n) return;
  Stencil<acc_t, DIMS> s;
  build_stencil<acc_t, DIMS>(x + p * DIMS, args.level, args.smoothstep, s);
  const scalar_t* gl = g + p * args.width + args.column;
  const acc_t* gg = gg_coords ? gg_coords + p * DIMS : nullptr;
  acc_t total[DIMS] = {};
  for (int64_t f = 0; grad_grad_output && f < args.features; ++f) {
    grad_grad_output[p * args.width + args.column + f] = scalar_t(0);
  }
  constexpr int kCorners = Stencil<acc_t, DIMS>::kCorners;
  acc_t directional[kCorners] = {};
  acc_t second[DIMS][kCorners] = {};
  if (gg) {
    weight_directional(s, gg, directional);
    if (grad_coords) gradient_directional(s, gg, second);
  }
  acc_t gradient[DIMS][kCorners] = {};
  if (args.gg_table && grad_coords) corner_gradients(s, gradient);
  for (int k = 0; k < kCorners; ++k) {
    acc_t g_dot_value = 0;
    acc_t g_dot_gg_value = 0;
    for (int64_t f = 0; f < args.features; ++f) {
      const int64_t at = offset(args.level, args.features, s.row[k], f);
      const acc_t value = acc_t(args.table[at]);
      const acc_t gg_value = args.gg_table ? acc_t(args.gg_table[at]) : acc_t(0);
      if (grad_grad_output) {
        scalar_t& out = grad_grad_output[p * args.width + args.column + f];
        out = static_cast<scalar_t>(acc_t(out) + directional[k] * value + s.weight[k] * gg_value);
      }
      g_dot_value += acc_t(gl[f]) * value;
      g_dot_gg_value += acc_t(gl[f]) * gg_value;
      if (grad_table && gg) gpuAtomicAdd(grad_table + at, directional[k] * acc_t(gl[f]));
    }
    for (int b = 0; grad_coords && b < DIMS; ++b) {
      total[b] += second[b][k] * g_dot_value + gradient[b][k] * g_dot_gg_value;
    }
  }
  if (grad_coords) {
    for (int b = 0; b < DIMS; ++b) grad_coords[p * DIMS + b] += total[b];
  }
}

template <typename scalar_t>
LevelArgs<scalar_t> level_args(const Prepared& args, size_t l, bool smoothstep) {
  return {args.tables[l].const_data_ptr<scalar_t>(),
          args.gg_tables.empty() ? nullptr : args.gg_tables[l].const_data_ptr<scalar_t>(),
          args.levels[l],
          args.features,
          args.width(),
          args.features * static_cast<int64_t>(l),
          smoothstep};
}

std::vector<at::Tensor> opmath_zeros_like(const std::vector<at::Tensor>& tables) {
  std::vector<at::Tensor> out;
  for (const auto& t : tables) {
    out.push_back(at::zeros(t.sizes(), t.options().dtype(at::toOpMathType(t.scalar_type()))));
  }
  return out;
}

std::vector<at::Tensor> in_dtype(std::vector<at::Tensor> grads, at::ScalarType dtype) {
  for (auto& grad : grads) grad = grad.to(dtype);
  return grads;
}

at::Tensor multires_encode_cuda(const at::Tensor& coords, at::TensorList tables,
                                at::IntArrayRef resolutions, bool smoothstep) {
  const Prepared args = prepare("multires_encode", coords, tables, resolutions);
  const c10::cuda::CUDAGuard guard(coords.device());
  const int64_t n = coords.size(0);
  auto output = at::empty({n, args.width()}, args.tables[0].options());
  if (n == 0) return output;
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                  "multires_encode_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    dispatch_dims(coords.size(1), [&](auto dims) {
      for (size_t l = 0; l < args.levels.size(); ++l) {
        forward_kernel<scalar_t, decltype(dims)::value><<<blocks_for(n), kThreads, 0, stream>>>(
            level_args<scalar_t>(args, l, smoothstep), args.coords.const_data_ptr<acc_t>(),
            output.mutable_data_ptr<scalar_t>(), n);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
    });
  });
  return output;
}

std::tuple<at::Tensor, std::vector<at::Tensor>> multires_encode_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& coords, at::TensorList tables,
    at::IntArrayRef resolutions, bool smoothstep, std::array<bool, 2> output_mask) {
  const Prepared args =
      prepare("multires_encode_backward", coords, tables, resolutions, &grad_output);
  const c10::cuda::CUDAGuard guard(coords.device());
  const int64_t n = coords.size(0);
  at::Tensor grad_coords =
      output_mask[0] ? at::zeros_like(args.coords) : at::empty({0}, coords.options());
  std::vector<at::Tensor> grad_tables;
  if (output_mask[1]) {
    at::globalContext().alertNotDeterministic("torchsample::multires_encode_backward (CUDA)");
    grad_tables = opmath_zeros_like(args.tables);
  }
  const auto stream = c10::cuda::getCurrentCUDAStream();
  if (n > 0 && (output_mask[0] || output_mask[1])) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                    "multires_encode_backward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      dispatch_dims(coords.size(1), [&](auto dims) {
        for (size_t l = 0; l < args.levels.size(); ++l) {
          backward_kernel<scalar_t, decltype(dims)::value><<<blocks_for(n), kThreads, 0, stream>>>(
              level_args<scalar_t>(args, l, smoothstep), args.coords.const_data_ptr<acc_t>(),
              args.grad_output.const_data_ptr<scalar_t>(),
              output_mask[0] ? grad_coords.mutable_data_ptr<acc_t>() : nullptr,
              output_mask[1] ? grad_tables[l].mutable_data_ptr<acc_t>() : nullptr, n);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      });
    });
  }
  return {grad_coords, output_mask[1] ? in_dtype(grad_tables, args.tables[0].scalar_type())
                                      : empty_like_each(args.tables)};
}

std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>> multires_encode_double_backward_cuda(
    const std::optional<at::Tensor>& gg_coords, at::TensorList gg_tables,
    const at::Tensor& grad_output, const at::Tensor& coords, at::TensorList tables,
    at::IntArrayRef resolutions, bool smoothstep, std::array<bool, 3> output_mask) {
  const Prepared args = prepare("multires_encode_double_backward", coords, tables, resolutions,
                                &grad_output, &gg_coords, gg_tables);
  const c10::cuda::CUDAGuard guard(coords.device());
  const int64_t n = coords.size(0);
  at::Tensor grad_grad_output = empty_unless(output_mask[0], args.grad_output);
  at::Tensor grad_coords =
      output_mask[1] ? at::zeros_like(args.coords) : at::empty({0}, coords.options());
  std::vector<at::Tensor> grad_tables;
  if (output_mask[2]) {
    at::globalContext().alertNotDeterministic(
        "torchsample::multires_encode_double_backward (CUDA)");
    grad_tables = opmath_zeros_like(args.tables);
  }
  const auto stream = c10::cuda::getCurrentCUDAStream();
  if (n > 0 && (output_mask[0] || output_mask[1] || output_mask[2])) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.tables[0].scalar_type(),
                                    "multires_encode_double_backward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      dispatch_dims(coords.size(1), [&](auto dims) {
        for (size_t l = 0; l < args.levels.size(); ++l) {
          double_backward_kernel<scalar_t, decltype(dims)::value>
              <<<blocks_for(n), kThreads, 0, stream>>>(
                  level_args<scalar_t>(args, l, smoothstep), args.coords.const_data_ptr<acc_t>(),
                  args.gg_coords.defined() ? args.gg_coords.const_data_ptr<acc_t>() : nullptr,
                  args.grad_output.const_data_ptr<scalar_t>(),
                  output_mask[0] ? grad_grad_output.mutable_data_ptr<scalar_t>() : nullptr,
                  output_mask[1] ? grad_coords.mutable_data_ptr<acc_t>() : nullptr,
                  output_mask[2] ? grad_tables[l].mutable_data_ptr<acc_t>() : nullptr, n);
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        }
      });
    });
  }
  return {grad_grad_output, grad_coords,
          output_mask[2] ? in_dtype(grad_tables, args.tables[0].scalar_type())
                         : empty_like_each(args.tables)};
}

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CUDA, m) {
  m.impl("multires_encode", &multires_encode_cuda);
  m.impl("multires_encode_backward", &multires_encode_backward_cuda);
  m.impl("multires_encode_double_backward", &multires_encode_double_backward_cuda);
}

}  // namespace multires
}  // namespace torchsample
