#pragma once
// parallel_for with a grain size: work below the grain runs on the calling thread, so tiny tensors never
// pay for waking a thread team. Chunks are aligned to 64 elements so vector bodies see whole cache lines.
// Element-wise rules give bit-identical results for any split, hence for any thread count.

#include <algorithm>
#include <cstddef>

#include "config.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fastoptim {
FASTOPTIM_ISA_BEGIN

// Elements per thread below which splitting costs more than it saves (an Adam step touches ~28 B per
// float32 element, so 32Ki elements is ~1 MiB of traffic: a few microseconds).
inline constexpr std::size_t kDefaultGrain = std::size_t{1} << 15;

// Pass as a kernel's grain to run it on the calling thread (when the caller has split the work already).
inline constexpr std::size_t kSerial = ~std::size_t{0};

// p + offset, keeping null (an unused buffer) null.
template <class T>
T* offset_or_null(T* p, std::size_t offset) noexcept {
  return p ? p + offset : nullptr;
}

inline int max_threads() noexcept {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Calls body(begin, end) over disjoint ranges covering [0, n).
template <class Body>
void parallel_for(std::size_t n, std::size_t grain, const Body& body) {
  if (n == 0) return;
  const std::size_t max_useful = grain == 0 ? n : std::max<std::size_t>(1, n / grain);
  const int threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(max_threads()), max_useful));
  if (threads <= 1) {
    body(std::size_t{0}, n);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t nt = static_cast<std::size_t>(omp_get_num_threads());
    constexpr std::size_t kAlign = 64;
    const std::size_t blocks = (n + kAlign - 1) / kAlign;
    const std::size_t begin = std::min(n, (blocks * t / nt) * kAlign);
    const std::size_t end = std::min(n, (blocks * (t + 1) / nt) * kAlign);
    if (begin < end) body(begin, end);
  }
#endif
}

// Calls body(i, begin, end) over disjoint ranges covering [0, size(i)) for every item i < count, splitting
// the total element count (not the item count) evenly across threads: a thousand small tensors and one big
// one both use every thread, and a step whose total work is below one grain runs on the calling thread.
// Each thread walks a contiguous slice of the concatenation of all items, cut at multiples of 64 elements.
template <class Size, class Body>
void parallel_for_items(std::size_t count, const Size& size, std::size_t grain, const Body& body) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < count; ++i) total += size(i);
  if (total == 0) return;
  const std::size_t max_useful = grain == 0 ? total : std::max<std::size_t>(1, total / grain);
  const int threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(max_threads()), max_useful));
  if (threads <= 1) {
    for (std::size_t i = 0; i < count; ++i)
      if (const std::size_t n = size(i)) body(i, std::size_t{0}, n);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t nt = static_cast<std::size_t>(omp_get_num_threads());
    constexpr std::size_t kAlign = 64;
    const std::size_t blocks = (total + kAlign - 1) / kAlign;
    const std::size_t begin = std::min(total, (blocks * t / nt) * kAlign);
    const std::size_t end = std::min(total, (blocks * (t + 1) / nt) * kAlign);
    // Items are few compared with elements; a linear walk to the first one is cheaper than a prefix array.
    std::size_t offset = 0;  // global index of item i's first element
    for (std::size_t i = 0; i < count && offset < end; ++i) {
      const std::size_t n = size(i);
      const std::size_t b = std::max(begin, offset), e = std::min(end, offset + n);
      if (b < e) body(i, b - offset, e - offset);
      offset += n;
    }
  }
#endif
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
