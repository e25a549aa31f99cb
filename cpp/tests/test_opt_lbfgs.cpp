// C++ tests for fastoptim::LBFGS (the lbfgs family), dependency-free:
//
//  * golden:      every case of golden_opt_lbfgs.hpp (torch 2.13's LBFGS on Rosenbrock, logistic regression
//                 and 1-d line-search problems, float32 and float64, with and without strong Wolfe): the
//                 parameters after each step within twice torch's own one-ulp-perturbation spread (floor:
//                 8 roundings), and for float64 the same func_evals and n_iter where torch's spread is tiny;
//  * defaults:    LBFGSOptions equals torch's defaults; invalid options and parameters throw;
//  * pieces:      cubic interpolation on exact cubics, torch's float / 0-d tensor rounding rule;
//  * transaction: a closure that throws leaves the parameters and the state as they were;
//  * state:       load_state round trips resume bit-identically, and bad states are rejected;
//  * threads:     a problem big enough for threaded reductions gives the same bits with 1 and 3 threads.

#include <fastoptim/fastoptim.hpp>

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

#include "golden_opt_lbfgs.hpp"

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

#define CHECK_THROWS(Exception, ...)                                                          \
  do {                                                                                        \
    std::string fastoptim_test_got = "nothing";                                               \
    try {                                                                                     \
      __VA_ARGS__;                                                                            \
    } catch (const Exception&) {                                                              \
      fastoptim_test_got.clear();                                                             \
    } catch (const std::exception& e) {                                                       \
      fastoptim_test_got = std::string("another exception: ") + e.what();                    \
    }                                                                                         \
    report(fastoptim_test_got.empty(), "throws " #Exception ": " #__VA_ARGS__, __FILE__, __LINE__, \
           fastoptim_test_got.empty() ? std::string() : "threw " + fastoptim_test_got);      \
  } while (0)

template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Restricts OpenMP to `threads` threads until destroyed (no-op without OpenMP).
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

using fastoptim::LBFGS;
using fastoptim::LBFGSOptions;
using fastoptim::LBFGSState;
using fastoptim::LineSearch;
using fastoptim::Span;

// ----------------------------------------------------------------------------------------- problems

// Sum with Neumaier's compensation: the problems of tests/lbfgs_parity.py sum exactly (math.fsum); this
// is as close as matters (a last-bit difference is within the spread the golden tests allow).
double accurate_sum(const std::vector<double>& terms) {
  double s = 0, c = 0;
  for (double v : terms) {
    const double t = s + v;
    c += std::fabs(s) >= std::fabs(v) ? (s - t) + v : (v - t) + s;
    s = t;
  }
  return s + c;
}

double rosenbrock(const std::vector<double>& x, std::vector<double>& grad) {
  std::vector<double> terms;
  grad.assign(x.size(), 0.0);
  for (std::size_t i = 0; i + 1 < x.size(); ++i) {
    const double a = x[i], b = x[i + 1], r = b - a * a;
    terms.push_back(100.0 * r * r);
    terms.push_back((1.0 - a) * (1.0 - a));
    grad[i] += -400.0 * a * r - 2.0 * (1.0 - a);
    grad[i + 1] += 200.0 * r;
  }
  return accurate_sum(terms);
}

double logistic(const std::vector<double>& x, std::vector<double>& grad) {
  const int n = golden_lbfgs::kLogisticSamples;
  const std::size_t d = x.size() - 1;
  const double lam = 1e-2;
  std::vector<double> losses, resid;
  for (int i = 0; i < n; ++i) {
    const double* row = golden_lbfgs::kLogisticX + i * d;
    std::vector<double> parts;
    for (std::size_t j = 0; j < d; ++j) parts.push_back(x[j] * row[j]);
    parts.push_back(x[d]);
    const double z = accurate_sum(parts), yi = golden_lbfgs::kLogisticY[i];
    const double softplus = std::log1p(std::exp(-std::fabs(z)));
    losses.push_back(yi != 0.0 ? softplus + std::max(-z, 0.0) : softplus + std::max(z, 0.0));
    const double p = z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
    resid.push_back(p - yi);
  }
  std::vector<double> squares;
  for (std::size_t j = 0; j < d; ++j) squares.push_back(x[j] * x[j]);
  const double loss = accurate_sum(losses) / n + 0.5 * lam * accurate_sum(squares);
  grad.assign(d + 1, 0.0);
  for (std::size_t j = 0; j < d; ++j) {
    std::vector<double> parts;
    for (int i = 0; i < n; ++i) parts.push_back(resid[i] * golden_lbfgs::kLogisticX[i * d + j]);
    grad[j] = accurate_sum(parts) / n + lam * x[j];
  }
  grad[d] = accurate_sum(resid) / n;
  return loss;
}

