#pragma once
// Runs an optimizer's float32 kernel over items whose arrays are stored in float16 or bfloat16: each
// range is processed in tiles of kTile elements that are widened into float32 buffers on the stack (L1-sized),
// updated by the unchanged float32 kernel, and narrowed back (stochastically rounded for bfloat16 when the
// item has a rounding key). Still one pass over memory; the tile stays in L1. Only for isa/<name>.cpp files
// (internal linkage, like item.hpp's helpers).
//
// Contract with the kernels: Item::ptr[0] is the parameter, ptr[1] the gradient (read only), every other
// non-null pointer an elementwise buffer the kernel may write; all are offset together.

#include <algorithm>
#include <cstdint>

#include "fastoptim/core/lowp.hpp"
#include "item.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define FASTOPTIM_PREFETCH(p) __builtin_prefetch(p)
#else
#define FASTOPTIM_PREFETCH(p) ((void)(p))
#endif

namespace fastoptim_py {
namespace {

constexpr std::size_t kTile = 2048;  // amortizes each call's per-call scalars (pow for bias corrections); 8 KiB per buffer

inline void widen(const void* src, DType d, float* dst, std::size_t n) {
  const auto* s = static_cast<const std::uint16_t*>(src);
  if (d == DType::bf16)
    fastoptim::bf16_to_f32(s, dst, n);
  else
    fastoptim::f16_to_f32(s, dst, n);
}

// first: the index of src[0] in its tensor; slot: which buffer (distinct random bits per buffer).
inline void narrow(const float* src, void* dst, DType d, std::size_t n, std::uint64_t key, std::size_t first,
                   std::uint32_t slot) {
  auto* o = static_cast<std::uint16_t*>(dst);
  if (d == DType::f16)
    fastoptim::f32_to_f16(src, o, n);
  else if (key == 0)
    fastoptim::f32_to_bf16(src, o, n);
  else
    fastoptim::f32_to_bf16_stochastic(src, o, n, key ^ (std::uint64_t{slot} * 0x9e3779b97f4a7c15ULL), first);
}

// The 16-bit type (bf16 or f16) that every state buffer of w (ptr[2] on) holds, when w's kernel can load
// and store it directly: float32 parameter and gradient, no master weights, rounding to nearest, at least
// one state buffer. DType::f32 otherwise (the tiles of run_range below).
inline DType fusable_16bit_state(const Item& w) {
  if (!w.lowp || w.mirror || w.rounding_key || w.storage[0] != DType::f32 || w.storage[1] != DType::f32)
    return DType::f32;
  DType s = DType::f32;
  for (int k = 2; k < 8; ++k) {
    if (!w.ptr[k]) continue;
    if ((w.storage[k] != DType::bf16 && w.storage[k] != DType::f16) || (s != DType::f32 && w.storage[k] != s))
      return DType::f32;
    s = w.storage[k];
  }
  return s;
}

// Runs kernel(item, b, e, T{}) over [b, e) of w, T = float or double the arithmetic type, on an item whose
// arrays all hold T, or tile by tile for a low-precision one.
template <class Kernel>
void run_range(const Item& w, std::size_t b, std::size_t e, const Kernel& kernel) {
  if (!w.lowp) {
    if (w.dtype == DType::f32)
      kernel(w, b, e, float{});
    else
      kernel(w, b, e, double{});
    return;
  }
  alignas(64) float tile[8][kTile];
  Item t = w;
  t.lowp = false;
  t.dtype = DType::f32;
  for (std::size_t tb = b; tb < e;) {
    std::size_t n = std::min(kTile, e - tb);
    // Stochastic rounding draws per element from a 32-bit counter: never cross a multiple of 2^32.
    const std::uint64_t to_wrap = (std::uint64_t{1} << 32) - (static_cast<std::uint64_t>(tb) & 0xffffffffULL);
    if (n > to_wrap) n = static_cast<std::size_t>(to_wrap);
    // The tile's arrays are read one after the other, not side by side as in a fused loop, which the
    // hardware prefetchers follow poorly at DRAM sizes: ask for the next tile's lines now.
    const std::size_t ahead = std::min(n, e - tb - n);
    for (int k = 0; k < 8 && ahead; ++k) {
      if (!w.ptr[k]) continue;
      const std::size_t size = w.storage[k] == DType::f32 ? 4 : 2;
      const char* next = static_cast<const char*>(w.ptr[k]) + (tb + n) * size;
      for (std::size_t off = 0; off < ahead * size; off += 64) FASTOPTIM_PREFETCH(next + off);
    }
    for (int k = 0; k < 8; ++k) {
      if (!w.ptr[k]) continue;
      if (w.storage[k] == DType::f32) {
        t.ptr[k] = static_cast<float*>(w.ptr[k]) + tb;
      } else {
        widen(static_cast<const std::uint16_t*>(w.ptr[k]) + tb, w.storage[k], tile[k], n);
        t.ptr[k] = tile[k];
      }
    }
    t.n = n;
    kernel(t, std::size_t{0}, n, float{});
    for (int k = 0; k < 8; ++k)
      if (w.ptr[k] && k != 1 && w.storage[k] != DType::f32)
        narrow(tile[k], static_cast<std::uint16_t*>(w.ptr[k]) + tb, w.storage[k], n, w.rounding_key, tb,
               static_cast<std::uint32_t>(k));
    if (w.mirror)  // float32 master weights: the 16-bit parameter gets them rounded
      narrow(static_cast<const float*>(t.ptr[0]), static_cast<std::uint16_t*>(w.mirror) + tb, w.mirror_dtype, n,
             w.rounding_key, tb, 0);
    tb += n;
  }
}

}  // namespace
}  // namespace fastoptim_py
