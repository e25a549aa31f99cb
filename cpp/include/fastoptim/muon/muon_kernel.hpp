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
// before the one rounding to bfloat16; we do the same, with our own GEMM (impl::gemm_bf16) for the
// products. Results then differ from torch's only where the two float accumulation orders round to
// different sides of a bfloat16 rounding boundary (a few elements in ten thousand, one bfloat16 ulp each;
// tests/test_muon.py).
//
// Determinism: every element of a product is the same float sum, in the same order, whatever the
// instruction set the header is compiled for, its vector width, the blocking and the thread count (see
// impl::gemm_bf16), so results depend on none of them. The Python extension compiles Muon once per
// instruction set, each into its own extension module (fastoptim._muon_<tier>,
// cpp/bindings/muon_module.cpp); its AVX-512 module also holds the bfloat16 dot-product kernel, used on CPUs
// with AVX512-BF16.

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__SSE2__) || defined(__AVX__))
#include <immintrin.h>
#endif

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

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

// ------------------------------------------------------------------------------------------ GEMM
//
// C (m x n) = A (m x k) * B (k x n) in float for bfloat16-valued A and B; A and C column-major, B
// column-major or row-major. Every element of C is the sequential sum over the depths taken in pairs,
// the odd depth of each pair first:
//   c = ((((0 + a_1 b_1) + a_0 b_0) + a_3 b_3) + a_2 b_2) + ...   (an odd k ends with a_{k-1} b_{k-1}),
// each product and each sum rounded to float, whatever the instruction set, the vector width, the
// blocking and the thread count: a vector lane holds one element of C, the k-blocks (of even length) carry
// the running sum in C itself (never summing partial sums), and tiles at the edges run the same kernel on a
// padded copy. Results therefore do not depend on the tier the header is compiled for nor on the thread
// count. The pair order is the one AVX512-BF16's dot product (VDPBF16PS) sums in: each instruction adds
// a_{2q+1} b_{2q+1}, then a_{2q} b_{2q}, to a float lane, rounding each sum.
//
// Three kernels (GemmPath), one result. A product of two bfloat16 values has at most 16 significant bits,
// so it is exact in float unless it underflows below 2^-126 or overflows, and then round(c + a b)
// computed by an FMA equals round(c + round(a b)): where the instruction set has FMA, a product uses it
// when the operands' magnitude ranges (gemm_range) show that every product is exact
// (gemm_products_exact). VDPBF16PS also treats subnormal inputs and sums as zero; when, besides, every
// input is normal and every nonzero product is at least 2^-111 (gemm_dot_exact), every product is a
// multiple of 2^-126, so is every rounded partial sum, and none is subnormal: the dot-product kernel then
// computes the same bits too, twice as fast. Otherwise the separate multiply and add run, as the tiers
// without FMA always do. (A compiler that fuses on its own, -ffp-contract=fast, could change only the
// rounding of tiny or huge products.)

using GemmIndex = std::ptrdiff_t;

// The bfloat16 dot-product kernel: compiled in when the target has AVX512-BF16 (always used then), or,
// with FASTOPTIM_MUON_BF16_DISPATCH defined (the Python extension's AVX-512 module), compiled for it by a
// function attribute and used when the CPU has it.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__) && defined(__AVX512BF16__)
#define FASTOPTIM_MUON_DOT 1
#define FASTOPTIM_MUON_DOT_TARGET
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__) && defined(FASTOPTIM_MUON_BF16_DISPATCH)
#define FASTOPTIM_MUON_DOT 1
#define FASTOPTIM_MUON_DOT_TARGET __attribute__((target("avx512bf16")))
#else
#define FASTOPTIM_MUON_DOT 0
#endif

enum class GemmPath { plain, fused, dot };  // separate multiply and add; FMA; VDPBF16PS

