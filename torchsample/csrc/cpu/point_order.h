// The order in which the CPU kernels visit points: parallel ranges of the
// flattened (batch, point) index, tiles of consecutive points staged
// point-major, and buckets of points by slab of the input for race-free
// scatters.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../grid_sample.h"

namespace torchsample {

// Points per parallel chunk: waking threads costs more than small work
// (about at::internal::GRAIN_SIZE channel reads per chunk).
inline int64_t point_grain(int64_t channels) {
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / 4 / std::max<int64_t>(channels, 1));
}

// Runs body(begin, end) over ranges of the flattened (batch, point) index.
template <typename F>
void for_each_range(int64_t total, int64_t channels, const F& body) {
  if (total == 0) {
    return;
  }
  at::parallel_for(0, total, point_grain(channels), body);
}

// Outputs and incoming gradients are (b, c, p): the channels of one point
// lie P elements apart, and for P a power of two all of them map to the
// same cache set.  Kernels therefore stage kTile points at a time in a
// point-major buffer and move whole rows of kTile points in or out.
constexpr int64_t kTile = 32;

// Runs body(i0, n, p0, size) over tiles of at most kTile consecutive points
// of [begin, end) that stay within one batch element.
template <typename F>
void for_each_tile(int64_t begin, int64_t end, int64_t P, const F& body) {
  for (int64_t i = begin; i < end;) {
    const int64_t n = i / P, p = i - n * P;
    const int64_t size = std::min({kTile, end - i, P - p});
    body(i, n, p, size);
    i += size;
  }
}

// tile[j * C + c] = src[c * channel_stride + j * point_stride] for j < size.
template <typename scalar_t, typename T>
void load_tile(const scalar_t* src, int64_t channel_stride, int64_t point_stride, int64_t size,
               int64_t C, T* tile) {
  for (int64_t c = 0; c < C; ++c) {
    const scalar_t* row = src + c * channel_stride;
    for (int64_t j = 0; j < size; ++j) {
      tile[j * C + c] = static_cast<T>(row[j * point_stride]);
    }
  }
}

// dst[c * channel_stride + j] = tile[j * C + c] for j < size.
template <typename scalar_t, typename T>
void store_tile(const T* tile, int64_t size, int64_t C, int64_t channel_stride, scalar_t* dst) {
  for (int64_t c = 0; c < C; ++c) {
    scalar_t* row = dst + c * channel_stride;
    for (int64_t j = 0; j < size; ++j) {
      row[j] = static_cast<scalar_t>(tile[j * C + c]);
    }
  }
}

// Points grouped for race-free scatters into an input-shaped buffer.  The
// slowest input axis (y or z) is cut into slabs at least kMaxSpan indices
// thick, and each point goes to the slab of its lowest tap along that axis.
// A point's taps span fewer than kMaxSpan indices there, so the points of
// slab s write only into slabs s and s + 1: all even slabs can be processed
// at once, then all odd ones.  Points whose taps spread wider (bicubic
// reflection of coordinates too large for float spacing) are kept aside
// and processed by one thread at the end.
constexpr int64_t kMaxSpan = 4;

struct Buckets {
  int64_t batches = 0;
  int64_t slabs = 1;               // per batch element
  int64_t thickness = 0;           // indices along the slowest axis per slab
  std::vector<int64_t> start;      // bucket b holds order[start[b], start[b + 1])
  std::vector<int64_t> order;      // flattened (batch, point) indices
  std::vector<int64_t> wide;
};

// Lowest and highest tap index of one point along the slowest axis; false
// when the point has no tap inside the input.
template <typename T>
bool slow_tap_range(const T* coord, const Geometry& geo, int64_t* lowest, int64_t* highest) {
  const int axis = geo.dims - 1;
  AxisTaps<T> taps;
  axis_taps(coord[axis], geo.size[axis], geo, &taps);
  if (taps.size == 0) {
    return false;
  }
  *lowest = *highest = taps.index[0];
  for (int k = 1; k < taps.size; ++k) {
    *lowest = std::min(*lowest, taps.index[k]);
    *highest = std::max(*highest, taps.index[k]);
  }
  return true;
}

template <typename scalar_t, typename T>
Buckets make_buckets(const scalar_t* grid, int64_t N, int64_t P, const Geometry& geo) {
  Buckets b;
  b.batches = N;
  const int64_t extent = geo.size[geo.dims - 1];
  // As thin as allowed: the taps of one slab's points then stay within a few
  // megabytes of the input and of its gradient, which the TLB and the last
  // level cache hold, where points in input order touch every page.
  b.slabs = std::max<int64_t>(1, extent / kMaxSpan);
  b.thickness = (extent + b.slabs - 1) / b.slabs;
  // Bucket of each point, or -1 for the wide ones.  Points without taps
  // scatter nothing; slab 0 takes them.
  std::vector<int32_t> bucket(N * P);
  for_each_range(N * P, 1, [&](int64_t begin, int64_t end) {
    T coord[3];
    int64_t lowest, highest;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t first = (i / P) * b.slabs;
      load_coord(grid + i * geo.dims, geo.dims, coord);
      if (!slow_tap_range(coord, geo, &lowest, &highest)) {
        bucket[i] = static_cast<int32_t>(first);
      } else if (b.slabs > 1 && highest - lowest >= b.thickness) {
        bucket[i] = -1;
      } else {
        bucket[i] = static_cast<int32_t>(first + lowest / b.thickness);
      }
    }
  });
  // Counting sort, stable in the point index.
  b.start.assign(N * b.slabs + 1, 0);
  for (const int32_t k : bucket) {
    ++b.start[k + 1];
  }
  for (size_t k = 1; k < b.start.size(); ++k) {
    b.start[k] += b.start[k - 1];
  }
  // Wide points (key -1) sort first: they go to their own list instead.
  const int64_t wide = b.start[0];
  b.wide.reserve(wide);
  b.order.resize(N * P - wide);
  std::vector<int64_t> next(b.start.begin(), b.start.end() - 1);
  for (int64_t i = 0; i < N * P; ++i) {
    if (bucket[i] >= 0) {
      b.order[next[bucket[i]]++ - wide] = i;
    } else {
      b.wide.push_back(i);
    }
  }
  for (int64_t& k : b.start) {
    k -= wide;
  }
  return b;
}

// Runs body(batch, slab, indices, count) on lists of points: every bucket of
// one parity, in parallel, then the other parity, then the wide points
// (batch and slab -1).
template <typename F>
void for_each_bucket(const Buckets& b, const F& body) {
  for (int64_t parity = 0; parity < 2; ++parity) {
    const int64_t per_batch = (b.slabs + 1 - parity) / 2;
    if (per_batch == 0) {
      continue;
    }
    at::parallel_for(0, b.batches * per_batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        const int64_t batch = j / per_batch, slab = 2 * (j % per_batch) + parity;
        const int64_t bucket = batch * b.slabs + slab;
        body(batch, slab, b.order.data() + b.start[bucket],
             b.start[bucket + 1] - b.start[bucket]);
      }
    });
  }
  body(int64_t(-1), int64_t(-1), b.wide.data(), static_cast<int64_t>(b.wide.size()));
}

}  // namespace torchsample
