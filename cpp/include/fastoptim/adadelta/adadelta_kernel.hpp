#pragma once
// Adadelta update rule (torch.optim.Adadelta, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   v <- rho * v + (1 - rho) * g * g
//   delta <- sqrt(u + eps) / sqrt(v + eps) * g
//   u <- rho * u + (1 - rho) * delta * delta
//   p <- p + (-lr) * delta

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
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

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kDecay>
inline void adadelta_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad,
                          S* FASTOPTIM_RESTRICT square_avg, S* FASTOPTIM_RESTRICT acc_delta,
                          M* FASTOPTIM_RESTRICT mirror, std::size_t n, const AdadeltaScalars<T>& s) noexcept {
  const T neg_lr = s.neg_lr, rho = s.rho, omr = s.one_minus_rho, eps = s.eps, wd = s.weight_decay;
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    const T p = static_cast<T>(widen(param[i]));
    T g = kMaximize ? -grad_i : grad_i;
    if (kDecay) g = fmadd(p, wd, g);
    // mul_(rho) rounds; addcmul_ is one fused multiply-add of (value * g) * g.
    const T v = fmadd(omr * g, g, static_cast<T>(widen(square_avg[i])) * rho);
    square_avg[i] = narrow_as<S>(v);
    const T std_ = std::sqrt(v + eps);
    const T acc = static_cast<T>(widen(acc_delta[i]));
    const T delta = std::sqrt(acc + eps) / std_ * g;  // div_ then mul_, each rounded
    acc_delta[i] = narrow_as<S>(fmadd(omr * delta, delta, acc * rho));
    const T updated = fmadd(delta, neg_lr, p);
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored.
template <class T, class P, class G, class S, class M = void>
inline void adadelta_update_stored(P* param, const G* grad, S* square_avg, S* acc_delta,
                                   typename non_deduced<M>::type* mirror, std::size_t n,
                                   const AdadeltaScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      impl::adadelta_loop<T, P, G, S, M, decltype(mx)::value, decltype(wd)::value>(param, grad, square_avg, acc_delta,
                                                                                   mirror, n, s);
    });
  });
}

// Scalar reference kernel over [0, n).
template <class T>
inline void adadelta_update_ref(T* param, const T* grad, T* square_avg, T* acc_delta, std::size_t n,
                                const AdadeltaScalars<T>& s) noexcept {
  adadelta_update_stored<T, T, T, T, void>(param, grad, square_avg, acc_delta, nullptr, n, s);
}

// One step over [0, n) with the storage types of adadelta_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void adadelta_step_stored(P* param, const G* grad, S* square_avg, S* acc_delta, typename non_deduced<M>::type* mirror,
                          std::size_t n, const AdadeltaHyper& h, std::size_t grain = kDefaultGrain) {
  const AdadeltaScalars<T> s(h);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    adadelta_update_stored<T, P, G, S, M>(param + b, grad + b, square_avg + b, acc_delta + b, mirror_b, e - b, s);
  });
}

template <class T>
void adadelta_step(T* param, const T* grad, T* square_avg, T* acc_delta, std::size_t n, const AdadeltaHyper& h,
                   std::size_t grain = kDefaultGrain) {
  adadelta_step_stored<T, T, T, T, void>(param, grad, square_avg, acc_delta, nullptr, n, h, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