#if FASTOPTIM_MUON_DOT
// Whether gemm_path may choose the dot-product kernel (tests switch it off to compare the kernels).
inline std::atomic<bool>& gemm_dot_enabled() noexcept {
#if defined(__AVX512BF16__)
  static std::atomic<bool> on{true};
#else
  static std::atomic<bool> on{(__builtin_cpu_init(), __builtin_cpu_supports("avx512bf16") != 0)};
#endif
  return on;
}
#endif

#if defined(__AVX512F__)
#define FASTOPTIM_MUON_LANES 16
inline constexpr int kGemmNr = 12;  // 24 accumulators of the 32 zmm registers
#elif defined(__AVX__)
#define FASTOPTIM_MUON_LANES 8
inline constexpr int kGemmNr = 6;   // 12 accumulators of the 16 ymm registers
#else
#define FASTOPTIM_MUON_LANES 4
inline constexpr int kGemmNr = 6;
#endif
inline constexpr int kGemmLanes = FASTOPTIM_MUON_LANES;
inline constexpr int kGemmMr = 2 * kGemmLanes;  // rows of a register tile: two vectors
// Cache blocking: a kc x nr panel of B stays in L1, an mc x kc block of A in L2, a kc x nc block of B in
// L3. Changing them changes the speed only.
inline constexpr GemmIndex kGemmKc = 256, kGemmMc = 192, kGemmNc = 1536;
static_assert(kGemmMc % kGemmMr == 0 && kGemmNc % kGemmNr == 0, "blocks of whole register tiles");

#if defined(__GNUC__) || defined(__clang__)
typedef float GemmVec __attribute__((vector_size(FASTOPTIM_MUON_LANES * sizeof(float))));
#else
struct GemmVec {
  float v[kGemmLanes];
  float& operator[](int i) { return v[i]; }
  friend GemmVec operator*(GemmVec a, const GemmVec& b) {
    for (int i = 0; i < kGemmLanes; ++i) a.v[i] *= b.v[i];
    return a;
  }
  friend GemmVec operator+(GemmVec a, const GemmVec& b) {
    for (int i = 0; i < kGemmLanes; ++i) a.v[i] += b.v[i];
    return a;
  }
};
#endif
#undef FASTOPTIM_MUON_LANES

inline GemmVec gemm_load(const float* p) noexcept {
  GemmVec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void gemm_store(float* p, const GemmVec& v) noexcept { std::memcpy(p, &v, sizeof v); }
#if (defined(__GNUC__) || defined(__clang__)) && defined(__FMA__) && (defined(__AVX512F__) || defined(__AVX__))
inline constexpr bool kGemmHasFma = true;
#else
inline constexpr bool kGemmHasFma = false;
#endif

// c + a * b: fused (one rounding) when kFused, else the product and the sum each rounded.
template <bool kFused>
inline GemmVec gemm_madd(const GemmVec& a, const GemmVec& b, const GemmVec& c) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__FMA__) && defined(__AVX512F__)
  if constexpr (kFused) return _mm512_fmadd_ps(a, b, c);
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__FMA__) && defined(__AVX__)
  if constexpr (kFused) return _mm256_fmadd_ps(a, b, c);
#endif
  const GemmVec product = a * b;
  return c + product;
}

inline GemmVec gemm_broadcast(float s) noexcept {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__AVX512F__)
  return _mm512_set1_ps(s);
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__AVX__)
  return _mm256_set1_ps(s);
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__SSE2__)
  return _mm_set1_ps(s);
#else
  GemmVec v;
  for (int l = 0; l < kGemmLanes; ++l) v[l] = s;
  return v;
#endif
}

