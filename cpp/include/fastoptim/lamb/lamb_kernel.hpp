#pragma once
// LAMB update rule (You et al. 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76
// minutes", Algorithm 2), per parameter tensor, each element operation rounded in the parameter's dtype:
//   g <- maximize ? -g : g
//   m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g * g
//   u <- (m / bc1) / (sqrt(v) / sqrt(bc2) + eps) + wd * p      (bc1 = bc2 = 1 without bias correction)
//   trust <- phi(||p||) / ||u||,  phi(z) = min(z, clamp_value); 1 when either norm is 0 or the group is
//            excluded from layer adaptation; min(trust, 1) with trust_clip (LAMBC)
//   p <- p - lr * trust * u
//
// The norms are computed deterministically, so results do not depend on the thread count or the
// instruction set: each parameter is cut into fixed blocks of kNormBlock elements (from its first
// element); within a block, element i is squared and added to accumulator i mod kNormLanes, in index
// order, with one rounding per fused multiply-add, in double; the kNormLanes accumulators are then added
// pairwise ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)), and the block sums in block order. The
// order is fixed by the source, not by the compiler (no -ffast-math reassociation; every product-sum is
// an explicit fma), and each block is summed by one thread whatever the split.
//
// A step makes three passes: (1) moments and per-block sums of p^2 and u^2, split across threads by
// blocks; (2) the trust ratio of each parameter from its block sums, on one thread; (3) the update,
// recomputing u from the new moments (the same operations, hence the same bits as in pass 1).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct LAMBHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-6;
  double weight_decay = 0.0;
  bool bias_correction = true;
  double clamp_value = 10.0;
  bool trust_clip = false;
  bool exclude_from_layer_adaptation = false;
  bool maximize = false;
};

inline constexpr std::size_t kNormBlock = 256;
inline constexpr std::size_t kNormLanes = 8;

FASTOPTIM_ISA_BEGIN

// The trust ratio from the sums of squares of p and of u (pass 2). NaN propagates.
inline double lamb_trust_ratio(const LAMBHyper& h, double param_sq, double update_sq) noexcept {
  if (h.exclude_from_layer_adaptation) return 1.0;
  const double w = std::sqrt(param_sq), u = std::sqrt(update_sq);
  const double phi = w > h.clamp_value ? h.clamp_value : w;  // torch.clamp(0, clamp_value) of a norm
  double trust = (phi == 0.0 || u == 0.0) ? 1.0 : phi / u;
  if (h.trust_clip && trust > 1.0) trust = 1.0;
  return trust;
}


template <class T>
struct LAMBScalars {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay, bias_correction1, bias_correction2_sqrt;
  bool maximize, use_weight_decay;
  ConstDivisor<T> by_bias_correction1{T(1)}, by_bias_correction2_sqrt{T(1)};

