#pragma once
// NAdam update rule (torch.optim.NAdam, single-tensor path of torch 2.13; Dozat 2016):
//   g <- maximize ? -g : g
//   decoupled: p <- p * (1 - lr * wd)      coupled: g <- g + wd * p
//   mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));  mu_product <- mu_product * mu_t
//   m <- lerp(m, g, 1 - beta1);  v <- beta2 * v + (1 - beta2) * g * g
//   denom = sqrt(v / (1 - beta2^t)) + eps
//   p <- p + (-lr * (1 - mu_t) / (1 - mu_product)) * g / denom
//   p <- p + (-lr * mu_{t+1} / (1 - mu_product * mu_{t+1})) * m / denom
// The coefficients are computed in double, as torch's Python floats. torch keeps mu_product as a 0-d
// tensor of its default dtype (float32), so each `mu_product *= mu_t` rounds to float32; the coefficients
// read it back as a double (nadam_mu_product below).

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct NAdamHyper {
  double lr = 2e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum_decay = 4e-3;
  bool decoupled_weight_decay = false;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

// The momentum cache mu_t of step t (Dozat's schedule, as torch computes it). Rounded on its own:
// torch's `1.0 - mu` must not become a fused multiply-add with the product inside.
inline double nadam_mu(const NAdamHyper& h, double step) noexcept {
  return mul_rounded(h.beta1, 1.0 - 0.5 * std::pow(0.96, step * h.momentum_decay));
}

// torch's in-place `mu_product *= mu` on its 0-d tensor: a float32 tensor multiplies in float32 (mu
// rounded to float32 first), a float64 one in double.
inline double nadam_mu_product(double mu_product, double mu, bool float32) noexcept {
  return float32 ? static_cast<double>(static_cast<float>(mu_product) * static_cast<float>(mu)) : mu_product * mu;
}

template <class T>
struct NAdamScalars {
  T one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, decay_factor, bias_correction2, grad_coef,
      exp_avg_coef;
  bool maximize, coupled_decay, decoupled_decay;

  // `step` is the step count after increment (1 on the first update); `mu_product` the product after this
  // step's update (nadam_mu_product), as torch reads it back.
  NAdamScalars(const NAdamHyper& h, double step, double mu_product)
      : one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        beta2(static_cast<T>(h.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        // Python rounds lr * wd before subtracting; mul_rounded keeps a contracting compiler from fusing it.
        decay_factor(static_cast<T>(1.0 - mul_rounded(h.lr, h.weight_decay))),
        bias_correction2(static_cast<T>(1.0 - std::pow(h.beta2, step))),
        maximize(h.maximize),
        coupled_decay(h.weight_decay != 0.0 && !h.decoupled_weight_decay),
        decoupled_decay(h.weight_decay != 0.0 && h.decoupled_weight_decay) {
    const double mu = nadam_mu(h, step), mu_next = nadam_mu(h, step + 1.0);
    grad_coef = static_cast<T>(-h.lr * (1.0 - mu) / (1.0 - mu_product));
    exp_avg_coef = static_cast<T>((-h.lr * mu_next) / (1.0 - mul_rounded(mu_product, mu_next)));
  }
};

namespace impl {

// Storage types as in adam_loop (P parameter, G gradient, S state, M the 16-bit copy of float32 master weights
// or void): every stored value is rounded to nearest even once computed, the arithmetic goes on with the
// unrounded one.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kCoupled, bool kDecoupled,
          bool kSmallWeight>
inline void nadam_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad, S* FASTOPTIM_RESTRICT exp_avg,
                       S* FASTOPTIM_RESTRICT exp_avg_sq, M* FASTOPTIM_RESTRICT mirror, std::size_t n,
                       const NAdamScalars<T>& s) noexcept {
  const T w = s.one_minus_beta1, beta2 = s.beta2, omb2 = s.one_minus_beta2, eps = s.eps, wd = s.weight_decay,
          decay = s.decay_factor, grad_coef = s.grad_coef, exp_avg_coef = s.exp_avg_coef;
  const ConstDivisor<T> bc2(s.bias_correction2);
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    T g = kMaximize ? -grad_i : grad_i;
    T p = static_cast<T>(widen(param[i]));
    if (kDecoupled) p = mul_rounded(p, decay);  // its own tensor op in torch: never fused into the adds below
    if (kCoupled) g = fmadd(p, wd, g);
    const T m = lerp_fixed<kSmallWeight>(static_cast<T>(widen(exp_avg[i])), g, w);
    const T v = fmadd(omb2 * g, g, static_cast<T>(widen(exp_avg_sq[i])) * beta2);
    exp_avg[i] = narrow_as<S>(m);
    exp_avg_sq[i] = narrow_as<S>(v);
    const T denom = std::sqrt(bc2.divide(v)) + eps;
    p = p + grad_coef * g / denom;
    const T updated = p + exp_avg_coef * m / denom;
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types of adam_update_stored.
template <class T, class P, class G, class S, class M = void>
inline void nadam_update_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_sq,
                                typename non_deduced<M>::type* mirror, std::size_t n,
                                const NAdamScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.coupled_decay, [&](auto cd) {
      with_flag(s.decoupled_decay, [&](auto dd) {
        with_flag(lerp_weight_is_small(s.one_minus_beta1), [&](auto small) {
          impl::nadam_loop<T, P, G, S, M, decltype(mx)::value, decltype(cd)::value, decltype(dd)::value,
                           decltype(small)::value>(param, grad, exp_avg, exp_avg_sq, mirror, n, s);
        });
      });
    });
  });
}

// Scalar reference kernel over [0, n).
template <class T>
inline void nadam_update_ref(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, std::size_t n,
                             const NAdamScalars<T>& s) noexcept {
  nadam_update_stored<T, T, T, T, void>(param, grad, exp_avg, exp_avg_sq, nullptr, n, s);
}

// One step over [0, n) with the storage types of nadam_update_stored, threaded as parallel_for. `mu_product`
// is the product after this step's update (see NAdamScalars).
template <class T, class P, class G, class S, class M = void>
void nadam_step_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_sq, typename non_deduced<M>::type* mirror,
                       std::size_t n, const NAdamHyper& h, double step, double mu_product,
                       std::size_t grain = kDefaultGrain) {
  const NAdamScalars<T> s(h, step, mu_product);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    nadam_update_stored<T, P, G, S, M>(param + b, grad + b, exp_avg + b, exp_avg_sq + b, mirror_b, e - b, s);
  });
}

// `mu_product` is the product after this step's update (see NAdamScalars).
template <class T>
void nadam_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, std::size_t n, const NAdamHyper& h, double step,
                double mu_product, std::size_t grain = kDefaultGrain) {
  nadam_step_stored<T, T, T, T, void>(param, grad, exp_avg, exp_avg_sq, nullptr, n, h, step, mu_product, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