double wiggly(double a, double b, double c, double w, const std::vector<double>& x, std::vector<double>& grad) {
  const double t = x[0];
  grad.assign(1, 4 * a * std::pow(t, 3.0) + 3 * b * std::pow(t, 2.0) + 2 * c * t - 1 + 0.3 * w * std::cos(w * t) +
                     0.3 * std::pow(t, 5.0));
  return a * std::pow(t, 4.0) + b * std::pow(t, 3.0) + c * std::pow(t, 2.0) - t + 0.3 * std::sin(w * t) +
         0.05 * std::pow(t, 6.0);
}

struct Problem {
  std::vector<double> x0;
  std::vector<std::size_t> sizes;  // the parameters the flat vector is split into
};

double evaluate(int problem, const std::vector<double>& x, std::vector<double>& g) {
  switch (problem) {
    case 0: return rosenbrock(x, g);
    case 1: return logistic(x, g);
    case 2: return wiggly(0.0, -2.78, 2.0, -4.48, x, g);
    default: return wiggly(0.58, -1.18, -0.28, -3.66, x, g);
  }
}

Problem problem_of(int id) {
  switch (id) {
    case 0: return {{std::begin(golden_lbfgs::kRosenbrockX0), std::end(golden_lbfgs::kRosenbrockX0)}, {4, 6}};
    case 1: return {{std::begin(golden_lbfgs::kLogisticX0), std::end(golden_lbfgs::kLogisticX0)}, {7, 1}};
    case 2: return {{golden_lbfgs::kWiggly1X0}, {1}};
    default: return {{golden_lbfgs::kWiggly2X0}, {1}};
  }
}

// Parameters of dtype T holding a problem's flat vector, split as the Python tests split it.
template <class T>
struct Model {
  int problem;
  std::vector<std::vector<T>> params;

  explicit Model(int id) : problem(id) {
    const Problem p = problem_of(id);
    std::size_t k = 0;
    for (std::size_t n : p.sizes) {
      params.emplace_back();
      for (std::size_t i = 0; i < n; ++i) params.back().push_back(static_cast<T>(p.x0[k++]));
    }
  }
  std::vector<Span<T>> spans() {
    std::vector<Span<T>> out;
    for (auto& p : params) out.emplace_back(p);
    return out;
  }
  std::vector<double> flat() const {
    std::vector<double> x;
    for (const auto& p : params) x.insert(x.end(), p.begin(), p.end());
    return x;
  }
  // The closure: loss in double, gradient cast to T.
  typename LBFGS<T>::Closure closure() {
    return [this](const std::vector<Span<T>>& grads) {
      std::vector<double> g;
      const double loss = evaluate(problem, flat(), g);
      std::size_t k = 0;
      for (const auto& s : grads)
        for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<T>(g[k++]);
      return loss;
    };
  }
};

LBFGSOptions options_of(const golden_lbfgs::Case& c) {
  LBFGSOptions o;
  o.lr = c.lr;
  o.max_iter = c.max_iter;
  o.max_eval = c.max_eval;
  o.tolerance_grad = c.tolerance_grad;
  o.tolerance_change = c.tolerance_change;
  o.history_size = c.history_size;
  o.line_search_fn = c.strong_wolfe ? LineSearch::strong_wolfe : LineSearch::none;
  return o;
}

template <class T>
bool state_equal(const LBFGSState<T>& a, const LBFGSState<T>& b) {
  bool same = a.func_evals == b.func_evals && a.n_iter == b.n_iter && bit_equal(a.d, b.d) &&
              a.t.value == b.t.value && a.t.tensor == b.t.tensor && a.H_diag.value == b.H_diag.value &&
              a.H_diag.tensor == b.H_diag.tensor && bit_equal(a.prev_flat_grad, b.prev_flat_grad) &&
              a.prev_loss == b.prev_loss && bit_equal(a.ro, b.ro) && a.old_dirs.size() == b.old_dirs.size() &&
              a.al == b.al;
  for (std::size_t i = 0; same && i < a.old_dirs.size(); ++i)
    same = bit_equal(a.old_dirs[i], b.old_dirs[i]) && bit_equal(a.old_stps[i], b.old_stps[i]);
  return same;
}

