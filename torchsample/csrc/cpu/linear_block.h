// (Bi/tri)linear stencils of a block of points at once, for the CPU kernels'
// few-channel path.
//
// With few channels a sample costs little more than its stencil, so the
// stencil is the kernel.  Built one point at a time (make_stencil) it is a
// chain of branches and scalar conversions; here every step runs over the
// kTile points of a block before the next (structure of arrays), with the
// geometry's options tested once per block, so that the compiler turns each
// step into vector instructions across points, as ATen's grid sampler does.
//
// A block keeps every corner of every point: taps outside the input get
// offset 0 and `inside` false, and the kernels skip or zero them (a weight
// of zero is not enough: the value read there may be inf or NaN).  The
// values match make_stencil's bit for bit: same formulas, same order of
// operations.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../grid_sample.h"
#include "point_order.h"

namespace torchsample {

template <int DIMS, typename T>
struct LinearBlock {
  static constexpr int kCorners = 1 << DIMS;
  // Corner k takes the upper tap along axis d where bit d of k is set, the
  // order of make_stencil's taps.
  // 32 bits: the block path takes inputs of fewer than 2^31 elements.
  int32_t offset[kCorners][kTile];
  bool inside[kCorners][kTile];
  T weight[kCorners][kTile];
  T grad[DIMS][kCorners][kTile];      // order >= 1
  T hessian[6][kCorners][kTile];      // order >= 2, slots as hessian_slot
};

// Per-axis values of a block: index of the lower tap, the two taps' flags,
// the upper tap's weight and its derivatives in the normalized coordinate.
template <typename T>
struct BlockAxis {
  int32_t low[kTile];
  bool inside[2][kTile];
  T weight[2][kTile];
  T grad[2][kTile];
  T hessian[2][kTile];
};

// Pixel coordinate and slope (d pixel / d grid) along axis d of `count`
// points, padded and moved into int range as linear_axes does.
template <int DIMS, typename scalar_t, typename T>
void block_pixel_coords(const scalar_t* grid, int d, int64_t count, const Geometry& geo, T* x,
                        T* slope) {
  const int64_t extent = geo.size[d];
  if (geo.align_corners) {
    for (int64_t j = 0; j < count; ++j) {
      x[j] = unnormalize(static_cast<T>(grid[j * DIMS + d]), extent, true, &slope[j]);
    }
  } else {
    for (int64_t j = 0; j < count; ++j) {
      x[j] = unnormalize(static_cast<T>(grid[j * DIMS + d]), extent, false, &slope[j]);
    }
  }
  if (geo.padding == kBorder) {
    for (int64_t j = 0; j < count; ++j) {
      T grad;
      x[j] = clip(x[j], extent, &grad);
      slope[j] *= grad;
    }
  } else if (geo.padding == kReflection) {
    for (int64_t j = 0; j < count; ++j) {
      T grad;
      x[j] = pad_coordinate(x[j], extent, geo.padding, geo.align_corners, &grad);
      slope[j] *= grad;
    }
  }
  for (int64_t j = 0; j < count; ++j) {
    x[j] = safe_downgrade_to_int_range(x[j]);
  }
}

template <int DIMS, typename scalar_t, typename T>
void block_axis(const scalar_t* grid, int d, int64_t count, const Geometry& geo, int order,
                BlockAxis<T>* a) {
  T x[kTile], slope[kTile];
  block_pixel_coords<DIMS>(grid, d, count, geo, x, slope);
  const int64_t extent = geo.size[d];
  // Below -1 or from `extent` on, both taps lie outside whatever the
  // fraction: clamping there leaves every kept tap as it was, and lets the
  // floor go through a 32-bit conversion, which vectorizes.
  const T lowest = T(-2), highest = T(extent + 1);
  const int32_t last = static_cast<int32_t>(extent - 1);
  T t[kTile];
  for (int64_t j = 0; j < count; ++j) {
    T clamped = x[j] < lowest ? lowest : x[j];
    clamped = clamped > highest ? highest : clamped;
    T base = T(static_cast<int32_t>(clamped));
    // A subtraction of 0 or 1, not a conditional one: GCC does not
    // speculate floating-point operations that might trap.
    base -= base > clamped ? T(1) : T(0);
    a->low[j] = static_cast<int32_t>(base);
    t[j] = clamped - base;
  }
  // Bitwise operators: short-circuits would be branches, which do not
  // vectorize.
  for (int64_t j = 0; j < count; ++j) {
    const int32_t low = a->low[j];
    a->inside[0][j] = (low >= 0) & (low <= last);
    a->inside[1][j] = (low >= -1) & (low < last);
  }
  T w[kTile], dw[kTile], d2w[kTile];
  if (geo.smoothstep) {
    for (int64_t j = 0; j < count; ++j) {
      upper_weight(t[j], true, &w[j], &dw[j], &d2w[j]);
    }
  } else {
    for (int64_t j = 0; j < count; ++j) {
      upper_weight(t[j], false, &w[j], &dw[j], &d2w[j]);
    }
  }
  for (int64_t j = 0; j < count; ++j) {
    a->weight[0][j] = 1 - w[j];
    a->weight[1][j] = w[j];
  }
  if (order >= 1) {
    for (int64_t j = 0; j < count; ++j) {
      a->grad[0][j] = -dw[j] * slope[j];
      a->grad[1][j] = dw[j] * slope[j];
    }
  }
  if (order >= 2) {
    for (int64_t j = 0; j < count; ++j) {
      a->hessian[0][j] = -d2w[j] * slope[j] * slope[j];
      a->hessian[1][j] = d2w[j] * slope[j] * slope[j];
    }
  }
}

// The product over axes of one factor per axis: `pick(d, side)` is the row
// of axis d's factor for that side.  Left to right, as tap_products.
template <int DIMS, typename T, typename Pick>
void corner_product(int corner, int64_t count, const Pick& pick, T* out) {
  const T* first = pick(0, corner & 1);
  for (int64_t j = 0; j < count; ++j) {
    out[j] = first[j];
  }
  for (int d = 1; d < DIMS; ++d) {
    const T* row = pick(d, (corner >> d) & 1);
    for (int64_t j = 0; j < count; ++j) {
      out[j] *= row[j];
    }
  }
}

// Stencils of the `count` (<= kTile) points whose coordinates start at
// `grid`, with derivatives up to `order`.
template <int DIMS, typename scalar_t, typename T>
void locate_block(const scalar_t* grid, int64_t count, const Geometry& geo, int order,
                  LinearBlock<DIMS, T>* b) {
  constexpr int kCorners = LinearBlock<DIMS, T>::kCorners;
  BlockAxis<T> axes[DIMS];
  for (int d = 0; d < DIMS; ++d) {
    block_axis<DIMS>(grid, d, count, geo, order, &axes[d]);
  }
  for (int corner = 0; corner < kCorners; ++corner) {
    // Unsigned: the offsets of taps outside the input may wrap around (and
    // are then replaced by 0); those inside fit, the input being smaller
    // than 2^31 elements.
    uint32_t stride[DIMS];
    bool const* inside[DIMS];
    for (int d = 0; d < DIMS; ++d) {
      stride[d] = static_cast<uint32_t>(geo.stride[d]);
      inside[d] = axes[d].inside[(corner >> d) & 1];
    }
    for (int64_t j = 0; j < count; ++j) {
      uint32_t offset = 0;
      bool in = true;
      for (int d = 0; d < DIMS; ++d) {
        offset += static_cast<uint32_t>(axes[d].low[j] + ((corner >> d) & 1)) * stride[d];
        in = in & inside[d][j];
      }
      b->offset[corner][j] = static_cast<int32_t>(offset * static_cast<uint32_t>(in));
      b->inside[corner][j] = in;
    }
    corner_product<DIMS>(corner, count, [&](int d, int side) { return axes[d].weight[side]; },
                         b->weight[corner]);
    for (int e = 0; e < (order >= 1 ? DIMS : 0); ++e) {
      corner_product<DIMS>(
          corner, count,
          [&](int d, int side) { return d == e ? axes[d].grad[side] : axes[d].weight[side]; },
          b->grad[e][corner]);
    }
    for (int e = 0; e < (order >= 2 ? DIMS : 0); ++e) {
      for (int f = e; f < DIMS; ++f) {
        corner_product<DIMS>(
            corner, count,
            [&](int d, int side) {
              if (e == f) {
                return d == e ? axes[d].hessian[side] : axes[d].weight[side];
              }
              return (d == e || d == f) ? axes[d].grad[side] : axes[d].weight[side];
            },
            b->hessian[hessian_slot(e, f)][corner]);
      }
    }
  }
}

// The value of every corner of one channel plane, zero outside the input.
template <int DIMS, typename scalar_t, typename T>
void gather_corners(const LinearBlock<DIMS, T>& b, const scalar_t* plane, int64_t count,
                    T (*v)[kTile]) {
  for (int corner = 0; corner < LinearBlock<DIMS, T>::kCorners; ++corner) {
    for (int64_t j = 0; j < count; ++j) {
      const T value = static_cast<T>(plane[b.offset[corner][j]]);
      v[corner][j] = b.inside[corner][j] ? value : T(0);
    }
  }
}

}  // namespace torchsample
