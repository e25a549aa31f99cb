#pragma once
// Adadelta update rule (torch.optim.Adadelta, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   v <- rho * v + (1 - rho) * g * g
//   delta <- sqrt(u + eps) / sqrt(v + eps) * g
//   u <- rho * u + (1 - rho) * delta * delta
//   p <- p + (-lr) * delta

#include <cmath>
#include <cstddef>

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct AdadeltaHyper {
  double lr = 1.0;
  double rho = 0.9;
  double eps = 1e-6;
  double weight_decay = 0.0;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

template <class T>
struct AdadeltaScalars {
  T neg_lr, rho, one_minus_rho, eps, weight_decay;
  bool maximize, use_weight_decay;

  explicit AdadeltaScalars(const AdadeltaHyper& h)
      : neg_lr(static_cast<T>(-h.lr)),
        rho(static_cast<T>(h.rho)),
        one_minus_rho(static_cast<T>(1.0 - h.rho)),  // torch's `value=1 - rho`: a Python float, then cast
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        maximize(h.maximize),
        use_weight_decay(h.weight_decay != 0.0) {}
};

namespace impl {

template <class T, bool kMaximize, bool kDecay>
inline void adadelta_loop(T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT grad,
                          T* FASTOPTIM_RESTRICT square_avg, T* FASTOPTIM_RESTRICT acc_delta, std::size_t n,
                          const AdadeltaScalars<T>& s) noexcept {
  const T neg_lr = s.neg_lr, rho = s.rho, omr = s.one_minus_rho, eps = s.eps, wd = s.weight_decay;
  for (std::size_t i = 0; i < n; ++i) {
    T g = kMaximize ? -grad[i] : grad[i];
    if (kDecay) g = fmadd(param[i], wd, g);
    // mul_(rho) rounds; addcmul_ is one fused multiply-add of (value * g) * g.
    const T v = fmadd(omr * g, g, square_avg[i] * rho);
    square_avg[i] = v;
    const T std_ = std::sqrt(v + eps);
    const T delta = std::sqrt(acc_delta[i] + eps) / std_ * g;  // div_ then mul_, each rounded
    acc_delta[i] = fmadd(omr * delta, delta, acc_delta[i] * rho);
    param[i] = fmadd(delta, neg_lr, param[i]);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n).
template <class T>
inline void adadelta_update_ref(T* param, const T* grad, T* square_avg, T* acc_delta, std::size_t n,
                                const AdadeltaScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      impl::adadelta_loop<T, decltype(mx)::value, decltype(wd)::value>(param, grad, square_avg, acc_delta, n, s);
    });
  });
}

template <class T>
void adadelta_step(T* param, const T* grad, T* square_avg, T* acc_delta, std::size_t n, const AdadeltaHyper& h,
                   std::size_t grain = kDefaultGrain) {
  const AdadeltaScalars<T> s(h);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    adadelta_update_ref(param + b, grad + b, square_avg + b, acc_delta + b, e - b, s);
  });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
