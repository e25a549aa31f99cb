#pragma once
// Adamax update rule (torch.optim.Adamax, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   m <- lerp(m, g, 1 - beta1)
//   u <- max(beta2 * u, |g| + eps)                 (NaN propagates, as torch.maximum)
//   p <- p + (-lr / (1 - beta1^t)) * m / u
// The step size is computed in double, as torch's Python floats.

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct AdamaxHyper {
  double lr = 2e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

template <class T>
struct AdamaxScalars {
  T one_minus_beta1, beta2, eps, weight_decay, neg_clr;
  bool maximize, use_weight_decay;

  // `step` is the step count after increment (1 on the first update).
  AdamaxScalars(const AdamaxHyper& h, double step)
      : one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        beta2(static_cast<T>(h.beta2)),
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        neg_clr(static_cast<T>(-(h.lr / (1.0 - std::pow(h.beta1, step))))),
        maximize(h.maximize),
        use_weight_decay(h.weight_decay != 0.0) {}
};

namespace impl {

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kDecay, bool kSmallWeight>
inline void adamax_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad, S* FASTOPTIM_RESTRICT exp_avg,
                        S* FASTOPTIM_RESTRICT exp_inf, M* FASTOPTIM_RESTRICT mirror, std::size_t n,
                        const AdamaxScalars<T>& s) noexcept {
  const T w = s.one_minus_beta1, beta2 = s.beta2, eps = s.eps, wd = s.weight_decay, neg_clr = s.neg_clr;
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    const T p = static_cast<T>(widen(param[i]));
    T g = kMaximize ? -grad_i : grad_i;
    if (kDecay) g = fmadd(p, wd, g);
    const T m = lerp_fixed<kSmallWeight>(static_cast<T>(widen(exp_avg[i])), g, w);
    const T u = nan_max(static_cast<T>(widen(exp_inf[i])) * beta2, std::abs(g) + eps);
    exp_avg[i] = narrow_as<S>(m);
    exp_inf[i] = narrow_as<S>(u);
    const T updated = p + neg_clr * m / u;
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored.
template <class T, class P, class G, class S, class M = void>
inline void adamax_update_stored(P* param, const G* grad, S* exp_avg, S* exp_inf,
                                 typename non_deduced<M>::type* mirror, std::size_t n,
                                 const AdamaxScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      with_flag(lerp_weight_is_small(s.one_minus_beta1), [&](auto small) {
        impl::adamax_loop<T, P, G, S, M, decltype(mx)::value, decltype(wd)::value, decltype(small)::value>(
            param, grad, exp_avg, exp_inf, mirror, n, s);
      });
    });
  });
}

// Scalar reference kernel over [0, n).
template <class T>
inline void adamax_update_ref(T* param, const T* grad, T* exp_avg, T* exp_inf, std::size_t n,
                              const AdamaxScalars<T>& s) noexcept {
  adamax_update_stored<T, T, T, T, void>(param, grad, exp_avg, exp_inf, nullptr, n, s);
}

// One step over [0, n) with the storage types of adamax_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void adamax_step_stored(P* param, const G* grad, S* exp_avg, S* exp_inf, typename non_deduced<M>::type* mirror,
                        std::size_t n, const AdamaxHyper& h, double step, std::size_t grain = kDefaultGrain) {
  const AdamaxScalars<T> s(h, step);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    adamax_update_stored<T, P, G, S, M>(param + b, grad + b, exp_avg + b, exp_inf + b, mirror_b, e - b, s);
  });
}

template <class T>
void adamax_step(T* param, const T* grad, T* exp_avg, T* exp_inf, std::size_t n, const AdamaxHyper& h, double step,
                 std::size_t grain = kDefaultGrain) {
  adamax_step_stored<T, T, T, T, void>(param, grad, exp_avg, exp_inf, nullptr, n, h, step, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