  // `step` is the step count after increment (1 on the first update).
  LAMBScalars(const LAMBHyper& h, double step)
      : beta1(static_cast<T>(h.beta1)),
        one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        beta2(static_cast<T>(h.beta2)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        eps(static_cast<T>(h.eps)),
        weight_decay(static_cast<T>(h.weight_decay)),
        maximize(h.maximize),
        use_weight_decay(h.weight_decay != 0.0) {
    // Without bias correction both are 1, and dividing by 1 is exact: one loop serves both.
    const double bc1 = h.bias_correction ? 1.0 - std::pow(h.beta1, step) : 1.0;
    const double bc2 = h.bias_correction ? 1.0 - std::pow(h.beta2, step) : 1.0;
    bias_correction1 = static_cast<T>(bc1);
    bias_correction2_sqrt = static_cast<T>(std::sqrt(bc2));
    by_bias_correction1 = ConstDivisor<T>(bias_correction1);
    by_bias_correction2_sqrt = ConstDivisor<T>(bias_correction2_sqrt);
  }
};

namespace impl {

// u from the (new) moments and the parameter before the update.
template <class T, bool kDecay>
inline T lamb_direction(T p, T m, T v, const LAMBScalars<T>& s) noexcept {
  const T u = s.by_bias_correction1.divide(m) / (s.by_bias_correction2_sqrt.divide(std::sqrt(v)) + s.eps);
  return kDecay ? fmadd(p, s.weight_decay, u) : u;
}

inline double pairwise8(const double* a) noexcept {
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// Adds the squares of a[0, n) (n <= kNormBlock) to the kNormLanes accumulators in the documented order.
template <class T>
inline void add_squares(const T* FASTOPTIM_RESTRICT a, std::size_t n, double* FASTOPTIM_RESTRICT lanes) noexcept {
  std::size_t i = 0;
  for (; i + kNormLanes <= n; i += kNormLanes)
    for (std::size_t lane = 0; lane < kNormLanes; ++lane) {
      const double x = static_cast<double>(a[i + lane]);
      lanes[lane] = fmadd(x, x, lanes[lane]);
    }
  for (std::size_t lane = 0; i < n; ++i, ++lane) {
    const double x = static_cast<double>(a[i]);
    lanes[lane] = fmadd(x, x, lanes[lane]);
  }
}

// Blocks summed side by side: each block's accumulators form one chain of dependent additions, so a single
// block waits on the add latency; kGroupBlocks blocks give as many independent chains (same order per block).
inline constexpr std::size_t kGroupBlocks = 4;

template <class T, bool kMaximize, bool kDecay>
inline void lamb_moments_blocks(const T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT grad,
                                T* FASTOPTIM_RESTRICT exp_avg, T* FASTOPTIM_RESTRICT exp_avg_sq, std::size_t n,
                                const LAMBScalars<T>& s, double* sums) noexcept {
  static_assert(kNormLanes == 8, "pairwise8 combines eight lanes");
  alignas(64) T direction[kGroupBlocks * kNormBlock];
  for (std::size_t b = 0; b < n; b += kGroupBlocks * kNormBlock) {
    const std::size_t len = std::min(n - b, kGroupBlocks * kNormBlock);
    const T* FASTOPTIM_RESTRICT p = param + b;
    for (std::size_t i = 0; i < len; ++i) {  // the moments and u, vectorized like Adam's loop
      const T g = kMaximize ? -grad[b + i] : grad[b + i];
      const T m = fmadd(g, s.one_minus_beta1, exp_avg[b + i] * s.beta1);
      const T v = fmadd(s.one_minus_beta2 * g, g, exp_avg_sq[b + i] * s.beta2);
      exp_avg[b + i] = m;
      exp_avg_sq[b + i] = v;
      direction[i] = lamb_direction<T, kDecay>(p[i], m, v, s);
    }
    double* out = sums + 2 * (b / kNormBlock);
    if (len == kGroupBlocks * kNormBlock) {
      double wl[kGroupBlocks][kNormLanes] = {}, ul[kGroupBlocks][kNormLanes] = {};
      for (std::size_t i = 0; i < kNormBlock; i += kNormLanes)
        for (std::size_t q = 0; q < kGroupBlocks; ++q)
          for (std::size_t lane = 0; lane < kNormLanes; ++lane) {
            const double x = static_cast<double>(p[q * kNormBlock + i + lane]);
            const double u = static_cast<double>(direction[q * kNormBlock + i + lane]);
            wl[q][lane] = fmadd(x, x, wl[q][lane]);
            ul[q][lane] = fmadd(u, u, ul[q][lane]);
          }
      for (std::size_t q = 0; q < kGroupBlocks; ++q) {
        out[2 * q] = pairwise8(wl[q]);
        out[2 * q + 1] = pairwise8(ul[q]);
      }
    } else {
      for (std::size_t k = 0; k * kNormBlock < len; ++k) {
        const std::size_t m = std::min(len - k * kNormBlock, kNormBlock);
        double wl[kNormLanes] = {}, ul[kNormLanes] = {};
        add_squares(p + k * kNormBlock, m, wl);
        add_squares(direction + k * kNormBlock, m, ul);
        out[2 * k] = pairwise8(wl);
        out[2 * k + 1] = pairwise8(ul);
      }
    }
  }
}

template <class T, bool kDecay>
inline void lamb_apply_loop(T* FASTOPTIM_RESTRICT param, const T* FASTOPTIM_RESTRICT exp_avg,
                            const T* FASTOPTIM_RESTRICT exp_avg_sq, std::size_t n, const LAMBScalars<T>& s,
                            T neg_step) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const T p = param[i];
    param[i] = fmadd(lamb_direction<T, kDecay>(p, exp_avg[i], exp_avg_sq[i], s), neg_step, p);
  }
}

}  // namespace impl