// ------------------------------------------------------------------------------------------- golden

template <class T>
void run_golden_case(const golden_lbfgs::Case& c, int index) {
  Model<T> model(c.problem);
  LBFGS<T> opt(model.spans(), options_of(c));
  const double floor = 8 * static_cast<double>(std::numeric_limits<T>::epsilon()) / 2;
  const auto closure = model.closure();
  for (int step = 1; step <= c.steps; ++step) {
    opt.step(closure);
    const std::vector<double> x = model.flat();
    const double* ref = c.trajectory + static_cast<std::size_t>(step) * c.n;
    double scale = 0, dev = 0;
    for (int i = 0; i < c.n; ++i) scale = std::max(scale, std::fabs(ref[i]));
    for (int i = 0; i < c.n; ++i) dev = std::max(dev, std::fabs(x[i] - ref[i]) / scale);
    const double allowed = std::max(2 * c.spread[step], floor);
    CHECK_MSG(dev <= allowed, "case " + std::to_string(index) + " step " + std::to_string(step) + ": deviation " +
                                  std::to_string(dev) + ", allowed " + std::to_string(allowed));
  }
  // The same number of evaluations and iterations, where torch's own perturbed runs stayed within a
  // few roundings of it (elsewhere one rounding, e.g. from a compiler contracting the problem's
  // arithmetic, may change a line search's course).
  const double max_spread = *std::max_element(c.spread, c.spread + c.steps + 1);
  if (c.float64 && max_spread <= 1e-12) {
    CHECK_MSG(opt.state().func_evals == c.func_evals && opt.state().n_iter == c.n_iter,
              "case " + std::to_string(index) + ": func_evals " + std::to_string(opt.state().func_evals) + " vs " +
                  std::to_string(c.func_evals));
  }
}

void test_golden() {
  int index = 0;
  for (const auto& c : golden_lbfgs::kCases) {
    if (c.float64)
      run_golden_case<double>(c, index);
    else
      run_golden_case<float>(c, index);
    ++index;
  }
}

// ------------------------------------------------------------------------------- defaults, errors

void test_defaults() {
  const LBFGSOptions o;
  CHECK(o.lr == golden_lbfgs::kDefaultLr);
  CHECK(o.max_iter == golden_lbfgs::kDefaultMaxIter);
  CHECK(o.max_evals() == golden_lbfgs::kDefaultMaxEval);
  CHECK(o.tolerance_grad == golden_lbfgs::kDefaultToleranceGrad);
  CHECK(o.tolerance_change == golden_lbfgs::kDefaultToleranceChange);
  CHECK(o.history_size == golden_lbfgs::kDefaultHistorySize);
  CHECK(o.line_search_fn == LineSearch::none);
  LBFGSOptions seven;
  seven.max_iter = 7;
  CHECK(seven.max_evals() == 8);  // torch's max_iter * 5 // 4
}

void test_invalid_options_and_params() {
  std::vector<double> x(3, 1.0), y(2, 1.0);
  const auto bad = [&](auto edit) {
    LBFGSOptions o;
    edit(o);
    CHECK_THROWS(std::invalid_argument, LBFGS<double>({x}, o));
  };
  bad([](LBFGSOptions& o) { o.lr = -1.0; });
  bad([](LBFGSOptions& o) { o.max_iter = 0; });
  bad([](LBFGSOptions& o) { o.max_eval = 0; });
  bad([](LBFGSOptions& o) { o.history_size = 0; });
  bad([](LBFGSOptions& o) { o.max_iter = std::numeric_limits<std::int64_t>::max(); });  // max_iter * 5 / 4 overflowed
  bad([](LBFGSOptions& o) { o.max_eval = (std::int64_t(1) << 53) + 1; });
  bad([](LBFGSOptions& o) { o.history_size = std::numeric_limits<std::int64_t>::max(); });
  CHECK_THROWS(std::invalid_argument, LBFGS<double>(std::vector<Span<double>>{}));
  std::vector<double> empty;
  CHECK_THROWS(std::invalid_argument, LBFGS<double>({Span<double>(empty)}));
  CHECK_THROWS(std::invalid_argument, LBFGS<double>({Span<double>(x.data(), 3), Span<double>(x.data() + 2, 1)}));

  LBFGS<double> opt({x, y});
  CHECK_THROWS(std::invalid_argument, opt.step(LBFGS<double>::Closure{}));
  opt.param_groups()[0].options.max_iter = 0;  // edited after construction: checked by step()
  CHECK_THROWS(std::invalid_argument, opt.step([](const std::vector<Span<double>>&) { return 0.0; }));
}

