#pragma once
// AdaBelief update rule (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
// Observed Gradients", Algorithm 2), in the operation order of the adabelief-pytorch reference (0.2.x),
// each operation rounded in the parameter's dtype. With t the parameter's step count:
//   g <- maximize ? -g : g
//   weight_decouple: p <- p * (1 - lr * wd)   (fixed_decay: p * (1 - wd))     otherwise: g <- g + wd * p
//   m <- beta1 * m + (1 - beta1) * g
//   s <- beta2 * s + (1 - beta2) * (g - m)^2 + eps           exp_avg_var (eps added in place, as the reference)
//   amsgrad: s_max <- max(s_max, s)
//   not rectify: p <- p - lr / (1 - beta1^t) * m / (sqrt(s or s_max) / sqrt(1 - beta2^t) + eps)
//   rectify (RAdam, Liu et al. 2020), rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t), rho_inf = 2 / (1 - beta2) - 1:
//     rho_t >= 5:            p <- p - lr * r_t / (1 - beta1^t) * m / (sqrt(s) + eps)
//                            r_t = sqrt((1 - beta2^t) (rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
//     else, degenerated_to_sgd: p <- p - lr / (1 - beta1^t) * m;    else no update
//   (with rectify the reference maintains s_max under amsgrad but does not use it.)

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct AdaBeliefHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-16;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool weight_decouple = true;
  bool fixed_decay = false;
  bool rectify = true;
  bool degenerated_to_sgd = true;
  bool maximize = false;
};

// How step t moves the parameter.
enum class AdaBeliefMode { adaptive, rectified, sgd, none };

FASTOPTIM_ISA_BEGIN

template <class T>
struct AdaBeliefScalars {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay_factor, bias_correction2_sqrt,
      neg_step_size;
  AdaBeliefMode mode;
  bool maximize, amsgrad, coupled_decay, decoupled_decay;

