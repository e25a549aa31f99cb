#pragma once
// Adam / AdamW update rule (torch.optim.Adam, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g
//   decoupled: p <- p * (1 - lr * wd)      coupled: g <- g + wd * p
//   m <- lerp(m, g, 1 - beta1);  v <- beta2 * v + (1 - beta2) * g * g;  vmax <- max(vmax, v) (amsgrad)
//   p <- p + (-lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
// Bias corrections bc1 = 1 - beta1^t and bc2 = 1 - beta2^t are computed in double, as torch does.

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct AdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
  bool decoupled_weight_decay = false;
};

template <class T>
struct AdamScalars {
  T one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay_factor, neg_step_size, bias_correction2_sqrt;
  bool amsgrad, maximize, coupled_decay, decoupled_decay;

  // `step` is the step count after increment (1 on the first update).
  AdamScalars(const AdamHyper& h, double step)
      : one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        beta2(static_cast<T>(h.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        decay_factor(static_cast<T>(1.0 - h.lr * h.weight_decay)),
        amsgrad(h.amsgrad),
        maximize(h.maximize),
        coupled_decay(h.weight_decay != 0.0 && !h.decoupled_weight_decay),
        decoupled_decay(h.weight_decay != 0.0 && h.decoupled_weight_decay) {
    const double bias_correction1 = 1.0 - std::pow(h.beta1, step);
    const double bias_correction2 = 1.0 - std::pow(h.beta2, step);
    neg_step_size = static_cast<T>(-(h.lr / bias_correction1));
    bias_correction2_sqrt = static_cast<T>(std::pow(bias_correction2, 0.5));
  }
};

// Scalar reference kernel over [0, n). `max_exp_avg_sq` is used only when amsgrad is set.
template <class T>
inline void adam_update_ref(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, std::size_t n,
                            const AdamScalars<T>& s) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    T g = s.maximize ? -grad[i] : grad[i];
    T p = param[i];
    if (s.decoupled_decay) p = p * s.decay_factor;
    if (s.coupled_decay) g = fmadd(p, s.weight_decay, g);
    const T m = lerp(exp_avg[i], g, s.one_minus_beta1);
    T v = fmadd(s.one_minus_beta2 * g, g, exp_avg_sq[i] * s.beta2);
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    if (s.amsgrad) {
      v = nan_max(max_exp_avg_sq[i], v);
      max_exp_avg_sq[i] = v;
    }
    const T denom = std::sqrt(v) / s.bias_correction2_sqrt + s.eps;
    param[i] = p + s.neg_step_size * m / denom;
  }
}

template <class T>
void adam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, std::size_t n,
               const AdamHyper& h, double step, std::size_t grain = kDefaultGrain) {
  const AdamScalars<T> s(h, step);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    adam_update_ref(param + b, grad + b, exp_avg + b, exp_avg_sq + b, max_exp_avg_sq ? max_exp_avg_sq + b : nullptr,
                    e - b, s);
  });
}

}  // namespace fastoptim
