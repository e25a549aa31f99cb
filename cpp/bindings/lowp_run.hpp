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
#include <type_traits>

#include "fastoptim/core/lowp.hpp"
#include "item.hpp"

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fastoptim_py {
namespace {

// The tile's arrays are read one after the other, not side by side as in a fused loop. At DRAM sizes short
// tiles keep the streams close enough for the hardware prefetchers: Adam with 16-bit state, 1e8 elements,
// 2 threads, measured 0.41 ns/param with 256, 0.50 with 512, 0.55 with 1024 (fused loop: 0.40); software
// prefetching of the next tile made every size slower (a burst of prefetches fills the miss buffers).
constexpr std::size_t kTile = 256;

// Conversion instructions the tier has: F16C (avx2 and avx512 tiers) converts float16 both ways, AVX512-BF16
// (checked at run time; a function attribute) rounds float32 to bfloat16. Same bits as lowp.hpp's integer
// code (compared on all 2^32 float32 inputs when written; test_lowp.cpp compares F16C when built with it,
// tests/test_low_precision.py every tier's steps with numpy and ml_dtypes), but for the quiet bit F16C sets
// when widening a signalling float16 NaN, which no stored result shows (every 16-bit write quiets NaNs).
// A few times fewer instructions: with them the tiles below beat the fused kernels' integer conversions.
#if defined(__F16C__)
constexpr bool kHardwareF16 = true;
#else
constexpr bool kHardwareF16 = false;
#endif

#if defined(__AVX512F__) && defined(FASTOPTIM_KERNELS_AVX512BF16)
inline bool hardware_bf16() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") != 0;
  }();
  return has;
}

// VCVTNE2PS2BF16 rounds to nearest even and quiets NaNs as f32_to_bf16 does, but reads float32 denormals as
// zero: a block of 32 that holds one is redone by the integer code (rare: |x| < 2^-126).
__attribute__((target("avx512bf16"))) inline void narrow_bf16_hardware(const float* src, std::uint16_t* dst,
                                                                        std::size_t n) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 lo = _mm512_loadu_ps(src + i), hi = _mm512_loadu_ps(src + i + 16);
    const __mmask16 denormal = _mm512_fpclass_ps_mask(lo, 0x20) | _mm512_fpclass_ps_mask(hi, 0x20);
    _mm512_storeu_si512(dst + i, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    if (denormal) fastoptim::f32_to_bf16(src + i, dst + i, 32);
  }
  fastoptim::f32_to_bf16(src + i, dst + i, n - i);
}
#else
inline bool hardware_bf16() { return false; }
inline void narrow_bf16_hardware(const float* src, std::uint16_t* dst, std::size_t n) {
  fastoptim::f32_to_bf16(src, dst, n);
}
#endif

inline void widen(const void* src, DType d, float* dst, std::size_t n) {
  const auto* s = static_cast<const std::uint16_t*>(src);
  if (d == DType::bf16) {
    fastoptim::bf16_to_f32(s, dst, n);
    return;
  }
  std::size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
#endif
  fastoptim::f16_to_f32(s + i, dst + i, n - i);
}

// first: the index of src[0] in its tensor; slot: which buffer (distinct random bits per buffer).
inline void narrow(const float* src, void* dst, DType d, std::size_t n, std::uint64_t key, std::size_t first,
                   std::uint32_t slot) {
  auto* o = static_cast<std::uint16_t*>(dst);
  if (d == DType::f16) {
    std::size_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + i),
                          _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#elif defined(__F16C__)
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    fastoptim::f32_to_f16(src + i, o + i, n - i);
  } else if (key != 0) {
    fastoptim::f32_to_bf16_stochastic(src, o, n, key ^ (std::uint64_t{slot} * 0x9e3779b97f4a7c15ULL), first);
  } else if (hardware_bf16()) {
    narrow_bf16_hardware(src, o, n);
  } else {
    fastoptim::f32_to_bf16(src, o, n);
  }
}

