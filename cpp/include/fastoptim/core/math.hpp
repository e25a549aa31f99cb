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

// torch.maximum: NaN in either operand propagates.
template <class T>
inline T nan_max(T a, T b) noexcept {
  return (a != a || a > b) ? a : b;
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
