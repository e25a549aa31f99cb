#pragma once
// Low-precision storage: float16 (IEEE binary16) and bfloat16 arrays held as raw 16-bit words, converted
// to and from float32 for the arithmetic. The conversions are plain integer code (no F16C, no _Float16) but
// for one float add or subtract in float16's subnormal range, branch-free so that compilers vectorize the
// loops, and give the same bits on every CPU and instruction set: round to nearest even, NaN kept NaN
// (quieted), overflow to infinity, float16 subnormals exact.
//
// Stochastic rounding (bfloat16 only) rounds x up with probability equal to its distance from the value
// below, so the rounding error is zero on average and small updates are not lost: a weight of 1.0 that
// gets 1e-3 added each step never moves under round-to-nearest (bfloat16 has 8 significant bits), but
// drifts by 1e-3 per step on average under stochastic rounding. The random bits are a hash of
// (key, element index): a counter-based generator, so the result is independent of how the work is split
// across threads and reproducible from the key.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "config.hpp"

namespace fastoptim {

// 16-bit storage types for kernels that load and store them directly (adam_kernel.hpp): the raw bits.
struct bfloat16_bits {
  std::uint16_t bits;
};
struct float16_bits {
  std::uint16_t bits;
};

// S itself, in a parameter that must not take part in deducing S (std::type_identity_t of C++20): lets
// kernels templated on a storage type S take a literal nullptr for an unused buffer.
template <class S>
struct non_deduced {
  using type = S;
};

// A 32-bit integer hash with good avalanche (Chris Wellons' "lowbias32"); cheap and vectorizable.
constexpr std::uint32_t hash32(std::uint32_t x) noexcept {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// The stochastic-rounding key of one buffer at one step: distinct for every (seed, counter, parameter,
// buffer) so no two writes share random bits. counter is the optimizer's step counter.
constexpr std::uint64_t rounding_key(std::uint64_t seed, std::uint64_t counter, std::uint64_t param_index,
                                     std::uint32_t buffer) noexcept {
  std::uint32_t h = hash32(static_cast<std::uint32_t>(seed) ^ 0x9e3779b9U);
  h = hash32(h ^ static_cast<std::uint32_t>(seed >> 32));
  h = hash32(h ^ static_cast<std::uint32_t>(counter));
  h = hash32(h ^ static_cast<std::uint32_t>(counter >> 32));
  h = hash32(h ^ static_cast<std::uint32_t>(param_index));
  h = hash32(h ^ static_cast<std::uint32_t>(param_index >> 32));
  std::uint32_t lo = hash32(h ^ buffer);
  return (static_cast<std::uint64_t>(hash32(lo ^ 0x85ebca6bU)) << 32) | lo;
}

FASTOPTIM_ISA_BEGIN

// Bit casts; __builtin_bit_cast (GCC 11+, Clang, MSVC) keeps the loops vectorizable where memcpy may not.
FASTOPTIM_INLINE std::uint32_t float_bits(float f) noexcept {
#if defined(__has_builtin)
#if __has_builtin(__builtin_bit_cast)
  return __builtin_bit_cast(std::uint32_t, f);
#define FASTOPTIM_HAS_BIT_CAST 1
#endif
#endif
#ifndef FASTOPTIM_HAS_BIT_CAST
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

FASTOPTIM_INLINE float bits_float(std::uint32_t u) noexcept {
#ifdef FASTOPTIM_HAS_BIT_CAST
  return __builtin_bit_cast(float, u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// Branch-free selection with all-ones/all-zero masks: compilers vectorize these loops fully, which they
// do not with ?: on mixed-width values.
FASTOPTIM_INLINE std::uint32_t mask_of(bool b) noexcept { return 0U - static_cast<std::uint32_t>(b); }
FASTOPTIM_INLINE std::uint32_t select(std::uint32_t mask, std::uint32_t if_set, std::uint32_t otherwise) noexcept {
  return otherwise ^ ((otherwise ^ if_set) & mask);
}

// ------------------------------------------------------------------------------------------ bfloat16

FASTOPTIM_INLINE float bf16_to_f32(std::uint16_t h) noexcept { return bits_float(static_cast<std::uint32_t>(h) << 16); }

// All-ones for a NaN's bits, else zero (integer arithmetic: still right under -ffinite-math-only).
FASTOPTIM_INLINE std::uint32_t nan_mask(std::uint32_t u) noexcept { return 0U - ((0x7f800000U - (u & 0x7fffffffU)) >> 31); }

// Adds the rounding increment to the dropped half, or for a NaN sets its quiet bit and adds nothing.
FASTOPTIM_INLINE std::uint16_t f32_to_bf16(float f) noexcept {
  const std::uint32_t u = float_bits(f);
  const std::uint32_t nan = nan_mask(u);
  const std::uint32_t increment = (0x7fffU + ((u >> 16) & 1U)) & ~nan;
  return static_cast<std::uint16_t>(((u | (nan & 0x400000U)) + increment) >> 16);
}

// Rounds up (away from zero) with probability (low 16 bits) / 2^16, using the low 16 bits of `random`.
FASTOPTIM_INLINE std::uint16_t f32_to_bf16_stochastic(float f, std::uint32_t random) noexcept {
  const std::uint32_t u = float_bits(f);
  const std::uint32_t nan = nan_mask(u);
  const std::uint32_t increment = random & 0xffffU & ~nan;  // no overflow: |u| <= inf's bits otherwise
  return static_cast<std::uint16_t>(((u | (nan & 0x400000U)) + increment) >> 16);
}

// ------------------------------------------------------------------------------------------- float16

// Both directions are branch-free selects over the candidate results. The subnormal cases use one float
// operation each, exact or rounded to nearest even as the format requires (float16's subnormal spacing,
// 2^-24, is the spacing of float32 near 0.5 and near 2^-14), instead of variable shifts: about half the
// instructions of the all-integer form, and the same bits (checked on every input, cpp/tests/test_lowp.cpp).
FASTOPTIM_INLINE float f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t x = h;
  const std::uint32_t e = x & 0x7c00U;
  const std::uint32_t normal = ((x & 0x7fffU) << 13) + (112U << 23);  // exponent rebiased, significand in place
  const std::uint32_t special = normal + (112U << 23);                 // inf, NaN (payload kept)
  // Subnormals (and zero): 2^-14 * (1 + mant / 1024) - 2^-14 = mant * 2^-24, exactly.
  const std::uint32_t sub = float_bits(bits_float(normal + (1U << 23)) - 6.103515625e-05f);
  const std::uint32_t r = select(mask_of(e == 0), sub, select(mask_of(e == 0x7c00U), special, normal));
  return bits_float(r | ((x & 0x8000U) << 16));
}

FASTOPTIM_INLINE std::uint16_t f32_to_f16(float f) noexcept {
  const std::uint32_t u = float_bits(f);
  const std::uint32_t sign = (u >> 16) & 0x8000U;
  const std::uint32_t a = u & 0x7fffffffU;
  // Normal results: rebias and round the 13 dropped bits to nearest even (a carry may reach infinity).
  const std::uint32_t normal = (a - (112U << 23) + 0xfffU + ((a >> 13) & 1U)) >> 13;
  // Subnormal results (|f| < 2^-14): 0.5 + |f| rounds |f| to a multiple of 2^-24 (the ulp of 0.5), and the
  // low bits of the sum are that multiple: the float16 bits, 0x400 when it rounds up to the smallest normal.
  // (A float32 denormal read as zero under DAZ gives 0, as its correct rounding does.)
  const std::uint32_t sub = float_bits(bits_float(a) + 0.5f) - 0x3f000000U;
  const std::uint32_t nan = 0x7e00U | ((a >> 13) & 0x3ffU);
  std::uint32_t out = select(mask_of(a < 0x38800000U), sub, normal);
  out = select(mask_of(a >= 0x47800000U), 0x7c00U, out);  // >= 2^16 and inf: infinity (65520 up carries there)
  out = select(mask_of(a > 0x7f800000U), nan, out);
  return static_cast<std::uint16_t>(sign | out);
}

// Element access for kernels templated on a storage type S: widen(x) gives the arithmetic value (float for
// the 16-bit types), narrow_as<S>(v) the stored one, rounded to nearest even.
template <class T>
FASTOPTIM_INLINE T widen(T x) noexcept {
  return x;
}
FASTOPTIM_INLINE float widen(bfloat16_bits x) noexcept { return bf16_to_f32(x.bits); }
FASTOPTIM_INLINE float widen(float16_bits x) noexcept { return f16_to_f32(x.bits); }

template <class S, class T>
FASTOPTIM_INLINE S narrow_as(T x) noexcept {
  if constexpr (std::is_same_v<S, bfloat16_bits>)
    return S{f32_to_bf16(x)};
  else if constexpr (std::is_same_v<S, float16_bits>)
    return S{f32_to_f16(x)};
  else
    return x;
}

// ------------------------------------------------------------------------------------ array loops

// In-place-safe conversions of n elements; `first` is the index of src[0] in its whole tensor (the
// stochastic-rounding counter).
inline void bf16_to_f32(const std::uint16_t* FASTOPTIM_RESTRICT src, float* FASTOPTIM_RESTRICT dst,
                        std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

inline void f16_to_f32(const std::uint16_t* FASTOPTIM_RESTRICT src, float* FASTOPTIM_RESTRICT dst,
                       std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

inline void f32_to_bf16(const float* FASTOPTIM_RESTRICT src, std::uint16_t* FASTOPTIM_RESTRICT dst,
                        std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

inline void f32_to_f16(const float* FASTOPTIM_RESTRICT src, std::uint16_t* FASTOPTIM_RESTRICT dst,
                       std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

// Stochastic rounding of src[0, n) into dst; element i draws hash(key, first + i). A range may not cross
// a multiple of 2^32 elements (callers split there).
inline void f32_to_bf16_stochastic(const float* FASTOPTIM_RESTRICT src, std::uint16_t* FASTOPTIM_RESTRICT dst,
                                   std::size_t n, std::uint64_t key, std::uint64_t first) noexcept {
  const std::uint32_t k = hash32(static_cast<std::uint32_t>(key) ^ static_cast<std::uint32_t>(first >> 32)) ^
                          static_cast<std::uint32_t>(key >> 32);
  const std::uint32_t base = static_cast<std::uint32_t>(first);
  for (std::size_t i = 0; i < n; ++i)
    dst[i] = f32_to_bf16_stochastic(src[i], hash32(k ^ ((base + static_cast<std::uint32_t>(i)) * 0x9e3779b1U)));
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
