// C++ tests of Adafactor and SparseAdam (the optimizers whose state or gradients are not shaped like the
// parameter): a tiny CHECK harness, a final "N passed, M failed" line, non-zero exit status on failure.
//
//  * golden:    golden_opt_factored.hpp (torch 2.13 single-tensor results, make_golden_opt_factored.py)
//               replayed through the C++ classes: within kMaxUlps of torch, and bit-identical to torch with
//               the one rounding we do differently replaced by ours (Adafactor: the summation order of its
//               norms and means; SparseAdam: a correctly rounded sqrt);
//  * defaults:  the options default to torch's;
//  * parallel:  the multi-tensor, multi-threaded steps (grain 1) against the scalar references, bit for bit,
//               at several thread counts, on shapes with many blocks and tiles;
//  * errors:    invalid options, shapes, gradients and indices throw std::invalid_argument and change nothing;
//  * state:     state round trips resume bit-identically; load_state validates.

#include <fastoptim/fastoptim.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "golden_opt_factored.hpp"

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

// CHECK_THROWS(Exception, statements...): the statements throw Exception (or a class derived from it).
#define CHECK_THROWS(Exception, ...)                                                                  \
  do {                                                                                                \
    std::string got_ = "nothing";                                                                     \
    try {                                                                                             \
      __VA_ARGS__;                                                                                    \
    } catch (const Exception&) {                                                                      \
      got_.clear();                                                                                   \
    } catch (const std::exception& e) {                                                               \
      got_ = std::string("another exception: ") + e.what();                                          \
    }                                                                                                 \
    report(got_.empty(), "throws " #Exception ": " #__VA_ARGS__, __FILE__, __LINE__, got_.empty() ? "" : "threw " + got_); \
  } while (0)

template <class T>
const char* type_name() {
  return sizeof(T) == 4 ? "float" : "double";
}

template <class T>
bool bit_equal(const T* a, const T* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(T)) == 0;
}
template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && bit_equal(a.data(), b.data(), a.size());
}

// Deterministic pseudo-random values (splitmix64).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-52 - 1.0; }  // [-1, 1)
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

 private:
  std::uint64_t state_;
};

template <class T>
std::vector<T> random_vector(Rng& rng, std::size_t n, double scale = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.uniform() * scale);
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

constexpr double kMaxUlps = 4.0;

// Largest |x - ref| in ulps of max |ref| (a norm-wise ulp). Infinite when x is not finite.
template <class T>
double ulp_deviation(const T* x, const T* ref, std::size_t n) {
  T scale = 0;
  for (std::size_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(ref[i]));
  const T ulp = scale > 0 ? std::nextafter(scale, std::numeric_limits<T>::infinity()) - scale
                          : std::numeric_limits<T>::denorm_min();
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::abs(static_cast<double>(x[i]) - static_cast<double>(ref[i])) / static_cast<double>(ulp));
  }
  return worst;
}

// Checks one buffer of a golden case: bit-identical to `exact`, within kMaxUlps of `torch`.
template <class T>
void check_buffer(const std::string& label, const std::vector<T>& got, const T* torch_ref, const T* exact, std::size_t n,
                  double& worst) {
  if (got.size() != n) {
    CHECK_MSG(got.size() == n, label + ": has " + std::to_string(got.size()) + " elements, torch " + std::to_string(n));
    return;
  }
  const double dev = ulp_deviation(got.data(), torch_ref, n);
  worst = std::max(worst, dev);
  CHECK_MSG(dev <= kMaxUlps, label + ": " + std::to_string(dev) + " ulps from torch");
  CHECK_MSG(bit_equal(got.data(), exact, n), label + ": differs from torch with our rounding");
}

// ----------------------------------------------------------------------------------- Adafactor golden

namespace ga = golden_factored::adafactor;

