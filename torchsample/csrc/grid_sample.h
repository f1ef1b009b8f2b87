// Per-point math of grid sampling, shared by the CPU and the CUDA kernels.
//
// A sample is a weighted sum over a small stencil of input pixels ("taps"):
// one tap per axis for nearest, two for (bi/tri)linear, four for bicubic.
// `make_stencil` turns one grid point into that stencil: the memory offset of
// every tap that lies inside the input, its weight, and (on request) the first
// and second derivatives of the weight with respect to the normalized grid
// coordinates.  Forward, backward and double backward are all sums over it.
//
// Source-index computation follows PyTorch's scalar GridSampler exactly
// (unnormalize, border clipping, reflection, the out-of-int-range sentinel),
// so results match F.grid_sample bit for bit on finite coordinates.  NaN and
// infinite coordinates always land on an in-bounds pixel or on no pixel at
// all; nothing here ever produces an out-of-bounds offset.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define HOST_DEVICE __host__ __device__ __forceinline__
#define UNROLL_LOOP _Pragma("unroll")
#elif defined(__GNUC__)
// Forced: GCC otherwise keeps the per-axis helpers as calls in the kernels'
// innermost loops.
#define HOST_DEVICE inline __attribute__((always_inline))
#else
#define HOST_DEVICE inline
#endif

// Fully unrolls the loop that follows (a short one with a constant trip
// count whose body indexes arrays by the loop variable).
#if !defined(UNROLL_LOOP)
#if defined(__clang__)
#define UNROLL_LOOP _Pragma("unroll")
#elif defined(__GNUC__)
#define UNROLL_LOOP _Pragma("GCC unroll 16")
#else
#define UNROLL_LOOP
#endif
#endif

