#pragma once
// parallel_for with a grain size: work below the grain runs on the calling thread, so tiny tensors never
// pay for waking a thread. Larger work is cut into chunks aligned to 64 elements (vector bodies see whole
// cache lines) that the calling thread and thread_pool.hpp's workers claim as they come, so a worker the
// scheduler has not run yet delays nothing. Element-wise rules give bit-identical results for any split,
// hence for any thread count and any worker timing.

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "config.hpp"
#include "thread_pool.hpp"

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

// p + offset, keeping null (an unused buffer) null; always null for T = void (a kernel's storage type for
// "no such buffer", e.g. no 16-bit copy of master weights).
template <class T>
T* offset_or_null(T* p, std::size_t offset) noexcept {
  if constexpr (std::is_void_v<T>)
    return nullptr;
  else
    return p ? p + offset : nullptr;
}

inline int max_threads() noexcept {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

namespace impl {

// How many chunks `threads` threads share [0, n) in: a few per thread, so that one that starts late or is
// interrupted leaves its share to the others, but not below kMinChunk elements (a claim costs ~0.1 us).
inline std::size_t chunk_count(std::size_t n, int threads) noexcept {
  constexpr std::size_t kMinChunk = std::size_t{1} << 13;
  const std::size_t most = static_cast<std::size_t>(threads) * 8;
  return std::max<std::size_t>(static_cast<std::size_t>(threads), std::min(most, n / kMinChunk));
}

// Chunk c of `chunks` over [0, n), cut at multiples of 64 elements.
inline void chunk_range(std::size_t n, std::size_t chunks, std::size_t c, std::size_t& begin,
                        std::size_t& end) noexcept {
  constexpr std::size_t kAlign = 64;
  const std::size_t blocks = (n + kAlign - 1) / kAlign;
  begin = std::min(n, (blocks * c / chunks) * kAlign);
  end = std::min(n, (blocks * (c + 1) / chunks) * kAlign);
}

}  // namespace impl

// Calls body(c) for every c < chunks, on the calling thread and up to threads - 1 workers of the pool, for
// work the caller has cut into pieces already (fixed reduction blocks, whole tasks): which thread runs a
// piece must not matter. body must not throw.
template <class Body>
void parallel_chunks(std::size_t chunks, int threads, const Body& body) {
  if (threads <= 1 || chunks <= 1) {
    for (std::size_t c = 0; c < chunks; ++c) body(c);
    return;
  }
  detail::run_chunks(
      chunks, threads, [](void* ctx, std::size_t c) { (*static_cast<const Body*>(ctx))(c); },
      const_cast<void*>(static_cast<const void*>(&body)));
}

// Calls body(begin, end) over disjoint ranges covering [0, n), from any thread.
template <class Body>
void parallel_for(std::size_t n, std::size_t grain, const Body& body) {
  if (n == 0) return;
  const std::size_t max_useful = grain == 0 ? n : std::max<std::size_t>(1, n / grain);
  const int threads = static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(max_threads()), max_useful));
  if (threads <= 1) {
    body(std::size_t{0}, n);
    return;
  }
  const std::size_t chunks = impl::chunk_count(n, threads);
  parallel_chunks(chunks, threads, [&](std::size_t c) {
    std::size_t begin, end;
    impl::chunk_range(n, chunks, c, begin, end);
    if (begin < end) body(begin, end);
  });
}

// Calls body(i, begin, end) over disjoint ranges covering [0, size(i)) for every item i < count, splitting
// the total element count (not the item count) across threads: a thousand small tensors and one big one
// both use every thread, and a step whose total work is below one grain runs on the calling thread. Each
// chunk is a contiguous slice of the concatenation of all items, cut at multiples of 64 elements.
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
  std::vector<std::size_t> first(count + 1, 0);  // first[i]: global index of item i's first element
  for (std::size_t i = 0; i < count; ++i) first[i + 1] = first[i] + size(i);
  const std::size_t chunks = impl::chunk_count(total, threads);
  parallel_chunks(chunks, threads, [&](std::size_t c) {
    std::size_t begin, end;
    impl::chunk_range(total, chunks, c, begin, end);
    // The last item starting at or before `begin` (empty items share their successor's start).
    std::size_t i = static_cast<std::size_t>(std::upper_bound(first.begin(), first.end(), begin) - first.begin()) - 1;
    for (; i < count && first[i] < end; ++i) {
      const std::size_t b = std::max(begin, first[i]), e = std::min(end, first[i + 1]);
      if (b < e) body(i, b - first[i], e - first[i]);
    }
  });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