fastoptim::AdafactorOptions adafactor_options(const ga::Case& c) {
  fastoptim::AdafactorOptions o;  // the C++ defaults, with what the case sets
  if (c.lr != ga::kTorchDefaults[0]) o.lr = c.lr;
  if (c.beta2_decay != ga::kTorchDefaults[1]) o.beta2_decay = c.beta2_decay;
  if (c.has_eps1) o.eps1 = c.eps1;
  if (c.eps2 != ga::kTorchDefaults[2]) o.eps2 = c.eps2;
  if (c.d != ga::kTorchDefaults[3]) o.d = c.d;
  if (c.weight_decay != ga::kTorchDefaults[4]) o.weight_decay = c.weight_decay;
  o.maximize = c.maximize;
  return o;
}

std::vector<std::vector<std::size_t>> adafactor_shapes() {
  std::vector<std::vector<std::size_t>> shapes;
  for (std::size_t i = 0; i < ga::kNumParams; ++i) shapes.emplace_back(ga::kDims[i], ga::kDims[i] + ga::kNdim[i]);
  return shapes;
}

template <class T>
void golden_adafactor(double& worst) {
  using D = ga::Data<T>;
  for (std::size_t c = 0; c < ga::kNumCases; ++c) {
    const ga::Case& gc = ga::kCases[c];
    const std::string label = std::string("Adafactor/") + gc.name + " " + type_name<T>();
    std::vector<std::vector<T>> params;
    std::vector<fastoptim::Span<T>> spans;
    for (std::size_t i = 0; i < ga::kNumParams; ++i) params.emplace_back(D::init + ga::kOffsets[i], D::init + ga::kOffsets[i] + ga::kSizes[i]);
    for (auto& p : params) spans.emplace_back(p);
    fastoptim::Adafactor<T> opt(spans, adafactor_shapes(), adafactor_options(gc));
    for (int t = 1; t <= golden_factored::kSteps; ++t) {
      std::vector<fastoptim::Span<const T>> grads;
      for (std::size_t i = 0; i < ga::kNumParams; ++i) {
        if (i == 1 && t % golden_factored::kNoGradPeriod == 0)
          grads.emplace_back(nullptr);
        else
          grads.emplace_back(D::grad[t - 1] + ga::kOffsets[i], ga::kSizes[i]);
      }
      opt.step(grads);
    }
    for (std::size_t i = 0; i < ga::kNumParams; ++i) {
      const std::string who = label + " parameter " + std::to_string(i);
      check_buffer(who, params[i], D::final_params[c] + ga::kOffsets[i], D::final_params_exact[c] + ga::kOffsets[i],
                   ga::kSizes[i], worst);
      const auto& st = opt.state(i);
      CHECK_MSG(st.step == gc.steps[i], who + ": step " + std::to_string(st.step));
      check_buffer(who + " row_var", st.row_var, D::final_row_var[c] + ga::kRowVarOffsets[i],
                   D::final_row_var_exact[c] + ga::kRowVarOffsets[i], ga::kRowVarSizes[i], worst);
      check_buffer(who + " col_var", st.col_var, D::final_col_var[c] + ga::kColVarOffsets[i],
                   D::final_col_var_exact[c] + ga::kColVarOffsets[i], ga::kColVarSizes[i], worst);
      check_buffer(who + " variance", st.variance, D::final_variance[c] + ga::kVarianceOffsets[i],
                   D::final_variance_exact[c] + ga::kVarianceOffsets[i], ga::kVarianceSizes[i], worst);
    }
  }
}

// ---------------------------------------------------------------------------------- SparseAdam golden

namespace gs = golden_factored::sparse_adam;