// The kMr x kNr tile c (column-major, leading dimension ldc) += a (kc x kMr, packed) * b (kc x kNr,
// packed), starting from zero instead of c when !accumulate.
template <bool kFused>
inline void gemm_tile(GemmIndex kc, const float* FASTOPTIM_RESTRICT a, const float* FASTOPTIM_RESTRICT b,
                      float* FASTOPTIM_RESTRICT c, GemmIndex ldc, bool accumulate) noexcept {
  GemmVec acc[kGemmNr][2];
  for (int j = 0; j < kGemmNr; ++j)
    for (int v = 0; v < 2; ++v) {
      acc[j][v] = accumulate ? gemm_load(c + j * ldc + v * kGemmLanes) : GemmVec{};
    }
  for (GemmIndex p = 0; p < kc; ++p) {
    const GemmVec a0 = gemm_load(a + p * kGemmMr), a1 = gemm_load(a + p * kGemmMr + kGemmLanes);
    for (int j = 0; j < kGemmNr; ++j) {
      const GemmVec bj = gemm_broadcast(b[p * kGemmNr + j]);
      acc[j][0] = gemm_madd<kFused>(a0, bj, acc[j][0]);
      acc[j][1] = gemm_madd<kFused>(a1, bj, acc[j][1]);
    }
  }
  for (int j = 0; j < kGemmNr; ++j)
    for (int v = 0; v < 2; ++v) gemm_store(c + j * ldc + v * kGemmLanes, acc[j][v]);
}

#if FASTOPTIM_MUON_DOT
// gemm_tile with VDPBF16PS: a and b hold pairs of bfloat16 values (gemm_pair), `pairs` depth pairs.
FASTOPTIM_MUON_DOT_TARGET inline void gemm_tile_dot(GemmIndex pairs, const float* FASTOPTIM_RESTRICT a,
                                                    const float* FASTOPTIM_RESTRICT b, float* FASTOPTIM_RESTRICT c,
                                                    GemmIndex ldc, bool accumulate) noexcept {
  static_assert(kGemmLanes == 16, "one zmm register per 16 rows");
  __m512 acc[kGemmNr][2];
  for (int j = 0; j < kGemmNr; ++j)
    for (int v = 0; v < 2; ++v) acc[j][v] = accumulate ? _mm512_loadu_ps(c + j * ldc + v * 16) : _mm512_setzero_ps();
  for (GemmIndex q = 0; q < pairs; ++q) {
    const auto a0 = (__m512bh)_mm512_loadu_si512(a + q * kGemmMr);
    const auto a1 = (__m512bh)_mm512_loadu_si512(a + q * kGemmMr + 16);
    for (int j = 0; j < kGemmNr; ++j) {
      std::int32_t pair;
      std::memcpy(&pair, b + q * kGemmNr + j, sizeof pair);
      const auto bj = (__m512bh)_mm512_set1_epi32(pair);
      acc[j][0] = _mm512_dpbf16_ps(acc[j][0], a0, bj);
      acc[j][1] = _mm512_dpbf16_ps(acc[j][1], a1, bj);
    }
  }
  for (int j = 0; j < kGemmNr; ++j)
    for (int v = 0; v < 2; ++v) _mm512_storeu_ps(c + j * ldc + v * 16, acc[j][v]);
}
#endif

// Packing. A k-block of kc depths is packed as gemm_padded(kc) (even) depths: depth p at position p ^ 1,
// so the tiles, which run through positions in order, take each pair's odd depth first; an odd block gets
// a zero depth (a zero product, which changes no sum: sums start at +0 and never become -0) before its
// last one. For the dot-product kernel (kPairs), each pair of depths is packed as one 32-bit slot
// (gemm_pair), held in float storage: the positions go half as far.
inline GemmIndex gemm_padded(GemmIndex kc) noexcept { return kc + (kc & 1); }

