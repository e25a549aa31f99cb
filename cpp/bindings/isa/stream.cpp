// The benchmark's bandwidth probe for one instruction set (compiled once per tier; see ../item.hpp and
// ../bind_bench.cpp): R arrays read and W arrays written, n elements each, element sizes 2, 4 or 8 bytes, in
// one pass. Per tile of kTile elements it sums the read arrays into an L1-resident buffer, then stores that
// into the written arrays: an optimizer step's memory traffic (a fused kernel also reads every input of a
// tile before it writes the tile's outputs) with integer adds in place of its arithmetic.

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "../item.hpp"
#include "fastoptim/core/parallel.hpp"

namespace fastoptim_py {
namespace {

constexpr std::size_t kTile = 1024;  // 4 KiB of uint32: stays in L1 next to the streams

template <class T>
void add(std::uint32_t* acc, const void* src, std::size_t b, std::size_t m) {
  const T* s = static_cast<const T*>(src) + b;
  for (std::size_t i = 0; i < m; ++i) acc[i] += static_cast<std::uint32_t>(s[i]);
}

template <class T>
void store(const std::uint32_t* acc, void* dst, std::size_t b, std::size_t m) {
  T* d = static_cast<T*>(dst) + b;
  for (std::size_t i = 0; i < m; ++i) d[i] = static_cast<T>(acc[i]);
}

void run(std::size_t n, const void* const* reads, const int* read_sizes, int nr, void* const* writes,
         const int* write_sizes, int nw) {
  fastoptim::parallel_for(n, fastoptim::kDefaultGrain, [&](std::size_t begin, std::size_t end) {
    alignas(64) std::uint32_t acc[kTile];
    for (std::size_t b = begin; b < end; b += kTile) {
      const std::size_t m = std::min(kTile, end - b);
      std::fill(acc, acc + m, std::uint32_t{0});
      for (int r = 0; r < nr; ++r) {
        if (read_sizes[r] == 2) add<std::uint16_t>(acc, reads[r], b, m);
        else if (read_sizes[r] == 4) add<std::uint32_t>(acc, reads[r], b, m);
        else add<std::uint64_t>(acc, reads[r], b, m);
      }
      for (int w = 0; w < nw; ++w) {
        if (write_sizes[w] == 2) store<std::uint16_t>(acc, writes[w], b, m);
        else if (write_sizes[w] == 4) store<std::uint32_t>(acc, writes[w], b, m);
        else store<std::uint64_t>(acc, writes[w], b, m);
      }
    }
  });
}

FASTOPTIM_REGISTER_ISA_KERNEL("stream", run);

}  // namespace
}  // namespace fastoptim_py