// A low-precision item whose arrays a kernel can load and store itself in one pass, instead of going through
// run_range's tiles: rounding to nearest (stochastic rounding takes the tiles), all state buffers of one
// storage type, and one of these layouts (the isa/<name>.cpp that call run_fused have kernels for them):
struct FusedStorage {
  enum Layout {
    kNone,     // take the tiles
    kState16,  // float32 parameter and gradient, 16-bit state
    kAll16,    // 16-bit parameter, gradient and state, all of one type
    kMaster,   // float32 master weights (ptr[0]) with their 16-bit copy (Item::mirror), a gradient of the
               // copy's type, state of that type (state16) or float32
  } layout = kNone;
  DType half = DType::bf16;  // the 16-bit type
  bool state16 = false;      // kMaster: the state is `half`
};

inline FusedStorage fused_storage(const Item& w) {
  FusedStorage f;
  if (!w.lowp || w.rounding_key) return f;
  DType state = DType::f32;
  bool any_state = false;
  for (int k = 2; k < 8; ++k) {
    if (!w.ptr[k]) continue;
    if (any_state && w.storage[k] != state) return f;
    state = w.storage[k];
    any_state = true;
  }
  const auto is16 = [](DType d) { return d == DType::bf16 || d == DType::f16; };
  const DType p = w.storage[0], g = w.storage[1];
  if (!w.mirror) {
    if (p == DType::f32 && g == DType::f32 && any_state && is16(state)) {
      f.layout = FusedStorage::kState16;
      f.half = state;
    } else if (is16(p) && g == p && (!any_state || state == p)) {
      f.layout = FusedStorage::kAll16;
      f.half = p;
    }
  } else if (p == DType::f32 && is16(w.mirror_dtype) && g == w.mirror_dtype &&
             (!any_state || state == g || state == DType::f32)) {
    f.layout = FusedStorage::kMaster;
    f.half = g;
    f.state16 = any_state && state == g;
  }
  return f;
}

// Calls run(P{}, G{}, S{}, M{}) with the storage types of a fused layout (M: the mirror's type, void for
// none, passed as a null pointer value of type M*), H the 16-bit type; see FusedStorage. kMaster layouts
// only when kWithMaster.
template <class H, bool kWithMaster, class Run>
void with_fused_types(const FusedStorage& f, const Run& run) {
  switch (f.layout) {
    case FusedStorage::kState16: return run(float{}, float{}, H{}, static_cast<void*>(nullptr));
    case FusedStorage::kAll16: return run(H{}, H{}, H{}, static_cast<void*>(nullptr));
    case FusedStorage::kMaster:
      if constexpr (kWithMaster) {
        if (f.state16) return run(float{}, H{}, H{}, static_cast<H*>(nullptr));
        return run(float{}, H{}, float{}, static_cast<H*>(nullptr));
      }
      return;
    case FusedStorage::kNone: return;
  }
}

// with_fused_types for either 16-bit type; false (nothing run) for FusedStorage::kNone. kWithMaster = false:
// float32 master weights take the tiles too, for kernels with many flag combinations, each instantiated once
// per layout and 16-bit type (the build grew by half with every layout for all of them).
template <bool kWithMaster = true, class Run>
bool run_fused(const Item& w, const Run& run) {
  const FusedStorage f = fused_storage(w);
  if (f.layout == FusedStorage::kNone || (!kWithMaster && f.layout == FusedStorage::kMaster)) return false;
  // float16 where the tier has F16C: the tiles' conversions are single instructions, the fused loop's about
  // 25 integer ones per element and array (Adam, float16 state, 1e6 elements, one thread: 0.6 vs 1.1 ns/param;
  // 1e8, two threads: 0.41 vs 0.57). For bfloat16 the fused loop's conversions are cheap enough (measured
  // equal at 1e8 with AVX512-BF16 in the tiles, faster in cache without it).
  if (f.half == DType::f16 && kHardwareF16) return false;
  if (f.half == DType::bf16)
    with_fused_types<fastoptim::bfloat16_bits, kWithMaster>(f, run);
  else
    with_fused_types<fastoptim::float16_bits, kWithMaster>(f, run);
  return true;
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
