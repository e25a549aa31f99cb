#pragma once
// RMSprop update rule (torch.optim.RMSprop, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   v <- alpha * v + (1 - alpha) * g * g
//   centered: ga <- lerp(ga, g, 1 - alpha); avg <- sqrt(v - ga * ga) + eps    else avg <- sqrt(v) + eps
//   momentum > 0: buf <- momentum * buf + g / avg;  p <- p - lr * buf
//   otherwise:    p <- p + (-lr) * g / avg

#include <cmath>
#include <cstddef>

#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct RMSpropHyper {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
  bool maximize = false;
};

template <class T>
struct RMSpropScalars {
  T neg_lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
  bool centered, maximize, use_momentum, use_weight_decay;

  explicit RMSpropScalars(const RMSpropHyper& h)
      : neg_lr(static_cast<T>(-h.lr)),
        alpha(static_cast<T>(h.alpha)),
        one_minus_alpha(static_cast<T>(1.0 - h.alpha)),
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        momentum(static_cast<T>(h.momentum)),
        centered(h.centered),
        maximize(h.maximize),
        use_momentum(h.momentum > 0.0),
        use_weight_decay(h.weight_decay != 0.0) {}
};

// Scalar reference kernel over [0, n). `grad_avg` is used only when centered, `momentum_buffer` only
// when momentum > 0.
template <class T>
inline void rmsprop_update_ref(T* param, const T* grad, T* square_avg, T* grad_avg, T* momentum_buffer,
                               std::size_t n, const RMSpropScalars<T>& s) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    T g = s.maximize ? -grad[i] : grad[i];
    if (s.use_weight_decay) g = fmadd(param[i], s.weight_decay, g);
    T v = fmadd(s.one_minus_alpha * g, g, square_avg[i] * s.alpha);
    square_avg[i] = v;
    T avg;
    if (s.centered) {
      const T ga = lerp(grad_avg[i], g, s.one_minus_alpha);
      grad_avg[i] = ga;
      avg = std::sqrt(fmadd(-ga, ga, v));
    } else {
      avg = std::sqrt(v);
    }
    avg = avg + s.eps;
    if (s.use_momentum) {
      T buf = momentum_buffer[i] * s.momentum;
      buf = buf + T(1) * g / avg;
      momentum_buffer[i] = buf;
      param[i] = fmadd(buf, s.neg_lr, param[i]);
    } else {
      param[i] = param[i] + s.neg_lr * g / avg;
    }
  }
}

template <class T>
void rmsprop_step(T* param, const T* grad, T* square_avg, T* grad_avg, T* momentum_buffer, std::size_t n,
                  const RMSpropHyper& h, std::size_t grain = kDefaultGrain) {
  const RMSpropScalars<T> s(h);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    rmsprop_update_ref(param + b, grad + b, square_avg + b, grad_avg ? grad_avg + b : nullptr,
                       momentum_buffer ? momentum_buffer + b : nullptr, e - b, s);
  });
}

}  // namespace fastoptim
