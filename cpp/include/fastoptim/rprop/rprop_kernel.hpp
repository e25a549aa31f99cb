#pragma once
// Rprop update rule (torch.optim.Rprop, single-tensor path of torch 2.13; Riedmiller & Braun 1993):
//   g <- maximize ? -g : g
//   f <- etaplus if g * prev > 0, etaminus if g * prev < 0, else 1     (the sign of the rounded product)
//   step_size <- clamp(step_size * f, step_size_min, step_size_max)
//   g <- 0 where f == etaminus                                         (the sign flipped: skip this step)
//   p <- p - sign(g) * step_size;  prev <- g

#include <cstddef>

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct RpropHyper {
  double lr = 1e-2;  // the initial step size (read only when a parameter's state is created)
  double etaminus = 0.5, etaplus = 1.2;
  double step_size_min = 1e-6, step_size_max = 50.0;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

template <class T>
struct RpropScalars {
  T etaminus, etaplus, step_size_min, step_size_max;
  bool maximize;

  // torch writes the etas into a T tensor and compares with them in T, and clamps with T bounds.
  explicit RpropScalars(const RpropHyper& h)
      : etaminus(static_cast<T>(h.etaminus)),
        etaplus(static_cast<T>(h.etaplus)),
        step_size_min(static_cast<T>(h.step_size_min)),
        step_size_max(static_cast<T>(h.step_size_max)),
        maximize(h.maximize) {}
};

namespace impl {

template <class T>
inline T sign_of(T x) noexcept {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));  // torch.sign: 0 for zeros and NaN
}

template <class T, bool kMaximize>
inline void rprop_loop(T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT grad, T* FASTOPTIM_RESTRICT prev,
                       T* FASTOPTIM_RESTRICT step_size, std::size_t n, const RpropScalars<T>& s) noexcept {
  const T etaminus = s.etaminus, etaplus = s.etaplus, lo = s.step_size_min, hi = s.step_size_max;
  for (std::size_t i = 0; i < n; ++i) {
    const T g = kMaximize ? -grad[i] : grad[i];
    // torch overwrites sign(g * prev) in place: > 0 by etaplus, then < 0 by etaminus, then == 0 by 1. A
    // product that underflows to zero (or is NaN) counts as 0, and an etaminus that rounds to 0 in T is
    // caught by the last replacement.
    const T product = g * prev[i];
    T factor = product > T(0) ? etaplus : (product < T(0) ? etaminus : T(0));
    if (factor == T(0)) factor = T(1);
    T ss = step_size[i] * factor;
    ss = ss < lo ? lo : ss;  // clamp_ as torch: std::min(std::max(ss, lo), hi)
    ss = hi < ss ? hi : ss;
    step_size[i] = ss;
    const T d = factor == etaminus ? T(0) : g;
    param[i] = fmadd(-sign_of(d), ss, param[i]);  // addcmul_(sign(d), step_size, value=-1)
    prev[i] = d;
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n).
template <class T>
inline void rprop_update_ref(T* param, const T* grad, T* prev, T* step_size, std::size_t n,
                             const RpropScalars<T>& s) noexcept {
  impl::with_flag(s.maximize, [&](auto mx) {
    impl::rprop_loop<T, decltype(mx)::value>(param, grad, prev, step_size, n, s);
  });
}

template <class T>
void rprop_step(T* param, const T* grad, T* prev, T* step_size, std::size_t n, const RpropHyper& h,
                std::size_t grain = kDefaultGrain) {
  const RpropScalars<T> s(h);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    rprop_update_ref(param + b, grad + b, prev + b, step_size + b, e - b, s);
  });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