template <class T>
void golden_sparse_adam(double& worst) {
  using D = gs::Data<T>;
  for (std::size_t c = 0; c < gs::kNumCases; ++c) {
    const gs::Case& gc = gs::kCases[c];
    const std::string label = std::string("SparseAdam/") + gc.name + " " + type_name<T>();
    fastoptim::SparseAdamOptions o;
    if (gc.lr != gs::kTorchDefaults[0]) o.lr = gc.lr;
    if (gc.beta1 != gs::kTorchDefaults[1]) o.beta1 = gc.beta1;
    if (gc.beta2 != gs::kTorchDefaults[2]) o.beta2 = gc.beta2;
    if (gc.eps != gs::kTorchDefaults[3]) o.eps = gc.eps;
    o.maximize = gc.maximize;
    std::vector<std::vector<T>> params;
    std::vector<fastoptim::Span<T>> spans;
    for (std::size_t i = 0; i < gs::kNumParams; ++i) params.emplace_back(D::init + gs::kOffsets[i], D::init + gs::kOffsets[i] + gs::kSizes[i]);
    for (auto& p : params) spans.emplace_back(p);
    fastoptim::SparseAdam<T> opt(spans, std::vector<std::size_t>(gs::kRows, gs::kRows + gs::kNumParams), o);
    for (int t = 1; t <= golden_factored::kSteps; ++t) {
      std::vector<std::optional<fastoptim::SparseGrad<T>>> grads;
      for (std::size_t i = 0; i < gs::kNumParams; ++i) {
        if (i == 1 && t % golden_factored::kNoGradPeriod == 0) {
          grads.emplace_back(std::nullopt);
          continue;
        }
        const std::size_t nnz = gs::kNnz[t - 1][i], row = gs::kSizes[i] / gs::kRows[i];
        grads.push_back(fastoptim::SparseGrad<T>{{gs::kIndices + gs::kIndexStart[t - 1][i], nnz},
                                                 {D::values + gs::kValueStart[t - 1][i], nnz * row}});
      }
      opt.step(grads);
    }
    for (std::size_t i = 0; i < gs::kNumParams; ++i) {
      const std::string who = label + " parameter " + std::to_string(i);
      const std::size_t off = gs::kOffsets[i], n = gs::kSizes[i];
      check_buffer(who, params[i], D::final_params[c] + off, D::final_params_exact[c] + off, n, worst);
      const auto& st = opt.state(i);
      CHECK_MSG(st.step == gc.steps[i], who + ": step " + std::to_string(st.step));
      check_buffer(who + " exp_avg", st.exp_avg, D::final_exp_avg[c] + off, D::final_exp_avg_exact[c] + off, n, worst);
      check_buffer(who + " exp_avg_sq", st.exp_avg_sq, D::final_exp_avg_sq[c] + off, D::final_exp_avg_sq_exact[c] + off,
                   n, worst);
    }
  }
}

void test_golden() {
  double worst = 0;
  golden_adafactor<float>(worst);
  golden_adafactor<double>(worst);
  golden_sparse_adam<float>(worst);
  golden_sparse_adam<double>(worst);
  std::printf("golden: worst deviation from torch %.2f ulps (allowed %.0f); bit-identical with our rounding\n", worst,
              kMaxUlps);
}

void test_defaults() {
  const fastoptim::AdafactorOptions a;
  CHECK(a.lr == ga::kTorchDefaults[0] && a.beta2_decay == ga::kTorchDefaults[1] && !a.eps1 &&
        a.eps2 == ga::kTorchDefaults[2] && a.d == ga::kTorchDefaults[3] && a.weight_decay == ga::kTorchDefaults[4] &&
        !a.maximize);
  const fastoptim::SparseAdamOptions s;
  CHECK(s.lr == gs::kTorchDefaults[0] && s.beta1 == gs::kTorchDefaults[1] && s.beta2 == gs::kTorchDefaults[2] &&
        s.eps == gs::kTorchDefaults[3] && !s.maximize);
}

// ------------------------------------------------------------------------------------------ parallel

// Shapes with many blocks and tiles (several row and column tiles, a long thin matrix, a batch), and tiny ones.
const std::vector<std::vector<std::size_t>> kBigShapes{{300, 1000}, {3, 70001}, {100003}, {5000, 3}, {1}, {2, 3, 4},
                                                       {4, 65, 257}, {}};