namespace torchsample {

// Same numbering as ATen's GridSamplerInterpolation / GridSamplerPadding.
enum Interpolation : int64_t { kBilinear = 0, kNearest = 1, kBicubic = 2 };
enum Padding : int64_t { kZeros = 0, kBorder = 1, kReflection = 2 };

constexpr int kMaxTaps = 16;  // bicubic in 2D; trilinear needs 8

// Index of the symmetric second-derivative entry (d, e) among
// xx, yy, zz, xy, xz, yz.
HOST_DEVICE int hessian_slot(int d, int e) {
  return d == e ? d : d + e + 2;
}

template <typename T>
struct Stencil {
  // Bicubic weights of a NaN or infinite coordinate are NaN.  PyTorch then
  // returns NaN even where every tap is outside the input; kernels add
  // `nan_weights ? NaN : 0` to outputs and grid gradients to do the same.
  bool nan_weights;
  int size;                  // number of taps inside the input
  int64_t offset[kMaxTaps];  // memory offset of each tap within one channel
  T weight[kMaxTaps];
  // Component-major, so that one component of every tap is contiguous.
  T grad[3][kMaxTaps];       // d weight / d grid[d]; filled when order >= 1
  T hessian[6][kMaxTaps];    // d2 weight / d grid[d] d grid[e]; order >= 2
};

struct Geometry {
  int dims;            // 2 or 3
  int64_t size[3];     // input extent along x, y, z (w, h, d)
  int64_t stride[3];   // input stride along x, y, z
  int64_t interpolation;
  int64_t padding;
  bool align_corners;
  bool smoothstep;
};

// Grid value in [-1, 1] -> pixel coordinate; `scale` is d(pixel)/d(grid).
template <typename T>
HOST_DEVICE T unnormalize(T coord, int64_t size, bool align_corners, T* scale) {
  if (align_corners) {
    *scale = T(size - 1) / 2;
    return (coord + 1) / 2 * T(size - 1);
  }
  *scale = T(size) / 2;
  return ((coord + 1) * T(size) - 1) / 2;
}

// std::min(size - 1, std::max(coord, 0)) with the STL's NaN behaviour (NaN
// becomes size - 1), written out so host and device agree.  The gradient is
// zero at and beyond the limits, as in PyTorch.
template <typename T>
HOST_DEVICE T clip(T coord, int64_t size, T* grad) {
  const T high = T(size - 1);
  *grad = (coord > 0 && coord < high) ? T(1) : T(0);
  const T low_clipped = coord < 0 ? T(0) : coord;
  return low_clipped < high ? low_clipped : high;
}

// Mirror `coord` into [twice_low / 2, twice_high / 2].  `grad` is +-1.
template <typename T>
HOST_DEVICE T reflect(T coord, int64_t twice_low, int64_t twice_high, T* grad) {
  if (twice_low == twice_high) {
    *grad = T(0);
    return T(0);
  }
  const T low = T(twice_low) / 2;
  const T span = T(twice_high - twice_low) / 2;
  T sign = T(1);
  coord -= low;
  if (coord < 0) {
    sign = T(-1);
    coord = -coord;
  }
  const T extra = std::fmod(coord, span);
  const T flips = std::floor(coord / span);
  // PyTorch converts `flips` to int; past the int range that conversion is
  // undefined and x86 yields INT_MIN (even).  Treat it as even, defined here.
  const bool odd = flips < T(2147483647.0) && (static_cast<int64_t>(flips) & 1);
  if (!odd) {
    *grad = sign;
    return extra + low;
  }
  *grad = -sign;
  return span - extra + low;
}

// Border or reflection padding of a pixel coordinate; `grad` is its slope.
template <typename T>
HOST_DEVICE T pad_coordinate(T coord, int64_t size, int64_t padding, bool align_corners,
                             T* grad) {
  *grad = T(1);
  if (padding == kBorder) {
    return clip(coord, size, grad);
  }
  if (padding == kReflection) {
    T reflect_grad;
    coord = align_corners ? reflect(coord, 0, 2 * (size - 1), &reflect_grad)
                          : reflect(coord, -1, 2 * size - 1, &reflect_grad);
    T clip_grad;
    coord = clip(coord, size, &clip_grad);
    *grad = reflect_grad * clip_grad;
  }
  return coord;
}

// Coordinates that do not fit an int (or are not finite) move to -100, a
// position with no in-bounds tap, as in PyTorch.
template <typename T>
HOST_DEVICE T safe_downgrade_to_int_range(T coord) {
  if (!(coord <= T(2147483646.0) && coord >= T(-2147483648.0))) {
    return T(-100);
  }
  return coord;
}

// Cubic convolution (Keys, A = -0.75) for |t| <= 1 and 1 < |t| < 2, with
// first and second derivatives.
template <typename T>
HOST_DEVICE void cubic_near(T t, T* w, T* dw, T* d2w) {
  const T a = T(-0.75);
  *w = ((a + 2) * t - (a + 3)) * t * t + 1;
  *dw = (3 * (a + 2) * t - 2 * (a + 3)) * t;
  *d2w = 6 * (a + 2) * t - 2 * (a + 3);
}

template <typename T>
HOST_DEVICE void cubic_far(T t, T* w, T* dw, T* d2w) {
  const T a = T(-0.75);
  *w = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  *dw = (3 * a * t - 10 * a) * t + 8 * a;
  *d2w = 6 * a * t - 10 * a;
}

// Linear weight of the upper tap, or its smoothstep t*t*(3 - 2t), with
// first and second derivatives in t.
template <typename T>
HOST_DEVICE void upper_weight(T t, bool smoothstep, T* w, T* dw, T* d2w) {
  if (smoothstep) {
    *w = t * t * (3 - 2 * t);
    *dw = 6 * t * (1 - t);
    *d2w = 6 - 12 * t;
  } else {
    *w = t;
    *dw = T(1);
    *d2w = T(0);
  }
}

// Taps of one axis: index (only those inside the input are kept), weight and
// its derivatives with respect to the normalized coordinate.
template <typename T>
struct AxisTaps {
  bool nan_weights;
  int size;
  int64_t index[4];
  T weight[4];
  T grad[4];
  T hessian[4];
};

template <typename T>
HOST_DEVICE void push_tap(AxisTaps<T>* taps, T coord, int64_t extent, T w, T dw, T d2w) {
  // Compare in floating point first: the integer conversion of a coordinate
  // far outside the input (or NaN) is undefined.
  if (coord >= 0 && coord < T(extent)) {
    const int k = taps->size++;
    taps->index[k] = static_cast<int64_t>(coord);
    taps->weight[k] = w;
    taps->grad[k] = dw;
    taps->hessian[k] = d2w;
  }
}

template <typename T>
HOST_DEVICE void axis_taps(T coord, int64_t extent, const Geometry& geo, AxisTaps<T>* taps) {
  taps->size = 0;
  taps->nan_weights = false;
  T scale;
  T x = unnormalize(coord, extent, geo.align_corners, &scale);
  if (geo.interpolation == kBicubic) {
    // Bicubic pads each tap rather than the coordinate (PyTorch does the same).
    const T base = std::floor(x);
    const T t = x - base;
    taps->nan_weights = t != t;
    T w[4], dw[4], d2w[4];
    cubic_far(t + 1, &w[0], &dw[0], &d2w[0]);
    cubic_near(t, &w[1], &dw[1], &d2w[1]);
    cubic_near(1 - t, &w[2], &dw[2], &d2w[2]);
    cubic_far(2 - t, &w[3], &dw[3], &d2w[3]);
    dw[2] = -dw[2];
    dw[3] = -dw[3];
    for (int k = 0; k < 4; ++k) {
      T tap = base - 1 + T(k);
      T unused_grad;
      if (geo.padding != kZeros) {
        tap = pad_coordinate(tap, extent, geo.padding, geo.align_corners, &unused_grad);
      }
      push_tap(taps, tap, extent, w[k], dw[k] * scale, d2w[k] * scale * scale);
    }
    return;
  }
  T pad_grad;
  x = pad_coordinate(x, extent, geo.padding, geo.align_corners, &pad_grad);
  x = safe_downgrade_to_int_range(x);
  const T slope = scale * pad_grad;
  if (geo.interpolation == kNearest) {
    push_tap(taps, std::nearbyint(x), extent, T(1), T(0), T(0));
    return;
  }
  const T base = std::floor(x);
  T w, dw, d2w;
  upper_weight(x - base, geo.smoothstep, &w, &dw, &d2w);
  push_tap(taps, base, extent, 1 - w, -dw * slope, -d2w * slope * slope);
  push_tap(taps, base + 1, extent, w, dw * slope, d2w * slope * slope);
}

// Per-axis factors of each tap of a stencil: the weight of tap n is
// w[0][n] * w[1][n] * w[2][n].  Axes a stencil lacks have w = 1, dw = d2w = 0.
template <typename T>
struct TapFactors {
  T w[3][kMaxTaps];
  T dw[3][kMaxTaps];
  T d2w[3][kMaxTaps];
};

// Weights of the first `taps` taps (and, as `order` asks, their first and
// second derivatives) from their per-axis factors.  Loops run over taps so
// that they vectorize where `taps` is a constant after inlining.
template <typename T>
HOST_DEVICE void tap_products(const TapFactors<T>& f, int taps, int order, Stencil<T>* st) {
  for (int n = 0; n < taps; ++n) {
    st->weight[n] = f.w[0][n] * f.w[1][n] * f.w[2][n];
  }
  if (order >= 1) {
    for (int n = 0; n < taps; ++n) {
      st->grad[0][n] = f.dw[0][n] * f.w[1][n] * f.w[2][n];
      st->grad[1][n] = f.w[0][n] * f.dw[1][n] * f.w[2][n];
      st->grad[2][n] = f.w[0][n] * f.w[1][n] * f.dw[2][n];
    }
  }
  if (order >= 2) {
    for (int n = 0; n < taps; ++n) {
      st->hessian[0][n] = f.d2w[0][n] * f.w[1][n] * f.w[2][n];
      st->hessian[1][n] = f.w[0][n] * f.d2w[1][n] * f.w[2][n];
      st->hessian[2][n] = f.w[0][n] * f.w[1][n] * f.d2w[2][n];
      st->hessian[3][n] = f.dw[0][n] * f.dw[1][n] * f.w[2][n];
      st->hessian[4][n] = f.dw[0][n] * f.w[1][n] * f.dw[2][n];
      st->hessian[5][n] = f.w[0][n] * f.dw[1][n] * f.dw[2][n];
    }
  }
}

// Tensor product of the per-axis taps (nearest and bicubic).
template <typename T>
HOST_DEVICE void tap_product_stencil(const T* coord, const Geometry& geo, int order,
                                     Stencil<T>* st) {
  AxisTaps<T> axes[3];
  for (int d = 0; d < geo.dims; ++d) {
    axis_taps(coord[d], geo.size[d], geo, &axes[d]);
  }
  st->nan_weights = axes[0].nan_weights || axes[1].nan_weights;
  if (geo.dims == 2) {
    axes[2].size = 1;
    axes[2].index[0] = 0;
    axes[2].weight[0] = T(1);
    axes[2].grad[0] = T(0);
    axes[2].hessian[0] = T(0);
  }
  TapFactors<T> f;
  int n = 0;
  for (int k = 0; k < axes[2].size; ++k) {
    for (int j = 0; j < axes[1].size; ++j) {
      for (int i = 0; i < axes[0].size; ++i) {
        const int tap[3] = {i, j, k};
        int64_t offset = 0;
        for (int d = 0; d < 3; ++d) {
          f.w[d][n] = axes[d].weight[tap[d]];
          f.dw[d][n] = axes[d].grad[tap[d]];
          f.d2w[d][n] = axes[d].hessian[tap[d]];
          offset += axes[d].index[tap[d]] * (d < geo.dims ? geo.stride[d] : 0);
        }
        st->offset[n] = offset;
        ++n;
      }
    }
  }
  st->size = n;
  tap_products(f, n, order, st);
}

// The two taps of one axis in (bi/tri)linear interpolation, both kept, each
// flagged inside or outside the input.
template <typename T>
struct LinearAxis {
  int64_t index[2];
  bool inside[2];
  T weight[2];
  T grad[2];
  T hessian[2];
};

// The two taps of each of the DIMS axes of one point.  Each step runs for
// all axes before the next, with the geometry's options tested once around
// it rather than per axis: the axes' arithmetic is then independent
// straight-line code the compiler interleaves.  With the options known only
// at run time, as in the kernels, this builds a 3D stencil in about 35
// instead of 54 ns (a standalone benchmark of this header, one CPU core).
template <int DIMS, typename T>
HOST_DEVICE void linear_axes(const T* coord, const Geometry& geo, LinearAxis<T>* axes) {
  T x[DIMS], slope[DIMS];
  for (int d = 0; d < DIMS; ++d) {
    x[d] = unnormalize(coord[d], geo.size[d], geo.align_corners, &slope[d]);
  }
  if (geo.padding != kZeros) {
    for (int d = 0; d < DIMS; ++d) {
      T pad_grad;
      x[d] = pad_coordinate(x[d], geo.size[d], geo.padding, geo.align_corners, &pad_grad);
      slope[d] *= pad_grad;
    }
  }
  int64_t low[DIMS];
  for (int d = 0; d < DIMS; ++d) {
    x[d] = safe_downgrade_to_int_range(x[d]);
    const T base = std::floor(x[d]);
    // safe_downgrade_to_int_range keeps base in int range, so the conversion
    // is defined; only the inside flags decide which taps are read.
    low[d] = static_cast<int64_t>(base);
    x[d] -= base;
  }
  T w[DIMS], dw[DIMS], d2w[DIMS];
  if (geo.smoothstep) {
    for (int d = 0; d < DIMS; ++d) {
      upper_weight(x[d], true, &w[d], &dw[d], &d2w[d]);
    }
  } else {
    for (int d = 0; d < DIMS; ++d) {
      upper_weight(x[d], false, &w[d], &dw[d], &d2w[d]);
    }
  }
  for (int d = 0; d < DIMS; ++d) {
    LinearAxis<T>& a = axes[d];
    const int64_t extent = geo.size[d];
    a.index[0] = low[d];
    a.index[1] = low[d] + 1;
    a.inside[0] = low[d] >= 0 && low[d] < extent;
    a.inside[1] = low[d] + 1 >= 0 && low[d] + 1 < extent;
    a.weight[0] = 1 - w[d];
    a.weight[1] = w[d];
    a.grad[0] = -dw[d] * slope[d];
    a.grad[1] = dw[d] * slope[d];
    a.hessian[0] = -d2w[d] * slope[d] * slope[d];
    a.hessian[1] = d2w[d] * slope[d] * slope[d];
  }
}

// Moves the taps flagged in `inside` (bit n for tap n) to the front.
template <typename T>
HOST_DEVICE void drop_outside_taps(unsigned inside, int taps, int order, Stencil<T>* st) {
  int n = 0;
  for (int k = 0; k < taps; ++k) {
    if (!((inside >> k) & 1u)) {
      continue;
    }
    st->offset[n] = st->offset[k];
    st->weight[n] = st->weight[k];
    for (int d = 0; d < (order >= 1 ? 3 : 0); ++d) {
      st->grad[d][n] = st->grad[d][k];
    }
    for (int s = 0; s < (order >= 2 ? 6 : 0); ++s) {
      st->hessian[s][n] = st->hessian[s][k];
    }
    ++n;
  }
  st->size = n;
}

// Linear interpolation with the dimensionality known at compile time: all
// 2^DIMS corners are computed at once (their products vectorize), then the
// rare corners outside the input are dropped.
template <int DIMS, typename T>
HOST_DEVICE void linear_stencil(const T* coord, const Geometry& geo, int order, Stencil<T>* st) {
  constexpr int kCorners = 1 << DIMS;
  LinearAxis<T> axes[DIMS];
  linear_axes<DIMS>(coord, geo, axes);
  TapFactors<T> f;
  unsigned inside = 0;
  UNROLL_LOOP
  for (int corner = 0; corner < kCorners; ++corner) {
    int64_t offset = 0;
    bool in = true;
    for (int d = 0; d < 3; ++d) {
      const int side = (corner >> d) & 1;
      f.w[d][corner] = d < DIMS ? axes[d].weight[side] : T(1);
      f.dw[d][corner] = d < DIMS ? axes[d].grad[side] : T(0);
      f.d2w[d][corner] = d < DIMS ? axes[d].hessian[side] : T(0);
      if (d < DIMS) {
        offset += axes[d].index[side] * geo.stride[d];
        in = in && axes[d].inside[side];
      }
    }
    st->offset[corner] = offset;
    inside |= unsigned(in) << corner;
  }
  st->nan_weights = false;
  st->size = kCorners;
  tap_products(f, kCorners, order, st);
  if (inside != (1u << kCorners) - 1) {
    drop_outside_taps(inside, kCorners, order, st);
  }
}

// The stencil of one grid point of an input with DIMS spatial dimensions.
// `coord` holds DIMS values (x, y[, z]); `order` selects how many
// derivatives are needed (0, 1 or 2).
template <int DIMS, typename T>
HOST_DEVICE void make_stencil(const T* coord, const Geometry& geo, int order, Stencil<T>* st) {
  if (geo.interpolation == kBilinear) {
    linear_stencil<DIMS>(coord, geo, order, st);
  } else {
    tap_product_stencil(coord, geo, order, st);
  }
}

// The same with the dimensionality known at run time only.
template <typename T>
HOST_DEVICE void make_stencil(const T* coord, const Geometry& geo, int order, Stencil<T>* st) {
  if (geo.dims == 2) {
    make_stencil<2>(coord, geo, order, st);
  } else {
    make_stencil<3>(coord, geo, order, st);
  }
}

// Derivative of each tap's weight along `dir` (a), and optionally the
// gradient of that directional derivative (b[e][k] for tap k, axis e).
template <typename T>
HOST_DEVICE void directional(const Stencil<T>& st, int dims, const T* dir, T* a,
                             T (*b)[kMaxTaps]) {
  for (int k = 0; k < st.size; ++k) {
    a[k] = dir[0] * st.grad[0][k] + dir[1] * st.grad[1][k];
    if (dims == 3) {
      a[k] += dir[2] * st.grad[2][k];
    }
  }
  if (b == nullptr) {
    return;
  }
  for (int e = 0; e < dims; ++e) {
    for (int k = 0; k < st.size; ++k) {
      b[e][k] = dir[0] * st.hessian[hessian_slot(0, e)][k] +
                dir[1] * st.hessian[hessian_slot(1, e)][k];
      if (dims == 3) {
        b[e][k] += dir[2] * st.hessian[hessian_slot(2, e)][k];
      }
    }
  }
}

// The dims coordinates of one grid point, in the arithmetic type T.
template <typename scalar_t, typename T>
HOST_DEVICE void load_coord(const scalar_t* grid, int dims, T* coord) {
  for (int d = 0; d < dims; ++d) {
    coord[d] = static_cast<T>(grid[d]);
  }
}

// What a kernel adds to an output or grid gradient: NaN for NaN weights.
template <typename T>
HOST_DEVICE T nan_bias(const Stencil<T>& st) {
  return st.nan_weights ? T(NAN) : T(0);
}

}  // namespace torchsample
