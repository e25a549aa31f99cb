#pragma once
// Adan update rule (Xie et al. 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
// Deep Models", Algorithm 1), in the operation order of the official implementation's single-tensor path
// (sail-sg/Adan, adan.py), each operation rounded in the parameter's dtype. With t the group's step count:
//   g <- maximize ? -g : g
//   d <- g - g_prev                           (0 on the group's first step: g_prev := g)
//   m <- beta1 * m + (1 - beta1) * g          exp_avg
//   a <- beta2 * a + (1 - beta2) * d          exp_avg_diff
//   n <- beta3 * n + (1 - beta3) * (g + beta2 * d)^2    exp_avg_sq
//   denom <- sqrt(n) / sqrt(1 - beta3^t) + eps
//   p <- p - lr / (1 - beta1^t) * m / denom - lr * beta2 / (1 - beta2^t) * a / denom
//   p <- p / (1 + lr * wd)                    (proximal decay; no_prox: p * (1 - lr * wd) first instead)
// The state keeps neg_pre_grad = -g for the next step, as the official implementation does.

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct AdanHyper {
  double lr = 1e-3;
  double beta1 = 0.98;
  double beta2 = 0.92;
  double beta3 = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool no_prox = false;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

template <class T>
struct AdanScalars {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, beta3, one_minus_beta3, eps, bias_correction3_sqrt, neg_step_size,
      neg_step_size_diff, decay_factor, decay_divisor;
  bool maximize, no_prox, use_weight_decay;

  // `step` is the group's step count after increment (1 on the first update).
  AdanScalars(const AdanHyper& h, double step)
      : beta1(static_cast<T>(h.beta1)),
        one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        beta2(static_cast<T>(h.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        beta3(static_cast<T>(h.beta3)),
        one_minus_beta3(static_cast<T>(1.0 - h.beta3)),
        eps(static_cast<T>(h.eps)),
        decay_factor(static_cast<T>(1.0 - mul_rounded(h.lr, h.weight_decay))),
        decay_divisor(static_cast<T>(1.0 + mul_rounded(h.lr, h.weight_decay))),
        maximize(h.maximize),
        no_prox(h.no_prox),
        // Multiplying or dividing by exactly 1 changes no bit: skip it when wd = 0.
        use_weight_decay(h.weight_decay != 0.0) {
    const double bias_correction1 = 1.0 - std::pow(h.beta1, step);
    const double bias_correction2 = 1.0 - std::pow(h.beta2, step);
    const double bias_correction3 = 1.0 - std::pow(h.beta3, step);
    bias_correction3_sqrt = static_cast<T>(std::sqrt(bias_correction3));
    neg_step_size = static_cast<T>(-(h.lr / bias_correction1));
    neg_step_size_diff = static_cast<T>(-(h.lr * h.beta2 / bias_correction2));
  }
};

namespace impl {

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kFirst, bool kDecay, bool kNoProx>
inline void adan_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad, S* FASTOPTIM_RESTRICT exp_avg,
                      S* FASTOPTIM_RESTRICT exp_avg_sq, S* FASTOPTIM_RESTRICT exp_avg_diff,
                      S* FASTOPTIM_RESTRICT neg_pre_grad, M* FASTOPTIM_RESTRICT mirror, std::size_t n,
                      const AdanScalars<T>& s) noexcept {
  const T beta1 = s.beta1, omb1 = s.one_minus_beta1, beta2 = s.beta2, omb2 = s.one_minus_beta2, beta3 = s.beta3,
          omb3 = s.one_minus_beta3, eps = s.eps, neg_step = s.neg_step_size,
          neg_step_diff = s.neg_step_size_diff, decay = s.decay_factor, divisor = s.decay_divisor;
  const ConstDivisor<T> bc3_sqrt(s.bias_correction3_sqrt);
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    const T g = kMaximize ? -grad_i : grad_i;
    // On the first step the official implementation sets neg_pre_grad = -g, so the difference is 0.
    const T diff = (kFirst ? -g : static_cast<T>(widen(neg_pre_grad[i]))) + g;
    const T m = fmadd(g, omb1, static_cast<T>(widen(exp_avg[i])) * beta1);
    const T a = fmadd(diff, omb2, static_cast<T>(widen(exp_avg_diff[i])) * beta2);
    const T x = mul_rounded(diff, beta2) + g;  // g + beta2 * d, the product rounded first (mul_, then add_)
    const T v = fmadd(omb3 * x, x, static_cast<T>(widen(exp_avg_sq[i])) * beta3);
    exp_avg[i] = narrow_as<S>(m);
    exp_avg_diff[i] = narrow_as<S>(a);
    exp_avg_sq[i] = narrow_as<S>(v);
    const T denom = bc3_sqrt.divide(std::sqrt(v)) + eps;
    T p = static_cast<T>(widen(param[i]));
    if (kDecay && kNoProx) p = mul_rounded(p, decay);
    p = p + neg_step * m / denom;
    p = p + neg_step_diff * a / denom;
    if (kDecay && !kNoProx) p = p / divisor;
    param[i] = narrow_as<P>(p);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(p);
    neg_pre_grad[i] = narrow_as<S>(T(0) - g);  // zero_().add_(grad, alpha=-1): +0 for a zero gradient
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored. `first`: the group's first
// step (neg_pre_grad is only written).
template <class T, class P, class G, class S, class M = void>
inline void adan_update_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_sq, S* exp_avg_diff, S* neg_pre_grad,
                               typename non_deduced<M>::type* mirror, std::size_t n, const AdanScalars<T>& s,
                               bool first) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(first, [&](auto f) {
      with_flag(s.use_weight_decay, [&](auto wd) {
        with_flag(s.no_prox, [&](auto np) {
          impl::adan_loop<T, P, G, S, M, decltype(mx)::value, decltype(f)::value, decltype(wd)::value,
                          decltype(np)::value>(param, grad, exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad, mirror,
                                               n, s);
        });
      });
    });
  });
}

// Scalar reference kernel over [0, n). `first`: the group's first step (neg_pre_grad is only written).
template <class T>
inline void adan_update_ref(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* exp_avg_diff, T* neg_pre_grad,
                            std::size_t n, const AdanScalars<T>& s, bool first) noexcept {
  adan_update_stored<T, T, T, T, void>(param, grad, exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad, nullptr, n, s,
                                       first);
}

// One step over [0, n) with the storage types of adan_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void adan_step_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_sq, S* exp_avg_diff, S* neg_pre_grad,
                      typename non_deduced<M>::type* mirror, std::size_t n, const AdanHyper& h, double step,
                      bool first, std::size_t grain = kDefaultGrain) {
  const AdanScalars<T> s(h, step);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    adan_update_stored<T, P, G, S, M>(param + b, grad + b, exp_avg + b, exp_avg_sq + b, exp_avg_diff + b,
                                      neg_pre_grad + b, mirror_b, e - b, s, first);
  });
}

template <class T>
void adan_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* exp_avg_diff, T* neg_pre_grad, std::size_t n,
               const AdanHyper& h, double step, bool first, std::size_t grain = kDefaultGrain) {
  adan_step_stored<T, T, T, T, void>(param, grad, exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad, nullptr, n, h,
                                     step, first, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
