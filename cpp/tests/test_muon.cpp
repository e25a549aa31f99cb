// C++ tests for fastoptim::Muon (built when CMake finds Eigen 3.4, which the fastoptim::muon target links):
//
//  * golden:   torch 2.13's Muon (golden_opt_muon.hpp) from the same parameters and gradients: without
//              matrix products (ns_steps = 0) parameters and momentum buffers bit for bit; with
//              Newton-Schulz, buffers bit for bit and parameters within one bfloat16 rounding of a
//              unit-size update times |adjusted lr| per step; torch's orthogonalization of two matrices
//              within 3e-3 relative Frobenius error per iteration (tests/muon_parity.py measures these);
//  * bfloat16: rounding ties to even, NaN and infinities;
//  * defaults and errors: MuonOptions equals torch's defaults; invalid options throw with torch's
//              messages; bad steps throw and change nothing;
//  * GEMM:     every element of a product is the sequential float sum over k in pairs, odd depth first
//              (so no instruction set, blocking or thread count can change it), for every kernel the
//              build has (plain, FMA, bfloat16 dot product), both layouts, symmetric products, edge tiles,
//              several k-blocks and odd depths;
//  * threads:  products split across threads give the same bits with 1, 2 and 3 threads;
//  * state:    load_state round trips and validation.

#include <fastoptim/fastoptim.hpp>
#include <fastoptim/muon/muon.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "golden_opt_muon.hpp"

namespace {

// ------------------------------------------------------------------------------------------ harness

int g_passed = 0;
int g_failed = 0;

void report(bool ok, const char* what, const char* file, int line, const std::string& context) {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  std::printf("FAIL %s:%d: %s%s%s\n", file, line, what, context.empty() ? "" : "  -- ", context.c_str());
}

#define CHECK(cond) report(static_cast<bool>(cond), #cond, __FILE__, __LINE__, std::string())
#define CHECK_MSG(cond, msg) report(static_cast<bool>(cond), #cond, __FILE__, __LINE__, (msg))

// CHECK_THROWS_MSG(Exception, "message", statements...): throws Exception whose what() is the message.
#define CHECK_THROWS_MSG(Exception, message, ...)                                              \
  do {                                                                                         \
    std::string fastoptim_test_got = "nothing";                                                \
    try {                                                                                      \
      __VA_ARGS__;                                                                             \
    } catch (const Exception& e) {                                                             \
      fastoptim_test_got = std::string(e.what()) == (message) ? "" : std::string("message: ") + e.what(); \
    } catch (const std::exception& e) {                                                        \
      fastoptim_test_got = std::string("another exception: ") + e.what();                     \
    }                                                                                          \
    report(fastoptim_test_got.empty(), "throws " #Exception ": " #__VA_ARGS__, __FILE__, __LINE__, fastoptim_test_got); \
  } while (0)

template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Deterministic pseudo-random values (splitmix64), identical everywhere and in make_golden_opt_lbfgs.py.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-52 - 1.0; }

 private:
  std::uint64_t state_;
};

template <class T>
std::vector<T> draw(Rng& rng, std::size_t n) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.uniform());
  return v;
}

class ThreadCount {
 public:
  explicit ThreadCount(int threads) {
#if defined(_OPENMP)
    saved_ = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
  }
  ~ThreadCount() {
#if defined(_OPENMP)
    omp_set_num_threads(saved_);
#endif
  }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_ = 1;
};

using fastoptim::MatrixSpan;
using fastoptim::Muon;
using fastoptim::MuonOptions;
using fastoptim::Span;

// ------------------------------------------------------------------------------------------- golden

MuonOptions options_of(const golden_muon::Case& c) {
  MuonOptions o;
  o.lr = c.lr;
  o.weight_decay = c.weight_decay;
  o.momentum = c.momentum;
  o.nesterov = c.nesterov;
  o.ns_coefficients = {c.a, c.b, c.c};
  o.eps = c.eps;
  o.ns_steps = c.ns_steps;
  o.adjust_lr_fn = c.match_rms_adamw ? fastoptim::MuonAdjustLR::match_rms_adamw : fastoptim::MuonAdjustLR::original;
  return o;
}

