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
  int64_t cell = static_cast<int64_t>(::floor(safe));
  cell = cell > resolution - 2 ? resolution - 2 : cell;
  lower = cell;
  t = position != position ? position : safe - acc_t(cell);
  dt_dx = inside ? scale : acc_t(0);
}

template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline void build_stencil(const acc_t* x, const Level& level, bool smoothstep,
                                          Stencil<acc_t, DIMS>& s) {
  int64_t lower[DIMS];
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
  const int64_t n = level.resolution;
  for (int k = 0; k < Stencil<acc_t, DIMS>::kCorners; ++k) {
    acc_t weight = acc_t(1);
    uint64_t slot = 0;
    int64_t dense = 0;
    for (int a = DIMS - 1; a >= 0; --a) {
      const int bit = (k >> a) & 1;
      const int64_t vertex = lower[a] + bit;
      weight *= s.t_weight[a][bit];
      slot ^= static_cast<uint64_t>(vertex) * hash_prime(a);
      dense = dense * n + vertex;
    }
    s.weight[k] = weight;
    s.row[k] = level.hashed ? static_cast<int64_t>(slot & static_cast<uint64_t>(level.rows - 1))
                            : dense;
  }
}

// d weight[k] / d x[a].
template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline acc_t d_corner(const Stencil<acc_t, DIMS>& s, int k, int a) {
  acc_t value = ((k >> a) & 1) ? s.d_weight[a] : -s.d_weight[a];
  for (int b = 0; b < DIMS; ++b) {
    if (b != a) value *= s.t_weight[b][(k >> b) & 1];
  }
  return value;
}

// d^2 weight[k] / d x[a] d x[b].
template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline acc_t dd_corner(const Stencil<acc_t, DIMS>& s, int k, int a, int b) {
  acc_t value;
  if (a == b) {
    value = ((k >> a) & 1) ? s.dd_weight[a] : -s.dd_weight[a];
  } else {
    value = (((k >> a) & 1) ? s.d_weight[a] : -s.d_weight[a]) *
            (((k >> b) & 1) ? s.d_weight[b] : -s.d_weight[b]);
  }
  for (int c = 0; c < DIMS; ++c) {
    if (c != a && c != b) value *= s.t_weight[c][(k >> c) & 1];
  }
  return value;
}

// Corner k's weight differentiated along the direction `gg` (one value per
// axis, or null for none): the directional derivative of the weight, and of
// its gradient (one per axis). What the double backward needs per corner.
template <typename acc_t, int DIMS>
C10_HOST_DEVICE inline acc_t along(const Stencil<acc_t, DIMS>& s, int k, const acc_t* gg,
                                   acc_t (&second)[DIMS]) {
  acc_t directional = 0;
  for (int b = 0; b < DIMS; ++b) second[b] = 0;
  if (gg) {
    for (int a = 0; a < DIMS; ++a) {
      directional += d_corner(s, k, a) * gg[a];
      for (int b = 0; b < DIMS; ++b) second[b] += dd_corner(s, k, a, b) * gg[a];
    }
  }
  return directional;
}

}  // namespace multires
}  // namespace torchsample