  // `step` is the step count after increment (1 on the first update). The rectification terms are the
  // reference's Python expressions, in its order.
  AdaBeliefScalars(const AdaBeliefHyper& h, double step)
      : beta1(static_cast<T>(h.beta1)),
        one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        beta2(static_cast<T>(h.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        decay_factor(static_cast<T>(h.fixed_decay ? 1.0 - h.weight_decay : 1.0 - mul_rounded(h.lr, h.weight_decay))),
        maximize(h.maximize),
        amsgrad(h.amsgrad),
        coupled_decay(!h.weight_decouple && h.weight_decay != 0.0),
        // The reference multiplies by the factor even when wd = 0; a product with 1 changes no bit.
        decoupled_decay(h.weight_decouple && h.weight_decay != 0.0) {
    const double bias_correction1 = 1.0 - std::pow(h.beta1, step);
    const double bias_correction2 = 1.0 - std::pow(h.beta2, step);
    bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
    if (!h.rectify) {
      mode = AdaBeliefMode::adaptive;
      neg_step_size = static_cast<T>(-(h.lr / bias_correction1));
      return;
    }
    const double beta2_t = std::pow(h.beta2, step);
    const double n_sma_max = 2 / (1 - h.beta2) - 1;
    const double n_sma = n_sma_max - 2 * step * beta2_t / (1 - beta2_t);
    double step_size = -1.0;
    if (n_sma >= 5) {
      step_size = std::sqrt((1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma * n_sma_max /
                            (n_sma_max - 2)) /
                  (1 - std::pow(h.beta1, step));
      mode = AdaBeliefMode::rectified;
    } else if (h.degenerated_to_sgd) {
      step_size = 1.0 / (1 - std::pow(h.beta1, step));
      mode = AdaBeliefMode::sgd;
    } else {
      mode = AdaBeliefMode::none;
    }
    neg_step_size = static_cast<T>(-step_size * h.lr);
  }
};

namespace impl {

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kAmsgrad, bool kCoupled, bool kDecoupled,
          AdaBeliefMode kMode>
inline void adabelief_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad,
                           S* FASTOPTIM_RESTRICT exp_avg, S* FASTOPTIM_RESTRICT exp_avg_var,
                           S* FASTOPTIM_RESTRICT max_exp_avg_var, M* FASTOPTIM_RESTRICT mirror, std::size_t n,
                           const AdaBeliefScalars<T>& s) noexcept {
  const T beta1 = s.beta1, omb1 = s.one_minus_beta1, beta2 = s.beta2, omb2 = s.one_minus_beta2, eps = s.eps,
          wd = s.weight_decay, decay = s.decay_factor, neg_step = s.neg_step_size;
  const ConstDivisor<T> bc2_sqrt(s.bias_correction2_sqrt);
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    T g = kMaximize ? -grad_i : grad_i;
    T p = static_cast<T>(widen(param[i]));
    if (kDecoupled) p = mul_rounded(p, decay);
    if (kCoupled) g = fmadd(p, wd, g);
    const T m = fmadd(g, omb1, static_cast<T>(widen(exp_avg[i])) * beta1);
    const T residual = g - m;
    const T var = fmadd(omb2 * residual, residual, static_cast<T>(widen(exp_avg_var[i])) * beta2) + eps;
    exp_avg[i] = narrow_as<S>(m);
    exp_avg_var[i] = narrow_as<S>(var);
    T var_used = var;
    if (kAmsgrad) {
      var_used = nan_max(static_cast<T>(widen(max_exp_avg_var[i])), var);
      max_exp_avg_var[i] = narrow_as<S>(var_used);
    }
    if (kMode == AdaBeliefMode::adaptive) p = p + neg_step * m / (bc2_sqrt.divide(std::sqrt(var_used)) + eps);
    if (kMode == AdaBeliefMode::rectified) p = p + neg_step * m / (std::sqrt(var) + eps);
    if (kMode == AdaBeliefMode::sgd) p = fmadd(m, neg_step, p);
    param[i] = narrow_as<P>(p);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(p);
  }
}

template <class T, class P, class G, class S, class M, bool kMaximize, bool kAmsgrad, bool kCoupled, bool kDecoupled>
inline void adabelief_mode(P* param, const G* grad, S* exp_avg, S* exp_avg_var, S* max_exp_avg_var, M* mirror,
                           std::size_t n, const AdaBeliefScalars<T>& s) noexcept {
  switch (s.mode) {
    case AdaBeliefMode::adaptive:
      return adabelief_loop<T, P, G, S, M, kMaximize, kAmsgrad, kCoupled, kDecoupled, AdaBeliefMode::adaptive>(
          param, grad, exp_avg, exp_avg_var, max_exp_avg_var, mirror, n, s);
    case AdaBeliefMode::rectified:
      return adabelief_loop<T, P, G, S, M, kMaximize, kAmsgrad, kCoupled, kDecoupled, AdaBeliefMode::rectified>(
          param, grad, exp_avg, exp_avg_var, max_exp_avg_var, mirror, n, s);
    case AdaBeliefMode::sgd:
      return adabelief_loop<T, P, G, S, M, kMaximize, kAmsgrad, kCoupled, kDecoupled, AdaBeliefMode::sgd>(
          param, grad, exp_avg, exp_avg_var, max_exp_avg_var, mirror, n, s);
    case AdaBeliefMode::none:
      return adabelief_loop<T, P, G, S, M, kMaximize, kAmsgrad, kCoupled, kDecoupled, AdaBeliefMode::none>(
          param, grad, exp_avg, exp_avg_var, max_exp_avg_var, mirror, n, s);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored. `max_exp_avg_var` is used
// only when amsgrad is set.
template <class T, class P, class G, class S, class M = void>
inline void adabelief_update_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_var, S* max_exp_avg_var,
                                    typename non_deduced<M>::type* mirror, std::size_t n,
                                    const AdaBeliefScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.amsgrad, [&](auto ams) {
      with_flag(s.coupled_decay, [&](auto cd) {
        with_flag(s.decoupled_decay, [&](auto dd) {
          impl::adabelief_mode<T, P, G, S, M, decltype(mx)::value, decltype(ams)::value, decltype(cd)::value,
                               decltype(dd)::value>(param, grad, exp_avg, exp_avg_var, max_exp_avg_var, mirror, n, s);
        });
      });
    });
  });
}

// Scalar reference kernel over [0, n). `max_exp_avg_var` is used only when amsgrad is set.
template <class T>
inline void adabelief_update_ref(T* param, const T* grad, T* exp_avg, T* exp_avg_var, T* max_exp_avg_var,
                                 std::size_t n, const AdaBeliefScalars<T>& s) noexcept {
  adabelief_update_stored<T, T, T, T, void>(param, grad, exp_avg, exp_avg_var, max_exp_avg_var, nullptr, n, s);
}

// One step over [0, n) with the storage types of adabelief_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void adabelief_step_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_var, S* max_exp_avg_var,
                           typename non_deduced<M>::type* mirror, std::size_t n, const AdaBeliefHyper& h, double step,
                           std::size_t grain = kDefaultGrain) {
  const AdaBeliefScalars<T> s(h, step);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    adabelief_update_stored<T, P, G, S, M>(param + b, grad + b, exp_avg + b, exp_avg_var + b,
                                           offset_or_null(max_exp_avg_var, b), mirror_b, e - b, s);
  });
}

template <class T>
void adabelief_step(T* param, const T* grad, T* exp_avg, T* exp_avg_var, T* max_exp_avg_var, std::size_t n,
                    const AdaBeliefHyper& h, double step, std::size_t grain = kDefaultGrain) {
  adabelief_step_stored<T, T, T, T, void>(param, grad, exp_avg, exp_avg_var, max_exp_avg_var, nullptr, n, h, step,
                                          grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
