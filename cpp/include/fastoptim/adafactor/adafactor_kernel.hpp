#pragma once
// Adafactor update rule (torch.optim.Adafactor, single-tensor path of torch 2.13; Shazeer & Stern 2018,
// "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", https://arxiv.org/abs/1804.04235):
//   g <- maximize ? -g : g;  t <- t + 1
//   w = t^beta2_decay (= 1 - beta2_t);  rho = min(lr, 1 / t^0.5);  alpha = max(eps2, ||p|| / n^0.5) * rho
//   p <- p * (1 - lr * wd)                                            (when wd != 0, after ||p|| is taken)
//   >= 2-D, factored over the last two dimensions (R rows, C columns) of each matrix b of the leading ones:
//     row_var[b,i] <- lerp(row_var[b,i], ||g[b,i,:]||^2 / C, w)
//     col_var[b,j] <- lerp(col_var[b,j], ||g[b,:,j]||^2 / R, w)
//     V[b,i,j] = row_var[b,i] * col_var[b,j] / max(sum_i row_var[b,i] / R, eps1)
//   <= 1-D:  variance <- lerp(variance, g * g, w);  V = variance
//   U = g * rsqrt(max(V, eps1^2));  p <- p + (-alpha / max(1, ||U|| / (n^0.5 * d))) * U
// Scalars (w, rho, alpha, the clipping) are Python floats in torch, so double here; every tensor operation
// rounds in T in torch's order: a norm is sqrt of the sum of squares rounded to T, then squared and divided
// in T (torch.norm(g, dim=-1).square_().div_(C)), rsqrt is 1 / sqrt, `add_(U, alpha=s)` is one FMA.
//
// Reductions. torch's summation order depends on its vector width and thread count; ours depends on the
// shape alone, so results do not depend on the thread count, and are nearly correctly rounded: squares are
// summed in double (a float32 square is exact in double; float64 squares are fused into the sum), and the
// sum is rounded to T once. The order, fixed by the shape:
//   * a parameter of at most one dimension is cut into blocks of kAdafactorBlock consecutive elements;
//   * a factored parameter is cut, in each matrix, into tiles of adafactor_tiling(R, C) rows x columns;
//   * a row segment (a block, or a tile's part of a row) is summed with 8 interleaved partial sums
//     (element k of the segment into sum k mod 8), combined as ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7));
//   * a tile's column sums add its rows top to bottom; its total adds its row segments top to bottom;
//   * pieces are combined in order: a row's sum over its tiles left to right, a column's top to bottom,
//     a whole-tensor sum (||p||, ||U||) over blocks or tiles in (matrix, row tile, column tile) order;
//   * sum_i row_var[b,i] is one segment of R values.
// torch's sums round in T as they go (float32 accumulators for float32), so ours differ from its by its own
// rounding error: a few ulps of a norm, each costing well under an ulp of the parameter (tests/parity.py
// compares the trajectories with the spread of torch's own implementations).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "../core/config.hpp"
#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct AdafactorHyper {
  double lr = 1e-2;
  double beta2_decay = -0.8;
  // torch's eps = (eps1, eps2). eps1 unset (torch's None): the machine epsilon of the dtype
  // (torch.finfo(dtype).eps) of the group's first parameter stepped.
  std::optional<double> eps1{};
  double eps2 = 1e-3;
  double d = 1.0;
  double weight_decay = 0.0;
  bool maximize = false;
};

// How Adafactor sees a parameter: `batch` matrices of `rows` x `cols` (factored: two or more dimensions,
// the last two are rows and columns), or a vector of `cols` elements (at most one dimension; batch = rows = 1).
// row_var holds batch * rows elements, col_var batch * cols (torch's shapes (..., R, 1) and (..., 1, C)).
struct AdafactorShape {
  std::size_t batch = 1, rows = 1, cols = 0;
  bool factored = false;
};

// Elements per block of a parameter of at most one dimension (its reductions' summation order).
inline constexpr std::size_t kAdafactorBlock = std::size_t{1} << 14;

FASTOPTIM_ISA_BEGIN

inline std::size_t numel(const AdafactorShape& s) noexcept { return s.batch * s.rows * s.cols; }

// The tile of a factored parameter's reductions: about kAdafactorBlock elements, at least 64 rows when the
// matrix has them (the column partial sums of all tiles take batch * C * ceil(R / tile_rows) doubles) and at
// least 256 columns when it has them (row partials take batch * R * ceil(C / tile_cols)).
struct AdafactorTiling {
  std::size_t tile_rows, tile_cols, row_tiles, col_tiles;