template <class T>
void adafactor_parallel_matches_reference() {
  Rng rng(7);
  const fastoptim::AdafactorHyper h{0.05, -0.7, std::nullopt, 1e-3, 1.0, 0.01, true};
  std::vector<std::vector<T>> params, grads, rows, cols, vars;
  std::vector<fastoptim::AdafactorShape> shapes;
  for (const auto& dims : kBigShapes) {
    const auto sh = fastoptim::adafactor_shape(dims.data(), dims.size());
    shapes.push_back(sh);
    params.push_back(random_vector<T>(rng, fastoptim::numel(sh)));
    grads.push_back(random_vector<T>(rng, fastoptim::numel(sh), 1e-2));
    rows.push_back(sh.factored ? random_vector<T>(rng, sh.batch * sh.rows, 1e-4) : std::vector<T>());
    cols.push_back(sh.factored ? random_vector<T>(rng, sh.batch * sh.cols, 1e-4) : std::vector<T>());
    vars.push_back(sh.factored ? std::vector<T>() : random_vector<T>(rng, fastoptim::numel(sh), 1e-4));
    for (auto* v : {&rows.back(), &cols.back(), &vars.back()})
      for (auto& x : *v) x = std::abs(x);
  }
  const auto tensors = [&](auto& p, auto& r, auto& c, auto& v) {
    std::vector<fastoptim::AdafactorTensor<T>> out;
    for (std::size_t i = 0; i < shapes.size(); ++i)
      out.push_back({p[i].data(), grads[i].data(), r[i].empty() ? nullptr : r[i].data(),
                     c[i].empty() ? nullptr : c[i].data(), v[i].empty() ? nullptr : v[i].data(), shapes[i],
                     fastoptim::AdafactorScalars<T>(h, 3.0, std::numeric_limits<T>::epsilon())});
    return out;
  };
  auto p0 = params, r0 = rows, c0 = cols, v0 = vars;
  for (const auto& t : tensors(p0, r0, c0, v0)) fastoptim::adafactor_update_ref(t);
  for (int threads : {1, 2, 3, 4}) {
    ThreadCount tc(threads);
    auto p1 = params, r1 = rows, c1 = cols, v1 = vars;
    const auto items = tensors(p1, r1, c1, v1);
    fastoptim::adafactor_step(items.data(), items.size(), /*grain=*/1);
    bool same = true;
    for (std::size_t i = 0; i < shapes.size(); ++i)
      same = same && bit_equal(p0[i], p1[i]) && bit_equal(r0[i], r1[i]) && bit_equal(c0[i], c1[i]) && bit_equal(v0[i], v1[i]);
    CHECK_MSG(same, std::string("Adafactor ") + type_name<T>() + " threads=" + std::to_string(threads));
    bool changed = true;
    for (std::size_t i = 0; i < shapes.size(); ++i) changed = changed && !bit_equal(p1[i], params[i]);
    CHECK_MSG(changed, "Adafactor updated every parameter");
  }
}

