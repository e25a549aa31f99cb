#pragma once
// Element helpers shared by the update rules. They round exactly as torch's CPU kernels do on any CPU
// with FMA (every x86-64 since 2013, every AArch64): torch's vector bodies call fmadd for `a + alpha * b`
// and its scalar tails are compiled with FMA contraction, so each `x + y * z` of an update is one fused
// multiply-add. We spell those FMAs out with std::fma instead of leaving them to the compiler (without
// -mfma, std::fma is a libm call that still uses the FMA instruction where the CPU has one), and where torch
// rounds a product before adding, mul_rounded keeps a contracting compiler from fusing it, so results are
// the same whatever flags a consumer builds with.

#include <cmath>

#include "config.hpp"

namespace fastoptim {
FASTOPTIM_ISA_BEGIN

// a * b + c with a single rounding.
template <class T>
inline T fmadd(T a, T b, T c) noexcept {
  return std::fma(a, b, c);
}

// a * b rounded on its own even under -ffp-contract=fast: fma(a, b, -0) is exactly the rounded product
// (sign of zero included), and compilers do not fuse an fma into a following add.
template <class T>
inline T mul_rounded(T a, T b) noexcept {
  return std::fma(a, b, T(-0.0));
}

// torch.lerp: exact at both ends, choosing the formulation by the size of the weight.
template <class T>
inline bool lerp_weight_is_small(T weight) noexcept {
  return weight < T(0.5) && weight > T(-0.5);
}

// lerp with the formulation fixed at compile time, for loops whose weight is invariant.
template <bool kSmallWeight, class T>
inline T lerp_fixed(T start, T end, T weight) noexcept {
  const T diff = end - start;
  return kSmallWeight ? fmadd(weight, diff, start) : fmadd(-diff, T(1) - weight, end);
}

template <class T>
inline T lerp(T start, T end, T weight) noexcept {
  return lerp_weight_is_small(weight) ? lerp_fixed<true>(start, end, weight) : lerp_fixed<false>(start, end, weight);
}

// x / c for a float x and a float c that is fixed across a loop (a bias correction), computed as x times
// 1/c in double and rounded once to float. That is the correctly rounded x / c for every x and c: the
// double product is within 2^-52 (relative) of x / c, while x / c never comes within 2^-50 of a point
// halfway between two floats (x - h c, for such a point h with 25 significant bits, is a nonzero multiple
// of the last bits of h and c together, however close h is), so both round to the same float. Special
// values (0, inf, NaN, c = 0 or inf) come out as the division's. cpp/tests/test_math.cpp checks it
// against the division on every significand.
inline float divide_by_inverse(float x, double inverse_of_c) noexcept {
  return static_cast<float>(static_cast<double>(x) * inverse_of_c);
}

// x / c for a divisor fixed across a loop, rounded as the division is. For float on x86-64 with AVX-512
// (or SSE2 only) it avoids the vector divide, the slowest instruction of the Adam family's loops: there,
// converting and multiplying measured ~20% faster per element; with AVX2 alone the divide measured faster,
// so those builds keep it. The results are the same bits either way.
template <class T>
class ConstDivisor {
 public:
  explicit ConstDivisor(T c) noexcept : c_(c) {}
  T divide(T x) const noexcept { return x / c_; }

 private:
  T c_;
};

#if defined(__x86_64__) && (defined(__AVX512F__) || !defined(__AVX__))
template <>
class ConstDivisor<float> {
 public:
  explicit ConstDivisor(float c) noexcept : inverse_(1.0 / static_cast<double>(c)) {}
  float divide(float x) const noexcept { return divide_by_inverse(x, inverse_); }

 private:
  double inverse_;
};
#endif

// torch.maximum: NaN in either operand propagates.
template <class T>
inline T nan_max(T a, T b) noexcept {
  return (a != a || a > b) ? a : b;
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
