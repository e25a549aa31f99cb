#pragma once
// RMSprop update rule (torch.optim.RMSprop, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   v <- alpha * v + (1 - alpha) * g * g
//   centered: ga <- lerp(ga, g, 1 - alpha); avg <- sqrt(v - ga * ga) + eps    else avg <- sqrt(v) + eps
//   momentum > 0: buf <- momentum * buf + g / avg;  p <- p - lr * buf
//   otherwise:    p <- p + (-lr) * g / avg

#include <cmath>
#include <cstddef>

#include "../core/config.hpp"
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

FASTOPTIM_ISA_BEGIN

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

namespace impl {

template <class T, bool kMaximize, bool kDecay, bool kCentered, bool kMomentum, bool kSmallWeight>
inline void rmsprop_loop(T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT grad,
                         T* FASTOPTIM_RESTRICT square_avg, T* FASTOPTIM_RESTRICT grad_avg,
                         T* FASTOPTIM_RESTRICT momentum_buffer, std::size_t n, const RMSpropScalars<T>& s) noexcept {
  const T neg_lr = s.neg_lr, alpha = s.alpha, oma = s.one_minus_alpha, eps = s.eps, wd = s.weight_decay,
          momentum = s.momentum;
  for (std::size_t i = 0; i < n; ++i) {
    T g = kMaximize ? -grad[i] : grad[i];
    if (kDecay) g = fmadd(param[i], wd, g);
    const T v = fmadd(oma * g, g, square_avg[i] * alpha);
    square_avg[i] = v;
    T avg;
    if (kCentered) {
      const T ga = lerp_fixed<kSmallWeight>(grad_avg[i], g, oma);
      grad_avg[i] = ga;
      avg = std::sqrt(fmadd(-ga, ga, v));
    } else {
      avg = std::sqrt(v);
    }
    avg = avg + eps;
    if (kMomentum) {
      const T buf = mul_rounded(momentum_buffer[i], momentum) + g / avg;
      momentum_buffer[i] = buf;
      param[i] = fmadd(buf, neg_lr, param[i]);
    } else {
      param[i] = param[i] + neg_lr * g / avg;
    }
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n). `grad_avg` is used only when centered, `momentum_buffer` only
// when momentum > 0.
template <class T>
inline void rmsprop_update_ref(T* param, const T* grad, T* square_avg, T* grad_avg, T* momentum_buffer,
                               std::size_t n, const RMSpropScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      with_flag(s.centered, [&](auto c) {
        with_flag(s.use_momentum, [&](auto mom) {
          with_flag(lerp_weight_is_small(s.one_minus_alpha), [&](auto small) {
            impl::rmsprop_loop<T, decltype(mx)::value, decltype(wd)::value, decltype(c)::value,
                                 decltype(mom)::value, decltype(small)::value>(param, grad, square_avg, grad_avg,
                                                                                momentum_buffer, n, s);
          });
        });
      });
    });
  });
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

FASTOPTIM_ISA_END
}  // namespace fastoptim