// Two bfloat16-valued floats as VDPBF16PS's operand: `even` in the low half, `odd` in the high one.
inline float gemm_pair(float even, float odd) noexcept {
  std::uint32_t lo, hi;
  std::memcpy(&lo, &even, sizeof lo);
  std::memcpy(&hi, &odd, sizeof hi);
  const std::uint32_t bits = (lo >> 16) | (hi & 0xFFFF0000u);
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// The packed value at position q of a block whose depths p are read by at(p) (zero past kc).
template <bool kPairs, class At>
inline float gemm_packed(GemmIndex q, GemmIndex kc, const At& at) noexcept {
  if (kPairs) return gemm_pair(at(2 * q), 2 * q + 1 < kc ? at(2 * q + 1) : 0.0f);
  const GemmIndex p = q ^ 1;
  return p < kc ? at(p) : 0.0f;
}

// Rows [i0, i0 + mc) and depths [p0, p0 + kc) of column-major A (leading dimension lda) as micro-panels of
// kMr rows, each (packed depths) x kMr row-major, rows past m zero.
template <bool kPairs>
void gemm_pack_a(const float* A, GemmIndex lda, GemmIndex m, GemmIndex i0, GemmIndex mc, GemmIndex p0, GemmIndex kc,
                 float* out) noexcept {
  const GemmIndex positions = kPairs ? gemm_padded(kc) / 2 : gemm_padded(kc);
  for (GemmIndex i = 0; i < mc; i += kGemmMr) {
    const GemmIndex rows = std::min<GemmIndex>(kGemmMr, m - i0 - i);
    const float* src = A + (i0 + i) + p0 * lda;
    for (GemmIndex q = 0; q < positions; ++q, out += kGemmMr) {
      for (GemmIndex r = 0; r < rows; ++r)
        out[r] = gemm_packed<kPairs>(q, kc, [&](GemmIndex p) { return src[r + p * lda]; });
      std::fill(out + rows, out + kGemmMr, 0.0f);
    }
  }
}

// Columns [j0, j0 + nc) and depths [p0, p0 + kc) of B as micro-panels of kNr columns, each (packed
// depths) x kNr row-major, columns past n zero. B(p, j) is B[p + j * ldb] (column-major) or B[p * ldb + j]
// (row-major).
template <bool kRowMajor, bool kPairs>
void gemm_pack_b(const float* B, GemmIndex ldb, GemmIndex n, GemmIndex j0, GemmIndex nc, GemmIndex p0, GemmIndex kc,
                 float* out) noexcept {
  const GemmIndex positions = kPairs ? gemm_padded(kc) / 2 : gemm_padded(kc);
  for (GemmIndex j = 0; j < nc; j += kGemmNr) {
    const GemmIndex cols = std::min<GemmIndex>(kGemmNr, n - j0 - j);
    if (kRowMajor) {  // a depth's columns are consecutive
      const float* src = B + p0 * ldb + j0 + j;
      for (GemmIndex q = 0; q < positions; ++q) {
        for (GemmIndex t = 0; t < cols; ++t)
          out[q * kGemmNr + t] = gemm_packed<kPairs>(q, kc, [&](GemmIndex p) { return src[p * ldb + t]; });
        std::fill(out + q * kGemmNr + cols, out + (q + 1) * kGemmNr, 0.0f);
      }
    } else {  // a column's depths are
      for (GemmIndex t = 0; t < kGemmNr; ++t) {
        const float* src = B + p0 + (j0 + j + t) * ldb;
        for (GemmIndex q = 0; q < positions; ++q)
          out[q * kGemmNr + t] = t < cols ? gemm_packed<kPairs>(q, kc, [&](GemmIndex p) { return src[p]; }) : 0.0f;
      }
    }
    out += positions * kGemmNr;
  }
}

// Floats of packing scratch one thread needs.
inline constexpr std::size_t kGemmScratch = static_cast<std::size_t>(kGemmMc * kGemmKc + kGemmKc * kGemmNc);

// Where a product's float result goes, rounded to bfloat16 (torch's bf16 mm / addmm epilogue):
//   c == nullptr:  out = bf16(acc)  (acc itself when !round: tests read the float sums so)
//   otherwise:     out = bf16(alpha * acc + beta * c), each product and the sum rounded in float
// out and c are column-major with C's shape; c may be out (each element is read before it is written),
// and may be an operand of the product only where the threads' column ranges keep it safe (newton_schulz).
struct GemmOut {
  float* out;
  const float* c;
  float alpha, beta;
  bool round = true;
};

inline float gemm_finish(const GemmOut& o, float acc, std::size_t index) noexcept {
  if (!o.c) return o.round ? bf16_round(acc) : acc;
  return bf16_round(mul_rounded(o.alpha, acc) + mul_rounded(o.beta, o.c[index]));
}

// gemm_finish for `rows` consecutive elements from `index` on, their sums at `sums`; the cases as separate
// loops, which vectorize (c == out, in place, reads each element through one pointer).
inline void gemm_finish_run(const GemmOut& o, const float* FASTOPTIM_RESTRICT sums, std::size_t index,
                            GemmIndex rows) noexcept {
  float* out = o.out + index;
  if (!o.c) {
    if (o.round)
      for (GemmIndex r = 0; r < rows; ++r) out[r] = bf16_round(sums[r]);
    else
      std::memcpy(out, sums, static_cast<std::size_t>(rows) * sizeof(float));
  } else if (o.c == o.out) {
    for (GemmIndex r = 0; r < rows; ++r) out[r] = bf16_round(mul_rounded(o.alpha, sums[r]) + mul_rounded(o.beta, out[r]));
  } else {
    const float* FASTOPTIM_RESTRICT c = o.c + index;
    float* FASTOPTIM_RESTRICT dst = out;
    for (GemmIndex r = 0; r < rows; ++r) dst[r] = bf16_round(mul_rounded(o.alpha, sums[r]) + mul_rounded(o.beta, c[r]));
  }
}

// Columns [jb, je) of C, on the calling thread; scratch holds kGemmScratch floats. When symmetric (C is
// known to be symmetric), only the register tiles that reach the diagonal or above are computed. Each
// tile, once its last k-block is summed, goes to o (see GemmOut); C holds the float sums.
template <bool kRhsRowMajor, GemmPath kPath>
void gemm_columns(GemmIndex m, GemmIndex n, GemmIndex k, const float* A, const float* B, float* C, GemmIndex jb,
                  GemmIndex je, bool symmetric, const GemmOut& o, float* scratch) noexcept {
  constexpr bool kPairs = kPath == GemmPath::dot;
  const auto tile = [](GemmIndex positions, const float* a, const float* b, float* c, GemmIndex ldc, bool accumulate) {
#if FASTOPTIM_MUON_DOT
    if constexpr (kPairs) return gemm_tile_dot(positions, a, b, c, ldc, accumulate);
#endif
    gemm_tile<kPath == GemmPath::fused>(positions, a, b, c, ldc, accumulate);
  };
  const GemmIndex ldb = kRhsRowMajor ? n : k;
  float* packed_a = scratch;
  float* packed_b = scratch + kGemmMc * kGemmKc;
  alignas(64) float edge[kGemmMr * kGemmNr];
  for (GemmIndex jc = jb; jc < je; jc += kGemmNc) {
    const GemmIndex nc = std::min(kGemmNc, je - jc);
    // rows at or above the diagonal of these columns
    const GemmIndex m_used = symmetric ? std::min(m, jc + nc) : m;
    for (GemmIndex pc = 0; pc < k; pc += kGemmKc) {
      const GemmIndex kc = std::min(kGemmKc, k - pc);
      const bool accumulate = pc > 0, last = pc + kc == k;
      const GemmIndex positions = kPairs ? gemm_padded(kc) / 2 : gemm_padded(kc);
      gemm_pack_b<kRhsRowMajor, kPairs>(B, ldb, n, jc, nc, pc, kc, packed_b);
      for (GemmIndex ic = 0; ic < m_used; ic += kGemmMc) {
        const GemmIndex mc = std::min(kGemmMc, m_used - ic);
        gemm_pack_a<kPairs>(A, m, m, ic, mc, pc, kc, packed_a);
        for (GemmIndex jr = 0; jr < nc; jr += kGemmNr) {
          const GemmIndex cols = std::min<GemmIndex>(kGemmNr, nc - jr);
          const float* b = packed_b + jr * positions;
          for (GemmIndex ir = 0; ir < mc; ir += kGemmMr) {
            const GemmIndex i = ic + ir, j = jc + jr;
            if (symmetric && i >= j + cols) break;  // this tile and the ones below lie under the diagonal
            const GemmIndex rows = std::min<GemmIndex>(kGemmMr, m - i);
            const float* a = packed_a + ir * positions;
            float* c = C + i + j * m;
            const float* sums = c;
            GemmIndex ld = m;
            if (rows == kGemmMr && cols == kGemmNr) {
              tile(positions, a, b, c, m, accumulate);
            } else {
              // an edge tile: the same kernel on a padded copy
              if (accumulate)
                for (GemmIndex q = 0; q < cols; ++q)
                  std::memcpy(edge + q * kGemmMr, c + q * m, static_cast<std::size_t>(rows) * sizeof(float));
              tile(positions, a, b, edge, kGemmMr, accumulate);
              if (!last)
                for (GemmIndex q = 0; q < cols; ++q)
                  std::memcpy(c + q * m, edge + q * kGemmMr, static_cast<std::size_t>(rows) * sizeof(float));
              sums = edge;
              ld = kGemmMr;
            }
            if (last)
              for (GemmIndex q = 0; q < cols; ++q)
                gemm_finish_run(o, sums + q * ld, static_cast<std::size_t>(i + (j + q) * m), rows);
          }
        }
      }
    }
  }
}

// The magnitudes of a float matrix: the smallest nonzero and the largest, as bit patterns of |x| (ordered
// as the values; a largest pattern of 0x7F800000 or more means an infinity or NaN).
struct GemmRange {
  std::uint32_t min_nonzero = 0xFFFFFFFFu, max = 0;
};

inline GemmRange gemm_range(const float* x, std::size_t n) noexcept {
  // integer min/max over |x|'s bits vectorize; 0 - 1 wraps to the largest pattern, out of the minimum
  std::uint32_t lo = 0xFFFFFFFFu, hi = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    bits &= 0x7FFFFFFFu;
    lo = std::min(lo, bits - 1u);
    hi = std::max(hi, bits);
  }
  GemmRange r;
  r.min_nonzero = lo + 1u;  // back to the smallest nonzero pattern (0 when all are zero)
  r.max = hi;
  return r;
}

