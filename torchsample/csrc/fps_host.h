// Host-side argument handling shared by the CPU and CUDA farthest point
// sampling kernels (the schema is in fps.cpp).
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace torchsample {

// The op's tensor arguments after the checks every device shares, each
// contiguous; `initial_distances` is undefined when none were given.
// Lengths and start indices are checked against the clouds by the CPU
// kernel; on CUDA that would need a device-to-host copy, and the Python
// caller checks them instead.
struct FarthestPointArgs {
  at::Tensor points, lengths, start_indices, initial_distances;
};

inline FarthestPointArgs farthest_point_args(const at::Tensor& points, const at::Tensor& lengths,
                                             int64_t n_samples, const at::Tensor& start_indices,
                                             const std::optional<at::Tensor>& initial_distances) {
  TORCH_CHECK(points.dim() == 3 && points.size(2) == 3, "points must be (b, n, 3), got ",
              points.sizes());
  TORCH_CHECK(lengths.dim() == 1 && lengths.size(0) == points.size(0) &&
                  lengths.scalar_type() == at::kLong,
              "lengths must be int64 of shape (b,)");
  TORCH_CHECK(start_indices.dim() == 1 && start_indices.size(0) == points.size(0) &&
                  start_indices.scalar_type() == at::kLong,
              "start_indices must be int64 of shape (b,)");
  TORCH_CHECK(n_samples >= 1, "n_samples must be >= 1, got ", n_samples);
  const bool has_initial = initial_distances.has_value() && initial_distances->defined();
  if (has_initial) {
    TORCH_CHECK(initial_distances->sizes() == points.sizes().slice(0, 2) &&
                    initial_distances->scalar_type() == points.scalar_type(),
                "initial_distances must be (b, n) with the dtype of points");
  }
  return {points.contiguous(), lengths.contiguous(), start_indices.contiguous(),
          has_initial ? initial_distances->contiguous() : at::Tensor()};
}

// The signature every device's kernel registers, matching the schema; each
// kernel file static_asserts its function against it.
using FarthestPointSampleFn = at::Tensor(const at::Tensor& points, const at::Tensor& lengths,
                                         int64_t n_samples, const at::Tensor& start_indices,
                                         const std::optional<at::Tensor>& initial_distances);

}  // namespace torchsample
