// CPU kernel of torchsample::channels_last_copy (schema in
// grid_sample.cpp): the feature map in the layout the grid-sample kernels
// read fastest, on huge pages.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>

#include "../checks.h"
#include "huge_pages.h"

namespace torchsample {
namespace {

// dst[n][s][c] = src[n][c][s] for S positions and C channels per batch
// element, in blocks of positions whose output (kBlock * C values) stays in
// the L1 cache while C input rows stream through.  Element-wise strided
// copying, which at::Tensor::copy_ does for this permutation, runs at about
// half the memory bandwidth.
template <typename element_t>
void transpose_channels(const element_t* src, int64_t N, int64_t C, int64_t S, element_t* dst) {
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (S + kBlock - 1) / kBlock;
  at::parallel_for(0, N * blocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t b = begin; b < end; ++b) {
                       const int64_t n = b / blocks, s0 = (b - n * blocks) * kBlock;
                       const int64_t size = std::min(kBlock, S - s0);
                       const element_t* in = src + n * C * S + s0;
                       element_t* out = dst + (n * S + s0) * C;
                       for (int64_t c = 0; c < C; ++c) {
                         for (int64_t s = 0; s < size; ++s) {
                           out[s * C + c] = in[c * S + s];
                         }
                       }
                     }
                   });
}

at::Tensor channels_last_copy_cpu(const at::Tensor& input) {
  check_channels_last_copy_args(input);
  const at::MemoryFormat format =
      input.dim() == 4 ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::ChannelsLast3d;
  at::Tensor output = on_huge_pages(at::empty_like(input, input.options(), format));
  if (!input.is_contiguous() || output.numel() == 0) {
    return output.copy_(input);
  }
  // Only bytes move: the element type matters by its size alone.
  const int64_t N = input.size(0), C = input.size(1), S = input.numel() / std::max<int64_t>(N * C, 1);
  const void* src = input.const_data_ptr();
  void* dst = output.mutable_data_ptr();
  auto transpose_as = [&](auto element) {
    using element_t = decltype(element);
    transpose_channels(static_cast<const element_t*>(src), N, C, S, static_cast<element_t*>(dst));
  };
  switch (input.element_size()) {
    case 1: transpose_as(uint8_t{}); break;
    case 2: transpose_as(uint16_t{}); break;
    case 4: transpose_as(uint32_t{}); break;
    case 8: transpose_as(uint64_t{}); break;
    default: output.copy_(input);
  }
  return output;
}

}  // namespace

TORCH_LIBRARY_IMPL(torchsample, CPU, m) {
  m.impl("channels_last_copy", &channels_last_copy_cpu);
}

}  // namespace torchsample
