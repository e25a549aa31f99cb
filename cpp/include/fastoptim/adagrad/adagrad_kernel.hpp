#pragma once
// Adagrad update rule (torch.optim.Adagrad, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   clr = lr / (1 + (t - 1) * lr_decay)          (in double, as torch's Python floats)
//   sum <- sum + g * g
//   p <- p + (-clr) * g / (sqrt(sum) + eps)

#include <cmath>
#include <cstddef>

#include "../core/config.hpp"
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

template <class T, bool kMaximize, bool kDecay>
inline void adagrad_loop(T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT grad, T* FASTOPTIM_RESTRICT sum,
                         std::size_t n, const AdagradScalars<T>& s) noexcept {
  const T neg_clr = s.neg_clr, wd = s.weight_decay, eps = s.eps;
  for (std::size_t i = 0; i < n; ++i) {
    T g = kMaximize ? -grad[i] : grad[i];
    if (kDecay) g = fmadd(param[i], wd, g);
    const T acc = fmadd(g, g, sum[i]);
    sum[i] = acc;
    const T std_ = std::sqrt(acc) + eps;
    param[i] = param[i] + neg_clr * g / std_;
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n).
template <class T>
inline void adagrad_update_ref(T* param, const T* grad, T* sum, std::size_t n, const AdagradScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      impl::adagrad_loop<T, decltype(mx)::value, decltype(wd)::value>(param, grad, sum, n, s);
    });
  });
}

template <class T>
void adagrad_step(T* param, const T* grad, T* sum, std::size_t n, const AdagradHyper& h, double step,
                  std::size_t grain = kDefaultGrain) {
  const AdagradScalars<T> s(h, step);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) { adagrad_update_ref(param + b, grad + b, sum + b, e - b, s); });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
