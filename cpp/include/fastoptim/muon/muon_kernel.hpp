#pragma once
// Muon's update rule (torch.optim.Muon of torch 2.13, torch/optim/_muon.py, single-tensor path), for one
// 2-D parameter of shape (rows, cols):
//   buf <- lerp(buf, g, 1 - momentum)
//   u   <- nesterov ? lerp(g, buf, momentum) : buf
//   O   <- NS(u): Newton-Schulz orthogonalization, in bfloat16 as torch does on every device and dtype
//   p   <- p * (1 - lr * weight_decay)
//   p   <- p - adjusted_lr * O,   adjusted_lr = lr * (original: sqrt(max(1, rows / cols)),
//                                                     match_rms_adamw: 0.2 * sqrt(max(rows, cols)))
//
// NS, as torch's _zeropower_via_newtonschulz: X = bf16(u), transposed to (r, k) with r <= k;
// X <- X / max(||X||_F, eps); then ns_steps times
//   G <- X X^T;   U <- b G + c G G;   X <- a X + U X
// with every matrix rounded to bfloat16. torch's CPU bfloat16 products (oneDNN, or ATen's fallback)
// multiply exactly (a bf16 product fits a float) and accumulate in float, applying alpha/beta in float
// before the one rounding to bfloat16; we do the same, with Eigen's float GEMM for the products. Results
// then differ from torch's only where the two float accumulation orders round to different sides of a
// bfloat16 rounding boundary (a few elements in ten thousand, one bfloat16 ulp each; tests/test_muon.py).
//
// Determinism: the products run in Eigen's serial GEMM kernel over fixed panels of kPanel columns, split
// across threads by panel, so results do not depend on the thread count. They do depend on the
// instruction set the header is compiled for (Eigen's kernels differ), which is why the Python extension
// compiles Muon once. This header is the only one in fastoptim that includes Eigen (3.4).

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

#if !EIGEN_VERSION_AT_LEAST(3, 4, 0) || EIGEN_VERSION_AT_LEAST(3, 4, 90)
#error "fastoptim's Muon calls Eigen 3.4's serial GEMM kernel; it needs Eigen 3.4"
#endif

namespace fastoptim {

enum class MuonAdjustLR { original, match_rms_adamw };

struct MuonHyper {
  double lr = 1e-3;
  double weight_decay = 0.1;
  double momentum = 0.95;
  bool nesterov = true;
  // Keller Jordan's quintic coefficients (a, b, c), as torch's defaults.
  std::array<double, 3> ns_coefficients{3.4445, -4.7750, 2.0315};
  double eps = 1e-7;
  std::int64_t ns_steps = 5;
  MuonAdjustLR adjust_lr_fn = MuonAdjustLR::original;  // torch's None means "original"
};

// torch's _adjust_lr: lr scaled so the orthogonalized update has a consistent RMS across shapes.
inline double muon_adjusted_lr(double lr, MuonAdjustLR fn, std::size_t rows, std::size_t cols) noexcept {
  const double A = static_cast<double>(rows), B = static_cast<double>(cols);
  const double ratio = fn == MuonAdjustLR::original ? std::sqrt(std::max(1.0, A / B)) : 0.2 * std::sqrt(std::max(A, B));
  return lr * ratio;
}

FASTOPTIM_ISA_BEGIN

// ------------------------------------------------------------------------------------------ bfloat16

// x rounded to the nearest bfloat16 (ties to even), as c10::BFloat16; NaN stays NaN.
inline float bf16_round(float x) noexcept {
  if (x != x) return std::numeric_limits<float>::quiet_NaN();
  std::uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  bits &= 0xFFFF0000u;
  std::memcpy(&x, &bits, sizeof bits);
  return x;
}

// torch's tensor.bfloat16(): a double goes through float first, as c10::BFloat16's constructor does.
template <class T>
inline float to_bf16(T x) noexcept {
  return bf16_round(static_cast<float>(x));
}

namespace impl {

using EigenIndex = Eigen::Index;

// Columns of each product computed by one serial GEMM call. Fixed, so the split never depends on the
// thread count; a multiple of every Eigen register block width.
inline constexpr EigenIndex kMuonPanel = 128;

// C (m x n) = A (m x k) * B (k x n) in float, all column-major except B when kRhsRowMajor. Runs Eigen's
// GEMM kernel directly: Eigen's public product would split big products across its own OpenMP threads
// and size its blocks by the thread count, which changes the rounding.
template <bool kRhsRowMajor>
void gemm_f32(EigenIndex m, EigenIndex n, EigenIndex k, const float* A, const float* B, float* C) {
  constexpr int kRhsOrder = kRhsRowMajor ? Eigen::RowMajor : Eigen::ColMajor;
  using Gemm = Eigen::internal::general_matrix_matrix_product<EigenIndex, float, Eigen::ColMajor, false, float,
                                                                kRhsOrder, false, Eigen::ColMajor, 1>;
  using Blocking = Eigen::internal::gemm_blocking_space<Eigen::ColMajor, float, float, Eigen::Dynamic, Eigen::Dynamic,
                                                        Eigen::Dynamic>;
  const EigenIndex ldb = kRhsRowMajor ? n : k;
  const EigenIndex panels = (n + kMuonPanel - 1) / kMuonPanel;
  const auto panel = [&](EigenIndex p) {
    const EigenIndex j0 = p * kMuonPanel, cols = std::min(kMuonPanel, n - j0);
    float* c = C + j0 * m;
    std::fill(c, c + cols * m, 0.0f);
    const float* b = kRhsRowMajor ? B + j0 : B + j0 * k;
    Blocking blocking(m, cols, k, 1, true);
    Gemm::run(m, cols, k, A, m, b, ldb, c, 1, m, 1.0f, blocking, nullptr);
  };
  // A thread per panel once a panel is worth ~1 Mflop.
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const int threads = static_cast<int>(std::min<double>({static_cast<double>(max_threads()), static_cast<double>(panels),
                                                         std::max(1.0, flops / (1 << 20))}));
  if (threads <= 1) {
    for (EigenIndex p = 0; p < panels; ++p) panel(p);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (EigenIndex p = 0; p < panels; ++p) panel(p);
#endif
}

// out[i] = bf16(alpha * acc[i] + beta * c[i]) in float, each operation rounded (as oneDNN's output scale
// and sum post-op; with alpha = 1 the product is exact).
inline void bf16_axpby(float* out, const float* acc, float alpha, const float* c, float beta, std::size_t n) {
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) out[i] = bf16_round(mul_rounded(alpha, acc[i]) + mul_rounded(beta, c[i]));
  });
}

}  // namespace impl