  AdafactorTiling(std::size_t rows, std::size_t cols) noexcept {
    const std::size_t min_rows = cols >= 256 ? 64 : std::max<std::size_t>(64, kAdafactorBlock / std::max<std::size_t>(cols, 1));
    tile_rows = std::max<std::size_t>(1, std::min(rows, min_rows));
    tile_cols = std::max<std::size_t>(1, std::min(cols, std::max<std::size_t>(256, kAdafactorBlock / tile_rows)));
    row_tiles = (rows + tile_rows - 1) / tile_rows;
    col_tiles = (cols + tile_cols - 1) / tile_cols;
  }
  std::size_t per_matrix() const noexcept { return row_tiles * col_tiles; }
};

// The shape from a parameter's dimensions (as torch: factored when it has more than one).
inline AdafactorShape adafactor_shape(const std::size_t* dims, std::size_t ndim) noexcept {
  AdafactorShape s;
  if (ndim < 2) {
    s.cols = ndim == 0 ? 1 : dims[0];
    return s;
  }
  s.factored = true;
  for (std::size_t k = 0; k + 2 < ndim; ++k) s.batch *= dims[k];
  s.rows = dims[ndim - 2];
  s.cols = dims[ndim - 1];
  return s;
}

template <class T>
struct AdafactorScalars {
  T weight;            // 1 - beta2_t = t^beta2_decay, the lerp weight
  T eps1, eps1_sq;     // the row-mean clamp and the variance clamp
  T decay;             // 1 - lr * weight_decay
  bool small_weight, maximize, use_decay;
  double rho, eps2, d;

  // `step` is the step count after increment (1 on the first update); `eps1` the value torch uses (eps[0], or
  // the dtype's epsilon when that is None).
  AdafactorScalars(const AdafactorHyper& h, double step, double eps1_value)
      : weight(static_cast<T>(std::pow(step, h.beta2_decay))),
        eps1(static_cast<T>(eps1_value)),
        eps1_sq(static_cast<T>(eps1_value * eps1_value)),
        decay(static_cast<T>(1.0 - mul_rounded(h.lr, h.weight_decay))),  // Python rounds the product first
        small_weight(lerp_weight_is_small(weight)),
        maximize(h.maximize),
        use_decay(h.weight_decay != 0.0),
        eps2(h.eps2),
        d(h.d) {
    const double inv_sqrt_step = 1.0 / std::pow(step, 0.5);
    rho = inv_sqrt_step < h.lr ? inv_sqrt_step : h.lr;  // Python's min(lr, 1 / step**0.5)
  }
};

// One parameter's step: its arrays (row_var and col_var when factored, else variance; the others null).
template <class T>
struct AdafactorTensor {
  T* param;
  const T* grad;
  T* row_var;
  T* col_var;
  T* variance;
  AdafactorShape shape;
  AdafactorScalars<T> s;
};

