// Per-point math of the multi-resolution grid encoding, shared by the CPU and
// CUDA kernels: where a point falls in one level, which vertices it reads and
// with which weights, and the first and second derivatives of those weights
// with respect to the point.
//
// Conventions are MultiResGrid's (torchsample/encoding/_multires.py):
// coordinate -1 is vertex 0 and +1 vertex N - 1 on every axis
// (align_corners=True), points outside are clamped onto the border and get
// no gradient there, and the last cell holds the last vertex. Hashed levels
// read slot (i * 1) xor (j * 2654435761) xor (k * 805459861) mod T (T a power
// of two); dense levels store vertex (i, j[, k]) of feature f at
// f * N^dims + (k * N + j) * N + i, the layout of a (1, F, [N,] N, N) map.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>

// Fully unrolled loops keep the per-corner arrays in registers.
#if defined(__CUDACC__) || defined(__clang__)
#define TORCHSAMPLE_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define TORCHSAMPLE_UNROLL _Pragma("GCC unroll 8")
#else
#define TORCHSAMPLE_UNROLL
#endif

namespace torchsample {
namespace multires {

// Instant-NGP's per-axis hash primes (a function: constexpr arrays are not
// visible in device code).
C10_HOST_DEVICE constexpr uint64_t hash_prime(int axis) {
  return axis == 0 ? 1u : axis == 1 ? 2654435761u : 805459861u;
}

// Features per level the kernels handle (Instant-NGP uses 1, 2, 4 or 8);
// the per-point accumulators live on the stack.
constexpr int64_t kMaxFeatures = 8;

// One level's geometry: vertices per axis, table rows, features per vertex.
struct Level {
  int64_t resolution;
  int64_t rows;       // hash table slots, or resolution^dims for a dense level
  bool hashed;
};

// The 2^DIMS corners of the cell around one point in one level.
template <typename acc_t, int DIMS>
struct Stencil {
  static constexpr int kCorners = 1 << DIMS;
  int64_t row[kCorners];           // vertex row in the level's table
  acc_t weight[kCorners];          // interpolation weight
  acc_t t_weight[DIMS][2];         // per axis: weight of the lower, upper vertex
  acc_t d_weight[DIMS];            // per axis: d(upper weight)/d(coordinate)
  acc_t dd_weight[DIMS];           // per axis: d^2(upper weight)/d(coordinate)^2
};

// Per-axis position of `x` in a level of `resolution` vertices: lower vertex,
// fraction t within the cell and d t / d x (0 where the point is clamped).
template <typename acc_t>
C10_HOST_DEVICE inline void locate(acc_t x, int64_t resolution, int64_t& lower, acc_t& t,
                                   acc_t& dt_dx) {
  const acc_t scale = acc_t(resolution - 1) / acc_t(2);
  const acc_t position = (x + acc_t(1)) * scale;
  const acc_t last = acc_t(resolution - 1);
  const bool inside = position > acc_t(0) && position < last;
  // NaN compares false: it reads vertex 0 and keeps a NaN weight, so a NaN
  // coordinate gives a NaN feature and never an out-of-range read.
  const acc_t safe = position > acc_t(0) ? (position < last ? position : last) : acc_t(0);
  // safe >= 0, so truncation is floor (and needs no libm call).
  int64_t cell = static_cast<int64_t>(safe);
  cell = cell > resolution - 2 ? resolution - 2 : cell;
  lower = cell;
  t = position != position ? position : safe - acc_t(cell);
  dt_dx = inside ? scale : acc_t(0);
}

// out[k] = op over axes a of factor[a][bit a of k], for the 2^DIMS corners
// k: built axis by axis, so that corners share partial results
// (2^(DIMS+1) - 4 operations instead of (DIMS - 1) * 2^DIMS).
template <typename T, int DIMS, typename Op>
C10_HOST_DEVICE inline void combine_corners(const T (&factor)[DIMS][2], T (&out)[1 << DIMS],
                                            Op op) {
  out[0] = factor[0][0];
  out[1] = factor[0][1];
TORCHSAMPLE_UNROLL
  for (int a = 1; a < DIMS; ++a) {
TORCHSAMPLE_UNROLL
    for (int j = 0; j < (1 << a); ++j) {
      out[j + (1 << a)] = op(out[j], factor[a][1]);
      out[j] = op(out[j], factor[a][0]);
    }
  }
}

struct Multiply {
  template <typename T>
  C10_HOST_DEVICE T operator()(const T& a, const T& b) const { return a * b; }
};
struct Xor {
  C10_HOST_DEVICE uint64_t operator()(uint64_t a, uint64_t b) const { return a ^ b; }
};
struct Add {
  C10_HOST_DEVICE int64_t operator()(int64_t a, int64_t b) const { return a + b; }
};

template <typename T, int DIMS>
C10_HOST_DEVICE inline void corner_products(const T (&factor)[DIMS][2], T (&out)[1 << DIMS]) {
  combine_corners<T, DIMS>(factor, out, Multiply());
}

template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline void build_stencil(const acc_t* x, const Level& level, bool smoothstep,
                                          Stencil<acc_t, DIMS>& s) {
  int64_t lower[DIMS];
TORCHSAMPLE_UNROLL
  for (int a = 0; a < DIMS; ++a) {
    acc_t t, dt_dx;
    locate(x[a], level.resolution, lower[a], t, dt_dx);
    // Smoothstep t^2 (3 - 2t): its slope vanishes at the vertices.
    const acc_t w = smoothstep ? t * t * (acc_t(3) - acc_t(2) * t) : t;
    const acc_t dw = smoothstep ? acc_t(6) * t * (acc_t(1) - t) : acc_t(1);
    const acc_t ddw = smoothstep ? acc_t(6) - acc_t(12) * t : acc_t(0);
    s.t_weight[a][0] = acc_t(1) - w;
    s.t_weight[a][1] = w;
    s.d_weight[a] = dw * dt_dx;
    s.dd_weight[a] = ddw * dt_dx * dt_dx;
  }
  corner_products<acc_t, DIMS>(s.t_weight, s.weight);
  // Rows the same way: a corner's hash is the xor of its vertices' per-axis
  // terms, a dense row the sum of its per-axis offsets.
  if (level.hashed) {
    uint64_t terms[DIMS][2];
TORCHSAMPLE_UNROLL
    for (int a = 0; a < DIMS; ++a) {
      terms[a][0] = static_cast<uint64_t>(lower[a]) * hash_prime(a);
      terms[a][1] = static_cast<uint64_t>(lower[a] + 1) * hash_prime(a);
    }
    uint64_t slot[Stencil<acc_t, DIMS>::kCorners];
    combine_corners<uint64_t, DIMS>(terms, slot, Xor());
    const uint64_t mask = static_cast<uint64_t>(level.rows - 1);
TORCHSAMPLE_UNROLL
    for (int k = 0; k < Stencil<acc_t, DIMS>::kCorners; ++k) {
      s.row[k] = static_cast<int64_t>(slot[k] & mask);
    }
  } else {
    int64_t terms[DIMS][2];
    int64_t stride = 1;
TORCHSAMPLE_UNROLL
    for (int a = 0; a < DIMS; ++a) {
      terms[a][0] = lower[a] * stride;
      terms[a][1] = terms[a][0] + stride;
      stride *= level.resolution;
    }
    combine_corners<int64_t, DIMS>(terms, s.row, Add());
  }
}

// gradient[a][k] = d weight[k] / d x[a].
template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline void corner_gradients(const Stencil<acc_t, DIMS>& s,
                                             acc_t (&gradient)[DIMS][1 << DIMS]) {
TORCHSAMPLE_UNROLL
  for (int a = 0; a < DIMS; ++a) {
    acc_t factor[DIMS][2];
TORCHSAMPLE_UNROLL
    for (int c = 0; c < DIMS; ++c) {
      factor[c][0] = c == a ? -s.d_weight[a] : s.t_weight[c][0];
      factor[c][1] = c == a ? s.d_weight[a] : s.t_weight[c][1];
    }
    corner_products<acc_t, DIMS>(factor, gradient[a]);
  }
}

// A value and its derivative along a direction: products of per-axis
// factors differentiated by the product rule.
template <typename acc_t>
struct Dual {
  acc_t value, derivative;
  C10_HOST_DEVICE Dual operator*(const Dual& o) const {
    return {value * o.value, value * o.derivative + derivative * o.value};
  }
};

// The per-axis factors of the corner weights as duals: each weight and its
// derivative along the direction `gg` (one value per axis).
template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline void directional_factors(const Stencil<acc_t, DIMS>& s, const acc_t* gg,
                                                Dual<acc_t> (&factor)[DIMS][2]) {
TORCHSAMPLE_UNROLL
  for (int c = 0; c < DIMS; ++c) {
    factor[c][0] = {s.t_weight[c][0], -s.d_weight[c] * gg[c]};
    factor[c][1] = {s.t_weight[c][1], s.d_weight[c] * gg[c]};
  }
}

// directional[k]: the derivative of weight[k] along `gg`.
template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline void weight_directional(const Stencil<acc_t, DIMS>& s, const acc_t* gg,
                                               acc_t (&directional)[1 << DIMS]) {
  Dual<acc_t> factor[DIMS][2];
  directional_factors(s, gg, factor);
  Dual<acc_t> products[1 << DIMS];
  corner_products<Dual<acc_t>, DIMS>(factor, products);
TORCHSAMPLE_UNROLL
  for (int k = 0; k < (1 << DIMS); ++k) directional[k] = products[k].derivative;
}

// second[b][k]: the derivative along `gg` of d weight[k] / d x[b], that is
// the Hessian of weight[k] times `gg`.
template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline void gradient_directional(const Stencil<acc_t, DIMS>& s, const acc_t* gg,
                                                 acc_t (&second)[DIMS][1 << DIMS]) {
  Dual<acc_t> factor[DIMS][2];
  directional_factors(s, gg, factor);
  Dual<acc_t> products[1 << DIMS];
TORCHSAMPLE_UNROLL
  for (int b = 0; b < DIMS; ++b) {
    // Axis b's factor becomes its weight's slope, and that slope's derivative.
    const Dual<acc_t> lower = factor[b][0], upper = factor[b][1];
    factor[b][0] = {-s.d_weight[b], -s.dd_weight[b] * gg[b]};
    factor[b][1] = {s.d_weight[b], s.dd_weight[b] * gg[b]};
    corner_products<Dual<acc_t>, DIMS>(factor, products);
TORCHSAMPLE_UNROLL
    for (int k = 0; k < (1 << DIMS); ++k) second[b][k] = products[k].derivative;
    factor[b][0] = lower;
    factor[b][1] = upper;
  }
}

}  // namespace multires
}  // namespace torchsample