// ---------------------------------------------------------------------------------------- pieces

void test_cubic_interpolate() {
  using N = fastoptim::LBFGSNum<double>;
  // f(t) = t^3 - 3t: the cubic through (0, 0, -3) and (2, 2, 9) has its minimum at t = 1.
  const N t = fastoptim::cubic_interpolate<double>(N::py(0), N::py(0), N::of(-3), N::py(2), N::py(2), N::of(9));
  CHECK(std::fabs(t.v - 1.0) < 1e-15 && t.tensor);
  // the same points given in the other order
  const N u = fastoptim::cubic_interpolate<double>(N::py(2), N::py(2), N::of(9), N::py(0), N::py(0), N::of(-3));
  CHECK(std::fabs(u.v - 1.0) < 1e-15);
  // clamped to the bounds
  const N v = fastoptim::cubic_interpolate<double>(N::py(0), N::py(0), N::of(-3), N::py(2), N::py(2), N::of(9),
                                                   std::make_pair(N::py(1.5), N::py(3.0)));
  CHECK(v.v == 1.5 && !v.tensor);  // Python's max returns the bound itself, a float
  // no real minimizer (d2^2 < 0): the middle of the bounds
  const N w = fastoptim::cubic_interpolate<double>(N::py(0), N::py(0), N::of(1), N::py(1), N::py(0.5), N::of(1));
  CHECK(w.v == 0.5);
}

void test_number_rounding_rule() {
  using N = fastoptim::LBFGSNum<float>;
  // a Python float meeting a float32 tensor is cast to float32 first, and the result rounds to float32
  const N sum = N::py(0.1) + N::of(1.0f);
  CHECK(sum.tensor && sum.v == static_cast<double>(0.1f + 1.0f));
  const N plain = N::py(0.1) + N::py(1.0);
  CHECK(!plain.tensor && plain.v == 0.1 + 1.0);
  CHECK(!(N::py(1.00000001) > N::of(1.0f)));  // compared in float32, as torch does
  CHECK(N::py(1.00000001) > N::py(1.0));
  CHECK_THROWS(std::domain_error, N::py(1.0) / N::py(0.0));  // Python's ZeroDivisionError
  CHECK(std::isinf((N::py(1.0) / N::of(0.0f)).v));           // a tensor division gives inf
}

// ------------------------------------------------------------------------------- transaction, state

void test_throwing_closure_changes_nothing() {
  for (LineSearch ls : {LineSearch::none, LineSearch::strong_wolfe}) {
    for (int fail_at : {1, 2, 5}) {
      Model<double> model(0);
      LBFGSOptions o;
      o.max_iter = 6;
      o.history_size = 3;
      o.line_search_fn = ls;
      LBFGS<double> opt(model.spans(), o);
      opt.step(model.closure());
      const auto params = model.params;
      const LBFGSState<double> state = opt.state();
      int calls = 0;
      const auto good = model.closure();
      CHECK_THROWS(std::runtime_error, opt.step([&](const std::vector<Span<double>>& g) {
        if (++calls == fail_at) throw std::runtime_error("closure failed");
        return good(g);
      }));
      CHECK(model.params == params);
      CHECK(state_equal(opt.state(), state));
    }
  }
}

template <class T>
void test_state_round_trip() {
  for (LineSearch ls : {LineSearch::none, LineSearch::strong_wolfe}) {
    LBFGSOptions o;
    o.max_iter = 5;
    o.history_size = 3;
    o.line_search_fn = ls;
    Model<T> a(1), b(1);
    LBFGS<T> straight(a.spans(), o), first(b.spans(), o);
    for (int i = 0; i < 2; ++i) {
      straight.step(a.closure());
      first.step(b.closure());
    }
    LBFGS<T> second(b.spans(), o);
    second.load_state(first.state());
    CHECK(state_equal(second.state(), first.state()));
    for (int i = 0; i < 2; ++i) {
      straight.step(a.closure());
      second.step(b.closure());
    }
    CHECK(a.params == b.params);
    CHECK(state_equal(second.state(), straight.state()));
  }
}