template <class T>
void sparse_adam_parallel_matches_reference() {
  Rng rng(11);
  struct Case {
    std::size_t rows, row_size, nnz;
    bool sorted_unique;
  };
  const std::vector<Case> cases{{20000, 16, 30000, false}, {1000, 1, 700, true}, {7, 3, 20, false}, {5, 4, 0, false},
                                {100003, 1, 5, false}};
  const fastoptim::SparseAdamHyper h{1e-2, 0.8, 0.99, 1e-8, true};
  std::vector<std::vector<T>> params, m, v, values;
  std::vector<std::vector<std::int64_t>> indices;
  for (const auto& c : cases) {
    params.push_back(random_vector<T>(rng, c.rows * c.row_size));
    m.push_back(random_vector<T>(rng, c.rows * c.row_size, 1e-2));
    v.push_back(random_vector<T>(rng, c.rows * c.row_size, 1e-4));
    for (auto& x : v.back()) x = std::abs(x);
    std::vector<std::int64_t> idx;
    if (c.sorted_unique) {
      for (std::size_t r = 0; r < c.rows && idx.size() < c.nnz; r += 1 + rng.below(2)) idx.push_back(static_cast<std::int64_t>(r));
    } else {
      for (std::size_t k = 0; k < c.nnz; ++k) idx.push_back(static_cast<std::int64_t>(rng.below(c.rows)));
    }
    values.push_back(random_vector<T>(rng, idx.size() * c.row_size));
    indices.push_back(std::move(idx));
  }
  const auto tensors = [&](auto& p, auto& a, auto& b) {
    std::vector<fastoptim::SparseAdamTensor<T>> out;
    for (std::size_t i = 0; i < cases.size(); ++i)
      out.push_back({p[i].data(), a[i].data(), b[i].data(), cases[i].row_size, indices[i].data(), values[i].data(),
                     indices[i].size(), fastoptim::SparseAdamScalars<T>(h, 4.0)});
    return out;
  };
  auto p0 = params, m0 = m, v0 = v;
  for (const auto& t : tensors(p0, m0, v0)) fastoptim::sparse_adam_update_ref(t);
  // The reference itself, element by element: duplicates summed in the order torch's coalesce() puts them
  // in (an unstable std::sort by row; the order given for up to 16 entries), untouched rows kept.
  {
    const std::size_t i = 2;
    const Case& c = cases[i];
    auto p = params[i], a = m[i], b = v[i];
    const fastoptim::SparseAdamScalars<T> s(h, 4.0);
    std::vector<std::size_t> order(indices[i].size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return indices[i][x] < indices[i][y]; });
    for (std::size_t r = 0; r < c.rows; ++r) {
      for (std::size_t j = 0; j < c.row_size; ++j) {
        T g = 0;
        bool first = true;
        for (const std::size_t k : order) {
          if (indices[i][k] != static_cast<std::int64_t>(r)) continue;
          g = first ? values[i][k * c.row_size + j] : g + values[i][k * c.row_size + j];
          first = false;
        }
        if (first) continue;  // not listed: untouched
        g = -g;  // maximize
        const std::size_t e = r * c.row_size + j;
        // Each product rounded on its own, whatever -ffp-contract (torch rounds every operation).
        const T mn = a[e] + fastoptim::mul_rounded(g - a[e], s.one_minus_beta1);
        const T gg = fastoptim::mul_rounded(g, g);
        const T vn = b[e] + fastoptim::mul_rounded(gg - b[e], s.one_minus_beta2);
        a[e] = mn;
        b[e] = vn;
        p[e] = p[e] + fastoptim::mul_rounded(s.neg_step_size, mn / (std::sqrt(vn) + s.eps));
      }
    }
    CHECK_MSG(bit_equal(p, p0[i]) && bit_equal(a, m0[i]) && bit_equal(b, v0[i]),
              std::string("SparseAdam reference matches the elementwise definition ") + type_name<T>());
  }
  for (int threads : {1, 2, 3, 4}) {
    ThreadCount tc(threads);
    auto p1 = params, m1 = m, v1 = v;
    const auto items = tensors(p1, m1, v1);
    fastoptim::sparse_adam_step(items.data(), items.size(), /*grain=*/1);
    bool same = true;
    for (std::size_t i = 0; i < cases.size(); ++i) same = same && bit_equal(p0[i], p1[i]) && bit_equal(m0[i], m1[i]) && bit_equal(v0[i], v1[i]);
    CHECK_MSG(same, std::string("SparseAdam ") + type_name<T>() + " threads=" + std::to_string(threads));
  }
}

void test_parallel() {
  adafactor_parallel_matches_reference<float>();
  adafactor_parallel_matches_reference<double>();
  sparse_adam_parallel_matches_reference<float>();
  sparse_adam_parallel_matches_reference<double>();
}

// -------------------------------------------------------------------------------------------- errors

