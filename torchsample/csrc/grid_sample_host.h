// Host-side helpers shared by the CPU and CUDA grid-sample kernels: the
// Geometry of an input tensor and layout normalization (argument checks are
// in checks.h).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <tuple>
#include <vector>

#include "checks.h"
#include "grid_sample.h"

namespace torchsample {

// Geometry of `input` (b, c, [d,] h, w); axis 0 is x (width).
inline Geometry make_geometry(const at::Tensor& input, int64_t interpolation, int64_t padding,
                              bool align_corners, bool smoothstep) {
  Geometry geo;
  geo.dims = static_cast<int>(input.dim() - 2);
  for (int d = 0; d < 3; ++d) {
    const bool present = d < geo.dims;
    geo.size[d] = present ? input.size(input.dim() - 1 - d) : 1;
    geo.stride[d] = present ? input.stride(input.dim() - 1 - d) : 0;
  }
  geo.interpolation = interpolation;
  geo.padding = padding;
  geo.align_corners = align_corners;
  geo.smoothstep = smoothstep;
  return geo;
}

// Signatures every device's kernels register, matching the schemas in
// grid_sample.cpp.  Each kernel file static_asserts its functions against
// them, so a signature that drifts from the schema fails to compile (nvcc
// in CI) instead of failing to register on a machine with that device.
using GridSampleFn = at::Tensor(const at::Tensor& input, const at::Tensor& grid,
                                int64_t interpolation, int64_t padding, bool align_corners,
                                bool smoothstep);
using GridSampleBackwardFn = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& grid,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask);
using GridSampleDoubleBackwardFn = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const std::optional<at::Tensor>& grad_grad_input,
    const std::optional<at::Tensor>& grad_grad_grid, const at::Tensor& grad_output,
    const at::Tensor& input, const at::Tensor& grid, const std::optional<at::Tensor>& tap_products,
    int64_t interpolation, int64_t padding, bool align_corners, bool smoothstep,
    std::array<bool, 3> output_mask);

inline int64_t taps_per_point(const Geometry& geo) {
  return taps_per_point(geo.interpolation, geo.dims);
}

// Sizes and strides the CPU and CUDA kernels index with.  `output`-like
// tensors are (b, c, p) with arbitrary strides; grids are contiguous
// (b, p, dims).
struct Layout {
  int64_t N, C, P;
  int64_t in_sN, in_sC;
  int64_t go_sN, go_sC, go_sP;
};

inline Layout make_layout(const at::Tensor& input, const at::Tensor& grid,
                          const at::Tensor& grad_output) {
  Layout l;
  l.N = input.size(0);
  l.C = input.size(1);
  l.P = grid.size(1);
  l.in_sN = input.stride(0);
  l.in_sC = input.stride(1);
  l.go_sN = grad_output.defined() ? grad_output.stride(0) : 0;
  l.go_sC = grad_output.defined() ? grad_output.stride(1) : 0;
  l.go_sP = grad_output.defined() ? grad_output.stride(2) : 0;
  return l;
}

// Number of sampling points per batch element of a (b, *points, dims) grid.
inline int64_t grid_points(const at::Tensor& grid) {
  int64_t points = 1;
  for (int64_t d = 1; d < grid.dim() - 1; ++d) {
    points *= grid.size(d);
  }
  return points;
}

// (b, *points, dims) -> contiguous (b, p, dims).
inline at::Tensor flat_grid(const at::Tensor& grid) {
  return grid.reshape({grid.size(0), grid_points(grid), grid.size(-1)}).contiguous();
}

// Gradient of the output, (b, c, *points) -> (b, c, p), strides kept where
// a view allows.
inline at::Tensor flat_grad_output(const at::Tensor& grad_output, const at::Tensor& grid) {
  return grad_output.reshape({grad_output.size(0), grad_output.size(1), grid_points(grid)});
}

// Scatter kernels write into a buffer laid out like the input they read, so
// the input must have a layout a fresh tensor can copy (channels-last is
// fine; expanded or overlapping inputs are made contiguous).
inline at::Tensor dense_input(const at::Tensor& input) {
  return input.is_non_overlapping_and_dense() ? input : input.contiguous();
}

// `t` with exactly the strides of `like` (both have like's shape).
inline at::Tensor with_layout_of(const at::Tensor& t, const at::Tensor& like) {
  if (t.strides() == like.strides()) {
    return t;
  }
  at::Tensor out = at::empty_like(like, t.options());
  out.copy_(t);
  return out;
}

// A (b, p, dims) gradient accumulated in opmath, in the grid's shape and dtype.
inline at::Tensor finish_grid_grad(const at::Tensor& accumulated, const at::Tensor& grid) {
  return accumulated.to(grid.scalar_type()).view(grid.sizes());
}

// Integer inputs, nearest only: the value at each point's tap offset (-1 for
// none, giving zero), in the input's own dtype.  `offsets` is (b, p) and
// addresses one channel through the input's own spatial strides.
inline at::Tensor gather_nearest(const at::Tensor& input, const at::Tensor& offsets,
                                 const Geometry& geo) {
  const int64_t N = input.size(0), C = input.size(1), P = offsets.size(1);
  if (input.numel() == 0) {
    return at::zeros({N, C, P}, input.options());
  }
  const at::Tensor missing = offsets.lt(0).unsqueeze(1);
  const at::Tensor index = offsets.clamp_min(0).unsqueeze(1).expand({N, C, P});
  int64_t last_offset = 0;
  for (int d = 0; d < geo.dims; ++d) {
    last_offset += (geo.size[d] - 1) * geo.stride[d];
  }
  const at::Tensor extent_view =
      input.as_strided({N, C, last_offset + 1}, {input.stride(0), input.stride(1), 1});
  return extent_view.gather(2, index).masked_fill(missing, 0);
}

}  // namespace torchsample