namespace impl {

// acc + x * x in double. A float's square is exact in double, so fusing it or not gives the same bits; a
// double's is fused explicitly (the same under any -ffp-contract).
inline double add_square(double acc, float x) noexcept {
  const double y = x;
  return acc + y * y;
}
inline double add_square(double acc, double x) noexcept { return fmadd(x, x, acc); }

inline double combine_lanes(const double* s) noexcept {
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// Sum of f(k)^2 over k in [0, n): element k into partial sum k mod 8 (vectorizable), combined pairwise.
template <class F>
inline double sum_squares(std::size_t n, const F& f) noexcept {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (std::size_t l = 0; l < 8; ++l) s[l] = add_square(s[l], f(k + l));
  for (std::size_t l = 0; k + l < n; ++l) s[l] = add_square(s[l], f(k + l));
  return combine_lanes(s);
}

// Sum of x[0..n) in double, in the same lane order.
template <class T>
inline double sum_values(const T* x, std::size_t n) noexcept {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (std::size_t l = 0; l < 8; ++l) s[l] += static_cast<double>(x[k + l]);
  for (std::size_t l = 0; k + l < n; ++l) s[l] += static_cast<double>(x[k + l]);
  return combine_lanes(s);
}

// torch.norm(x).square_().div_(n) from the exact-ish sum of squares: sqrt and square round in T.
template <class T>
inline T mean_square(double sum_sq, std::size_t n) noexcept {
  const T norm = std::sqrt(static_cast<T>(sum_sq));
  return (norm * norm) / static_cast<T>(n);
}

// The update U, elementwise, exactly as torch rounds it (V clamped at eps1^2, rsqrt as 1 / sqrt).
template <class T>
inline T factored_update(T g, T r, T c, T mean, T eps1_sq) noexcept {
  const T v = (r * c) / mean;  // (row_var @ col_var).div_(mean)
  return g * (T(1) / std::sqrt(nan_max(v, eps1_sq)));
}
template <class T>
inline T vector_update(T g, T v, T eps1_sq) noexcept {
  return g * (T(1) / std::sqrt(nan_max(v, eps1_sq)));
}

template <bool kMaximize, class T>
inline T signed_grad(T g) noexcept {
  return kMaximize ? -g : g;
}

// Calls body(k) for every task k < count, each on one thread; tasks are spread over threads by `cost` (their
// element counts), in contiguous runs. Runs on the calling thread when the total is below one grain.
template <class Cost, class Body>
void parallel_for_tasks(std::size_t count, const Cost& cost, std::size_t grain, const Body& body) {
  std::vector<std::size_t> start(count + 1, 0);
  for (std::size_t k = 0; k < count; ++k) start[k + 1] = start[k] + cost(k);
  const std::size_t total = start[count];
  const std::size_t max_useful = grain == 0 ? count : std::max<std::size_t>(1, total / grain);
  const int threads = static_cast<int>(std::min({static_cast<std::size_t>(max_threads()), max_useful, count}));
  if (threads <= 1) {
    for (std::size_t k = 0; k < count; ++k) body(k);
    return;
  }
  // Run c takes the tasks whose first element lies in its share of the total; a few runs per thread, so one
  // thread that starts late leaves its share to the others.
  const std::size_t runs = std::min(count, static_cast<std::size_t>(threads) * 4);
  parallel_chunks(runs, threads, [&](std::size_t c) {
    const std::size_t lo = total * c / runs, hi = total * (c + 1) / runs;
    std::size_t k = static_cast<std::size_t>(std::lower_bound(start.begin(), start.end() - 1, lo) - start.begin());
    for (; k < count && start[k] < hi; ++k) body(k);
  });
}

// Per-parameter scratch of one step: partial sums (one slot per block or tile), then the scalars they give.
template <class T>
struct AdafactorScratch {
  std::vector<double> param_parts, update_parts;  // per piece (block or tile)
  std::vector<double> row_parts, col_parts;       // factored: [(b * R + i) * col_tiles + ct], [(b * C + j) * row_tiles + rt]
  std::vector<T> means;                           // factored: max(sum_i row_var[b,i] / R, eps1), per matrix
  double alpha = 0;
  T scale = 0;
};

// A unit of reduction work: piece `piece` of parameter `item` (a block, or tile (b, rt, ct) in that order).
struct AdafactorTask {
  std::size_t item, piece;
};

inline std::size_t adafactor_pieces(const AdafactorShape& sh) noexcept {
  if (!sh.factored) return (numel(sh) + kAdafactorBlock - 1) / kAdafactorBlock;
  return sh.batch * AdafactorTiling(sh.rows, sh.cols).per_matrix();
}

struct TileBox {
  std::size_t b, rt, ct, i0, i1, j0, j1;
};

inline TileBox tile_box(const AdafactorShape& sh, const AdafactorTiling& tl, std::size_t piece) noexcept {
  TileBox box{};
  box.b = piece / tl.per_matrix();
  const std::size_t in_matrix = piece % tl.per_matrix();
  box.rt = in_matrix / tl.col_tiles;
  box.ct = in_matrix % tl.col_tiles;
  box.i0 = box.rt * tl.tile_rows;
  box.i1 = std::min(sh.rows, box.i0 + tl.tile_rows);
  box.j0 = box.ct * tl.tile_cols;
  box.j1 = std::min(sh.cols, box.j0 + tl.tile_cols);
  return box;
}

inline std::size_t piece_cost(const AdafactorShape& sh, std::size_t piece) noexcept {
  if (!sh.factored) return std::min(kAdafactorBlock, numel(sh) - piece * kAdafactorBlock);
  const TileBox box = tile_box(sh, AdafactorTiling(sh.rows, sh.cols), piece);
  return (box.i1 - box.i0) * (box.j1 - box.j0);
}

// Pass 1 over one piece: the parameter's sum of squares; for a factored parameter the row and column sums
// of g^2, for a vector the variance update (elementwise).
template <class T, bool kMaximize>
void adafactor_pass1(const AdafactorTensor<T>& a, AdafactorScratch<T>& sc, std::size_t piece) noexcept {
  const AdafactorShape& sh = a.shape;
  if (!sh.factored) {
    const std::size_t b = piece * kAdafactorBlock, n = std::min(kAdafactorBlock, numel(sh) - b);
    const T* FASTOPTIM_RESTRICT p = a.param + b;
    const T* FASTOPTIM_RESTRICT g = a.grad + b;
    T* FASTOPTIM_RESTRICT v = a.variance + b;
    sc.param_parts[piece] = sum_squares(n, [&](std::size_t k) { return p[k]; });
    const T w = a.s.weight;
    with_flag(a.s.small_weight, [&](auto small) {
      for (std::size_t k = 0; k < n; ++k) {
        const T gk = signed_grad<kMaximize>(g[k]);
        v[k] = lerp_fixed<decltype(small)::value>(v[k], mul_rounded(gk, gk), w);  // grad * grad rounds
      }
    });
    return;
  }
  const AdafactorTiling tl(sh.rows, sh.cols);
  const TileBox box = tile_box(sh, tl, piece);
  const std::size_t R = sh.rows, C = sh.cols, width = box.j1 - box.j0;
  const std::size_t matrix = box.b * R * C;
  double* FASTOPTIM_RESTRICT col = sc.col_parts.data();
  const std::size_t col_base = box.b * C, col_stride = tl.row_tiles;
  // The tile's column sums, accumulated row by row in a local buffer (contiguous, so vectorizable).
  std::vector<double> cols(width, 0.0);
  double param_total = 0;
  for (std::size_t i = box.i0; i < box.i1; ++i) {
    const T* FASTOPTIM_RESTRICT g = a.grad + matrix + i * C + box.j0;
    const T* FASTOPTIM_RESTRICT p = a.param + matrix + i * C + box.j0;
    param_total += sum_squares(width, [&](std::size_t k) { return p[k]; });
    sc.row_parts[(box.b * R + i) * tl.col_tiles + box.ct] = sum_squares(width, [&](std::size_t k) { return g[k]; });
    double* FASTOPTIM_RESTRICT acc = cols.data();
    for (std::size_t k = 0; k < width; ++k) acc[k] = add_square(acc[k], g[k]);
  }
  for (std::size_t k = 0; k < width; ++k) col[(col_base + box.j0 + k) * col_stride + box.rt] = cols[k];
  sc.param_parts[piece] = param_total;
}

// Between the passes (serial, O(batch * (R + C)) per parameter): alpha, and for a factored parameter the
// row and column factors and the clamped row mean of each matrix.
template <class T>
void adafactor_factors(const AdafactorTensor<T>& a, AdafactorScratch<T>& sc) noexcept {
  const AdafactorShape& sh = a.shape;
  const AdafactorScalars<T>& s = a.s;
  double sum_p = 0;
  for (double part : sc.param_parts) sum_p += part;
  const double numel_sqrt = std::pow(static_cast<double>(numel(sh)), 0.5);
  // torch's norm of one element is |x| exactly (sqrt(x * x) would overflow or underflow near the range's ends).
  const T norm = numel(sh) == 1 ? std::abs(a.param[0]) : std::sqrt(static_cast<T>(sum_p));
  const double rms = static_cast<double>(norm) / numel_sqrt;
  sc.alpha = (rms > s.eps2 ? rms : s.eps2) * s.rho;  // Python's max(eps2, rms) * rho_t
  if (!sh.factored) return;
  const AdafactorTiling tl(sh.rows, sh.cols);
  const std::size_t R = sh.rows, C = sh.cols;
  with_flag(s.small_weight, [&](auto small) {
    constexpr bool kSmall = decltype(small)::value;
    for (std::size_t r = 0; r < sh.batch * R; ++r) {
      double sum = 0;
      for (std::size_t ct = 0; ct < tl.col_tiles; ++ct) sum += sc.row_parts[r * tl.col_tiles + ct];
      a.row_var[r] = lerp_fixed<kSmall>(a.row_var[r], mean_square<T>(sum, C), s.weight);
    }
    for (std::size_t c = 0; c < sh.batch * C; ++c) {
      double sum = 0;
      for (std::size_t rt = 0; rt < tl.row_tiles; ++rt) sum += sc.col_parts[c * tl.row_tiles + rt];
      a.col_var[c] = lerp_fixed<kSmall>(a.col_var[c], mean_square<T>(sum, R), s.weight);
    }
  });
  for (std::size_t b = 0; b < sh.batch; ++b) {
    const T mean = static_cast<T>(sum_values(a.row_var + b * R, R)) / static_cast<T>(R);
    sc.means[b] = nan_max(mean, s.eps1);  // clamp_(min=eps1) keeps NaN
  }
}

// Pass 2 over one piece: the sum of U^2.
template <class T, bool kMaximize>
void adafactor_pass2(const AdafactorTensor<T>& a, AdafactorScratch<T>& sc, std::size_t piece) noexcept {
  const AdafactorShape& sh = a.shape;
  const T eps1_sq = a.s.eps1_sq;
  if (!sh.factored) {
    const std::size_t b = piece * kAdafactorBlock, n = std::min(kAdafactorBlock, numel(sh) - b);
    const T* FASTOPTIM_RESTRICT g = a.grad + b;
    const T* FASTOPTIM_RESTRICT v = a.variance + b;
    sc.update_parts[piece] =
        sum_squares(n, [&](std::size_t k) { return vector_update(signed_grad<kMaximize>(g[k]), v[k], eps1_sq); });
    return;
  }
  const AdafactorTiling tl(sh.rows, sh.cols);
  const TileBox box = tile_box(sh, tl, piece);
  const std::size_t R = sh.rows, C = sh.cols, width = box.j1 - box.j0;
  const T mean = sc.means[box.b];
  const T* FASTOPTIM_RESTRICT col = a.col_var + box.b * C + box.j0;
  double total = 0;
  for (std::size_t i = box.i0; i < box.i1; ++i) {
    const T* FASTOPTIM_RESTRICT g = a.grad + box.b * R * C + i * C + box.j0;
    const T r = a.row_var[box.b * R + i];
    total += sum_squares(width, [&](std::size_t k) {
      return factored_update(signed_grad<kMaximize>(g[k]), r, col[k], mean, eps1_sq);
    });
  }
  sc.update_parts[piece] = total;
}

// After pass 2 (serial): the step scale -alpha / max(1, ||U|| / (n^0.5 * d)), rounded to T as add_ does.
template <class T>
void adafactor_scale(const AdafactorTensor<T>& a, AdafactorScratch<T>& sc) noexcept {
  double sum_u = 0;
  for (double part : sc.update_parts) sum_u += part;
  const double ratio = static_cast<double>(std::sqrt(static_cast<T>(sum_u))) /
                       (std::pow(static_cast<double>(numel(a.shape)), 0.5) * a.s.d);
  const double denom = ratio > 1.0 ? ratio : 1.0;  // Python's max(1.0, ratio)
  sc.scale = static_cast<T>(-sc.alpha / denom);
}

// Pass 3 over flat elements [begin, end): p <- p * decay (when weight decay), then p <- p + scale * U.
template <class T, bool kMaximize, bool kDecay>
void adafactor_apply(const AdafactorTensor<T>& a, const AdafactorScratch<T>& sc, std::size_t begin,
                     std::size_t end) noexcept {
  const AdafactorShape& sh = a.shape;
  const T scale = sc.scale, decay = a.s.decay, eps1_sq = a.s.eps1_sq;
  if (!sh.factored) {
    T* FASTOPTIM_RESTRICT p = a.param;
    const T* FASTOPTIM_RESTRICT g = a.grad;
    const T* FASTOPTIM_RESTRICT v = a.variance;
    for (std::size_t k = begin; k < end; ++k) {
      const T u = vector_update(signed_grad<kMaximize>(g[k]), v[k], eps1_sq);
      const T pk = kDecay ? mul_rounded(p[k], decay) : p[k];
      p[k] = fmadd(u, scale, pk);
    }
    return;
  }
  const std::size_t C = sh.cols;
  std::size_t k = begin;
  while (k < end) {  // one row segment at a time
    const std::size_t row = k / C, j0 = k % C, n = std::min(C - j0, end - k);
    const std::size_t b = row / sh.rows;
    const T r = a.row_var[row], mean = sc.means[b];
    T* FASTOPTIM_RESTRICT p = a.param + k;
    const T* FASTOPTIM_RESTRICT g = a.grad + k;
    const T* FASTOPTIM_RESTRICT col = a.col_var + b * C + j0;
    for (std::size_t j = 0; j < n; ++j) {
      const T u = factored_update(signed_grad<kMaximize>(g[j]), r, col[j], mean, eps1_sq);
      const T pj = kDecay ? mul_rounded(p[j], decay) : p[j];
      p[j] = fmadd(u, scale, pj);
    }
    k += n;
  }
}

template <class T>
void adafactor_apply_any(const AdafactorTensor<T>& a, const AdafactorScratch<T>& sc, std::size_t begin,
                         std::size_t end) noexcept {
  with_flag(a.s.maximize, [&](auto mx) {
    with_flag(a.s.use_decay, [&](auto wd) {
      adafactor_apply<T, decltype(mx)::value, decltype(wd)::value>(a, sc, begin, end);
    });
  });
}

template <class T>
AdafactorScratch<T> adafactor_scratch(const AdafactorShape& sh) {
  AdafactorScratch<T> sc;
  const std::size_t pieces = adafactor_pieces(sh);
  sc.param_parts.assign(pieces, 0.0);
  sc.update_parts.assign(pieces, 0.0);
  if (sh.factored) {
    const AdafactorTiling tl(sh.rows, sh.cols);
    sc.row_parts.assign(sh.batch * sh.rows * tl.col_tiles, 0.0);
    sc.col_parts.assign(sh.batch * sh.cols * tl.row_tiles, 0.0);
    sc.means.assign(sh.batch, T(0));
  }
  return sc;
}

}  // namespace impl

// Scalar reference: one parameter's whole step on the calling thread, piece by piece in order.
template <class T>
void adafactor_update_ref(const AdafactorTensor<T>& a) {
  if (numel(a.shape) == 0) return;
  auto sc = impl::adafactor_scratch<T>(a.shape);
  const std::size_t pieces = impl::adafactor_pieces(a.shape);
  impl::with_flag(a.s.maximize, [&](auto mx) {
    constexpr bool kMax = decltype(mx)::value;
    for (std::size_t k = 0; k < pieces; ++k) impl::adafactor_pass1<T, kMax>(a, sc, k);
    impl::adafactor_factors(a, sc);
    for (std::size_t k = 0; k < pieces; ++k) impl::adafactor_pass2<T, kMax>(a, sc, k);
  });
  impl::adafactor_scale(a, sc);
  impl::adafactor_apply_any(a, sc, 0, numel(a.shape));
}

// One Adafactor step over `count` parameters: three parallel passes over all of them (reductions by fixed
// pieces, then the elementwise update split anywhere), so results equal adafactor_update_ref's for any
// thread count. Parameters without elements are skipped (torch divides by zero on them; callers reject them).
template <class T>
void adafactor_step(const AdafactorTensor<T>* items, std::size_t count, std::size_t grain = kDefaultGrain) {
  std::vector<impl::AdafactorScratch<T>> scratch;
  std::vector<impl::AdafactorTask> tasks;
  scratch.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    scratch.push_back(impl::adafactor_scratch<T>(items[i].shape));
    const std::size_t pieces = numel(items[i].shape) == 0 ? 0 : impl::adafactor_pieces(items[i].shape);
    for (std::size_t k = 0; k < pieces; ++k) tasks.push_back({i, k});
  }
  const auto cost = [&](std::size_t t) { return impl::piece_cost(items[tasks[t].item].shape, tasks[t].piece); };
  impl::parallel_for_tasks(tasks.size(), cost, grain, [&](std::size_t t) {
    const auto& a = items[tasks[t].item];
    if (a.s.maximize)
      impl::adafactor_pass1<T, true>(a, scratch[tasks[t].item], tasks[t].piece);
    else
      impl::adafactor_pass1<T, false>(a, scratch[tasks[t].item], tasks[t].piece);
  });
  for (std::size_t i = 0; i < count; ++i)
    if (numel(items[i].shape) != 0) impl::adafactor_factors(items[i], scratch[i]);
  impl::parallel_for_tasks(tasks.size(), cost, grain, [&](std::size_t t) {
    const auto& a = items[tasks[t].item];
    if (a.s.maximize)
      impl::adafactor_pass2<T, true>(a, scratch[tasks[t].item], tasks[t].piece);
    else
      impl::adafactor_pass2<T, false>(a, scratch[tasks[t].item], tasks[t].piece);
  });
  for (std::size_t i = 0; i < count; ++i)
    if (numel(items[i].shape) != 0) impl::adafactor_scale(items[i], scratch[i]);
  parallel_for_items(
      count, [&](std::size_t i) { return numel(items[i].shape); }, grain,
      [&](std::size_t i, std::size_t b, std::size_t e) { impl::adafactor_apply_any(items[i], scratch[i], b, e); });
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
