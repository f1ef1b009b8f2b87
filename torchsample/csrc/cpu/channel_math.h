// Loops over the channels of one point: weighted sums over taps, dot
// products and scatters, written so that the compiler vectorizes them.
#pragma once

#include <cstdint>

namespace torchsample {

// dst[c] += sum_k w[k] * src[offset[k] + c * stride] for every channel.
// Contiguous channels go in blocks that stay in registers across all taps:
// adding tap after tap into dst would chain every addition through a store
// and a reload.
template <typename scalar_t, typename T>
inline void sum_taps(int taps, const T* w, const int64_t* offset, const scalar_t* src,
                     int64_t stride, int64_t count, T* dst) {
  constexpr int64_t kBlock = 16;
  int64_t c = 0;
  if (stride == 1) {
    for (; c + kBlock <= count; c += kBlock) {
      T acc[kBlock];
      for (int64_t j = 0; j < kBlock; ++j) {
        acc[j] = dst[c + j];
      }
      for (int k = 0; k < taps; ++k) {
        const scalar_t* row = src + offset[k] + c;
        for (int64_t j = 0; j < kBlock; ++j) {
          acc[j] += w[k] * static_cast<T>(row[j]);
        }
      }
      for (int64_t j = 0; j < kBlock; ++j) {
        dst[c + j] = acc[j];
      }
    }
  }
  for (; c < count; ++c) {
    T acc = dst[c];
    for (int k = 0; k < taps; ++k) {
      acc += w[k] * static_cast<T>(src[offset[k] + c * stride]);
    }
    dst[c] = acc;
  }
}

// sum_c a[c] * src[c * stride].  Summed in kLanes partial sums: a single
// running sum is a chain of dependent additions the compiler may not
// reorder, so it would not vectorize.
constexpr int64_t kLanes = 8;

template <typename scalar_t, typename T>
inline T dot_channels(const T* a, const scalar_t* src, int64_t stride, int64_t count) {
  T part[kLanes] = {};
  int64_t c = 0;
  if (stride == 1) {
    for (; c + kLanes <= count; c += kLanes) {
      for (int64_t j = 0; j < kLanes; ++j) {
        part[j] += a[c + j] * static_cast<T>(src[c + j]);
      }
    }
  }
  for (; c < count; ++c) {
    part[0] += a[c] * static_cast<T>(src[c * stride]);
  }
  T sum = 0;
  for (int64_t j = 0; j < kLanes; ++j) {
    sum += part[j];
  }
  return sum;
}

// dst[c * stride] += w * a[c].
template <typename T>
inline void scatter_channels(T w, const T* a, int64_t stride, int64_t count, T* dst) {
  if (stride == 1) {
    for (int64_t c = 0; c < count; ++c) {
      dst[c] += w * a[c];
    }
  } else {
    for (int64_t c = 0; c < count; ++c) {
      dst[c * stride] += w * a[c];
    }
  }
}

}  // namespace torchsample
