#pragma once
// Element helpers shared by the update rules, written to round exactly as torch's CPU kernels do.

namespace fastoptim {

// torch.lerp: exact at both ends, choosing the formulation by the size of the weight.
template <class T>
inline T lerp(T start, T end, T weight) noexcept {
  const T diff = end - start;
  return (weight < T(0.5) && weight > T(-0.5)) ? start + weight * diff : end - diff * (T(1) - weight);
}

// torch.maximum: NaN in either operand propagates.
template <class T>
inline T nan_max(T a, T b) noexcept {
  return (a != a || a > b) ? a : b;
}

}  // namespace fastoptim