// Scratch buffers of one orthogonalization, reused across calls.
struct MuonWorkspace {
  std::vector<float> x, gram, update, acc;
};

// torch's _zeropower_via_newtonschulz on X, an (r, k) column-major matrix of bfloat16 values held in
// float, r <= k; in place.
inline void newton_schulz_bf16(float* X, std::size_t r, std::size_t k, const std::array<double, 3>& abc, double eps,
                               std::int64_t steps, MuonWorkspace& ws) {
  const std::size_t n = r * k;
  // Ensure spectral norm is at most 1: X / clamp(bf16(||X||), min=eps). torch's norm accumulates in
  // float; we do in double, then round as it does.
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(X[i]) * static_cast<double>(X[i]);
  const float norm = bf16_round(std::sqrt(static_cast<float>(sum)));
  const float floor = to_bf16(eps);
  const float divisor = norm < floor ? floor : norm;  // clamp(min=eps), NaN propagating
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) X[i] = bf16_round(X[i] / divisor);
  });

  const float a = static_cast<float>(abc[0]), b = static_cast<float>(abc[1]), c = static_cast<float>(abc[2]);
  const auto R = static_cast<impl::EigenIndex>(r), K = static_cast<impl::EigenIndex>(k);
  ws.gram.resize(r * r);
  ws.update.resize(r * r);
  ws.acc.resize(std::max(r * r, n));
  for (std::int64_t s = 0; s < steps; ++s) {
    // gram = X @ X.T
    impl::gemm_f32<true>(R, R, K, X, X, ws.acc.data());
    parallel_for(r * r, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) ws.gram[i] = bf16_round(ws.acc[i]);
    });
    // update = addmm(gram, gram, gram, beta=b, alpha=c)
    impl::gemm_f32<false>(R, R, R, ws.gram.data(), ws.gram.data(), ws.acc.data());
    impl::bf16_axpby(ws.update.data(), ws.acc.data(), c, ws.gram.data(), b, r * r);
    // X = addmm(X, update, X, beta=a)
    impl::gemm_f32<false>(R, K, R, ws.update.data(), X, ws.acc.data());
    impl::bf16_axpby(X, ws.acc.data(), 1.0f, X, a, n);
  }
}

// One Muon update of a (rows, cols) row-major parameter; buf is its momentum buffer.
template <class T>
void muon_update(T* param, const T* grad, T* buf, std::size_t rows, std::size_t cols, const MuonHyper& h,
                 MuonWorkspace& ws) {
  const std::size_t n = rows * cols;
  if (n == 0) return;
  const T w_buf = static_cast<T>(1.0 - h.momentum), w_nesterov = static_cast<T>(h.momentum);
  // bf16(u) as the (r, k) column-major X with r <= k: a row-major (rows, cols) matrix is a column-major
  // (cols, rows) one, which is X when rows > cols (torch transposes then) and X^T otherwise.
  const bool transposed = rows > cols;
  const std::size_t r = transposed ? cols : rows, k = transposed ? rows : cols;
  ws.x.resize(n);
  float* X = ws.x.data();
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      const T b = lerp(buf[i], grad[i], w_buf);
      buf[i] = b;
      const T u = h.nesterov ? lerp(grad[i], b, w_nesterov) : b;
      const std::size_t row = i / cols, col = i % cols;
      X[transposed ? i : col * rows + row] = to_bf16(u);
    }
  });
  newton_schulz_bf16(X, r, k, h.ns_coefficients, h.eps, h.ns_steps, ws);

  // Python rounds lr * weight_decay before subtracting it from 1.
  const T decay = static_cast<T>(1.0 - mul_rounded(h.lr, h.weight_decay));
  const T alpha = static_cast<T>(-muon_adjusted_lr(h.lr, h.adjust_lr_fn, rows, cols));
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) {
      const std::size_t row = i / cols, col = i % cols;
      const T o = static_cast<T>(X[transposed ? i : col * rows + row]);
      param[i] = fmadd(o, alpha, mul_rounded(param[i], decay));
    }
  });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
