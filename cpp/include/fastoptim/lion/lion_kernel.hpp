#pragma once
// Lion update rule (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2), in the
// operation order of the lion-pytorch reference, each operation rounded in the parameter's dtype:
//   g <- maximize ? -g : g
//   p <- p * (1 - lr * wd)                          (decoupled weight decay)
//   c <- beta1 * m + (1 - beta1) * g;   p <- p - lr * sign(c)
//   m <- beta2 * m + (1 - beta2) * g

#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct LionHyper {
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.99;
  double weight_decay = 0.0;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

template <class T>
struct LionScalars {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, decay_factor, neg_lr;
  bool maximize, use_weight_decay;

  explicit LionScalars(const LionHyper& h)
      : beta1(static_cast<T>(h.beta1)),
        one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        beta2(static_cast<T>(h.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        decay_factor(static_cast<T>(1.0 - mul_rounded(h.lr, h.weight_decay))),
        neg_lr(static_cast<T>(-h.lr)),
        maximize(h.maximize),
        // The reference multiplies by 1 - lr * wd even when wd = 0; skipping a product with 1 changes no bit.
        use_weight_decay(h.weight_decay != 0.0) {}
};

// torch.sgn for reals: -1, +1, zeros kept (so p does not move) and NaN propagated.
template <class T>
inline T sign_of(T c) noexcept {
  return c > T(0) ? T(1) : (c < T(0) ? T(-1) : c);
}

namespace impl {

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic is T's.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kDecay>
inline void lion_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad, S* FASTOPTIM_RESTRICT exp_avg,
                      M* FASTOPTIM_RESTRICT mirror, std::size_t n, const LionScalars<T>& s) noexcept {
  const T beta1 = s.beta1, omb1 = s.one_minus_beta1, beta2 = s.beta2, omb2 = s.one_minus_beta2,
          decay = s.decay_factor, neg_lr = s.neg_lr;
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    const T g = kMaximize ? -grad_i : grad_i;
    const T m = static_cast<T>(widen(exp_avg[i]));
    T p = static_cast<T>(widen(param[i]));
    if (kDecay) p = mul_rounded(p, decay);
    const T c = fmadd(g, omb1, m * beta1);
    const T updated = fmadd(sign_of(c), neg_lr, p);
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
    exp_avg[i] = narrow_as<S>(fmadd(g, omb2, m * beta2));
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored.
template <class T, class P, class G, class S, class M = void>
inline void lion_update_stored(P* param, const G* grad, S* exp_avg, typename non_deduced<M>::type* mirror,
                               std::size_t n, const LionScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      impl::lion_loop<T, P, G, S, M, decltype(mx)::value, decltype(wd)::value>(param, grad, exp_avg, mirror, n, s);
    });
  });
}

// Scalar reference kernel over [0, n).
template <class T>
inline void lion_update_ref(T* param, const T* grad, T* exp_avg, std::size_t n, const LionScalars<T>& s) noexcept {
  lion_update_stored<T, T, T, T, void>(param, grad, exp_avg, nullptr, n, s);
}

// One step over [0, n) with the storage types of lion_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void lion_step_stored(P* param, const G* grad, S* exp_avg, typename non_deduced<M>::type* mirror, std::size_t n,
                      const LionHyper& h, std::size_t grain = kDefaultGrain) {
  const LionScalars<T> s(h);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    lion_update_stored<T, P, G, S, M>(param + b, grad + b, exp_avg + b, mirror_b, e - b, s);
  });
}

template <class T>
void lion_step(T* param, const T* grad, T* exp_avg, std::size_t n, const LionHyper& h,
               std::size_t grain = kDefaultGrain) {
  lion_step_stored<T, T, T, T, void>(param, grad, exp_avg, nullptr, n, h, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