// Pass 1 over [0, n), cut into blocks of kNormBlock from its first element: updates the moments and writes,
// for block k, sums[2k] = sum p^2 and sums[2k + 1] = sum u^2 in the documented order.
template <class T>
inline void lamb_moments_ref(const T* param, const T* grad, T* exp_avg, T* exp_avg_sq, std::size_t n,
                             const LAMBScalars<T>& s, double* sums) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      impl::lamb_moments_blocks<T, decltype(mx)::value, decltype(wd)::value>(param, grad, exp_avg, exp_avg_sq, n, s,
                                                                             sums);
    });
  });
}

// Pass 3 over [0, n): p <- p + neg_step * u, with neg_step = -lr * trust.
template <class T>
inline void lamb_apply_ref(T* param, const T* exp_avg, const T* exp_avg_sq, std::size_t n, const LAMBScalars<T>& s,
                           T neg_step) noexcept {
  impl::with_flag(s.use_weight_decay, [&](auto wd) {
    impl::lamb_apply_loop<T, decltype(wd)::value>(param, exp_avg, exp_avg_sq, n, s, neg_step);
  });
}

inline std::size_t lamb_blocks(std::size_t n) noexcept { return (n + kNormBlock - 1) / kNormBlock; }

// The three passes over `count` parameters, for any mix of dtypes:
//   size(i)                     elements of parameter i;
//   moments(i, b, e, sums)      pass 1 over elements [b, e) of parameter i: whole blocks (b a multiple of
//                               kNormBlock, e one or the size), two sums per block from sums[0];
//   finish(i, param_sq, upd_sq) pass 2: the totals of parameter i (on the calling thread);
//   apply(i, b, e)              pass 3 over elements [b, e) of parameter i (any split).
template <class Size, class Moments, class Finish, class Apply>
void lamb_passes(std::size_t count, const Size& size, const Moments& moments, const Finish& finish,
                 const Apply& apply) {
  std::vector<std::size_t> first_block(count + 1, 0);
  for (std::size_t i = 0; i < count; ++i) first_block[i + 1] = first_block[i] + lamb_blocks(size(i));
  std::vector<double> sums(2 * first_block[count]);
  parallel_for_items(
      count, [&](std::size_t i) { return lamb_blocks(size(i)); }, std::max<std::size_t>(1, kDefaultGrain / kNormBlock),
      [&](std::size_t i, std::size_t kb, std::size_t ke) {
        moments(i, kb * kNormBlock, std::min(size(i), ke * kNormBlock), &sums[2 * (first_block[i] + kb)]);
      });
  for (std::size_t i = 0; i < count; ++i) {
    double param_sq = 0.0, update_sq = 0.0;
    for (std::size_t k = first_block[i]; k < first_block[i + 1]; ++k) {
      param_sq += sums[2 * k];
      update_sq += sums[2 * k + 1];
    }
    finish(i, param_sq, update_sq);
  }
  parallel_for_items(count, size, kDefaultGrain, apply);
}

// One LAMB step of one parameter tensor (`step` after increment); grain as parallel_for (kSerial: on
// the calling thread). Returns the trust ratio used.
template <class T>
double lamb_step(T* param, const T* grad, T* exp_avg, T* exp_avg_sq, std::size_t n, const LAMBHyper& h, double step,
                 std::size_t grain = kDefaultGrain) {
  const LAMBScalars<T> s(h, step);
  const std::size_t blocks = lamb_blocks(n);
  std::vector<double> sums(2 * blocks);
  parallel_for(blocks, std::max<std::size_t>(1, grain / kNormBlock), [&](std::size_t kb, std::size_t ke) {
    const std::size_t b = kb * kNormBlock, e = std::min(n, ke * kNormBlock);
    lamb_moments_ref(param + b, grad + b, exp_avg + b, exp_avg_sq + b, e - b, s, &sums[2 * kb]);
  });
  double param_sq = 0.0, update_sq = 0.0;
  for (std::size_t k = 0; k < blocks; ++k) {
    param_sq += sums[2 * k];
    update_sq += sums[2 * k + 1];
  }
  const double trust = lamb_trust_ratio(h, param_sq, update_sq);
  const T neg_step = static_cast<T>(-h.lr * trust);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    lamb_apply_ref(param + b, exp_avg + b, exp_avg_sq + b, e - b, s, neg_step);
  });
  return trust;
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
