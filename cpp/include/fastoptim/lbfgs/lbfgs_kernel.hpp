#pragma once
// The pieces of torch.optim.LBFGS (torch 2.13, torch/optim/lbfgs.py) below the optimizer class: reductions
// over the flattened parameters, the element-wise updates, and the strong-Wolfe line search with its cubic
// interpolation, ported line by line.
//
// Precision follows torch. torch's LBFGS mixes Python floats (double) with 0-d tensors of the parameter
// dtype (dot products, ro, H_diag, and every value computed from one of them): an operation with a tensor
// operand casts the Python float to the tensor's dtype and rounds its result there. LBFGSNum<T> carries that
// distinction, so float32 runs round where torch's do; for float64 it changes nothing.
//
// Reductions are deterministic: partial sums over fixed blocks of kReduceBlock elements (interleaved
// accumulators in double, a fixed number each), added in block order, whatever the thread count and ISA.
// torch's dot products (BLAS) and sums round differently, by about one ulp of the result.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"
#include "../core/span.hpp"

namespace fastoptim {

enum class LineSearch { none, strong_wolfe };

// Limits and counts stay at most 2^53 (validate, checkpoints), so sums and products of them fit an int64.
inline constexpr std::int64_t kLBFGSMaxCount = std::int64_t(1) << 53;

// torch's max_iter * 5 // 4 (a value past the limit stays one: validate rejects it)
inline std::int64_t lbfgs_default_max_eval(std::int64_t max_iter) noexcept {
  return max_iter > kLBFGSMaxCount || max_iter < -kLBFGSMaxCount ? max_iter : max_iter * 5 / 4;
}

struct LBFGSHyper {
  double lr = 1.0;
  std::int64_t max_iter = 20;
  // torch's default is max_iter * 5 // 4, fixed when the optimizer is constructed; nullopt computes it
  // from the current max_iter.
  std::optional<std::int64_t> max_eval{};
  double tolerance_grad = 1e-7;
  double tolerance_change = 1e-9;
  std::int64_t history_size = 100;
  LineSearch line_search_fn = LineSearch::none;

  std::int64_t max_evals() const noexcept { return max_eval ? *max_eval : lbfgs_default_max_eval(max_iter); }
};

// A scalar of torch's LBFGS state (t, H_diag): a Python float (tensor = false) or a 0-d tensor of the
// parameter dtype (tensor = true, value exactly representable in it).
struct LBFGSScalar {
  double value = 0.0;
  bool tensor = false;
};

FASTOPTIM_ISA_BEGIN

// A value of torch's LBFGS arithmetic: a Python number, or a 0-d tensor of dtype T. Operators follow
// Python and torch: any tensor operand makes the operation run in T on operands cast to T.
template <class T>
struct LBFGSNum {
  double v = 0.0;
  bool tensor = false;

  static LBFGSNum py(double x) noexcept { return {x, false}; }
  static LBFGSNum of(T x) noexcept { return {static_cast<double>(x), true}; }
  static LBFGSNum from(LBFGSScalar s) noexcept { return {s.tensor ? static_cast<double>(static_cast<T>(s.value)) : s.value, s.tensor}; }
  LBFGSScalar scalar() const noexcept { return {v, tensor}; }
  T as_t() const noexcept { return static_cast<T>(v); }  // as torch's alpha= / mul(scalar) take it