void test_adafactor_errors() {
  using O = fastoptim::AdafactorOptions;
  const auto bad = [](auto edit) {
    O o;
    edit(o);
    return o;
  };
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.lr = -1e-3; }).validate());
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.lr = std::nan(""); }).validate(true));
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.beta2_decay = 0.1; }).validate());
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.eps1 = -1e-30; }).validate());
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.eps2 = -1e-3; }).validate());
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.d = 0.5; }).validate());
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.weight_decay = -0.1; }).validate());
  const auto accepts = [](const O& o) {
    try {
      o.validate(true);
      return true;
    } catch (const std::invalid_argument&) {
      return false;
    }
  };
  CHECK(accepts(bad([](O& o) { o.lr = -1e-20; })));  // taken at step(), as torch

  std::vector<float> w(12, 1.0f), b(3, 1.0f), gw(12, 0.5f), gb(3, 0.5f), empty;
  CHECK_THROWS(std::invalid_argument, fastoptim::Adafactor<float>({w, b}, {{3, 4}}));       // a shape missing
  CHECK_THROWS(std::invalid_argument, fastoptim::Adafactor<float>({w, b}, {{3, 5}, {3}}));  // wrong product
  CHECK_THROWS(std::invalid_argument, fastoptim::Adafactor<float>({w}, {{12}}, bad([](O& o) { o.d = 0; })));
  fastoptim::Adafactor<float> opt({w, b}, {{3, 4}, {3}});
  const auto w0 = w, b0 = b;
  CHECK_THROWS(std::invalid_argument, opt.step({gw}));
  CHECK_THROWS(std::invalid_argument, opt.step({fastoptim::Span<const float>(gw.data(), 11), gb}));
  CHECK_THROWS(std::invalid_argument, opt.step({gw, fastoptim::Span<const float>(w.data(), 3)}));  // grad is a param
  opt.param_groups()[0].options.d = 0.5;
  CHECK_THROWS(std::invalid_argument, opt.step({gw, gb}));
  opt.param_groups()[0].options.d = 1.0;
  CHECK(w == w0 && b == b0 && opt.state(0).step == 0 && opt.state(0).row_var.empty() && opt.state(1).variance.empty());
  // torch divides by the element count of an empty parameter; we refuse before touching anything.
  fastoptim::Adafactor<float> with_empty({w, fastoptim::Span<float>(empty)}, {{3, 4}, {0, 5}});
  CHECK_THROWS(std::invalid_argument, with_empty.step({gw, fastoptim::Span<const float>(gb.data(), 0)}));
  CHECK(w == w0 && with_empty.state(0).step == 0);
  with_empty.step({gw, nullptr});
  CHECK(w != w0 && with_empty.state(0).step == 1);
  CHECK_THROWS(std::invalid_argument, with_empty.add_param_group({{b}, O{}}, {{4}}));
  CHECK(with_empty.num_params() == 2);
}

void test_sparse_adam_errors() {
  using O = fastoptim::SparseAdamOptions;
  const auto bad = [](auto edit) {
    O o;
    edit(o);
    return o;
  };
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.lr = 0.0; }).validate());  // torch: lr > 0
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.eps = 0.0; }).validate());
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.beta1 = 1.0; }).validate());
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.beta2 = -0.1; }).validate());
  CHECK_THROWS(std::invalid_argument, bad([](O& o) { o.lr = std::nan(""); }).validate(true));

  std::vector<double> table(5 * 2, 1.0), vec(4, 1.0);
  CHECK_THROWS(std::invalid_argument, fastoptim::SparseAdam<double>({table}, {3}));  // 10 is not 3 rows
  CHECK_THROWS(std::invalid_argument, fastoptim::SparseAdam<double>({table, vec}, {5}));
  fastoptim::SparseAdam<double> opt({table, vec}, {5, 4});
  const auto t0 = table, v0 = vec;
  std::vector<std::int64_t> rows{4, 0, 4}, out_of_range{1, 5}, negative{-1};
  std::vector<double> vals(6, 0.5), short_vals(5, 0.5), vvals(1, 0.5);
  using G = fastoptim::SparseGrad<double>;
  const std::optional<G> none;
  CHECK_THROWS(std::invalid_argument, opt.step({G{rows, vals}}));                               // count
  CHECK_THROWS(std::invalid_argument, opt.step({G{rows, short_vals}, none}));                   // values size
  CHECK_THROWS(std::invalid_argument, opt.step({G{rows, vals}, G{out_of_range, vals}}));        // index 5 of 4
  CHECK_THROWS(std::invalid_argument, opt.step({G{rows, vals}, G{negative, vvals}}));           // index -1
  CHECK_THROWS(std::invalid_argument, opt.step({G{rows, fastoptim::Span<const double>(table.data(), 6)}, none}));
  opt.param_groups()[0].options.eps = 0;
  CHECK_THROWS(std::invalid_argument, opt.step({G{rows, vals}, none}));
  opt.param_groups()[0].options.eps = 1e-8;
  CHECK(table == t0 && vec == v0 && opt.state(0).step == 0 && opt.state(0).exp_avg.empty());
  // An empty gradient advances the step count only (torch's behaviour).
  opt.step({G{}, none});
  CHECK(table == t0 && opt.state(0).step == 1 && opt.state(1).step == 0);
  opt.step({G{rows, vals}, none});
  CHECK(opt.state(0).step == 2);
  for (std::size_t j = 0; j < table.size(); ++j) {
    const bool listed = j / 2 == 0 || j / 2 == 4;
    CHECK_MSG(listed == (table[j] != 1.0), "only rows 0 and 4 move: element " + std::to_string(j));
  }
}

