#pragma once
// ASGD update rule (torch.optim.ASGD, single-tensor path of torch 2.13; Polyak & Juditsky 1992):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   p <- p * (1 - lambd * eta);  p <- p + (-eta) * g
//   ax <- ax + (p - ax) * mu     if mu != 1,   ax <- p otherwise
// then, per parameter, in Python floats rounded to float32 (torch keeps eta and mu as float32 tensors):
//   eta <- lr / (1 + lambd * lr * t) ** alpha;  mu <- 1 / max(1, t - t0)

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct ASGDHyper {
  double lr = 1e-2;
  double lambd = 1e-4;
  double alpha = 0.75;
  double t0 = 1e6;
  double weight_decay = 0.0;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

// eta for the step after step t (t counted after its increment). Where 1 + lambd * lr * t < 0 the power is
// complex in Python (torch then keeps its real part, with a warning); std::pow gives NaN.
inline float asgd_next_eta(const ASGDHyper& h, double t) {
  // Python evaluates lambd * lr * t left to right, each product rounded; mul_rounded keeps a contracting
  // compiler from fusing the last one into the add.
  const double base = 1.0 + mul_rounded(mul_rounded(h.lambd, h.lr), t);
  return static_cast<float>(h.lr / std::pow(base, h.alpha));
}

// mu for the step after step t: torch's 1 / max(1, t - t0) (NaN t - t0 gives 1, as Python's max).
inline float asgd_next_mu(const ASGDHyper& h, double t) {
  const double d = t - h.t0;
  return static_cast<float>(1.0 / (d > 1.0 ? d : 1.0));
}

template <class T>
struct ASGDScalars {
  T decay, neg_eta, mu, weight_decay;
  bool maximize, use_weight_decay, average;

  // eta_now, mu_now: the parameter's eta and mu before this step, which the update reads (torch's
  // eta.item() and mu.item()).
  ASGDScalars(const ASGDHyper& h, double eta_now, double mu_now)
      : decay(static_cast<T>(1.0 - mul_rounded(h.lambd, eta_now))),  // a Python float, then cast by mul_
        neg_eta(static_cast<T>(-eta_now)),
        mu(static_cast<T>(mu_now)),
        weight_decay(static_cast<T>(h.weight_decay)),
        maximize(h.maximize),
        use_weight_decay(h.weight_decay != 0.0),
        average(mu_now != 1.0) {}
};

namespace impl {

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kDecay, bool kAverage>
inline void asgd_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad, S* FASTOPTIM_RESTRICT ax,
                      M* FASTOPTIM_RESTRICT mirror, std::size_t n, const ASGDScalars<T>& s) noexcept {
  const T decay = s.decay, neg_eta = s.neg_eta, mu = s.mu, wd = s.weight_decay;
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    const T p0 = static_cast<T>(widen(param[i]));
    T g = kMaximize ? -grad_i : grad_i;
    if (kDecay) g = fmadd(p0, wd, g);
    const T p = fmadd(g, neg_eta, p0 * decay);  // mul_ rounds, add_(alpha=-eta) is one FMA
    param[i] = narrow_as<P>(p);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(p);
    if (kAverage) {
      const T a = static_cast<T>(widen(ax[i]));
      ax[i] = narrow_as<S>(a + mul_rounded(p - a, mu));  // sub, mul_, add_: each rounded
    } else {
      ax[i] = narrow_as<S>(p);
    }
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored.
template <class T, class P, class G, class S, class M = void>
inline void asgd_update_stored(P* param, const G* grad, S* ax, typename non_deduced<M>::type* mirror, std::size_t n,
                               const ASGDScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      with_flag(s.average, [&](auto avg) {
        impl::asgd_loop<T, P, G, S, M, decltype(mx)::value, decltype(wd)::value, decltype(avg)::value>(param, grad, ax,
                                                                                                       mirror, n, s);
      });
    });
  });
}

// Scalar reference kernel over [0, n).
template <class T>
inline void asgd_update_ref(T* param, const T* grad, T* ax, std::size_t n, const ASGDScalars<T>& s) noexcept {
  asgd_update_stored<T, T, T, T, void>(param, grad, ax, nullptr, n, s);
}

// One parameter's update with the storage types of asgd_update_stored and the eta and mu it had before this
// step, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void asgd_step_stored(P* param, const G* grad, S* ax, typename non_deduced<M>::type* mirror, std::size_t n,
                      const ASGDHyper& h, double eta_now, double mu_now, std::size_t grain = kDefaultGrain) {
  const ASGDScalars<T> s(h, eta_now, mu_now);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    asgd_update_stored<T, P, G, S, M>(param + b, grad + b, ax + b, mirror_b, e - b, s);
  });
}

// One parameter's update with the eta and mu it had before this step.
template <class T>
void asgd_step(T* param, const T* grad, T* ax, std::size_t n, const ASGDHyper& h, double eta_now, double mu_now,
               std::size_t grain = kDefaultGrain) {
  asgd_step_stored<T, T, T, T, void>(param, grad, ax, nullptr, n, h, eta_now, mu_now, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
