#pragma once
// Adagrad update rule (torch.optim.Adagrad, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   clr = lr / (1 + (t - 1) * lr_decay)          (in double, as torch's Python floats)
//   sum <- sum + g * g
//   p <- p + (-clr) * g / (sqrt(sum) + eps)

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct AdagradHyper {
  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double eps = 1e-10;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

template <class T>
struct AdagradScalars {
  T neg_clr, weight_decay, eps;
  bool maximize, use_weight_decay;

  // `step` is the step count after increment (1 on the first update).
  AdagradScalars(const AdagradHyper& h, double step)
      : weight_decay(static_cast<T>(h.weight_decay)),
        eps(static_cast<T>(h.eps)),
        maximize(h.maximize),
        use_weight_decay(h.weight_decay != 0.0) {
    // Python rounds the product before adding 1; mul_rounded keeps a contracting compiler from fusing it.
    const double clr = h.lr / (1.0 + mul_rounded(step - 1.0, h.lr_decay));
    neg_clr = static_cast<T>(-clr);
  }
};

namespace impl {

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kDecay>
inline void adagrad_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad, S* FASTOPTIM_RESTRICT sum,
                         M* FASTOPTIM_RESTRICT mirror, std::size_t n, const AdagradScalars<T>& s) noexcept {
  const T neg_clr = s.neg_clr, wd = s.weight_decay, eps = s.eps;
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    const T p = static_cast<T>(widen(param[i]));
    T g = kMaximize ? -grad_i : grad_i;
    if (kDecay) g = fmadd(p, wd, g);
    const T acc = fmadd(g, g, static_cast<T>(widen(sum[i])));
    sum[i] = narrow_as<S>(acc);
    const T std_ = std::sqrt(acc) + eps;
    const T updated = p + neg_clr * g / std_;
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored.
template <class T, class P, class G, class S, class M = void>
inline void adagrad_update_stored(P* param, const G* grad, S* sum, typename non_deduced<M>::type* mirror,
                                  std::size_t n, const AdagradScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      impl::adagrad_loop<T, P, G, S, M, decltype(mx)::value, decltype(wd)::value>(param, grad, sum, mirror, n, s);
    });
  });
}

// Scalar reference kernel over [0, n).
template <class T>
inline void adagrad_update_ref(T* param, const T* grad, T* sum, std::size_t n, const AdagradScalars<T>& s) noexcept {
  adagrad_update_stored<T, T, T, T, void>(param, grad, sum, nullptr, n, s);
}

// One step over [0, n) with the storage types of adagrad_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void adagrad_step_stored(P* param, const G* grad, S* sum, typename non_deduced<M>::type* mirror, std::size_t n,
                         const AdagradHyper& h, double step, std::size_t grain = kDefaultGrain) {
  const AdagradScalars<T> s(h, step);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    adagrad_update_stored<T, P, G, S, M>(param + b, grad + b, sum + b, mirror_b, e - b, s);
  });
}

template <class T>
void adagrad_step(T* param, const T* grad, T* sum, std::size_t n, const AdagradHyper& h, double step,
                  std::size_t grain = kDefaultGrain) {
  adagrad_step_stored<T, T, T, T, void>(param, grad, sum, nullptr, n, h, step, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
