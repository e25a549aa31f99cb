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
#include <cstring>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
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

FASTOPTIM_ISA_BEGIN

inline std::uint64_t adam_key_bits(double x) noexcept {
  std::uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

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
        decay_factor(static_cast<T>(1.0 - mul_rounded(h.lr, h.weight_decay))),
        amsgrad(h.amsgrad),
        maximize(h.maximize),
        coupled_decay(h.weight_decay != 0.0 && !h.decoupled_weight_decay),
        decoupled_decay(h.weight_decay != 0.0 && h.decoupled_weight_decay) {
    // The items of one step mostly share their group's lr, betas and step count: the bias corrections (three
    // pow() calls, a visible cost with thousands of small tensors) are reused while the inputs are the same
    // bits as the last call's on this thread.
    struct Last {
      double key[4];
      T neg_step_size, bias_correction2_sqrt;
      bool valid;
    };
    static thread_local Last last{};
    const double key[4] = {h.lr, h.beta1, h.beta2, step};
    bool same = last.valid;
    for (int i = 0; i < 4 && same; ++i) same = adam_key_bits(key[i]) == adam_key_bits(last.key[i]);  // -0.0 is not 0.0
    if (!same) {
      const double bias_correction1 = 1.0 - std::pow(h.beta1, step);
      const double bias_correction2 = 1.0 - std::pow(h.beta2, step);
      last.neg_step_size = static_cast<T>(-(h.lr / bias_correction1));
      last.bias_correction2_sqrt = static_cast<T>(std::pow(bias_correction2, 0.5));
      std::memcpy(last.key, key, sizeof key);
      last.valid = true;
    }
    neg_step_size = last.neg_step_size;
    bias_correction2_sqrt = last.bias_correction2_sqrt;
  }
};

namespace impl {

// Storage types, each T or (T = float) a 16-bit type of core/lowp.hpp: P the parameter's, G the gradient's,
// S the state's; M the type of a copy of the parameter to write as well (a 16-bit parameter whose float32
// master weights `param` holds), void for none. The arithmetic is T's: every stored value is rounded to
// nearest even once computed, and the update uses the unrounded new moments, as if everything were T and
// rounded after the step.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kAmsgrad, bool kCoupled, bool kDecoupled,
          bool kSmallWeight>
inline void adam_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad, S* FASTOPTIM_RESTRICT exp_avg,
                      S* FASTOPTIM_RESTRICT exp_avg_sq, S* FASTOPTIM_RESTRICT max_exp_avg_sq,
                      M* FASTOPTIM_RESTRICT mirror, std::size_t n, const AdamScalars<T>& s) noexcept {
  const T w = s.one_minus_beta1, beta2 = s.beta2, omb2 = s.one_minus_beta2, eps = s.eps, wd = s.weight_decay,
          decay = s.decay_factor, neg_step = s.neg_step_size;
  const ConstDivisor<T> bc2_sqrt(s.bias_correction2_sqrt);
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    T g = kMaximize ? -grad_i : grad_i;
    T p = static_cast<T>(widen(param[i]));
    if (kDecoupled) p = mul_rounded(p, decay);
    if (kCoupled) g = fmadd(p, wd, g);
    const T m = lerp_fixed<kSmallWeight>(static_cast<T>(widen(exp_avg[i])), g, w);
    T v = fmadd(omb2 * g, g, static_cast<T>(widen(exp_avg_sq[i])) * beta2);
    exp_avg[i] = narrow_as<S>(m);
    exp_avg_sq[i] = narrow_as<S>(v);
    if (kAmsgrad) {
      v = nan_max(static_cast<T>(widen(max_exp_avg_sq[i])), v);
      max_exp_avg_sq[i] = narrow_as<S>(v);
    }
    const T denom = bc2_sqrt.divide(std::sqrt(v)) + eps;
    const T updated = p + neg_step * m / denom;
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types above (all explicit but M, which is void, no
// copy, unless given). `max_exp_avg_sq` is used only when amsgrad is set.
template <class T, class P, class G, class S, class M = void>
inline void adam_update_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_sq, S* max_exp_avg_sq,
                               typename non_deduced<M>::type* mirror, std::size_t n, const AdamScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.amsgrad, [&](auto ams) {
      with_flag(s.coupled_decay, [&](auto cd) {
        with_flag(s.decoupled_decay, [&](auto dd) {
          with_flag(lerp_weight_is_small(s.one_minus_beta1), [&](auto small) {
            impl::adam_loop<T, P, G, S, M, decltype(mx)::value, decltype(ams)::value, decltype(cd)::value,
                            decltype(dd)::value, decltype(small)::value>(param, grad, exp_avg, exp_avg_sq,
                                                                         max_exp_avg_sq, mirror, n, s);
          });
        });
      });
    });
  });
}

// Scalar reference kernel over [0, n). `max_exp_avg_sq` is used only when amsgrad is set. S: the state's
// storage (T, or for T = float bfloat16_bits / float16_bits, rounded to nearest even).
// (max_exp_avg_sq does not take part in deducing S, so a literal nullptr works there.)
template <class T, class S = T>
inline void adam_update_ref(T* param, const T* grad, S* exp_avg, S* exp_avg_sq,
                            typename non_deduced<S>::type* max_exp_avg_sq, std::size_t n,
                            const AdamScalars<T>& s) noexcept {
  adam_update_stored<T, T, T, S, void>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, nullptr, n, s);
}

// One step over [0, n) with the storage types of adam_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void adam_step_stored(P* param, const G* grad, S* exp_avg, S* exp_avg_sq, S* max_exp_avg_sq,
                      typename non_deduced<M>::type* mirror, std::size_t n, const AdamHyper& h, double step,
                      std::size_t grain = kDefaultGrain) {
  const AdamScalars<T> s(h, step);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    adam_update_stored<T, P, G, S, M>(param + b, grad + b, exp_avg + b, exp_avg_sq + b,
                                      offset_or_null(max_exp_avg_sq, b), mirror_b, e - b, s);
  });
}

template <class T, class S = T>
void adam_step(T* param, const T* grad, S* exp_avg, S* exp_avg_sq, typename non_deduced<S>::type* max_exp_avg_sq,
               std::size_t n, const AdamHyper& h, double step, std::size_t grain = kDefaultGrain) {
  adam_step_stored<T, T, T, S, void>(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, nullptr, n, h, step, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
