// The benchmark's bandwidth probe for one instruction set (compiled once per tier; see ../item.hpp and
// ../bind_bench.cpp): R arrays read and W arrays written, n elements each, element sizes 2, 4 or 8 bytes, in
// one pass. Per vector of elements it sums the read arrays, then stores the sums into the written arrays:
// an optimizer step's memory traffic (a fused kernel also reads every input of a vector before it writes
// the outputs) with integer adds in place of its arithmetic.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../item.hpp"
#include "fastoptim/core/parallel.hpp"

namespace fastoptim_py {
namespace {

// One register of uint32 sums: 16 lanes with AVX-512, 8 with AVX2, 4 with SSE2 (wider generic vectors are
// split badly by the compilers, through memory).
constexpr std::size_t kLanes = FASTOPTIM_ISA_TIER >= 2 ? 16 : FASTOPTIM_ISA_TIER == 1 ? 8 : 4;

#if defined(__GNUC__) || defined(__clang__)
// Explicit vectors: GCC's SLP vectorizer turns the plain lane loops of the #else branch into scalar adds.
typedef std::uint32_t U32 __attribute__((vector_size(4 * kLanes)));
typedef std::uint16_t U16 __attribute__((vector_size(2 * kLanes)));
typedef std::uint64_t U64 __attribute__((vector_size(8 * kLanes)));
using Sums = U32;

// Vectors pass by reference only: by value they would change the ABI between tiers (-Wpsabi).
template <class T>
void add(Sums& v, const void* src, std::size_t i) {
  const T* s = static_cast<const T*>(src) + i;
  if constexpr (sizeof(T) == 4) {
    U32 x;
    std::memcpy(&x, s, sizeof x);
    v += x;
  } else if constexpr (sizeof(T) == 2) {
    U16 x;
    std::memcpy(&x, s, sizeof x);
    v += __builtin_convertvector(x, U32);
  } else {
    U64 x;
    std::memcpy(&x, s, sizeof x);
    v += __builtin_convertvector(x, U32);
  }
}

template <class T>
void store(const Sums& v, void* dst, std::size_t i) {
  T* d = static_cast<T*>(dst) + i;
  if constexpr (sizeof(T) == 4) {
    std::memcpy(d, &v, sizeof v);
  } else if constexpr (sizeof(T) == 2) {
    const U16 x = __builtin_convertvector(v, U16);
    std::memcpy(d, &x, sizeof x);
  } else {
    const U64 x = __builtin_convertvector(v, U64);
    std::memcpy(d, &x, sizeof x);
  }
}
#else
struct Sums {
  std::uint32_t lane[kLanes];
};

template <class T>
void add(Sums& v, const void* src, std::size_t i) {
  const T* s = static_cast<const T*>(src) + i;
  for (std::size_t k = 0; k < kLanes; ++k) v.lane[k] += static_cast<std::uint32_t>(s[k]);
}

template <class T>
void store(const Sums& v, void* dst, std::size_t i) {
  T* d = static_cast<T*>(dst) + i;
  for (std::size_t k = 0; k < kLanes; ++k) d[k] = static_cast<T>(v.lane[k]);
}
#endif

std::uint32_t load1(const void* src, int size, std::size_t i) {
  if (size == 2) return static_cast<const std::uint16_t*>(src)[i];
  if (size == 4) return static_cast<const std::uint32_t*>(src)[i];
  return static_cast<std::uint32_t>(static_cast<const std::uint64_t*>(src)[i]);
}

void store1(void* dst, int size, std::size_t i, std::uint32_t x) {
  if (size == 2) static_cast<std::uint16_t*>(dst)[i] = static_cast<std::uint16_t>(x);
  else if (size == 4) static_cast<std::uint32_t*>(dst)[i] = x;
  else static_cast<std::uint64_t*>(dst)[i] = x;
}

// Every array advances one vector at a time, as in a fused kernel: R + W concurrent streams.
void run(std::size_t n, const void* const* reads, const int* read_sizes, int nr, void* const* writes,
         const int* write_sizes, int nw) {
  fastoptim::parallel_for(n, fastoptim::kDefaultGrain, [&](std::size_t begin, std::size_t end) {
    std::size_t i = begin;
    for (; i + kLanes <= end; i += kLanes) {
      Sums v{};
      for (int r = 0; r < nr; ++r) {
        if (read_sizes[r] == 4) add<std::uint32_t>(v, reads[r], i);
        else if (read_sizes[r] == 2) add<std::uint16_t>(v, reads[r], i);
        else add<std::uint64_t>(v, reads[r], i);
      }
      for (int w = 0; w < nw; ++w) {
        if (write_sizes[w] == 4) store<std::uint32_t>(v, writes[w], i);
        else if (write_sizes[w] == 2) store<std::uint16_t>(v, writes[w], i);
        else store<std::uint64_t>(v, writes[w], i);
      }
    }
    for (; i < end; ++i) {
      std::uint32_t x = 0;
      for (int r = 0; r < nr; ++r) x += load1(reads[r], read_sizes[r], i);
      for (int w = 0; w < nw; ++w) store1(writes[w], write_sizes[w], i, x);
    }
  });
}

FASTOPTIM_REGISTER_ISA_KERNEL("stream", run);

}  // namespace
}  // namespace fastoptim_py