  friend LBFGSNum operator+(LBFGSNum a, LBFGSNum b) noexcept {
    if (a.tensor || b.tensor) return of(a.as_t() + b.as_t());
    return py(a.v + b.v);
  }
  friend LBFGSNum operator-(LBFGSNum a, LBFGSNum b) noexcept {
    if (a.tensor || b.tensor) return of(a.as_t() - b.as_t());
    return py(a.v - b.v);
  }
  // mul_rounded: each product rounds on its own, as in torch, even where a compiler would contract.
  friend LBFGSNum operator*(LBFGSNum a, LBFGSNum b) noexcept {
    if (a.tensor || b.tensor) return of(mul_rounded(a.as_t(), b.as_t()));
    return py(mul_rounded(a.v, b.v));
  }
  friend LBFGSNum operator/(LBFGSNum a, LBFGSNum b) {
    // torch: number / tensor is tensor.reciprocal() * number (Tensor.__rtruediv__), two roundings.
    if (!a.tensor && b.tensor) return of(mul_rounded(T(1) / b.as_t(), a.as_t()));
    if (a.tensor || b.tensor) return of(a.as_t() / b.as_t());
    if (b.v == 0.0) throw std::domain_error("float division by zero");  // Python's ZeroDivisionError
    return py(a.v / b.v);
  }
  LBFGSNum operator-() const noexcept { return {-v, tensor}; }