// --------------------------------------------------------------------------------------------- state

template <class T>
void test_state_round_trip() {
  Rng rng(3);
  auto w = random_vector<T>(rng, 6 * 7), b = random_vector<T>(rng, 7);
  auto w2 = w, b2 = b;
  const std::vector<std::vector<std::size_t>> shapes{{6, 7}, {7}};
  fastoptim::AdafactorOptions o;
  o.weight_decay = 0.01;
  fastoptim::Adafactor<T> a({w, b}, shapes, o);
  const auto steps = [&](auto& opt, auto& pw, auto& pb, int n, std::uint64_t seed) {
    Rng g(seed);
    for (int t = 0; t < n; ++t) {
      auto gw = random_vector<T>(g, pw.size()), gb = random_vector<T>(g, pb.size());
      opt.step({gw, gb});
    }
  };
  steps(a, w, b, 5, 100);
  fastoptim::Adafactor<T> c({w2, b2}, shapes, o);
  w2 = w;
  b2 = b;
  c.load_state(0, a.state(0));
  c.load_state(1, a.state(1));
  steps(a, w, b, 5, 200);
  steps(c, w2, b2, 5, 200);
  CHECK_MSG(bit_equal(w, w2) && bit_equal(b, b2) && bit_equal(a.state(0).row_var, c.state(0).row_var),
            std::string("Adafactor resumes bit-identically ") + type_name<T>());
  auto bad = a.state(0);
  bad.row_var.pop_back();
  CHECK_THROWS(std::invalid_argument, c.load_state(0, bad));
  bad = a.state(1);
  bad.row_var.assign(7, T(0));  // a vector has no row factor
  CHECK_THROWS(std::invalid_argument, c.load_state(1, bad));
  bad = a.state(0);
  bad.col_var.clear();  // one factor without the other
  CHECK_THROWS(std::invalid_argument, c.load_state(0, bad));

  std::vector<T> table = random_vector<T>(rng, 8 * 3), table2 = table;
  fastoptim::SparseAdam<T> s({table}, {8}), s2({table2}, {8});
  std::vector<std::int64_t> rows{1, 5, 1};
  auto vals = random_vector<T>(rng, 9);
  s.step({fastoptim::SparseGrad<T>{rows, vals}});
  table2 = table;
  s2.load_state(0, s.state(0));
  s.step({fastoptim::SparseGrad<T>{rows, vals}});
  s2.step({fastoptim::SparseGrad<T>{rows, vals}});
  CHECK_MSG(bit_equal(table, table2) && s2.state(0).step == 2,
            std::string("SparseAdam resumes bit-identically ") + type_name<T>());
  auto sbad = s.state(0);
  sbad.exp_avg.resize(5);
  CHECK_THROWS(std::invalid_argument, s2.load_state(0, sbad));
}

}  // namespace

int main() {
  test_golden();
  test_defaults();
  test_parallel();
  test_adafactor_errors();
  test_sparse_adam_errors();
  test_state_round_trip<float>();
  test_state_round_trip<double>();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
