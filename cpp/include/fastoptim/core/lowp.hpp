#pragma once
// Low-precision storage: float16 (IEEE binary16) and bfloat16 arrays held as raw 16-bit words, converted
// to and from float32 for the arithmetic. The conversions are plain integer code (no F16C, no _Float16),
// branch-free so that compilers vectorize the loops, and give the same bits on every CPU and instruction
// set: round to nearest even, NaN kept NaN (quieted), overflow to infinity, float16 subnormals exact.
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

#include "config.hpp"

namespace fastoptim {

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

inline std::uint32_t float_bits(float f) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bits_float(std::uint32_t u) noexcept {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ------------------------------------------------------------------------------------------ bfloat16

inline float bf16_to_f32(std::uint16_t h) noexcept { return bits_float(static_cast<std::uint32_t>(h) << 16); }

inline std::uint16_t f32_to_bf16(float f) noexcept {
  const std::uint32_t u = float_bits(f);
  const bool nan = (u & 0x7fffffffU) > 0x7f800000U;
  const std::uint32_t rounded = (u + 0x7fffU + ((u >> 16) & 1U)) >> 16;
  return static_cast<std::uint16_t>(nan ? ((u >> 16) | 0x40U) : rounded);
}

// Rounds up (away from zero) with probability (low 16 bits) / 2^16, using the low 16 bits of `random`.
inline std::uint16_t f32_to_bf16_stochastic(float f, std::uint32_t random) noexcept {
  const std::uint32_t u = float_bits(f);
  const bool nan = (u & 0x7fffffffU) > 0x7f800000U;
  const std::uint32_t rounded = (u + (random & 0xffffU)) >> 16;  // no overflow: |u| <= inf's bits here
  return static_cast<std::uint16_t>(nan ? ((u >> 16) | 0x40U) : rounded);
}

// ------------------------------------------------------------------------------------------- float16

inline float f16_to_f32(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000U) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fU;
  const std::uint32_t mant = h & 0x3ffU;
  const std::uint32_t normal = sign | ((exp + 112U) << 23) | (mant << 13);
  const std::uint32_t special = sign | 0x7f800000U | (mant << 13);  // inf, NaN (payload kept)
  // Subnormals (and zero): mant * 2^-24 exactly, as a float32 (normal there).
  const std::uint32_t sub = sign | float_bits(static_cast<float>(mant) * 5.9604644775390625e-8f);
  return bits_float(exp == 0x1fU ? special : exp == 0 ? sub : normal);
}

inline std::uint16_t f32_to_f16(float f) noexcept {
  const std::uint32_t u = float_bits(f);
  const std::uint32_t sign = (u >> 16) & 0x8000U;
  const std::uint32_t a = u & 0x7fffffffU;
  // Normal results: rebias and round the 13 dropped bits to nearest even (a carry may reach infinity).
  const std::uint32_t normal = (a - (112U << 23) + 0xfffU + ((a >> 13) & 1U)) >> 13;
  // Subnormal results (|f| < 2^-14): shift the full significand right and round to nearest even.
  const std::uint32_t e = a >> 23;
  const std::uint32_t shift_raw = 126U - (e < 126U ? e : 126U);      // >= 14 for these inputs
  const std::uint32_t shift = shift_raw < 31U ? shift_raw : 31U;
  const std::uint32_t m = (a & 0x7fffffU) | 0x800000U;
  const std::uint32_t q = m >> shift;
  const std::uint32_t rem = m & ((1U << shift) - 1U);
  const std::uint32_t half = 1U << (shift - 1U);
  const std::uint32_t sub = q + ((rem > half) | ((rem == half) & (q & 1U)));
  const std::uint32_t nan = 0x7e00U | ((a >> 13) & 0x3ffU);
  const std::uint32_t out = a > 0x7f800000U    ? nan
                            : a >= 0x47800000U ? 0x7c00U  // >= 65536 (and inf): infinity
                            : a < 0x38800000U  ? sub
                                               : normal;
  return static_cast<std::uint16_t>(sign | out);
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
