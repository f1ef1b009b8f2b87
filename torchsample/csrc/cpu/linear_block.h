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
//
// On x86-64, locate_block and gather_corners are also compiled for AVX2
// (without FMA, so that no product is fused and the values stay the same)
// and picked at run time where the CPU has it: twice the lanes, vector
// integer products and gathers, which SSE2 lacks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "../grid_sample.h"
#include "point_order.h"

// Everything locate_block calls is inlined into it, so that each of its
// variants compiles all of the work for its own instruction set.
#if defined(__GNUC__)
#define TORCHSAMPLE_BLOCK_INLINE inline __attribute__((always_inline))
#else
#define TORCHSAMPLE_BLOCK_INLINE inline
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define TORCHSAMPLE_BLOCK_AVX2 1
#endif

namespace torchsample {

template <int DIMS, typename T>
struct LinearBlock {
  static constexpr int kCorners = 1 << DIMS;
  // Corner k takes the upper tap along axis d where bit d of k is set, the
  // order of make_stencil's taps.
  // 32 bits: the block path takes inputs of fewer than 2^31 elements.
  int32_t offset[kCorners][kTile];
  // 0 or 1, as wide as the offsets: mixed widths keep loops from vectorizing.
  int32_t inside[kCorners][kTile];
  T weight[kCorners][kTile];
  T grad[DIMS][kCorners][kTile];      // order >= 1
  T hessian[6][kCorners][kTile];      // order >= 2, slots as hessian_slot
};

// Per-axis values of a block: index of the lower tap, the two taps' flags,
// the upper tap's weight and its derivatives in the normalized coordinate.
template <typename T>
struct BlockAxis {
  int32_t low[kTile];
  int32_t inside[2][kTile];
  T weight[2][kTile];
  T grad[2][kTile];
  T hessian[2][kTile];
};

// Pixel coordinate and slope (d pixel / d grid) along axis d of `count`
// points, padded and moved into int range as linear_axes does.
template <int DIMS, typename scalar_t, typename T>
TORCHSAMPLE_BLOCK_INLINE void block_pixel_coords(const scalar_t* grid, int d, int64_t count, const Geometry& geo, T* x,
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
TORCHSAMPLE_BLOCK_INLINE void block_axis(const scalar_t* grid, int d, int64_t count, const Geometry& geo, int order,
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
    const int32_t truncated = static_cast<int32_t>(clamped);
    const int32_t low = truncated - static_cast<int32_t>(T(truncated) > clamped);
    a->low[j] = low;
    t[j] = clamped - T(low);
  }
  // Bitwise operators: short-circuits would be branches, which do not
  // vectorize.
  for (int64_t j = 0; j < count; ++j) {
    const int32_t low = a->low[j];
    a->inside[0][j] = static_cast<int32_t>(low >= 0) & static_cast<int32_t>(low <= last);
    a->inside[1][j] = static_cast<int32_t>(low >= -1) & static_cast<int32_t>(low < last);
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

// out[j] = rows[0][j] * rows[1][j] * ..., left to right as tap_products.
template <int DIMS, typename T>
TORCHSAMPLE_BLOCK_INLINE void corner_product(const T* const* rows, int64_t count, T* out) {
  for (int64_t j = 0; j < count; ++j) {
    out[j] = rows[0][j];
  }
  for (int d = 1; d < DIMS; ++d) {
    for (int64_t j = 0; j < count; ++j) {
      out[j] *= rows[d][j];
    }
  }
}

template <int DIMS, typename scalar_t, typename T>
TORCHSAMPLE_BLOCK_INLINE void locate_block_body(const scalar_t* grid, int64_t count,
                                                const Geometry& geo, int order,
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
    const int32_t* inside[DIMS];
    for (int d = 0; d < DIMS; ++d) {
      stride[d] = static_cast<uint32_t>(geo.stride[d]);
      inside[d] = axes[d].inside[(corner >> d) & 1];
    }
    for (int64_t j = 0; j < count; ++j) {
      uint32_t offset = 0;
      int32_t in = 1;
      for (int d = 0; d < DIMS; ++d) {
        offset += static_cast<uint32_t>(axes[d].low[j] + ((corner >> d) & 1)) * stride[d];
        in = in & inside[d][j];
      }
      b->offset[corner][j] = static_cast<int32_t>(offset * static_cast<uint32_t>(in));
      b->inside[corner][j] = in;
    }
    // rows[d]: axis d's factor on this corner's side, its weight unless the
    // derivative is taken along d.
    const T* rows[DIMS];
    for (int d = 0; d < DIMS; ++d) {
      rows[d] = axes[d].weight[(corner >> d) & 1];
    }
    corner_product<DIMS>(rows, count, b->weight[corner]);
    for (int e = 0; e < (order >= 1 ? DIMS : 0); ++e) {
      rows[e] = axes[e].grad[(corner >> e) & 1];
      corner_product<DIMS>(rows, count, b->grad[e][corner]);
      rows[e] = axes[e].weight[(corner >> e) & 1];
    }
    for (int e = 0; e < (order >= 2 ? DIMS : 0); ++e) {
      for (int f = e; f < DIMS; ++f) {
        if (e == f) {
          rows[e] = axes[e].hessian[(corner >> e) & 1];
        } else {
          rows[e] = axes[e].grad[(corner >> e) & 1];
          rows[f] = axes[f].grad[(corner >> f) & 1];
        }
        corner_product<DIMS>(rows, count, b->hessian[hessian_slot(e, f)][corner]);
        rows[e] = axes[e].weight[(corner >> e) & 1];
        rows[f] = axes[f].weight[(corner >> f) & 1];
      }
    }
  }
}

#if defined(TORCHSAMPLE_BLOCK_AVX2)
template <int DIMS, typename scalar_t, typename T>
__attribute__((target("avx2"))) void locate_block_avx2(const scalar_t* grid, int64_t count,
                                                       const Geometry& geo, int order,
                                                       LinearBlock<DIMS, T>* b) {
  locate_block_body(grid, count, geo, order, b);
}

// TORCHSAMPLE_NO_AVX2 set to anything but "" or "0" keeps the portable code
// on a CPU with AVX2 (the tests compare the two, which must agree bit for
// bit).
inline bool cpu_has_avx2() {
  static const bool has = [] {
    const char* off = std::getenv("TORCHSAMPLE_NO_AVX2");
    const bool disabled = off != nullptr && off[0] != '\0' && !(off[0] == '0' && off[1] == '\0');
    return __builtin_cpu_supports("avx2") && !disabled;
  }();
  return has;
}
#endif

// Stencils of the `count` (<= kTile) points whose coordinates start at
// `grid`, with derivatives up to `order`.
template <int DIMS, typename scalar_t, typename T>
void locate_block(const scalar_t* grid, int64_t count, const Geometry& geo, int order,
                  LinearBlock<DIMS, T>* b) {
#if defined(TORCHSAMPLE_BLOCK_AVX2)
  if (cpu_has_avx2()) {
    locate_block_avx2(grid, count, geo, order, b);
    return;
  }
#endif
  locate_block_body(grid, count, geo, order, b);
}

// The value of every corner of one channel plane, zero outside the input.
// The load is unconditional (an outside tap reads offset 0), so that it
// compiles to a vector gather where the CPU has one.
template <int DIMS, typename scalar_t, typename T>
TORCHSAMPLE_BLOCK_INLINE void gather_corners_body(const LinearBlock<DIMS, T>& b,
                                                  const scalar_t* plane, int64_t count,
                                                  T (*v)[kTile]) {
  for (int corner = 0; corner < LinearBlock<DIMS, T>::kCorners; ++corner) {
    for (int64_t j = 0; j < count; ++j) {
      const T value = static_cast<T>(plane[b.offset[corner][j]]);
      v[corner][j] = b.inside[corner][j] ? value : T(0);
    }
  }
}

#if defined(TORCHSAMPLE_BLOCK_AVX2)
template <int DIMS, typename scalar_t, typename T>
__attribute__((target("avx2"))) void gather_corners_avx2(const LinearBlock<DIMS, T>& b,
                                                         const scalar_t* plane, int64_t count,
                                                         T (*v)[kTile]) {
  gather_corners_body(b, plane, count, v);
}
#endif

template <int DIMS, typename scalar_t, typename T>
void gather_corners(const LinearBlock<DIMS, T>& b, const scalar_t* plane, int64_t count,
                    T (*v)[kTile]) {
#if defined(TORCHSAMPLE_BLOCK_AVX2)
  if (cpu_has_avx2()) {
    gather_corners_avx2(b, plane, count, v);
    return;
  }
#endif
  gather_corners_body(b, plane, count, v);
}

}  // namespace torchsample
