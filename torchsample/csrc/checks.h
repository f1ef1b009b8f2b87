// Argument checks of every torchsample op, shared by the CPU and CUDA
// kernels (the role ATen's check_grid_sampler_* play for its grid sampler).
//
// The kernels index every tensor argument with sizes taken from `input` and
// `grid` (grid-sample ops) or `points` (farthest point sampling), so every
// other tensor must match them exactly: a smaller one would be read out of
// bounds, a larger one silently ignored.  Layouts need no check: the op
// wrappers copy or reshape each tensor into the layout its kernel indexes.
// The fakes in torchsample/ops/compiled.py check the same contract with
// torch._check, for tracing and torch.compile.
#pragma once

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>

#include <optional>
#include <vector>

#include "grid_sample.h"

namespace torchsample {

// Tap slots per point: 1 for nearest, 2^dims for (bi/tri)linear, 4^dims for
// bicubic.
inline int64_t taps_per_point(int64_t interpolation, int64_t dims) {
  const int64_t per_axis = interpolation == kNearest ? 1 : interpolation == kBicubic ? 4 : 2;
  return dims == 2 ? per_axis * per_axis : per_axis * per_axis * per_axis;
}

// Shape of a grid-sample output, (b, c, *points).
inline std::vector<int64_t> output_shape(const at::Tensor& input, const at::Tensor& grid) {
  std::vector<int64_t> shape = {input.size(0), input.size(1)};
  for (int64_t d = 1; d < grid.dim() - 1; ++d) {
    shape.push_back(grid.size(d));
  }
  return shape;
}

// `t` is `what` on `like`'s device with exactly `shape` and `dtype`.
inline void check_matches(const char* op, const char* name, const at::Tensor& t,
                          at::IntArrayRef shape, at::ScalarType dtype, const at::Tensor& like,
                          const char* what) {
  TORCH_CHECK(t.sizes() == shape, op, ": ", name, " must have shape ", shape, " (", what,
              "), got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " must have dtype ", dtype, " (", what,
              "), got ", t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), op, ": ", name, " must be on ", like.device(),
              " like the other arguments, got ", t.device());
}

inline void check_grid_sample_args(const char* op, const at::Tensor& input,
                                   const at::Tensor& grid, int64_t interpolation, int64_t padding,
                                   bool smoothstep) {
  TORCH_CHECK(input.dim() == 4 || input.dim() == 5, op, ": input must be 4D or 5D, got ",
              input.dim(), "D of shape ", input.sizes());
  TORCH_CHECK(grid.dim() == input.dim(), op, ": grid must have ", input.dim(),
              " dimensions like input, got shape ", grid.sizes());
  TORCH_CHECK(grid.size(0) == input.size(0), op, ": grid batch ", grid.size(0),
              " differs from input batch ", input.size(0));
  TORCH_CHECK(grid.size(-1) == input.dim() - 2, op, ": grid last dim must be ", input.dim() - 2,
              ", got shape ", grid.sizes());
  TORCH_CHECK(grid.is_floating_point(), op, ": grid must be floating point, got ",
              grid.scalar_type());
  TORCH_CHECK(!input.is_floating_point() || input.scalar_type() == grid.scalar_type(), op,
              ": input and grid dtypes differ (", input.scalar_type(), " vs ",
              grid.scalar_type(), ")");
  TORCH_CHECK(input.is_floating_point() || interpolation == kNearest, op,
              ": integer input needs nearest interpolation");
  TORCH_CHECK(interpolation >= kBilinear && interpolation <= kBicubic, op,
              ": unknown interpolation ", interpolation);
  TORCH_CHECK(padding >= kZeros && padding <= kReflection, op, ": unknown padding ", padding);
  TORCH_CHECK(interpolation != kBicubic || input.dim() == 4, op,
              ": bicubic needs a 4D input");
  TORCH_CHECK(!smoothstep || interpolation == kBilinear, op,
              ": smoothstep needs bilinear interpolation");
  TORCH_CHECK(input.device() == grid.device(), op, ": input and grid must be on one device, got ",
              input.device(), " and ", grid.device());
  // As ATen's grid sampler: there is nothing to sample or pad from.
  for (int64_t d = 2; d < input.dim(); ++d) {
    TORCH_CHECK(input.size(d) > 0, op,
                ": input must have non-empty spatial dimensions, got shape ", input.sizes());
  }
}

// The derivative ops also take the output's gradient, which must be shaped
// like the output the forward op returns, and a floating input.
inline void check_grid_sample_backward_args(const char* op, const at::Tensor& grad_output,
                                            const at::Tensor& input, const at::Tensor& grid,
                                            int64_t interpolation, int64_t padding,
                                            bool smoothstep) {
  check_grid_sample_args(op, input, grid, interpolation, padding, smoothstep);
  TORCH_CHECK(input.is_floating_point(), op, ": input must be floating point, got ",
              input.scalar_type());
  check_matches(op, "grad_output", grad_output, output_shape(input, grid), input.scalar_type(),
                input, "batch and channels of input, points of grid, dtype of input");
}

// `gg_input`, `gg_grid`: the incoming gradients of the backward's outputs,
// shaped like input and grid; `tap_products`, where given and non-empty,
// as grid_sample_backward returns them.
inline void check_grid_sample_double_backward_args(
    const char* op, const std::optional<at::Tensor>& gg_input,
    const std::optional<at::Tensor>& gg_grid, const at::Tensor& grad_output,
    const at::Tensor& input, const at::Tensor& grid,
    const std::optional<at::Tensor>& tap_products, int64_t interpolation, int64_t padding,
    bool smoothstep) {
  check_grid_sample_backward_args(op, grad_output, input, grid, interpolation, padding,
                                  smoothstep);
  if (gg_input.has_value() && gg_input->defined()) {
    check_matches(op, "grad_grad_input", *gg_input, input.sizes(), input.scalar_type(), input,
                  "shape and dtype of input");
  }
  if (gg_grid.has_value() && gg_grid->defined()) {
    check_matches(op, "grad_grad_grid", *gg_grid, grid.sizes(), grid.scalar_type(), input,
                  "shape and dtype of grid");
  }
  if (tap_products.has_value() && tap_products->defined() && tap_products->numel() > 0) {
    const int64_t points = grid.numel() / std::max<int64_t>(grid.size(0) * grid.size(-1), 1);
    const std::vector<int64_t> expected = {input.size(0), points,
                                           taps_per_point(interpolation, input.dim() - 2)};
    check_matches(op, "tap_products", *tap_products, expected,
                  at::toOpMathType(input.scalar_type()), input,
                  "as grid_sample_backward returns them: batch, points, taps per point");
  }
}

inline void check_channels_last_copy_args(const at::Tensor& input) {
  TORCH_CHECK(input.dim() == 4 || input.dim() == 5,
              "torchsample::channels_last_copy: expected a 4D or 5D feature map, got shape ",
              input.sizes());
}

// Lengths and start indices address points, so their values are checked
// too, and initial distances for NaN; on CUDA that costs a device-to-host
// copy of a flag or two per call, small next to the sampling itself.
inline void check_farthest_point_args(const at::Tensor& points, const at::Tensor& lengths,
                                      int64_t n_samples, const at::Tensor& start_indices,
                                      const std::optional<at::Tensor>& initial_distances) {
  constexpr const char* op = "torchsample::farthest_point_sample";
  TORCH_CHECK(points.dim() == 3 && points.size(2) == 3, op, ": points must be (b, n, 3), got ",
              points.sizes());
  TORCH_CHECK(points.scalar_type() == at::kFloat || points.scalar_type() == at::kDouble, op,
              ": points must be float32 or float64, got ", points.scalar_type());
  TORCH_CHECK(n_samples >= 1, op, ": n_samples must be >= 1, got ", n_samples);
  const int64_t batch = points.size(0), n = points.size(1);
  check_matches(op, "lengths", lengths, {batch}, at::kLong, points, "int64, one per cloud");
  check_matches(op, "start_indices", start_indices, {batch}, at::kLong, points,
                "int64, one per cloud");
  if (initial_distances.has_value() && initial_distances->defined()) {
    check_matches(op, "initial_distances", *initial_distances, {batch, n}, points.scalar_type(),
                  points, "(b, n) in the dtype of points");
    // A NaN distance compares false both ways: with every distance NaN, the
    // CUDA kernel's search would find no point and read past the cloud.
    TORCH_CHECK(!initial_distances->isnan().any().item<bool>(), op,
                ": initial_distances must not be NaN");
  }
  const at::Tensor bad =
      lengths.lt(n_samples) | lengths.gt(n) | start_indices.lt(0) | start_indices.ge(lengths);
  if (batch > 0 && bad.any().item<bool>()) {
    const int64_t i = bad.to(at::kByte).argmax().item<int64_t>();
    const int64_t length = lengths[i].item<int64_t>(), start = start_indices[i].item<int64_t>();
    TORCH_CHECK(length >= n_samples && length <= n, op, ": cloud ", i, " has length ", length,
                ", needs between n_samples=", n_samples, " and n=", n);
    TORCH_CHECK(false, op, ": start index ", start, " out of range for cloud ", i, " of length ",
                length);
  }
}

}  // namespace torchsample