  friend bool operator<(LBFGSNum a, LBFGSNum b) noexcept {
    return (a.tensor || b.tensor) ? a.as_t() < b.as_t() : a.v < b.v;
  }
  friend bool operator>(LBFGSNum a, LBFGSNum b) noexcept { return b < a; }
  friend bool operator<=(LBFGSNum a, LBFGSNum b) noexcept {
    return (a.tensor || b.tensor) ? a.as_t() <= b.as_t() : a.v <= b.v;
  }
  friend bool operator>=(LBFGSNum a, LBFGSNum b) noexcept { return b <= a; }
};

template <class T>
LBFGSNum<T> num_abs(LBFGSNum<T> a) noexcept {
  return {std::fabs(a.v), a.tensor};
}
// Python's min(a, b) and max(a, b): the first argument unless the second compares strictly below/above.
template <class T>
LBFGSNum<T> py_min(LBFGSNum<T> a, LBFGSNum<T> b) noexcept {
  return b < a ? b : a;
}
template <class T>
LBFGSNum<T> py_max(LBFGSNum<T> a, LBFGSNum<T> b) noexcept {
  return b > a ? b : a;
}

// ------------------------------------------------------------------------------------------ reductions

namespace impl {

// Elements per partial sum. Fixed, so the rounding of a reduction depends on the length alone.
inline constexpr std::size_t kReduceBlock = 4096;

// Sums term(i) over [begin, end) in double with 8 interleaved accumulators (the compiler may vectorize
// them; the order of additions is fixed by the source).
template <class Term>
double block_sum(std::size_t begin, std::size_t end, const Term& term) noexcept {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (std::size_t j = 0; j < 8; ++j) acc[j] += term(i + j);
  for (std::size_t j = 0; i < end; ++i, ++j) acc[j] += term(i);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// x . y over [begin, end) in double with 32 interleaved accumulators (four independent chains of additions
// per 8-lane vector: with one, each add waited for the last and the dot products were the slowest part of
// LBFGS's two-loop recursion), combined lane-wise into 8 and then as block_sum does. A float x float product
// is exact in double, so a contracting compiler cannot change it; a double one is rounded on its own
// (mul_rounded). For float, spelled with vector types where the compiler has them: the same operations in
// the same order as the scalar form.
template <class T>
double block_dot(const T* x, const T* y, std::size_t begin, std::size_t end) noexcept {
  const auto product = [](T a, T b) {
    if constexpr (std::is_same_v<T, float>)
      return static_cast<double>(a) * static_cast<double>(b);
    else
      return mul_rounded(static_cast<double>(a), static_cast<double>(b));
  };
  double a[32] = {};
  std::size_t i = begin;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {  // GCC splits the vector-type conversion below into halves
    __m512d acc[4] = {_mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd(), _mm512_setzero_pd()};
    for (; i + 32 <= end; i += 32)
      for (std::size_t k = 0; k < 4; ++k)
        acc[k] = _mm512_add_pd(acc[k], _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8 * k)),
                                                     _mm512_cvtps_pd(_mm256_loadu_ps(y + i + 8 * k))));
    for (std::size_t k = 0; k < 4; ++k) _mm512_storeu_pd(a + 8 * k, acc[k]);
  }
#elif defined(__GNUC__) || defined(__clang__)
  if constexpr (std::is_same_v<T, float>) {
    typedef double D8 __attribute__((vector_size(64)));
    typedef float F8 __attribute__((vector_size(32)));
    D8 acc[4] = {};
    for (; i + 32 <= end; i += 32)
      for (std::size_t k = 0; k < 4; ++k) {
        F8 xv, yv;
        std::memcpy(&xv, x + i + 8 * k, sizeof xv);
        std::memcpy(&yv, y + i + 8 * k, sizeof yv);
        acc[k] += __builtin_convertvector(xv, D8) * __builtin_convertvector(yv, D8);
      }
    std::memcpy(a, acc, sizeof a);
  }
#endif
  for (; i + 32 <= end; i += 32)
    for (std::size_t j = 0; j < 32; ++j) a[j] += product(x[i + j], y[i + j]);
  for (std::size_t j = 0; i < end; ++i, ++j) a[j] += product(x[i], y[i]);
  for (std::size_t j = 0; j < 8; ++j) a[j] = (a[j] + a[j + 8]) + (a[j + 16] + a[j + 24]);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// max |x| over [begin, end), NaN if any element is NaN (exact: the order does not matter), vectorized where
// the compiler has vector types.
template <class T>
T block_abs_max(const T* x, std::size_t begin, std::size_t end) noexcept {
  T m = 0;
  std::size_t i = begin;
#if defined(__GNUC__) || defined(__clang__)
  constexpr std::size_t kLanes = 64 / sizeof(T);
  typedef T V __attribute__((vector_size(64)));
  V vm = {}, nan = {};  // nan: lanes that saw a NaN are NaN
  for (; i + kLanes <= end; i += kLanes) {
    V v;
    std::memcpy(&v, x + i, sizeof v);
    const V a = v < 0 ? -v : v;
    vm = a > vm ? a : vm;
    nan = a != a ? a : nan;
  }
  T lanes[kLanes], nans[kLanes];
  std::memcpy(lanes, &vm, sizeof lanes);
  std::memcpy(nans, &nan, sizeof nans);
  for (std::size_t j = 0; j < kLanes; ++j) m = nan_max(nan_max(m, lanes[j]), nans[j]);
#endif
  for (; i < end; ++i) m = nan_max(m, std::fabs(x[i]));
  return m;
}

// Combines block(begin, end) over fixed blocks of [0, n) with combine, in block order. The partial results
// are computed in parallel (a thread takes at least kMinBlocksPerThread blocks), the combination serially.
template <class R, class Block, class Combine>
R blocked_reduce(std::size_t n, R init, const Block& block, const Combine& combine) {
  constexpr std::size_t kMinBlocksPerThread = 8;  // 32Ki elements: as kDefaultGrain
  const std::size_t blocks = (n + kReduceBlock - 1) / kReduceBlock;
  if (blocks <= 1) return n == 0 ? init : combine(init, block(std::size_t{0}, n));
  std::vector<R> partial(blocks);
  const auto one = [&](std::size_t k) { partial[k] = block(k * kReduceBlock, std::min(n, (k + 1) * kReduceBlock)); };
  const int threads = static_cast<int>(
      std::min<std::size_t>(static_cast<std::size_t>(max_threads()), std::max<std::size_t>(1, blocks / kMinBlocksPerThread)));
  // A few runs of consecutive blocks per thread (the pool's threads claim them), so one thread that starts
  // late leaves its share to the others.
  const std::size_t runs = std::min(blocks, static_cast<std::size_t>(threads) * 8);
  parallel_chunks(runs, threads, [&](std::size_t c) {
    for (std::size_t k = blocks * c / runs; k < blocks * (c + 1) / runs; ++k) one(k);
  });
  R r = init;
  for (const R& p : partial) r = combine(r, p);
  return r;
}

inline double add(double a, double b) noexcept { return a + b; }

}  // namespace impl

