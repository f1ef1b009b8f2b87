// Huge-page advice for the CPU kernels' large buffers (outputs, staging
// buffers, input gradients, channels-last copies).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace torchsample {

// Returns `t`, a fresh buffer, after advising Linux to back it with
// transparent huge pages.  Buffers of megabytes are often fresh memory from
// the system, and first touching them costs one page fault per 4 KiB: for a
// 56 MB volume, about as long as a pass over it.  Where huge pages are
// granted on request, one fault maps 2 MiB, and random reads and writes
// into the buffer miss the TLB less.  Advice only: where it is refused, the
// buffer keeps small pages.
inline at::Tensor on_huge_pages(at::Tensor t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHugePage = uintptr_t(1) << 21;
  const auto begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (begin + t.nbytes()) & ~(kHugePage - 1);
  if (last > first) {
    madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  return t;
}

}  // namespace torchsample
