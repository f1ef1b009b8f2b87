// Farthest point sampling on CUDA: one thread block per cloud.
//
// Each thread owns a strided slice of the cloud's points and their running distances
// (kept in a global workspace); every step the threads lower their distances with the
// newest sample, and a shared-memory reduction finds the farthest point, the smallest
// index among ties, exactly as the CPU kernel does.

#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>
#include <torch/types.h>

#include <limits>
#include <type_traits>

#include "../fps_host.h"

namespace torchsample {
namespace {

constexpr int kThreads = 512;

// Rounded products and sums that the compiler may not fuse into multiply-adds, so the
// distances match the CPU kernel bit for bit, and with them the chosen indices.
__device__ inline float squared_distance(float dx, float dy, float dz) {
  return __fadd_rn(__fadd_rn(__fmul_rn(dx, dx), __fmul_rn(dy, dy)), __fmul_rn(dz, dz));
}

__device__ inline double squared_distance(double dx, double dy, double dz) {
  return __dadd_rn(__dadd_rn(__dmul_rn(dx, dx), __dmul_rn(dy, dy)), __dmul_rn(dz, dz));
}

template <typename scalar_t>
__device__ inline bool better(scalar_t d, int64_t index, scalar_t best_d, int64_t best_index) {
  return d > best_d || (d == best_d && index < best_index);
}

template <typename scalar_t>
__global__ void farthest_point_sample_kernel(const scalar_t* __restrict__ points,
                                             const int64_t* __restrict__ lengths,
                                             const int64_t* __restrict__ start_indices,
                                             const scalar_t* __restrict__ initial_distances,
                                             scalar_t* __restrict__ distances, int64_t n,
                                             int64_t n_samples, scalar_t infinity,
                                             int64_t* __restrict__ out) {
  __shared__ scalar_t best_distance[kThreads];
  __shared__ int64_t best_index[kThreads];

  const int64_t cloud = blockIdx.x;
  const int64_t length = lengths[cloud];
  const scalar_t* cloud_points = points + cloud * n * 3;
  scalar_t* distance = distances + cloud * n;
  int64_t* cloud_out = out + cloud * n_samples;

  for (int64_t i = threadIdx.x; i < length; i += blockDim.x) {
    distance[i] = initial_distances ? initial_distances[cloud * n + i]
                                    : infinity;
  }
  int64_t sample = start_indices[cloud];
  if (threadIdx.x == 0) cloud_out[0] = sample;
  __syncthreads();

  for (int64_t k = 1; k < n_samples; ++k) {
    const scalar_t sx = cloud_points[3 * sample];
    const scalar_t sy = cloud_points[3 * sample + 1];
    const scalar_t sz = cloud_points[3 * sample + 2];
    scalar_t local_best = -infinity;
    int64_t local_index = length;
    for (int64_t i = threadIdx.x; i < length; i += blockDim.x) {
      const scalar_t dx = cloud_points[3 * i] - sx;
      const scalar_t dy = cloud_points[3 * i + 1] - sy;
      const scalar_t dz = cloud_points[3 * i + 2] - sz;
      const scalar_t d = squared_distance(dx, dy, dz);
      scalar_t current = i == sample ? scalar_t(-1) : distance[i];
      current = d < current ? d : current;
      distance[i] = current;
      if (better(current, i, local_best, local_index)) {
        local_best = current;
        local_index = i;
      }
    }
    best_distance[threadIdx.x] = local_best;
    best_index[threadIdx.x] = local_index;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
      if (threadIdx.x < stride) {
        const int other = threadIdx.x + stride;
        if (better(best_distance[other], best_index[other], best_distance[threadIdx.x],
                   best_index[threadIdx.x])) {
          best_distance[threadIdx.x] = best_distance[other];
          best_index[threadIdx.x] = best_index[other];
        }
      }
      __syncthreads();
    }
    sample = best_index[0];
    if (threadIdx.x == 0) cloud_out[k] = sample;
    // Everyone must read the winner before the next step overwrites the scratch.
    __syncthreads();
  }
}

at::Tensor farthest_point_sample_cuda(const at::Tensor& points, const at::Tensor& lengths,
                                      int64_t n_samples, const at::Tensor& start_indices,
                                      const std::optional<at::Tensor>& initial_distances) {
  const FarthestPointArgs args =
      farthest_point_args(points, lengths, n_samples, start_indices, initial_distances);
  const c10::cuda::CUDAGuard guard(points.device());
  const int64_t batch = points.size(0);
  const int64_t n = points.size(1);
  at::Tensor out = at::empty({batch, n_samples}, points.options().dtype(at::kLong));
  if (batch == 0) return out;
  at::Tensor distances = at::empty({batch, n}, points.options());

  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "farthest_point_sample_cuda", [&] {
    farthest_point_sample_kernel<scalar_t>
        <<<batch, kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
            args.points.data_ptr<scalar_t>(), args.lengths.data_ptr<int64_t>(),
            args.start_indices.data_ptr<int64_t>(),
            args.initial_distances.defined() ? args.initial_distances.data_ptr<scalar_t>()
                                             : nullptr,
            distances.data_ptr<scalar_t>(), n, n_samples,
            std::numeric_limits<scalar_t>::infinity(), out.data_ptr<int64_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

static_assert(std::is_same_v<decltype(farthest_point_sample_cuda), FarthestPointSampleFn>);

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CUDA, m) {
  m.impl("farthest_point_sample", &farthest_point_sample_cuda);
}

}  // namespace torchsample