// Whether every product of an element of one matrix and one of the other is exact in float: none
// underflows below 2^-126 (nonzero ones), none overflows, and no infinity or NaN.
inline bool gemm_products_exact(const GemmRange& a, const GemmRange& b) noexcept {
  constexpr std::uint32_t kInf = 0x7F800000u;
  if (a.max >= kInf || b.max >= kInf) return false;
  if (a.max == 0 || b.max == 0) return true;  // all products are zero
  const auto value = [](std::uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return static_cast<double>(f);
  };
  return value(a.min_nonzero) * value(b.min_nonzero) >= 0x1p-126 && value(a.max) * value(b.max) < 0x1p126;
}

// Whether, besides, the dot-product kernel computes the same bits (see the GEMM's comment): every nonzero
// input normal, every nonzero product at least 2^-111.
inline bool gemm_dot_exact(const GemmRange& a, const GemmRange& b) noexcept {
  if (!gemm_products_exact(a, b)) return false;
  if (a.max == 0 || b.max == 0) return true;
  constexpr std::uint32_t kMinNormal = 0x00800000u;
  float x, y;
  std::memcpy(&x, &a.min_nonzero, sizeof x);
  std::memcpy(&y, &b.min_nonzero, sizeof y);
  return a.min_nonzero >= kMinNormal && b.min_nonzero >= kMinNormal &&
         static_cast<double>(x) * static_cast<double>(y) >= 0x1p-111;
}