// Steps reuse the vectors earlier steps finished with (LBFGSSpare: stale values in them): the same
// trajectory as steps that each start from a copy of the state, which has none to reuse.
template <class T>
void test_recycled_vectors_change_nothing() {
  for (LineSearch ls : {LineSearch::none, LineSearch::strong_wolfe}) {
    for (std::int64_t max_iter : {1, 4}) {
      LBFGSOptions o;
      o.max_iter = max_iter;
      o.history_size = 2;  // pairs are dropped (and recycled) from the third step on
      o.line_search_fn = ls;
      Model<T> a(1), b(1);
      LBFGS<T> recycling(a.spans(), o), fresh(b.spans(), o);
      for (int i = 0; i < 8; ++i) {
        recycling.step(a.closure());
        LBFGS<T> once(b.spans(), o);
        once.load_state(fresh.state());
        once.step(b.closure());
        fresh.load_state(once.state());
        CHECK(a.params == b.params);
        CHECK(state_equal(recycling.state(), fresh.state()));
      }
    }
  }
}

void test_load_state_validation() {
  Model<double> model(0);
  LBFGS<double> opt(model.spans());
  opt.step(model.closure());
  const LBFGSState<double> good = opt.state();
  auto bad = good;
  bad.d.pop_back();
  CHECK_THROWS(std::invalid_argument, opt.load_state(bad));
  bad = good;
  bad.ro.push_back(1.0);
  CHECK_THROWS(std::invalid_argument, opt.load_state(bad));
  bad = good;
  bad.n_iter = -1;
  CHECK_THROWS(std::invalid_argument, opt.load_state(bad));
  bad = LBFGSState<double>{};
  bad.n_iter = 3;  // iterations but no direction
  CHECK_THROWS(std::invalid_argument, opt.load_state(bad));
  CHECK(state_equal(opt.state(), good));
}

// -------------------------------------------------------------------------------------------- threads

template <class T>
std::vector<T> run_large(int threads) {
  ThreadCount tc(threads);
  const std::size_t n = 100003;  // 25 blocks of the reductions: 3 threads take part
  std::vector<T> x(n, T(0)), target(n), scale(n);
  for (std::size_t i = 0; i < n; ++i) {
    target[i] = static_cast<T>(std::sin(0.001 * static_cast<double>(i)));
    scale[i] = static_cast<T>(1.5 + std::cos(0.37 * static_cast<double>(i)));
  }
  LBFGSOptions o;
  o.max_iter = 6;
  o.history_size = 3;
  o.line_search_fn = LineSearch::strong_wolfe;
  LBFGS<T> opt({x}, o);
  const auto closure = [&](const std::vector<Span<T>>& g) {
    double loss = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double r = static_cast<double>(x[i]) - static_cast<double>(target[i]);
      loss += static_cast<double>(scale[i]) * r * r;
      g[0][i] = static_cast<T>(2 * static_cast<double>(scale[i]) * r);
    }
    return loss;
  };
  for (int i = 0; i < 2; ++i) opt.step(closure);
  std::vector<T> out = x;
  out.insert(out.end(), opt.state().d.begin(), opt.state().d.end());
  return out;
}

template <class T>
void test_thread_count_independence() {
  const auto one = run_large<T>(1);
  CHECK(bit_equal(one, run_large<T>(3)));
  CHECK(bit_equal(one, run_large<T>(2)));
}

}  // namespace

int main() {
  std::printf("fastoptim %s LBFGS tests, %d threads\n", FASTOPTIM_VERSION_STRING, fastoptim::max_threads());
  try {
    test_defaults();
    test_golden();
    test_invalid_options_and_params();
    test_cubic_interpolate();
    test_number_rounding_rule();
    test_throwing_closure_changes_nothing();
    test_state_round_trip<float>();
    test_state_round_trip<double>();
    test_recycled_vectors_change_nothing<float>();
    test_recycled_vectors_change_nothing<double>();
    test_load_state_validation();
    test_thread_count_independence<float>();
    test_thread_count_independence<double>();
  } catch (const std::exception& e) {
    ++g_failed;
    std::printf("FAIL: unexpected exception: %s\n", e.what());
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
