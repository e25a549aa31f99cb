#pragma once
// SparseAdam update rule (torch.optim.SparseAdam / torch.optim._functional.sparse_adam, torch 2.13): Adam
// restricted to the rows of the leading dimension that a sparse gradient holds. A gradient is given as
// (indices, values): values[k] is the gradient of row indices[k] (row_size elements each). As torch's
// grad.coalesce(), rows listed more than once are summed in the order torch's CPU coalesce() sorts them
// into (see sparse_rows); rows not listed keep their parameter and moments untouched. For each element of each listed row:
//   g <- maximize ? -g : g
//   m' = m + (g - m) * (1 - beta1);  v' = v + (g * g - v) * (1 - beta2)     (each operation rounds in T)
//   p <- p + (-step_size) * (m' / (sqrt(v') + eps)),  step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
// The step count t advances for every parameter given a gradient, even an empty one (torch's behaviour).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct SparseAdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  bool maximize = false;
};

FASTOPTIM_ISA_BEGIN

template <class T>
struct SparseAdamScalars {
  T one_minus_beta1, one_minus_beta2, eps, neg_step_size;
  bool maximize;

  // `step` is the step count after increment (1 on the first update).
  SparseAdamScalars(const SparseAdamHyper& h, double step)
      : one_minus_beta1(static_cast<T>(1.0 - h.beta1)),
        one_minus_beta2(static_cast<T>(1.0 - h.beta2)),
        eps(static_cast<T>(h.eps)),
        maximize(h.maximize) {
    const double bias_correction1 = 1.0 - std::pow(h.beta1, step);
    const double bias_correction2 = 1.0 - std::pow(h.beta2, step);
    neg_step_size = static_cast<T>(-(h.lr * std::sqrt(bias_correction2) / bias_correction1));
  }
};

// One parameter's step: a (rows x row_size) parameter, its moments, and its gradient rows.
template <class T>
struct SparseAdamTensor {
  T* param;
  T* exp_avg;
  T* exp_avg_sq;
  std::size_t row_size;
  const std::int64_t* indices;  // nnz rows, each in [0, rows) (callers check)
  const T* values;              // nnz * row_size elements
  std::size_t nnz;
  SparseAdamScalars<T> s;
};

// The distinct rows of a sparse gradient (torch's coalesce): distinct row u is rows[u], and its gradient is
// the sum of the value rows at positions position(start[u]), ..., position(start[u + 1] - 1), in that order.
// torch's CPU coalesce() orders the entries with an unstable std::sort by row (introsort: a repeated row's
// entries keep the order given only in gradients of up to 16 entries), so we sort the positions the same way,
// and the sums round as torch's do (checked against torch in tests/test_fuzz_torch.py).
struct SparseRows {
  std::vector<std::int64_t> rows;
  std::vector<std::size_t> start;  // rows.size() + 1 entries
  std::vector<std::size_t> order;  // positions sorted by row as torch does; empty when indices strictly increase

  std::size_t position(std::size_t k) const noexcept { return order.empty() ? k : order[k]; }
  std::size_t count() const noexcept { return rows.size(); }
};

inline SparseRows sparse_rows(const std::int64_t* indices, std::size_t nnz) {
  SparseRows r;
  bool increasing = true;
  for (std::size_t k = 1; k < nnz && increasing; ++k) increasing = indices[k - 1] < indices[k];
  if (!increasing) {
    r.order.resize(nnz);
    for (std::size_t k = 0; k < nnz; ++k) r.order[k] = k;
    std::sort(r.order.begin(), r.order.end(), [&](std::size_t a, std::size_t b) { return indices[a] < indices[b]; });
  }
  r.start.reserve(nnz + 1);
  for (std::size_t k = 0; k < nnz; ++k) {
    const std::int64_t row = indices[r.position(k)];
    if (r.rows.empty() || r.rows.back() != row) {
      r.rows.push_back(row);
      r.start.push_back(k);
    }
  }
  r.start.push_back(nnz);
  return r;
}

namespace impl {

template <class T, bool kMaximize>
inline void sparse_adam_row(T* FASTOPTIM_RESTRICT param, T* FASTOPTIM_RESTRICT exp_avg, T* FASTOPTIM_RESTRICT exp_avg_sq,
                            const T* FASTOPTIM_RESTRICT grad, std::size_t n, const SparseAdamScalars<T>& s) noexcept {
  const T omb1 = s.one_minus_beta1, omb2 = s.one_minus_beta2, eps = s.eps, neg_step = s.neg_step_size;
  for (std::size_t j = 0; j < n; ++j) {
    const T g = kMaximize ? -grad[j] : grad[j];
    const T m = exp_avg[j], v = exp_avg_sq[j];
    // torch forms each update value, then adds it: mul_rounded keeps a contracting compiler from fusing.
    const T m_new = m + mul_rounded(g - m, omb1);
    const T v_new = v + mul_rounded(mul_rounded(g, g) - v, omb2);
    exp_avg[j] = m_new;
    exp_avg_sq[j] = v_new;
    param[j] = param[j] + mul_rounded(neg_step, m_new / (std::sqrt(v_new) + eps));
  }
}

}  // namespace impl

// Updates elements [begin, end) of the distinct rows' concatenation (row u holds elements u * row_size ...
// (u + 1) * row_size - 1): elementwise, so any split gives the same bits.
template <class T>
void sparse_adam_range(const SparseAdamTensor<T>& a, const SparseRows& r, std::size_t begin, std::size_t end) {
  const std::size_t d = a.row_size;
  std::vector<T> summed;  // a duplicated row's coalesced gradient
  for (std::size_t k = begin; k < end;) {
    const std::size_t u = k / d, j0 = k % d, n = std::min(d - j0, end - k);
    const std::size_t offset = static_cast<std::size_t>(r.rows[u]) * d + j0;
    const T* grad = a.values + r.position(r.start[u]) * d + j0;
    if (r.start[u + 1] - r.start[u] > 1) {
      summed.assign(grad, grad + n);
      for (std::size_t q = r.start[u] + 1; q < r.start[u + 1]; ++q) {
        const T* more = a.values + r.position(q) * d + j0;
        for (std::size_t j = 0; j < n; ++j) summed[j] = summed[j] + more[j];
      }
      grad = summed.data();
    }
    if (a.s.maximize)
      impl::sparse_adam_row<T, true>(a.param + offset, a.exp_avg + offset, a.exp_avg_sq + offset, grad, n, a.s);
    else
      impl::sparse_adam_row<T, false>(a.param + offset, a.exp_avg + offset, a.exp_avg_sq + offset, grad, n, a.s);
    k += n;
  }
}

// Scalar reference: one parameter's whole step on the calling thread.
template <class T>
void sparse_adam_update_ref(const SparseAdamTensor<T>& a) {
  const SparseRows r = sparse_rows(a.indices, a.nnz);
  sparse_adam_range(a, r, 0, r.count() * a.row_size);
}

// One SparseAdam step over `count` parameters: rows coalesced per parameter, then every updated element of
// every parameter split across threads at once.
template <class T>
void sparse_adam_step(const SparseAdamTensor<T>* items, std::size_t count, std::size_t grain = kDefaultGrain) {
  std::vector<SparseRows> rows;
  rows.reserve(count);
  for (std::size_t i = 0; i < count; ++i) rows.push_back(sparse_rows(items[i].indices, items[i].nnz));
  parallel_for_items(
      count, [&](std::size_t i) { return rows[i].count() * items[i].row_size; }, grain,
      [&](std::size_t i, std::size_t b, std::size_t e) { sparse_adam_range(items[i], rows[i], b, e); });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