// x . y, accumulated in double and rounded once to T.
template <class T>
T flat_dot(const T* x, const T* y, std::size_t n) {
  return static_cast<T>(impl::blocked_reduce(
      n, 0.0,
      [&](std::size_t b, std::size_t e) { return impl::block_dot(x, y, b, e); },
      impl::add));
}

// update(b, e) over fixed blocks [b, e) of [0, n), each block followed by the partial sum of x . y over it:
// x . y after the update, in one pass over the memory, rounded exactly as flat_dot after a separate update
// (the same blocks, summed in the same order). update must be element-wise (any split gives the same).
template <class T, class Update>
T flat_update_dot(std::size_t n, const Update& update, const T* x, const T* y) {
  return static_cast<T>(impl::blocked_reduce(
      n, 0.0,
      [&](std::size_t b, std::size_t e) {
        update(b, e);
        return impl::block_dot(x, y, b, e);
      },
      impl::add));
}

// sum |x|, accumulated in double and rounded once to T.
template <class T>
T flat_abs_sum(const T* x, std::size_t n) {
  return static_cast<T>(impl::blocked_reduce(
      n, 0.0,
      [&](std::size_t b, std::size_t e) {
        return impl::block_sum(b, e, [&](std::size_t i) { return static_cast<double>(std::fabs(x[i])); });
      },
      impl::add));
}

// max |x|, NaN if any element is NaN (torch's max propagates NaN). Exact, so any split gives the same.
template <class T>
T flat_abs_max(const T* x, std::size_t n) {
  const auto nan_max_of = [](T a, T b) { return nan_max(a, b); };
  return impl::blocked_reduce(
      n, T(0),
      [&](std::size_t b, std::size_t e) { return impl::block_abs_max(x, b, e); },
      nan_max_of);
}

// ------------------------------------------------------------------------------------ element-wise

// out = a - b
template <class T>
void flat_sub(T* out, const T* a, const T* b, std::size_t n) {
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) out[i] = a[i] - b[i];
  });
}

// out = a
template <class T>
void flat_copy(T* out, const T* a, std::size_t n) {
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) { std::copy(a + lo, a + hi, out + lo); });
}

// out = a * s (torch's mul by a scalar: one rounding per element)
template <class T>
void flat_scale(T* out, const T* a, T s, std::size_t n) {
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) out[i] = mul_rounded(a[i], s);
  });
}

// y = y + alpha * x, fused as torch's add_(x, alpha=...) is on the CPU.
template <class T>
void flat_axpy(T* y, const T* x, T alpha, std::size_t n) {
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) y[i] = fmadd(x[i], alpha, y[i]);
  });
}

// ------------------------------------------------------------------------------ strong Wolfe search

// torch's _cubic_interpolate (from torch/optim's polyinterp.lua): the minimizer of the cubic through
// (x1, f1, g1) and (x2, f2, g2), clamped to the bounds (the bracket by default).
template <class T>
LBFGSNum<T> cubic_interpolate(LBFGSNum<T> x1, LBFGSNum<T> f1, LBFGSNum<T> g1, LBFGSNum<T> x2, LBFGSNum<T> f2,
                              LBFGSNum<T> g2, const std::optional<std::pair<LBFGSNum<T>, LBFGSNum<T>>>& bounds = {}) {
  using N = LBFGSNum<T>;
  N xmin_bound, xmax_bound;
  if (bounds) {
    xmin_bound = bounds->first;
    xmax_bound = bounds->second;
  } else if (x1 <= x2) {
    xmin_bound = x1;
    xmax_bound = x2;
  } else {
    xmin_bound = x2;
    xmax_bound = x1;
  }
  const N three = N::py(3), two = N::py(2);
  const N d1 = g1 + g2 - three * (f1 - f2) / (x1 - x2);
  const N d2_square = d1 * d1 - g1 * g2;
  if (d2_square >= N::py(0)) {
    // torch calls .sqrt() on it, so it is a tensor here (the g's always are).
    const N d2 = d2_square.tensor ? N::of(std::sqrt(d2_square.as_t())) : N::py(std::sqrt(d2_square.v));
    N min_pos;
    if (x1 <= x2)
      min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + two * d2));
    else
      min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + two * d2));
    return py_min(py_max(min_pos, xmin_bound), xmax_bound);
  }
  return (xmin_bound + xmax_bound) / N::py(2.0);
}

