#pragma once
// Schedule-Free AdamW (Defazio et al. 2024, "The Road Less Scheduled", Algorithm 1), in the operation order
// of the reference AdamWScheduleFree (facebookresearch/schedulefree 1.4, single-tensor path), each element
// operation rounded in the parameter's dtype. The parameter holds y (the gradient point) while training;
// z is the base sequence; x, the average that is evaluated, is recovered by eval().
// Per param group, with k the group's step count before this step:
//   lr_k  = lr * min(1, (k + 1) / warmup_steps);   lr_max <- max(lr_max, lr_k)
//   w     = (k + 1)^r * lr_max^weight_lr_power;    weight_sum <- weight_sum + w;   c = w / weight_sum
// Per element:
//   g <- maximize ? -g : g
//   v <- beta2 * v + (1 - beta2) * g * g;   u <- g / (sqrt(v / (1 - beta2^(k+1))) + eps) + wd * y
//   y <- lerp(y, z, c) + lr_k * (beta1 * (1 - c) - 1) * u
//   z <- z - lr_k * u
// train(): y = lerp(x, z, 1 - beta1);  eval(): x = lerp(y, z, 1 - 1 / beta1).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct ScheduleFreeAdamWHyper {
  double lr = 0.0025;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  std::int64_t warmup_steps = 0;
  double r = 0.0;
  double weight_lr_power = 2.0;
  bool maximize = false;
};

// A param group's running schedule (the reference keeps these in the group dict).
struct ScheduleFreeSchedule {
  std::int64_t k = 0;          // steps taken
  double lr_max = -1.0;        // largest scheduled lr so far
  double weight_sum = 0.0;     // sum of the averaging weights
  double scheduled_lr = 0.0;   // lr_k of the last step (for logging, as the reference)
};

// The scalars of one step of a group.
struct ScheduleFreeStepScalars {
  double lr;                 // lr_k
  double ckp1;               // c
  double bias_correction2;   // 1 - beta2^(k+1)
};

FASTOPTIM_ISA_BEGIN

// The scalars of the step that brought the group to `sched` (k >= 1), with the reference's Python
// expressions: recomputed from the group's values, so nothing else needs to be kept between steps.
inline ScheduleFreeStepScalars schedulefree_current(const ScheduleFreeAdamWHyper& h, const ScheduleFreeSchedule& sched) {
  const double k1 = static_cast<double>(sched.k);  // the reference's k + 1
  ScheduleFreeStepScalars out{};
  out.lr = sched.scheduled_lr;
  out.bias_correction2 = 1 - std::pow(h.beta2, k1);
  // mul_rounded: Python rounds the product before adding it to the sum.
  const double weight = mul_rounded(std::pow(k1, h.r), std::pow(sched.lr_max, h.weight_lr_power));
  out.ckp1 = sched.weight_sum != 0.0 ? weight / sched.weight_sum : 0.0;  // the reference's ZeroDivisionError -> 0
  return out;
}

// Advances the group's schedule by one step and returns that step's scalars.
inline ScheduleFreeStepScalars schedulefree_advance(const ScheduleFreeAdamWHyper& h, ScheduleFreeSchedule& sched) {
  const double k1 = static_cast<double>(sched.k) + 1;
  const double warm = sched.k < h.warmup_steps ? k1 / static_cast<double>(h.warmup_steps) : 1.0;
  sched.scheduled_lr = h.lr * warm;
  sched.lr_max = std::max(sched.scheduled_lr, sched.lr_max);
  const double weight = mul_rounded(std::pow(k1, h.r), std::pow(sched.lr_max, h.weight_lr_power));
  sched.weight_sum = sched.weight_sum + weight;
  sched.k += 1;
  return schedulefree_current(h, sched);
}

template <class T>
struct ScheduleFreeAdamWScalars {
  T beta2, one_minus_beta2, bias_correction2, eps, weight_decay, ckp1, y_step, neg_lr;
  bool maximize, use_weight_decay;

  ScheduleFreeAdamWScalars(const ScheduleFreeAdamWHyper& h, const ScheduleFreeStepScalars& st)
      : beta2(static_cast<T>(h.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        bias_correction2(static_cast<T>(st.bias_correction2)),
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        ckp1(static_cast<T>(st.ckp1)),
        y_step(static_cast<T>(st.lr * (mul_rounded(h.beta1, 1 - st.ckp1) - 1))),
        neg_lr(static_cast<T>(-st.lr)),
        maximize(h.maximize),
        use_weight_decay(h.weight_decay != 0.0) {}
};

namespace impl {

template <class T, bool kMaximize, bool kDecay, bool kSmallWeight>
inline void schedulefree_adamw_loop(T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT grad,
                                    T* FASTOPTIM_RESTRICT z, T* FASTOPTIM_RESTRICT exp_avg_sq, std::size_t n,
                                    const ScheduleFreeAdamWScalars<T>& s) noexcept {
  const T beta2 = s.beta2, omb2 = s.one_minus_beta2, eps = s.eps, wd = s.weight_decay, ckp1 = s.ckp1,
          y_step = s.y_step, neg_lr = s.neg_lr;
  const ConstDivisor<T> bc2(s.bias_correction2);
  for (std::size_t i = 0; i < n; ++i) {
    const T g = kMaximize ? -grad[i] : grad[i];
    const T v = fmadd(omb2 * g, g, exp_avg_sq[i] * beta2);
    exp_avg_sq[i] = v;
    T u = g / (std::sqrt(bc2.divide(v)) + eps);
    const T y = param[i], zi = z[i];
    if (kDecay) u = fmadd(y, wd, u);
    param[i] = fmadd(u, y_step, lerp_fixed<kSmallWeight>(y, zi, ckp1));
    z[i] = fmadd(u, neg_lr, zi);
  }
}

template <class T, bool kSmallWeight>
inline void lerp_loop(T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT end, std::size_t n, T weight) noexcept {
  for (std::size_t i = 0; i < n; ++i) param[i] = lerp_fixed<kSmallWeight>(param[i], end[i], weight);
}

}  // namespace impl

// Scalar reference kernel over [0, n): param holds y.
template <class T>
inline void schedulefree_adamw_update_ref(T* param, const T* grad, T* z, T* exp_avg_sq, std::size_t n,
                                          const ScheduleFreeAdamWScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      with_flag(lerp_weight_is_small(s.ckp1), [&](auto small) {
        impl::schedulefree_adamw_loop<T, decltype(mx)::value, decltype(wd)::value, decltype(small)::value>(
            param, grad, z, exp_avg_sq, n, s);
      });
    });
  });
}

template <class T>
void schedulefree_adamw_step(T* param, const T* grad, T* z, T* exp_avg_sq, std::size_t n,
                             const ScheduleFreeAdamWHyper& h, const ScheduleFreeStepScalars& st,
                             std::size_t grain = kDefaultGrain) {
  const ScheduleFreeAdamWScalars<T> s(h, st);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    schedulefree_adamw_update_ref(param + b, grad + b, z + b, exp_avg_sq + b, e - b, s);
  });
}

// param <- torch.lerp(param, z, weight) over [0, n): the train()/eval() switch between y and x.
template <class T>
inline void schedulefree_lerp_ref(T* param, const T* z, std::size_t n, T weight) noexcept {
  impl::with_flag(lerp_weight_is_small(weight), [&](auto small) {
    impl::lerp_loop<T, decltype(small)::value>(param, z, n, weight);
  });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