// The fastest kernel that computes the sequential sums for operands of these ranges.
inline GemmPath gemm_path(const GemmRange& a, const GemmRange& b) noexcept {
#if FASTOPTIM_MUON_DOT
  if (gemm_dot_enabled().load(std::memory_order_relaxed) && gemm_dot_exact(a, b)) return GemmPath::dot;
#endif
  return kGemmHasFma && gemm_products_exact(a, b) ? GemmPath::fused : GemmPath::plain;
}

// C = A * B (see above); symmetric: C is known to be symmetric (X X^T, or G G with G symmetric), so only
// its upper triangle is computed and then mirrored (the lower element is the same sum of the same
// products in the same order, so the copy is bit-identical to computing it). The bfloat16 results go to o
// (GemmOut); C (m x n floats) is scratch for the sums. path: the kernel, gemm_path of the operands' ranges
// (or plain; fused needs exact products, dot gemm_dot_exact ones and a CPU with AVX512-BF16). scratch: the
// packing buffers, grown to threads * kGemmScratch floats by the caller (nothing here allocates).
template <bool kRhsRowMajor>
void gemm_bf16(GemmIndex m, GemmIndex n, GemmIndex k, const float* A, const float* B, float* C, bool symmetric,
               const GemmOut& o, GemmPath path, float* scratch, int threads) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(m * n); ++i) o.out[i] = gemm_finish(o, 0.0f, i);
    return;
  }
  // Threads split the columns (results do not depend on the split); a symmetric product's work per column
  // grows with the column, so its cuts follow sqrt. A thread per ~32 Mflop at least (~0.3 ms of products:
  // smaller pieces cost more in waking and joining workers than they save; measured on 250 x 400).
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  threads = static_cast<int>(std::min<double>({static_cast<double>(threads), std::max(1.0, flops / (1 << 25)),
                                               static_cast<double>((n + kGemmNr - 1) / kGemmNr)}));
  const auto cut = [&](int t, int nt) -> GemmIndex {
    if (t >= nt) return n;
    const double f = static_cast<double>(t) / nt;
    const double x = static_cast<double>(n) * (symmetric ? std::sqrt(f) : f);
    return std::min(n, static_cast<GemmIndex>(x / kGemmNr + 0.5) * kGemmNr);
  };
  auto columns = &gemm_columns<kRhsRowMajor, GemmPath::plain>;
  if (kGemmHasFma && path == GemmPath::fused) columns = &gemm_columns<kRhsRowMajor, GemmPath::fused>;
