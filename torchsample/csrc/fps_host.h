// Host-side argument handling shared by the CPU and CUDA farthest point
// sampling kernels (the schema is in fps.cpp).
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "checks.h"

namespace torchsample {

// The op's tensor arguments, checked (checks.h) and each contiguous;
// `initial_distances` is undefined when none were given.
struct FarthestPointArgs {
  at::Tensor points, lengths, start_indices, initial_distances;
};

inline FarthestPointArgs farthest_point_args(const at::Tensor& points, const at::Tensor& lengths,
                                             int64_t n_samples, const at::Tensor& start_indices,
                                             const std::optional<at::Tensor>& initial_distances) {
  check_farthest_point_args(points, lengths, n_samples, start_indices, initial_distances);
  const bool has_initial = initial_distances.has_value() && initial_distances->defined();
  return {points.contiguous(), lengths.contiguous(), start_indices.contiguous(),
          has_initial ? initial_distances->contiguous() : at::Tensor()};
}

// The signature every device's kernel registers, matching the schema; each
// kernel file static_asserts its function against it.
using FarthestPointSampleFn = at::Tensor(const at::Tensor& points, const at::Tensor& lengths,
                                         int64_t n_samples, const at::Tensor& start_indices,
                                         const std::optional<at::Tensor>& initial_distances);

}  // namespace torchsample
