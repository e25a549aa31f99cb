#pragma once
// RAdam update rule (torch.optim.RAdam, single-tensor path of torch 2.13; Liu et al. 2020):
//   g <- maximize ? -g : g
//   decoupled: p <- p * (1 - lr * wd)      coupled: g <- g + wd * p
//   m <- lerp(m, g, 1 - beta1);  v <- beta2 * v + (1 - beta2) * g * g
//   rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
//   rho_t > 5:  p <- p - ((m / bc1) * lr) * ((1 / (sqrt(v) + eps)) * sqrt(bc2)) * rect
//               rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
//   otherwise:  p <- p - (m / bc1) * lr                    (plain momentum SGD while the variance is unreliable)
// bc1 = 1 - beta1^t, bc2 = 1 - beta2^t, rho and rect in double, as torch's Python floats. Each product is
// one of torch's tensor ops and rounds on its own (`sqrt(bc2) / x` is torch's reciprocal-then-multiply).

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct RAdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

template <class T>
struct RAdamScalars {
  T one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay_factor, bias_correction1, lr,
      bias_correction2_sqrt, rect;
  bool maximize, coupled_decay, decoupled_decay, rectify;

  // `step` is the step count after increment (1 on the first update).
  RAdamScalars(const RAdamHyper& h, double step)
      : one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        beta2(static_cast<T>(h.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        decay_factor(static_cast<T>(1.0 - mul_rounded(h.lr, h.weight_decay))),
        lr(static_cast<T>(h.lr)),
        rect(T(1)),
        maximize(h.maximize),
        coupled_decay(h.weight_decay != 0.0 && !h.decoupled_weight_decay),
        decoupled_decay(h.weight_decay != 0.0 && h.decoupled_weight_decay) {
    const double bc1 = 1.0 - std::pow(h.beta1, step);
    const double bc2 = 1.0 - std::pow(h.beta2, step);
    bias_correction1 = static_cast<T>(bc1);
    bias_correction2_sqrt = static_cast<T>(std::pow(bc2, 0.5));
    const double rho_inf = 2.0 / (1.0 - h.beta2) - 1.0;
    const double rho_t = rho_inf - 2.0 * step * std::pow(h.beta2, step) / bc2;
    rectify = rho_t > 5.0;
    if (rectify)
      rect = static_cast<T>(
          std::pow((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t), 0.5));
  }
};

namespace impl {

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kCoupled, bool kDecoupled,
          bool kSmallWeight, bool kRectify>
inline void radam_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad, S* FASTOPTIM_RESTRICT exp_avg,
                       S* FASTOPTIM_RESTRICT exp_avg_sq, M* FASTOPTIM_RESTRICT mirror, std::size_t n,
                       const RAdamScalars<T>& s) noexcept {
  const T w = s.one_minus_beta1, beta2 = s.beta2, omb2 = s.one_minus_beta2, eps = s.eps, wd = s.weight_decay,
          decay = s.decay_factor, lr = s.lr, bc2_sqrt = s.bias_correction2_sqrt, rect = s.rect;
  const ConstDivisor<T> bc1(s.bias_correction1);
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    T g = kMaximize ? -grad_i : grad_i;
    T p = static_cast<T>(widen(param[i]));
    if (kDecoupled) p = mul_rounded(p, decay);  // its own tensor op in torch: never fused into the subtraction
    if (kCoupled) g = fmadd(p, wd, g);
    const T m = lerp_fixed<kSmallWeight>(static_cast<T>(widen(exp_avg[i])), g, w);
    const T v = fmadd(omb2 * g, g, static_cast<T>(widen(exp_avg_sq[i])) * beta2);
    exp_avg[i] = narrow_as<S>(m);
    exp_avg_sq[i] = narrow_as<S>(v);
    const T step_ = mul_rounded(bc1.divide(m), lr);
    T updated;
    if (kRectify) {
      const T adaptive_lr = (T(1) / (std::sqrt(v) + eps)) * bc2_sqrt;
      updated = p - mul_rounded(step_ * adaptive_lr, rect);
    } else {
      updated = p - step_;
    }
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored.
template <class T, class P, class G, class S, class M = void>
inline void radam_update_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_sq,
                                typename non_deduced<M>::type* mirror, std::size_t n,
                                const RAdamScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.coupled_decay, [&](auto cd) {
      with_flag(s.decoupled_decay, [&](auto dd) {
        with_flag(lerp_weight_is_small(s.one_minus_beta1), [&](auto small) {
          with_flag(s.rectify, [&](auto rect) {
            impl::radam_loop<T, P, G, S, M, decltype(mx)::value, decltype(cd)::value, decltype(dd)::value,
                             decltype(small)::value, decltype(rect)::value>(param, grad, exp_avg, exp_avg_sq, mirror,
                                                                            n, s);
          });
        });
      });
    });
  });
}

// Scalar reference kernel over [0, n).
template <class T>
inline void radam_update_ref(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, std::size_t n,
                             const RAdamScalars<T>& s) noexcept {
  radam_update_stored<T, T, T, T, void>(param, grad, exp_avg, exp_avg_sq, nullptr, n, s);
}

// One step over [0, n) with the storage types of radam_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void radam_step_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_sq, typename non_deduced<M>::type* mirror,
                       std::size_t n, const RAdamHyper& h, double step, std::size_t grain = kDefaultGrain) {
  const RAdamScalars<T> s(h, step);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    radam_update_stored<T, P, G, S, M>(param + b, grad + b, exp_avg + b, exp_avg_sq + b, mirror_b, e - b, s);
  });
}

template <class T>
void radam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, std::size_t n, const RAdamHyper& h, double step,
                std::size_t grain = kDefaultGrain) {
  radam_step_stored<T, T, T, T, void>(param, grad, exp_avg, exp_avg_sq, nullptr, n, h, step, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