template <class T>
void run_golden_case(const golden_muon::Case& c, int index) {
  Rng rng(golden_muon::kSeed + static_cast<std::uint64_t>(index));
  constexpr int kParams = 2;
  std::vector<std::vector<T>> params;
  std::vector<MatrixSpan<T>> spans;
  for (int i = 0; i < kParams; ++i) params.push_back(draw<T>(rng, golden_muon::kRows[i] * golden_muon::kCols[i]));
  for (int i = 0; i < kParams; ++i)
    spans.push_back({params[i].data(), std::size_t(golden_muon::kRows[i]), std::size_t(golden_muon::kCols[i])});
  const MuonOptions o = options_of(c);
  Muon<T> opt(spans, o);
  for (int step = 0; step < golden_muon::kSteps; ++step) {
    std::vector<std::vector<T>> grads;
    for (int i = 0; i < kParams; ++i) grads.push_back(draw<T>(rng, params[i].size()));
    opt.step({grads[0], grads[1]});
  }
  std::size_t offset = 0;
  double worst_ratio = 0;
  for (int i = 0; i < kParams; ++i) {
    const std::size_t n = params[i].size();
    std::vector<T> final(c.final + offset, c.final + offset + n), buffers(c.buffers + offset, c.buffers + offset + n);
    CHECK_MSG(bit_equal(opt.state(std::size_t(i)).momentum_buffer, buffers), "case " + std::to_string(index));
    if (c.ns_steps == 0) {
      CHECK_MSG(bit_equal(params[i], final), "case " + std::to_string(index) + " without products must be exact");
    } else {
      const double lr = fastoptim::muon_adjusted_lr(c.lr, o.adjust_lr_fn, std::size_t(golden_muon::kRows[i]),
                                                    std::size_t(golden_muon::kCols[i]));
      const double bound = golden_muon::kSteps * lr * 0x1p-7;
      for (std::size_t j = 0; j < n; ++j)
        worst_ratio = std::max(worst_ratio, std::fabs(double(params[i][j]) - double(final[j])) / bound);
    }
    offset += n;
  }
  CHECK_MSG(worst_ratio <= 1.0, "case " + std::to_string(index) + ": deviation / bound " + std::to_string(worst_ratio));
}

void test_golden() {
  int index = 0;
  for (const auto& c : golden_muon::kCases) {
    if (c.float64)
      run_golden_case<double>(c, index);
    else
      run_golden_case<float>(c, index);
    ++index;
  }
}

void test_golden_orthogonalization() {
  const std::uint16_t* outputs[] = {golden_muon::kOrthOutput0, golden_muon::kOrthOutput1};
  for (int k = 0; k < 2; ++k) {
    const std::size_t rows = std::size_t(golden_muon::kOrthRows[k]), cols = std::size_t(golden_muon::kOrthCols[k]);
    Rng rng(golden_muon::kOrthSeed + std::uint64_t(k));
    std::vector<double> x(rows * cols);
    for (auto& v : x) v = rng.uniform() * 3.0;
    // As muon_update lays it out: X = bf16(x), (r, k) column-major with r <= k.
    const bool transposed = rows > cols;
    const std::size_t r = std::min(rows, cols), depth = std::max(rows, cols);
    std::vector<float> X(rows * cols);
    for (std::size_t i = 0; i < rows * cols; ++i) {
      const std::size_t row = i / cols, col = i % cols;
      X[transposed ? i : col * rows + row] = fastoptim::to_bf16(x[i]);
    }
    fastoptim::MuonWorkspace ws;
    const std::array<double, 3> abc{golden_muon::kDefaultCoefficients[0], golden_muon::kDefaultCoefficients[1],
                                    golden_muon::kDefaultCoefficients[2]};
    fastoptim::newton_schulz_bf16(X.data(), r, depth, abc, 1e-7, 5, ws);
    double diff = 0, norm = 0;
    bool bf16_values = true;
    for (std::size_t i = 0; i < rows * cols; ++i) {
      const std::size_t row = i / cols, col = i % cols;
      const float ours = X[transposed ? i : col * rows + row];
      const std::uint32_t bits = std::uint32_t(outputs[k][i]) << 16;
      float ref;
      std::memcpy(&ref, &bits, sizeof ref);
      diff += (double(ours) - ref) * (double(ours) - ref);
      norm += double(ref) * ref;
      bf16_values = bf16_values && fastoptim::bf16_round(ours) == ours;
    }
    CHECK(bf16_values);
    CHECK_MSG(std::sqrt(diff / norm) <= 5 * 3e-3, "relative error " + std::to_string(std::sqrt(diff / norm)));
  }
}

// ----------------------------------------------------------------------------------------- bfloat16

