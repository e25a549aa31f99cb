#pragma once
// ASGD update rule (torch.optim.ASGD, single-tensor path of torch 2.13; Polyak & Juditsky 1992):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   p <- p * (1 - lambd * eta);  p <- p + (-eta) * g
//   ax <- ax + (p - ax) * mu     if mu != 1,   ax <- p otherwise
// then, per parameter, in Python floats rounded to float32 (torch keeps eta and mu as float32 tensors):
//   eta <- lr / (1 + lambd * lr * t) ** alpha;  mu <- 1 / max(1, t - t0)

#include <cmath>
#include <cstddef>

#include "../core/config.hpp"
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

template <class T, bool kMaximize, bool kDecay, bool kAverage>
inline void asgd_loop(T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT grad, T* FASTOPTIM_RESTRICT ax,
                      std::size_t n, const ASGDScalars<T>& s) noexcept {
  const T decay = s.decay, neg_eta = s.neg_eta, mu = s.mu, wd = s.weight_decay;
  for (std::size_t i = 0; i < n; ++i) {
    T g = kMaximize ? -grad[i] : grad[i];
    if (kDecay) g = fmadd(param[i], wd, g);
    const T p = fmadd(g, neg_eta, param[i] * decay);  // mul_ rounds, add_(alpha=-eta) is one FMA
    param[i] = p;
    ax[i] = kAverage ? ax[i] + mul_rounded(p - ax[i], mu) : p;  // sub, mul_, add_: each rounded
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n).
template <class T>
inline void asgd_update_ref(T* param, const T* grad, T* ax, std::size_t n, const ASGDScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      with_flag(s.average, [&](auto avg) {
        impl::asgd_loop<T, decltype(mx)::value, decltype(wd)::value, decltype(avg)::value>(param, grad, ax, n, s);
      });
    });
  });
}

// One parameter's update with the eta and mu it had before this step.
template <class T>
void asgd_step(T* param, const T* grad, T* ax, std::size_t n, const ASGDHyper& h, double eta_now, double mu_now,
               std::size_t grain = kDefaultGrain) {
  const ASGDScalars<T> s(h, eta_now, mu_now);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) { asgd_update_ref(param + b, grad + b, ax + b, e - b, s); });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