#if FASTOPTIM_MUON_DOT
  if (path == GemmPath::dot) columns = &gemm_columns<kRhsRowMajor, GemmPath::dot>;
#endif
  // the lower triangle of o.out from the upper one, in cache-sized blocks; a block column per call
  constexpr GemmIndex kMirror = 64;
  const GemmIndex mirror_blocks = symmetric ? (n + kMirror - 1) / kMirror : 0;
  const auto mirror = [&](GemmIndex block) {
    const GemmIndex jb = block * kMirror;
    for (GemmIndex ib = jb; ib < m; ib += kMirror)
      for (GemmIndex j = jb; j < std::min(n, jb + kMirror); ++j)
        for (GemmIndex i = std::max(ib, j + 1); i < std::min(m, ib + kMirror); ++i) o.out[i + j * m] = o.out[j + i * m];
  };
  if (threads <= 1) {
    columns(m, n, k, A, B, C, 0, n, symmetric, o, scratch);
    for (GemmIndex b = 0; b < mirror_blocks; ++b) mirror(b);
    return;
  }
  // One piece of the columns per thread, each with its own packing scratch (a thread that starts late leaves
  // its piece to the others, scratch and all); then the mirror's block columns.
  const auto nt = static_cast<std::size_t>(threads);
  parallel_chunks(nt, threads, [&](std::size_t t) {
    columns(m, n, k, A, B, C, cut(static_cast<int>(t), threads), cut(static_cast<int>(t) + 1, threads), symmetric, o,
            scratch + t * kGemmScratch);
  });
  parallel_chunks(static_cast<std::size_t>(mirror_blocks), threads,
                  [&](std::size_t b) { mirror(static_cast<GemmIndex>(b)); });
}

}  // namespace impl