void test_bf16_round() {
  using fastoptim::bf16_round;
  CHECK(bf16_round(1.0f) == 1.0f);
  CHECK(bf16_round(1.0f + 0x1p-8f) == 1.0f);                    // tie: to the even neighbour 1
  CHECK(bf16_round(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);      // tie: to the even neighbour 1 + 2^-6
  CHECK(bf16_round(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);  // above the tie: up
  CHECK(bf16_round(-3.0f) == -3.0f);
  CHECK(std::isnan(bf16_round(std::numeric_limits<float>::quiet_NaN())));
  CHECK(bf16_round(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
  CHECK(std::isinf(bf16_round(std::numeric_limits<float>::max())));  // rounds past the largest bfloat16
  // a double goes through float first, as c10::BFloat16 does (two roundings)
  CHECK(fastoptim::to_bf16(1.0 + 0x1p-8 + 0x1p-30) == 1.0f);
}

// ------------------------------------------------------------------------------- defaults, errors

void test_defaults() {
  const MuonOptions o;
  CHECK(o.lr == golden_muon::kDefaultLr);
  CHECK(o.weight_decay == golden_muon::kDefaultWeightDecay);
  CHECK(o.momentum == golden_muon::kDefaultMomentum);
  CHECK(o.nesterov == golden_muon::kDefaultNesterov);
  for (int i = 0; i < 3; ++i) CHECK(o.ns_coefficients[std::size_t(i)] == golden_muon::kDefaultCoefficients[i]);
  CHECK(o.eps == golden_muon::kDefaultEps);
  CHECK(o.ns_steps == golden_muon::kDefaultNsSteps);
  CHECK(o.adjust_lr_fn == fastoptim::MuonAdjustLR::original);
}

void test_errors() {
  std::vector<double> w(6, 1.0), v(6, 2.0);
  const auto make = [&](auto edit) {
    MuonOptions o;
    edit(o);
    return Muon<double>({{w.data(), 2, 3}}, o);
  };
  CHECK_THROWS_MSG(std::invalid_argument, "Learning rate should be >= 0 but is: -0.100000",
                   make([](MuonOptions& o) { o.lr = -0.1; }));
  CHECK_THROWS_MSG(std::invalid_argument, "momentum should be >= 0 but is: -0.500000",
                   make([](MuonOptions& o) { o.momentum = -0.5; }));
  CHECK_THROWS_MSG(std::invalid_argument, "weight decay should be >= 0 but is: -1.000000",
                   make([](MuonOptions& o) { o.weight_decay = -1; }));
  CHECK_THROWS_MSG(std::invalid_argument, "Number of steps must be less than 100 for computational efficiency",
                   make([](MuonOptions& o) { o.ns_steps = 100; }));
  CHECK_THROWS_MSG(std::invalid_argument, "optimizer got an empty parameter list",
                   Muon<double>(std::vector<MatrixSpan<double>>{}));
  CHECK_THROWS_MSG(std::invalid_argument, "parameter 1 overlaps parameter 0; parameters must not share memory",
                   Muon<double>({{w.data(), 2, 3}, {w.data() + 3, 1, 3}}));

  Muon<double> opt({{w.data(), 2, 3}, {v.data(), 3, 2}}, MuonOptions{});
  const std::vector<double> g(6, 0.5), short_g(5, 0.5);
  opt.step({g, g});
  const auto w0 = w, v0 = v, b0 = opt.state(0).momentum_buffer;
  CHECK_THROWS_MSG(std::invalid_argument, "gradient of parameter 1 has 5 elements, the parameter has 6",
                   opt.step({g, short_g}));
  CHECK_THROWS_MSG(std::invalid_argument, "expected 2 gradients, got 1", opt.step({g}));
  CHECK_THROWS_MSG(std::invalid_argument, "arrays of parameter 0 and parameter 1 overlap in memory",
                   opt.step({Span<const double>(v.data(), 6), g}));
  opt.param_groups()[0].options.ns_steps = 200;
  CHECK_THROWS_MSG(std::invalid_argument, "Number of steps must be less than 100 for computational efficiency",
                   opt.step({g, g}));
  CHECK(w == w0 && v == v0 && opt.state(0).momentum_buffer == b0);
}

void test_state() {
  std::vector<float> a(12), b(12);
  Rng rng(3);
  for (std::size_t i = 0; i < 12; ++i) a[i] = b[i] = float(rng.uniform());
  MuonOptions o;
  o.lr = 0.05;
  Muon<float> one({{a.data(), 3, 4}}, o), two({{b.data(), 3, 4}}, o);
  const std::vector<float> g1 = draw<float>(rng, 12), g2 = draw<float>(rng, 12);
  one.step({g1});
  two.step({g1});
  Muon<float> resumed({{b.data(), 3, 4}}, o);
  resumed.load_state(0, two.state(0));
  one.step({g2});
  resumed.step({g2});
  CHECK(a == b && bit_equal(one.state(0).momentum_buffer, resumed.state(0).momentum_buffer));
  fastoptim::MuonState<float> bad;
  bad.momentum_buffer.assign(5, 0.0f);
  CHECK_THROWS_MSG(std::invalid_argument, "state 'momentum_buffer' of parameter 0 has 5 elements, the parameter has 12",
                   resumed.load_state(0, bad));
}

// ---------------------------------------------------------------------------------------------- GEMM

// impl::gemm_bf16 (its float sums, unrounded) against the sequential sum of separately rounded products in
// the GEMM's order (depth pairs, the odd one first), bit for bit, on bfloat16-valued matrices (column-major
// A, B column-major or row-major; symmetric: B = A^T, read as A row-major), with every kernel the build
// has whose condition the operands meet: plain always, FMA when every product is exact, the bfloat16 dot
// product (AVX512-BF16) when gemm_dot_exact holds and the CPU has it.
void test_gemm_is_the_sequential_sum() {
  namespace impl = fastoptim::impl;
  struct Case {
    long m, n, k;
    bool rhs_row_major, symmetric;
    double scale = 1.0;  // 2^-64: many products underflow (inexact: plain only)
  };
  const Case cases[] = {{1, 1, 1, false, false},   {3, 2, 0, false, false},   {37, 29, 5, false, false},
                        {70, 130, 600, false, false}, {301, 13, 257, true, false}, {200, 200, 300, true, true},
                        {97, 97, 513, true, true},  {1, 1, 9, true, true},     {250, 1700, 40, false, false},
                        {33, 17, 511, false, false},  {40, 40, 3, true, true},
                        {300, 300, 401, true, true},  {260, 610, 301, false, false},  // threaded: > 32 Mflop
                        {64, 50, 300, false, false, 0x1p-64}, {90, 90, 70, true, true, 0x1p-64}};
  std::vector<impl::GemmPath> kernels{impl::GemmPath::plain};
  if (impl::kGemmHasFma) kernels.push_back(impl::GemmPath::fused);
#if FASTOPTIM_MUON_DOT
  if (impl::gemm_dot_enabled().load()) kernels.push_back(impl::GemmPath::dot);
#endif
  int ran_dot = 0;
  for (int threads : {1, 3}) {
    ThreadCount tc(threads);
    for (const Case& c : cases) {
      Rng rng(static_cast<std::uint64_t>(c.m * 1000003 + c.n * 1009 + c.k));
      std::vector<float> A(static_cast<std::size_t>(c.m * c.k)), B(static_cast<std::size_t>(c.k * c.n));
      for (auto& v : A) v = fastoptim::bf16_round(static_cast<float>(rng.uniform() * 2.0 * c.scale));
      for (auto& v : B) v = fastoptim::bf16_round(static_cast<float>(rng.uniform() * 2.0 * c.scale));
      const auto b_at = [&](long p, long j) {
        if (c.symmetric) return A[static_cast<std::size_t>(j + p * c.m)];
        return c.rhs_row_major ? B[static_cast<std::size_t>(p * c.n + j)] : B[static_cast<std::size_t>(p + j * c.k)];
      };
      std::vector<float> C(static_cast<std::size_t>(c.m * c.n)), out(C.size(), -1.0f), pack(3 * impl::kGemmScratch);
      const impl::GemmOut raw{out.data(), nullptr, 1.0f, 0.0f, false};
      const float* b = c.symmetric ? A.data() : B.data();
      const impl::GemmRange range_a = impl::gemm_range(A.data(), A.size()),
                            range_b = impl::gemm_range(b, c.symmetric ? A.size() : B.size());
      const bool exact = impl::gemm_products_exact(range_a, range_b);
      CHECK(exact == (c.scale == 1.0 || c.k == 0));
      CHECK(impl::gemm_dot_exact(range_a, range_b) == exact);  // these uniform draws: no product below 2^-111
      std::vector<float> expected(C.size());
      for (long i = 0; i < c.m; ++i)
        for (long j = 0; j < c.n; ++j) {
          float sum = 0.0f;
          for (long q = 0; q < c.k + (c.k & 1); ++q) {
            const long p = q ^ 1L;  // each pair's odd depth first; an odd k's last depth alone
            if (p >= c.k) continue;
            const float product = A[static_cast<std::size_t>(i + p * c.m)] * b_at(p, j);
            sum = sum + product;
          }
          expected[static_cast<std::size_t>(i + j * c.m)] = sum;
        }
      for (const impl::GemmPath kernel : kernels) {
        if (kernel != impl::GemmPath::plain && !exact) continue;
        ran_dot += kernel == impl::GemmPath::dot;
        std::fill(out.begin(), out.end(), -1.0f);
        if (c.rhs_row_major)
          impl::gemm_bf16<true>(c.m, c.n, c.k, A.data(), b, C.data(), c.symmetric, raw, kernel, pack.data(), threads);
        else
          impl::gemm_bf16<false>(c.m, c.n, c.k, A.data(), b, C.data(), c.symmetric, raw, kernel, pack.data(), threads);
        long mismatches = 0;
        for (std::size_t e = 0; e < out.size(); ++e) mismatches += std::memcmp(&out[e], &expected[e], sizeof(float)) != 0;
        CHECK_MSG(mismatches == 0, std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k) + ", " +
                                       std::to_string(threads) + " threads, kernel " +
                                       std::to_string(static_cast<int>(kernel)) + ": " + std::to_string(mismatches) +
                                       " elements differ");
      }
    }
  }
#if FASTOPTIM_MUON_DOT
  if (impl::gemm_dot_enabled().load()) CHECK(ran_dot > 0);
#endif
  (void)ran_dot;
}

// When the dot-product kernel may run: every nonzero input normal and every nonzero product >= 2^-111
// (then no sum is subnormal, which VDPBF16PS would flush), besides gemm_products_exact.
void test_gemm_dot_conditions() {
  namespace impl = fastoptim::impl;
  const auto range = [](std::initializer_list<float> values) {
    const std::vector<float> v(values);
    return impl::gemm_range(v.data(), v.size());
  };
  const impl::GemmRange unit = range({0.0f, -1.0f, 0.5f}), zeros = range({0.0f, -0.0f});
  CHECK(impl::gemm_dot_exact(unit, unit));
  CHECK(impl::gemm_dot_exact(zeros, range({0x1p-140f})));           // every product is zero
  CHECK(!impl::gemm_dot_exact(unit, range({0x1p-130f, 1.0f})));      // a subnormal input
  CHECK(impl::gemm_dot_exact(range({0x1p-56f}), range({0x1p-55f, 2.0f})));   // smallest product 2^-111
  CHECK(!impl::gemm_dot_exact(range({0x1p-56f}), range({0x1p-56f, 2.0f})));  // 2^-112
  CHECK(impl::gemm_products_exact(range({0x1p-56f}), range({0x1p-56f})));     // the FMA kernel still may
  CHECK(!impl::gemm_dot_exact(unit, range({std::numeric_limits<float>::infinity()})));
  CHECK(impl::gemm_path(range({0x1p-56f}), range({0x1p-56f})) != impl::GemmPath::dot);
}

// -------------------------------------------------------------------------------------------- threads

template <class T>
std::vector<T> run_large(int threads) {
  ThreadCount tc(threads);
  Rng rng(11);
  std::vector<T> wide = draw<T>(rng, 300 * 520), tall = draw<T>(rng, 700 * 260);
  MuonOptions o;
  o.ns_steps = 2;
  Muon<T> opt({{wide.data(), 300, 520}, {tall.data(), 700, 260}}, o);
  const std::vector<T> g1 = draw<T>(rng, wide.size()), g2 = draw<T>(rng, tall.size());
  opt.step({g1, g2});
  wide.insert(wide.end(), tall.begin(), tall.end());
  return wide;
}

template <class T>
void test_thread_count_independence() {
  const auto one = run_large<T>(1);
  CHECK(bit_equal(one, run_large<T>(2)));
  CHECK(bit_equal(one, run_large<T>(3)));
}

}  // namespace

int main() {
#if FASTOPTIM_MUON_DOT && !defined(__AVX512BF16__)
  const bool dot = fastoptim::impl::gemm_dot_enabled().load();
#else
  const bool dot = FASTOPTIM_MUON_DOT;
#endif
  std::printf("fastoptim %s Muon tests, GEMM of %d-float vectors%s, %d threads\n", FASTOPTIM_VERSION_STRING,
              fastoptim::impl::kGemmLanes, dot ? " and bfloat16 dot products" : "", fastoptim::max_threads());
  try {
    test_bf16_round();
    test_defaults();
    test_golden();
    test_golden_orthogonalization();
    test_gemm_is_the_sequential_sum();
    test_gemm_dot_conditions();
    test_errors();
    test_state();
    test_thread_count_independence<float>();
    test_thread_count_independence<double>();
  } catch (const std::exception& e) {
    ++g_failed;
    std::printf("FAIL: unexpected exception: %s\n", e.what());
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
