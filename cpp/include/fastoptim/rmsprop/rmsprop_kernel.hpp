#pragma once
// RMSprop update rule (torch.optim.RMSprop, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   v <- alpha * v + (1 - alpha) * g * g
//   centered: ga <- lerp(ga, g, 1 - alpha); avg <- sqrt(v - ga * ga) + eps    else avg <- sqrt(v) + eps
//   momentum > 0: buf <- momentum * buf + g / avg;  p <- p - lr * buf
//   otherwise:    p <- p + (-lr) * g / avg

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
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

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kDecay, bool kCentered, bool kMomentum,
          bool kSmallWeight>
inline void rmsprop_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad,
                         S* FASTOPTIM_RESTRICT square_avg, S* FASTOPTIM_RESTRICT grad_avg,
                         S* FASTOPTIM_RESTRICT momentum_buffer, M* FASTOPTIM_RESTRICT mirror, std::size_t n,
                         const RMSpropScalars<T>& s) noexcept {
  const T neg_lr = s.neg_lr, alpha = s.alpha, oma = s.one_minus_alpha, eps = s.eps, wd = s.weight_decay,
          momentum = s.momentum;
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    const T p = static_cast<T>(widen(param[i]));
    T g = kMaximize ? -grad_i : grad_i;
    if (kDecay) g = fmadd(p, wd, g);
    const T v = fmadd(oma * g, g, static_cast<T>(widen(square_avg[i])) * alpha);
    square_avg[i] = narrow_as<S>(v);
    T avg;
    if (kCentered) {
      const T ga = lerp_fixed<kSmallWeight>(static_cast<T>(widen(grad_avg[i])), g, oma);
      grad_avg[i] = narrow_as<S>(ga);
      avg = std::sqrt(fmadd(-ga, ga, v));
    } else {
      avg = std::sqrt(v);
    }
    avg = avg + eps;
    T updated;
    if (kMomentum) {
      const T buf = mul_rounded(static_cast<T>(widen(momentum_buffer[i])), momentum) + g / avg;
      momentum_buffer[i] = narrow_as<S>(buf);
      updated = fmadd(buf, neg_lr, p);
    } else {
      updated = p + neg_lr * g / avg;
    }
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored. `grad_avg` is used only
// when centered, `momentum_buffer` only when momentum > 0.
template <class T, class P, class G, class S, class M = void>
inline void rmsprop_update_stored(P* param, const G* grad, S* square_avg, S* grad_avg, S* momentum_buffer,
                                  typename non_deduced<M>::type* mirror, std::size_t n,
                                  const RMSpropScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      with_flag(s.centered, [&](auto c) {
        with_flag(s.use_momentum, [&](auto mom) {
          with_flag(lerp_weight_is_small(s.one_minus_alpha), [&](auto small) {
            impl::rmsprop_loop<T, P, G, S, M, decltype(mx)::value, decltype(wd)::value, decltype(c)::value,
                               decltype(mom)::value, decltype(small)::value>(param, grad, square_avg, grad_avg,
                                                                              momentum_buffer, mirror, n, s);
          });
        });
      });
    });
  });
}

// Scalar reference kernel over [0, n). `grad_avg` is used only when centered, `momentum_buffer` only
// when momentum > 0.
template <class T>
inline void rmsprop_update_ref(T* param, const T* grad, T* square_avg, T* grad_avg, T* momentum_buffer,
                               std::size_t n, const RMSpropScalars<T>& s) noexcept {
  rmsprop_update_stored<T, T, T, T, void>(param, grad, square_avg, grad_avg, momentum_buffer, nullptr, n, s);
}

// One step over [0, n) with the storage types of rmsprop_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void rmsprop_step_stored(P* param, const G* grad, S* square_avg, S* grad_avg, S* momentum_buffer,
                         typename non_deduced<M>::type* mirror, std::size_t n, const RMSpropHyper& h,
                         std::size_t grain = kDefaultGrain) {
  const RMSpropScalars<T> s(h);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    rmsprop_update_stored<T, P, G, S, M>(param + b, grad + b, square_avg + b, offset_or_null(grad_avg, b),
                                         offset_or_null(momentum_buffer, b), mirror_b, e - b, s);
  });
}

template <class T>
void rmsprop_step(T* param, const T* grad, T* square_avg, T* grad_avg, T* momentum_buffer, std::size_t n,
                  const RMSpropHyper& h, std::size_t grain = kDefaultGrain) {
  rmsprop_step_stored<T, T, T, T, void>(param, grad, square_avg, grad_avg, momentum_buffer, nullptr, n, h, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