template <class T>
struct WolfeResult {
  double f;
  std::vector<T> g;
  LBFGSNum<T> t;
  std::int64_t func_evals;
};

// torch's _strong_wolfe (from torch/optim's lswolfe.lua). obj(t) returns the loss and flat gradient at
// x + t * d as a std::pair; f, g and gtd are those at t = 0. (torch's LBFGS passes max_ls only: the line
// search's tolerance_change stays 1e-9 whatever the optimizer's is.)
template <class T, class Obj>
WolfeResult<T> strong_wolfe(const Obj& obj, LBFGSNum<T> t, const std::vector<T>& d, double f, std::vector<T> g,
                            T gtd_value, std::int64_t max_ls, double c1 = 1e-4, double c2 = 0.9,
                            double tolerance_change = 1e-9) {
  using N = LBFGSNum<T>;
  const std::size_t n = d.size();
  const N fN = N::py(f), gtd = N::of(gtd_value), c1N = N::py(c1), neg_c2 = N::py(-c2), zero = N::py(0);
  const N tol = N::py(tolerance_change);
  const N d_norm = N::of(flat_abs_max(d.data(), n));

  double f_new;
  std::vector<T> g_new;
  std::tie(f_new, g_new) = obj(t);
  std::int64_t ls_func_evals = 1;
  N gtd_new = N::of(flat_dot(g_new.data(), d.data(), n));

  // bracket an interval containing a point satisfying the Wolfe criteria
  N t_prev = zero, gtd_prev = gtd;
  double f_prev = f;
  std::vector<T> g_prev = g;
  bool done = false;
  std::int64_t ls_iter = 0;
  N bracket[2], bracket_gtd[2];
  double bracket_f[2] = {0, 0};
  std::vector<T> bracket_g[2];
  std::size_t bracket_size = 0;
  const auto set_bracket = [&](std::size_t size, N t0, double f0, std::vector<T> g0, N gtd0, N t1, double f1,
                               std::vector<T> g1, N gtd1) {
    bracket_size = size;
    bracket[0] = t0, bracket_f[0] = f0, bracket_g[0] = std::move(g0), bracket_gtd[0] = gtd0;
    bracket[1] = t1, bracket_f[1] = f1, bracket_g[1] = std::move(g1), bracket_gtd[1] = gtd1;
  };
  while (ls_iter < max_ls) {
    // check conditions
    if (N::py(f_new) > fN + c1N * t * gtd || (ls_iter > 1 && f_new >= f_prev)) {
      set_bracket(2, t_prev, f_prev, std::move(g_prev), gtd_prev, t, f_new, std::move(g_new), gtd_new);
      break;
    }
    if (num_abs(gtd_new) <= neg_c2 * gtd) {
      set_bracket(1, t, f_new, std::move(g_new), gtd_new, N{}, 0.0, {}, N{});
      done = true;
      break;
    }
    if (gtd_new >= zero) {
      set_bracket(2, t_prev, f_prev, std::move(g_prev), gtd_prev, t, f_new, std::move(g_new), gtd_new);
      break;
    }
    // interpolate
    const N min_step = t + N::py(0.01) * (t - t_prev);
    const N max_step = t * N::py(10);
    const N tmp = t;
    t = cubic_interpolate<T>(t_prev, N::py(f_prev), gtd_prev, t, N::py(f_new), gtd_new, std::make_pair(min_step, max_step));
    // next step
    t_prev = tmp;
    f_prev = f_new;
    g_prev = std::move(g_new);
    gtd_prev = gtd_new;
    std::tie(f_new, g_new) = obj(t);
    ls_func_evals += 1;
    gtd_new = N::of(flat_dot(g_new.data(), d.data(), n));
    ls_iter += 1;
  }
  // reached max number of iterations? (bracket_gtd is not read again then: the zoom loop is skipped)
  if (ls_iter == max_ls) set_bracket(2, zero, f, std::move(g), bracket_gtd[0], t, f_new, std::move(g_new), bracket_gtd[1]);
  if (bracket_size == 0) throw std::logic_error("LBFGS line search got a negative evaluation budget (max_eval)");

  // zoom phase: we now have a point satisfying the criteria, or a bracket around it. We refine the
  // bracket until we find the exact point satisfying the criteria.
  bool insuf_progress = false;
  // find high and low points in bracket (bracket_f[-1] is bracket_f[0] for a one-point bracket)
  std::size_t low_pos = 0, high_pos = 1;
  if (!(bracket_f[0] <= bracket_f[bracket_size - 1])) low_pos = 1, high_pos = 0;
  while (!done && ls_iter < max_ls) {
    // line-search bracket is so small
    if (num_abs(bracket[1] - bracket[0]) * d_norm < tol) break;

    // compute new trial value
    t = cubic_interpolate<T>(bracket[0], N::py(bracket_f[0]), bracket_gtd[0], bracket[1], N::py(bracket_f[1]),
                          bracket_gtd[1]);

    // test that we are making sufficient progress: if `t` is so close to a boundary that we made
    // insufficient progress last time too, or `t` is at a boundary, move `t` to 0.1 * len(bracket) away
    // from the nearest boundary point.
    const N hi = py_max(bracket[0], bracket[1]), lo = py_min(bracket[0], bracket[1]);
    const N eps = N::py(0.1) * (hi - lo);
    if (py_min(hi - t, t - lo) < eps) {
      // interpolation close to boundary
      if (insuf_progress || t >= hi || t <= lo) {
        // evaluate at 0.1 away from boundary
        t = num_abs(t - hi) < num_abs(t - lo) ? hi - eps : lo + eps;
        insuf_progress = false;
      } else {
        insuf_progress = true;
      }
    } else {
      insuf_progress = false;
    }

    // Evaluate new point
    std::tie(f_new, g_new) = obj(t);
    ls_func_evals += 1;
    gtd_new = N::of(flat_dot(g_new.data(), d.data(), n));
    ls_iter += 1;

    if (N::py(f_new) > fN + c1N * t * gtd || f_new >= bracket_f[low_pos]) {
      // Armijo condition not satisfied or not lower than lowest point
      bracket[high_pos] = t;
      bracket_f[high_pos] = f_new;
      bracket_g[high_pos] = std::move(g_new);
      bracket_gtd[high_pos] = gtd_new;
      if (bracket_f[0] <= bracket_f[1])
        low_pos = 0, high_pos = 1;
      else
        low_pos = 1, high_pos = 0;
    } else {
      if (num_abs(gtd_new) <= neg_c2 * gtd) {
        // Wolfe conditions satisfied
        done = true;
      } else if (gtd_new * (bracket[high_pos] - bracket[low_pos]) >= zero) {
        // old high becomes new low
        bracket[high_pos] = bracket[low_pos];
        bracket_f[high_pos] = bracket_f[low_pos];
        bracket_g[high_pos] = bracket_g[low_pos];
        bracket_gtd[high_pos] = bracket_gtd[low_pos];
      }
      // new point becomes new low
      bracket[low_pos] = t;
      bracket_f[low_pos] = f_new;
      bracket_g[low_pos] = std::move(g_new);
      bracket_gtd[low_pos] = gtd_new;
    }
  }
  // A one-point bracket with a NaN loss has low_pos 1: torch then indexes past its bracket list (an
  // IndexError); we raise the same instead of reading past ours.
  if (low_pos >= bracket_size)
    throw std::out_of_range("list index out of range (LBFGS strong_wolfe line search: the loss is NaN)");
  return WolfeResult<T>{bracket_f[low_pos], std::move(bracket_g[low_pos]), bracket[low_pos], ls_func_evals};
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