// Scratch buffers of one orthogonalization, reused across calls.
struct MuonWorkspace {
  std::vector<float> x, gram, update, acc, pack;

  // Grows every buffer to what a (rows, cols) parameter needs with `threads` threads, so an update of at
  // most that size allocates nothing (call it for the largest parameter before updating any).
  void reserve(std::size_t rows, std::size_t cols, int threads) {
    const std::size_t n = rows * cols, r = std::min(rows, cols);
    if (x.size() < n) x.resize(n);
    if (gram.size() < r * r) gram.resize(r * r);
    if (update.size() < r * r) update.resize(r * r);
    if (acc.size() < std::max(r * r, n)) acc.resize(std::max(r * r, n));
    const std::size_t scratch = static_cast<std::size_t>(std::max(threads, 1)) * impl::kGemmScratch;
    if (pack.size() < scratch) pack.resize(scratch);
  }
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
  // One element: torch's norm is |x| exactly (sqrt(x * x) underflows for |x| < ~1e-19).
  const float norm = n == 1 ? std::fabs(X[0]) : bf16_round(std::sqrt(static_cast<float>(sum)));
  const float floor = to_bf16(eps);
  const float divisor = norm < floor ? floor : norm;  // clamp(min=eps), NaN propagating
  parallel_for(n, kDefaultGrain, [&](std::size_t lo, std::size_t hi) {
    for (std::size_t i = lo; i < hi; ++i) X[i] = bf16_round(X[i] / divisor);
  });

  const float a = static_cast<float>(abc[0]), b = static_cast<float>(abc[1]), c = static_cast<float>(abc[2]);
  const auto R = static_cast<impl::GemmIndex>(r), K = static_cast<impl::GemmIndex>(k);
  const int threads = max_threads();
  ws.reserve(r, k, threads);
  float* pack = ws.pack.data();
  for (std::int64_t s = 0; s < steps; ++s) {
    // gram = X @ X.T (symmetric; X^T is X read row-major)
    const impl::GemmRange x_range = impl::gemm_range(X, n);
    impl::gemm_bf16<true>(R, R, K, X, X, ws.acc.data(), true, {ws.gram.data(), nullptr, 1.0f, 0.0f},
                          impl::gemm_path(x_range, x_range), pack, threads);
    // update = addmm(gram, gram, gram, beta=b, alpha=c) (gram is symmetric, so reading it row-major is
    // reading it; gram @ gram is symmetric)
    const impl::GemmRange gram_range = impl::gemm_range(ws.gram.data(), r * r);
    impl::gemm_bf16<true>(R, R, R, ws.gram.data(), ws.gram.data(), ws.acc.data(), true,
                          {ws.update.data(), ws.gram.data(), c, b}, impl::gemm_path(gram_range, gram_range), pack,
                          threads);
    // X = addmm(X, update, X, beta=a), in place: a thread reads (packs) and writes only its own columns of X,
    // and writes a column block only after its last packing
    impl::gemm_bf16<false>(R, K, R, ws.update.data(), X, ws.acc.data(), false, {X, X, 1.0f, a},
                           impl::gemm_path(impl::gemm_range(ws.update.data(), r * r), x_range), pack, threads);
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
  ws.reserve(rows, cols, max_threads());
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
