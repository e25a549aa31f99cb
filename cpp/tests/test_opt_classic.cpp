// C++ tests of Adadelta, ASGD and Rprop (dependency-free: a tiny CHECK harness, a final "N passed, M failed"
// line and a non-zero exit status when anything failed).
//
//  * golden:    every case of golden_opt_classic.hpp (torch 2.13 single-tensor results with two param groups,
//               see make_golden_opt_classic.py) replayed through the C++ optimizers: final parameters, state
//               buffers and per-parameter scalars (step; ASGD's eta and mu) bit-identical to torch with its
//               sqrt replaced by a correctly rounded one, and within kMaxUlps of torch as it is (MKL sqrt).
//  * defaults:  the C++ options default to torch's constructor defaults.
//  * chunked:   the threaded kernels (*_step with grain 1) bit-identical to the scalar references
//               (*_update_ref) at odd sizes.
//  * errors:    invalid options throw std::invalid_argument with torch's message; a throwing step() changes
//               nothing.
//  * state:     load_state round trips give bit-identical trajectories; load_state validates.

#include <fastoptim/fastoptim.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "golden_opt_classic.hpp"

namespace {

namespace gc = golden_classic;
using fastoptim::Span;

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

// CHECK_THROWS_WITH(words, statements...): the statements throw std::invalid_argument whose message holds words.
#define CHECK_THROWS_WITH(words, ...)                                                                  \
  do {                                                                                                 \
    std::string fastoptim_test_got = "nothing";                                                        \
    try {                                                                                              \
      __VA_ARGS__;                                                                                     \
    } catch (const std::invalid_argument& e) {                                                         \
      fastoptim_test_got = std::strstr(e.what(), words) ? "" : std::string("the message: ") + e.what(); \
    } catch (const std::exception& e) {                                                                \
      fastoptim_test_got = std::string("another exception: ") + e.what();                             \
    }                                                                                                  \
    report(fastoptim_test_got.empty(), "throws invalid_argument: " #__VA_ARGS__, __FILE__, __LINE__,   \
           fastoptim_test_got.empty() ? std::string()                                                  \
                                      : std::string("expected \"") + (words) + "\", got " + fastoptim_test_got); \
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

// Deterministic pseudo-random values (splitmix64), identical everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-52 - 1.0; }  // in [-1, 1)

 private:
  std::uint64_t state_;
};

template <class T>
std::vector<T> random_vector(Rng& rng, std::size_t n, double scale = 1.0) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(rng.uniform() * scale);
  return v;
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

// ------------------------------------------------------------------- options and state by optimizer

// Options for a golden group: the C++ defaults, with every field torch did not take at its default set from
// the case (so the cases also exercise the C++ defaults).
fastoptim::AdadeltaOptions options_of(const gc::Hyper& h, const fastoptim::AdadeltaOptions*) {
  const gc::Hyper& d = gc::kTorchDefaultsAdadelta;
  fastoptim::AdadeltaOptions o;
  if (h.lr != d.lr) o.lr = h.lr;
  if (h.rho != d.rho) o.rho = h.rho;
  if (h.eps != d.eps) o.eps = h.eps;
  if (h.weight_decay != d.weight_decay) o.weight_decay = h.weight_decay;
  if (h.maximize != d.maximize) o.maximize = h.maximize;
  return o;
}

fastoptim::ASGDOptions options_of(const gc::Hyper& h, const fastoptim::ASGDOptions*) {
  const gc::Hyper& d = gc::kTorchDefaultsASGD;
  fastoptim::ASGDOptions o;
  if (h.lr != d.lr) o.lr = h.lr;
  if (h.lambd != d.lambd) o.lambd = h.lambd;
  if (h.alpha != d.alpha) o.alpha = h.alpha;
  if (h.t0 != d.t0) o.t0 = h.t0;
  if (h.weight_decay != d.weight_decay) o.weight_decay = h.weight_decay;
  if (h.maximize != d.maximize) o.maximize = h.maximize;
  return o;
}

fastoptim::RpropOptions options_of(const gc::Hyper& h, const fastoptim::RpropOptions*) {
  const gc::Hyper& d = gc::kTorchDefaultsRprop;
  fastoptim::RpropOptions o;
  if (h.lr != d.lr) o.lr = h.lr;
  if (h.etaminus != d.etaminus) o.etaminus = h.etaminus;
  if (h.etaplus != d.etaplus) o.etaplus = h.etaplus;
  if (h.step_size_min != d.step_size_min) o.step_size_min = h.step_size_min;
  if (h.step_size_max != d.step_size_max) o.step_size_max = h.step_size_max;
  if (h.maximize != d.maximize) o.maximize = h.maximize;
  return o;
}

template <class Options>
Options options_of(const gc::Hyper& h) {
  return options_of(h, static_cast<const Options*>(nullptr));
}

// Each state's buffers by torch's state_dict key, and its scalars (eta and mu are ASGD's; 0 elsewhere).
template <class T>
using NamedBuffers = std::vector<std::pair<const char*, const std::vector<T>*>>;

template <class T>
NamedBuffers<T> named_buffers(const fastoptim::AdadeltaState<T>& s) {
  return {{"square_avg", &s.square_avg}, {"acc_delta", &s.acc_delta}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::ASGDState<T>& s) {
  return {{"ax", &s.ax}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::RpropState<T>& s) {
  return {{"prev", &s.prev}, {"step_size", &s.step_size}};
}

struct Scalars {
  std::int64_t step;
  float eta, mu;
};
template <class State>
Scalars scalars_of(const State& s) {
  return {s.step, 0.0f, 0.0f};
}
template <class T>
Scalars scalars_of(const fastoptim::ASGDState<T>& s) {
  return {s.step, s.eta, s.mu};
}

template <class State>
bool state_equal(const State& a, const State& b) {
  const Scalars sa = scalars_of(a), sb = scalars_of(b);
  if (sa.step != sb.step || !bit_equal(&sa.eta, &sb.eta, 1) || !bit_equal(&sa.mu, &sb.mu, 1)) return false;
  const auto na = named_buffers(a), nb = named_buffers(b);
  for (std::size_t i = 0; i < na.size(); ++i)
    if (!bit_equal(*na[i].second, *nb[i].second)) return false;
  return true;
}

// ------------------------------------------------------------------------------------------- golden

// Deviation allowed from torch as it is (its x86 sqrt is not correctly rounded; Adadelta takes two per
// element and step). Against torch with a correctly rounded sqrt, none is allowed.
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

template <class T>
struct GoldenProblem {
  using D = gc::Data<T>;
  std::vector<T> params[gc::kNumParams];

  GoldenProblem() {
    for (std::size_t i = 0; i < gc::kNumParams; ++i)
      params[i].assign(D::init + gc::kOffsets[i], D::init + gc::kOffsets[i] + gc::kSizes[i]);
  }

  // One param group per parameter, with the case's hyperparameters.
  template <class Opt>
  Opt make(const gc::Case& c) {
    using Options = typename Opt::options_type;
    std::vector<fastoptim::ParamGroup<T, Options>> groups;
    for (std::size_t i = 0; i < gc::kNumParams; ++i)
      groups.push_back({{Span<T>(params[i])}, options_of<Options>(c.groups[i])});
    return Opt(std::move(groups));
  }

  // The gradients of step t (1-based), null where the parameter has none.
  static std::vector<Span<const T>> grads(int t) {
    std::vector<Span<const T>> g;
    for (std::size_t i = 0; i < gc::kNumParams; ++i) {
      if (gc::kHasGrad[t - 1][i])
        g.emplace_back(D::grad[t - 1] + gc::kOffsets[i], gc::kSizes[i]);
      else
        g.emplace_back(nullptr);
    }
    return g;
  }
};

// The reference row of buffer `key` of case c, or null.
template <class T>
const T* golden_state(std::size_t c, const char* key, bool exact_sqrt) {
  using D = gc::Data<T>;
  for (std::size_t j = 0; j < gc::kNumStates; ++j)
    if (gc::kStates[j].case_index == c && std::strcmp(gc::kStates[j].key, key) == 0)
      return exact_sqrt ? D::final_state_exact_sqrt[j] : D::final_state[j];
  return nullptr;
}

template <class Opt>
void check_golden_case(std::size_t c) {
  using T = typename Opt::value_type;
  using D = gc::Data<T>;
  const gc::Case& gcase = gc::kCases[c];
  const std::string label = std::string(gcase.optimizer) + "/" + gcase.name + " " + type_name<T>();

  GoldenProblem<T> prob;
  Opt opt = prob.template make<Opt>(gcase);
  for (int t = 1; t <= gc::kSteps; ++t) opt.step(GoldenProblem<T>::grads(t));

  double dev = 0;
  std::size_t differing = 0, buffers_seen = 0;
  const auto compare = [&](const T* got, std::size_t i, const T* ref, const T* exact, const std::string& what) {
    const std::size_t n = gc::kSizes[i];
    dev = std::max(dev, ulp_deviation(got, ref + gc::kOffsets[i], n));
    for (std::size_t k = 0; k < n; ++k) differing += std::memcmp(&got[k], &exact[gc::kOffsets[i] + k], sizeof(T)) != 0;
    CHECK_MSG(bit_equal(got, exact + gc::kOffsets[i], n), label + ": " + what + " differs from torch's (exact sqrt)");
  };
  for (std::size_t i = 0; i < gc::kNumParams; ++i) {
    const std::string who = "parameter " + std::to_string(i);
    compare(prob.params[i].data(), i, D::final_params[c], D::final_params_exact_sqrt[c], who);
    const Scalars s = scalars_of(opt.state(i));
    CHECK_MSG(s.step == gcase.steps[i], label + ": step of " + who + " is " + std::to_string(s.step));
    CHECK_MSG(bit_equal(&s.eta, &gcase.eta[i], 1) && bit_equal(&s.mu, &gcase.mu[i], 1),
              label + ": eta or mu of " + who + " differs from torch's");
    for (const auto& [key, buf] : named_buffers(opt.state(i))) {
      const T* ref = golden_state<T>(c, key, false);
      CHECK_MSG(ref != nullptr && buf->size() == gc::kSizes[i], label + ": state '" + key + "' of " + who);
      if (ref == nullptr || buf->size() != gc::kSizes[i]) continue;
      ++buffers_seen;
      compare(buf->data(), i, ref, golden_state<T>(c, key, true), "state '" + std::string(key) + "' of " + who);
    }
  }
  std::size_t expected = 0;
  for (std::size_t j = 0; j < gc::kNumStates; ++j) expected += gc::kStates[j].case_index == c;
  CHECK_MSG(buffers_seen == expected * gc::kNumParams, label + ": a state buffer torch has is missing");
  CHECK_MSG(dev <= kMaxUlps, label + ": " + std::to_string(dev) + " ulps from torch (MKL sqrt)");
  std::printf("  %-50s vs torch: %.2f ulps; vs torch with an exact sqrt: %s\n", label.c_str(), dev,
              differing == 0 ? "identical" : (std::to_string(differing) + " values differ").c_str());
}

template <class T>
void run_golden_case(std::size_t c) {
  const std::string opt = gc::kCases[c].optimizer;
  if (opt == "Adadelta")
    check_golden_case<fastoptim::Adadelta<T>>(c);
  else if (opt == "ASGD")
    check_golden_case<fastoptim::ASGD<T>>(c);
  else if (opt == "Rprop")
    check_golden_case<fastoptim::Rprop<T>>(c);
  else
    CHECK_MSG(false, "unknown optimizer in golden_opt_classic.hpp: " + opt);
}

void test_golden() {
  std::printf("golden (torch 2.13 single-tensor, two param groups, %d steps):\n", gc::kSteps);
  for (std::size_t c = 0; c < gc::kNumCases; ++c) {
    run_golden_case<float>(c);
    run_golden_case<double>(c);
  }
}

void test_defaults() {
  const fastoptim::AdadeltaOptions a;
  const gc::Hyper& ta = gc::kTorchDefaultsAdadelta;
  CHECK(a.lr == ta.lr && a.rho == ta.rho && a.eps == ta.eps && a.weight_decay == ta.weight_decay &&
        a.maximize == ta.maximize);
  const fastoptim::ASGDOptions s;
  const gc::Hyper& ts = gc::kTorchDefaultsASGD;
  CHECK(s.lr == ts.lr && s.lambd == ts.lambd && s.alpha == ts.alpha && s.t0 == ts.t0 &&
        s.weight_decay == ts.weight_decay && s.maximize == ts.maximize);
  const fastoptim::RpropOptions r;
  const gc::Hyper& tr = gc::kTorchDefaultsRprop;
  CHECK(r.lr == tr.lr && r.etaminus == tr.etaminus && r.etaplus == tr.etaplus &&
        r.step_size_min == tr.step_size_min && r.step_size_max == tr.step_size_max && r.maximize == tr.maximize);
}

// ---------------------------------------------------------------------------------------- chunked

const std::size_t kOddSizes[] = {1, 15, 17, 1023, 100003};

// Three steps from fresh state, by the threaded kernel (grain 1) and by the reference kernel over the whole
// array: bit-identical parameters and buffers. `chunked` and `reference` take (param, grad, a, b, step).
template <class T, class Chunked, class Reference>
void check_chunked(const std::string& label, std::size_t n, std::uint64_t seed, T a0, T b0, const Chunked& chunked,
                   const Reference& reference) {
  Rng rng(seed);
  std::vector<T> p = random_vector<T>(rng, n, 2.0), a(n, a0), b(n, b0);
  std::vector<T> q = p, a2 = a, b2 = b;
  bool same = true;
  for (int step = 1; step <= 3; ++step) {
    std::vector<T> g = random_vector<T>(rng, n, step == 2 ? 1e-3 : 1.0);
    if (n > 3) g[3] = T(0);
    chunked(p.data(), g.data(), a.data(), b.data(), step);
    reference(q.data(), g.data(), a2.data(), b2.data(), step);
    same = same && bit_equal(p, q) && bit_equal(a, a2) && bit_equal(b, b2);
  }
  CHECK_MSG(same, label + " n=" + std::to_string(n) + ": chunked kernel differs from the reference");
}

template <class T>
void test_chunked_kernels_for_case(std::size_t c, int threads) {
  const gc::Case& gcase = gc::kCases[c];
  const std::string opt = gcase.optimizer;
  const std::string label = opt + "/" + gcase.name + " " + type_name<T>() + " threads=" + std::to_string(threads);
  for (std::size_t n : kOddSizes) {
    const std::uint64_t seed = 1000 * c + n;
    if (opt == "Adadelta") {
      const auto o = options_of<fastoptim::AdadeltaOptions>(gcase.groups[0]);
      const fastoptim::AdadeltaScalars<T> s(o);
      check_chunked<T>(
          label, n, seed, T(0), T(0),
          [&](T* p, const T* g, T* a, T* b, int) { fastoptim::adadelta_step<T>(p, g, a, b, n, o, 1); },
          [&](T* p, const T* g, T* a, T* b, int) { fastoptim::adadelta_update_ref<T>(p, g, a, b, n, s); });
    } else if (opt == "ASGD") {
      const auto o = options_of<fastoptim::ASGDOptions>(gcase.groups[0]);
      // eta as after `step` steps; mu < 1 from the second step, so both ax formulas run.
      const auto eta = [&](int step) { return step == 1 ? o.lr : double(fastoptim::asgd_next_eta(o, step - 1)); };
      const auto mu = [](int step) { return step == 1 ? 1.0 : 1.0 / step; };
      check_chunked<T>(
          label, n, seed, T(0), T(0),
          [&](T* p, const T* g, T* ax, T*, int step) { fastoptim::asgd_step<T>(p, g, ax, n, o, eta(step), mu(step), 1); },
          [&](T* p, const T* g, T* ax, T*, int step) {
            fastoptim::asgd_update_ref<T>(p, g, ax, n, fastoptim::ASGDScalars<T>(o, eta(step), mu(step)));
          });
    } else if (opt == "Rprop") {
      const auto o = options_of<fastoptim::RpropOptions>(gcase.groups[0]);
      const fastoptim::RpropScalars<T> s(o);
      check_chunked<T>(
          label, n, seed, T(0), static_cast<T>(o.lr),
          [&](T* p, const T* g, T* prev, T* ss, int) { fastoptim::rprop_step<T>(p, g, prev, ss, n, o, 1); },
          [&](T* p, const T* g, T* prev, T* ss, int) { fastoptim::rprop_update_ref<T>(p, g, prev, ss, n, s); });
    }
  }
}

void test_chunked_kernels() {
  // Thread counts 2..4 force splitting even where OMP_NUM_THREADS=1; without OpenMP they all run serially.
  for (int threads : {2, 3, 4}) {
    ThreadCount tc(threads);
    for (std::size_t c = 0; c < gc::kNumCases; ++c) {
      test_chunked_kernels_for_case<float>(c, threads);
      test_chunked_kernels_for_case<double>(c, threads);
    }
  }
}

// Through the optimizer front end: a parameter above the default grain (split across threads) must step as
// the same elements cut into small parameters (each below the grain, serial).
template <class Opt>
void check_large_parameter(const typename Opt::options_type& o) {
  using T = typename Opt::value_type;
  const std::size_t n = 3 * fastoptim::kDefaultGrain + 17, pieces = 7;
  Rng rng(99);
  std::vector<T> big = random_vector<T>(rng, n);
  std::vector<std::vector<T>> small;
  for (std::size_t k = 0; k < pieces; ++k)
    small.emplace_back(big.begin() + k * n / pieces, big.begin() + (k + 1) * n / pieces);
  Opt opt_big({Span<T>(big)}, o);
  Opt opt_small(std::vector<Span<T>>(small.begin(), small.end()), o);
  for (int step = 0; step < 4; ++step) {
    const std::vector<T> g = random_vector<T>(rng, n);
    opt_big.step({Span<const T>(g)});
    std::vector<Span<const T>> gs;
    for (std::size_t k = 0; k < pieces; ++k) gs.emplace_back(g.data() + k * n / pieces, (k + 1) * n / pieces - k * n / pieces);
    opt_small.step(gs);
  }
  std::vector<T> joined;
  for (const auto& s : small) joined.insert(joined.end(), s.begin(), s.end());
  CHECK_MSG(bit_equal(big, joined), std::string("a large ") + type_name<T>() + " parameter differs from its pieces");
}

void test_large_parameters() {
  fastoptim::AdadeltaOptions a;
  a.weight_decay = 0.01;
  check_large_parameter<fastoptim::Adadelta<float>>(a);
  fastoptim::ASGDOptions s;
  s.t0 = 1;
  s.lambd = 0.1;
  check_large_parameter<fastoptim::ASGD<double>>(s);
  fastoptim::RpropOptions r;
  r.maximize = true;
  check_large_parameter<fastoptim::Rprop<float>>(r);
}

// ------------------------------------------------------------------------------------------ errors

void test_invalid_options() {
  std::vector<float> p(4, 1.0f);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto adadelta = [&](auto edit, const char* words) {
    fastoptim::AdadeltaOptions o;
    edit(o);
    CHECK_THROWS_WITH(words, fastoptim::Adadelta<float>({p}, o));
  };
  adadelta([](auto& o) { o.lr = -1.0; }, "Invalid learning rate");
  adadelta([nan](auto& o) { o.lr = nan; }, "Invalid learning rate");
  adadelta([](auto& o) { o.rho = 1.5; }, "Invalid rho value: 1.5");
  adadelta([](auto& o) { o.rho = -0.1; }, "Invalid rho value: -0.1");
  adadelta([nan](auto& o) { o.rho = nan; }, "Invalid rho value");
  adadelta([](auto& o) { o.eps = -1e-6; }, "Invalid epsilon value");
  adadelta([](auto& o) { o.weight_decay = -0.1; }, "Invalid weight_decay value");
  const auto asgd = [&](auto edit, const char* words) {
    fastoptim::ASGDOptions o;
    edit(o);
    CHECK_THROWS_WITH(words, fastoptim::ASGD<float>({p}, o));
  };
  asgd([](auto& o) { o.lr = -1e-3; }, "Invalid learning rate");
  asgd([](auto& o) { o.weight_decay = -1e-3; }, "Invalid weight_decay value");
  const auto rprop = [&](auto edit, const char* words) {
    fastoptim::RpropOptions o;
    edit(o);
    CHECK_THROWS_WITH(words, fastoptim::Rprop<float>({p}, o));
  };
  rprop([](auto& o) { o.lr = -1e-3; }, "Invalid learning rate");
  rprop([](auto& o) { o.etaminus = 0.0; }, "Invalid eta values: 0.0");
  rprop([](auto& o) { o.etaminus = 1.0; }, "Invalid eta values: 1.0");
  rprop([](auto& o) { o.etaplus = 1.0; }, "Invalid eta values: 0.500000, 1.0");
  rprop([nan](auto& o) { o.etaplus = nan; }, "Invalid eta values");
  // The closed ends torch accepts, and what torch does not check.
  fastoptim::AdadeltaOptions edge;
  edge.rho = 1.0;
  edge.eps = 0.0;
  fastoptim::Adadelta<float> ok_adadelta({p}, edge);
  fastoptim::ASGDOptions loose;
  loose.lambd = -1.0;
  loose.alpha = -2.0;
  loose.t0 = -5.0;
  fastoptim::ASGD<float> ok_asgd({p}, loose);
  fastoptim::RpropOptions inverted;
  inverted.step_size_min = 1.0;
  inverted.step_size_max = 0.1;
  fastoptim::Rprop<float> ok_rprop({p}, inverted);
  CHECK(ok_adadelta.num_params() == 1 && ok_asgd.num_params() == 1 && ok_rprop.num_params() == 1);
}

// A throwing step() (bad gradients, options edited into an invalid state) changes neither the parameters
// nor the state; a null gradient leaves its parameter and state alone.
template <class Opt>
void check_step_errors(const std::string& label, const typename Opt::options_type& options,
                       void (*spoil)(typename Opt::options_type&)) {
  using T = typename Opt::value_type;
  Rng rng(7);
  std::vector<T> p0 = random_vector<T>(rng, 6), p1 = random_vector<T>(rng, 9);
  const std::vector<T> g0 = random_vector<T>(rng, 6), g1 = random_vector<T>(rng, 9), g_short = random_vector<T>(rng, 8);
  Opt opt({p0, p1}, options);
  for (int t = 0; t < 3; ++t) opt.step({g0, g1});
  const std::vector<T> s0 = p0, s1 = p1;
  const auto st0 = opt.state(0), st1 = opt.state(1);
  const auto unchanged = [&] {
    return bit_equal(p0, s0) && bit_equal(p1, s1) && state_equal(opt.state(0), st0) && state_equal(opt.state(1), st1);
  };
  CHECK_THROWS_WITH("expected 2 gradients", opt.step({g0}));
  CHECK_THROWS_WITH("elements", opt.step({g0, g_short}));
  CHECK_THROWS_WITH("overlaps", opt.step({g0, Span<const T>(p1)}));
  CHECK_THROWS_WITH("overlaps", opt.step({Span<const T>(p1.data() + 3, 6), g1}));
  CHECK_MSG(unchanged(), label + ": a throwing step changed the parameters or the state");
  const auto saved = opt.param_groups()[0].options;
  spoil(opt.param_groups()[0].options);
  CHECK_THROWS_WITH("Invalid", opt.step({g0, g1}));
  CHECK_MSG(unchanged(), label + ": a step with invalid options changed the parameters or the state");
  opt.param_groups()[0].options = saved;
  opt.step({nullptr, g1});
  CHECK_MSG(bit_equal(p0, s0) && state_equal(opt.state(0), st0), label + ": a null gradient changed its parameter");
  CHECK_MSG(!bit_equal(p1, s1) && opt.state(1).step == 4, label + ": a valid step did not move the parameter");
}

void test_step_errors() {
  fastoptim::AdadeltaOptions a;
  a.weight_decay = 0.1;
  check_step_errors<fastoptim::Adadelta<float>>("Adadelta<float>", a, [](auto& o) { o.rho = 2.0; });
  fastoptim::ASGDOptions s;
  s.t0 = 0;
  check_step_errors<fastoptim::ASGD<double>>("ASGD<double>", s, [](auto& o) { o.weight_decay = -1.0; });
  fastoptim::RpropOptions r;
  check_step_errors<fastoptim::Rprop<float>>("Rprop<float>", r, [](auto& o) { o.etaplus = 0.9; });
}

// ------------------------------------------------------------------------------------------- state

// One optimizer takes over another's state with load_state after `split` steps; both continue on the golden
// problem: bit-identical trajectories and state.
template <class Opt>
void check_load_state_round_trip(std::size_t c, int split) {
  using T = typename Opt::value_type;
  const gc::Case& gcase = gc::kCases[c];
  GoldenProblem<T> a;
  Opt opt_a = a.template make<Opt>(gcase);
  for (int t = 1; t <= split; ++t) opt_a.step(GoldenProblem<T>::grads(t));
  GoldenProblem<T> b;
  for (std::size_t i = 0; i < gc::kNumParams; ++i) b.params[i] = a.params[i];
  Opt opt_b = b.template make<Opt>(gcase);
  for (std::size_t i = 0; i < gc::kNumParams; ++i) opt_b.load_state(i, opt_a.state(i));
  for (int t = split + 1; t <= gc::kSteps; ++t) {
    opt_a.step(GoldenProblem<T>::grads(t));
    opt_b.step(GoldenProblem<T>::grads(t));
  }
  bool same = true;
  for (std::size_t i = 0; i < gc::kNumParams; ++i)
    same = same && bit_equal(a.params[i], b.params[i]) && state_equal(opt_a.state(i), opt_b.state(i));
  CHECK_MSG(same, std::string(gcase.optimizer) + "/" + gcase.name + " " + type_name<T>() +
                      ": trajectories differ after load_state at step " + std::to_string(split));
}

template <class T>
void test_load_state_round_trips() {
  for (std::size_t c = 0; c < gc::kNumCases; ++c) {
    const std::string opt = gc::kCases[c].optimizer;
    for (int split : {0, 1, 7}) {
      if (opt == "Adadelta") check_load_state_round_trip<fastoptim::Adadelta<T>>(c, split);
      if (opt == "ASGD") check_load_state_round_trip<fastoptim::ASGD<T>>(c, split);
      if (opt == "Rprop") check_load_state_round_trip<fastoptim::Rprop<T>>(c, split);
    }
  }
}

void test_load_state_validation() {
  std::vector<double> p(5, 1.0), g(5, 0.5);
  {
    fastoptim::Adadelta<double> opt({p}, fastoptim::AdadeltaOptions{});
    opt.step({g});
    auto s = opt.state(0);
    s.acc_delta.resize(4);
    CHECK_THROWS_WITH("state 'acc_delta' of parameter 0 has 4 elements", opt.load_state(0, s));
  }
  {
    fastoptim::ASGD<double> opt({p}, fastoptim::ASGDOptions{});
    opt.step({g});
    auto s = opt.state(0);
    s.step = -1;
    CHECK_THROWS_WITH("state 'step' of parameter 0 is negative", opt.load_state(0, s));
    s = opt.state(0);
    s.ax.resize(6);
    CHECK_THROWS_WITH("state 'ax' of parameter 0 has 6 elements", opt.load_state(0, s));
  }
  {
    fastoptim::Rprop<double> opt({p}, fastoptim::RpropOptions{});
    opt.step({g});
    auto s = opt.state(0);
    s.step_size.resize(1);
    CHECK_THROWS_WITH("state 'step_size' of parameter 0 has 1 elements", opt.load_state(0, s));
    CHECK(opt.state(0).step_size.size() == 5);  // a failed load leaves the state alone
  }
}

// ASGD's per-parameter scalars: eta starts at the group's lr (as a float) when the state is created, the
// update reads the eta and mu of the previous step, and they move on after it.
void test_asgd_scalars() {
  std::vector<double> p(1, 1.0);
  const std::vector<double> g(1, 1.0);
  fastoptim::ASGDOptions o;
  o.lr = 0.5;
  o.lambd = 0.5;
  o.alpha = 1.0;
  o.t0 = 0.0;
  fastoptim::ASGD<double> opt({p}, o);
  CHECK(opt.state(0).ax.empty() && opt.state(0).step == 0);
  opt.step({g});
  CHECK(p[0] == 0.25 && opt.state(0).ax[0] == 0.25);  // 1 * (1 - 0.5 * 0.5) - 0.5 * 1; mu = 1: ax = p
  CHECK(opt.state(0).eta == 0.4f && opt.state(0).mu == 1.0f);
  opt.step({g});
  CHECK(p[0] == 0.25 * (1 - 0.5 * double(0.4f)) - double(0.4f) && opt.state(0).ax[0] == p[0]);
  CHECK(opt.state(0).eta == static_cast<float>(0.5 / 1.5) && opt.state(0).mu == 0.5f);
  const double ax = opt.state(0).ax[0];
  opt.step({g});
  CHECK(opt.state(0).ax[0] == ax + (p[0] - ax) * 0.5);
}

}  // namespace

int main() {
#if defined(_OPENMP)
  std::printf("fastoptim %s Adadelta/ASGD/Rprop tests, OpenMP with %d threads\n", FASTOPTIM_VERSION_STRING,
              fastoptim::max_threads());
#else
  std::printf("fastoptim %s Adadelta/ASGD/Rprop tests, without OpenMP\n", FASTOPTIM_VERSION_STRING);
#endif
  try {
    test_defaults();
    test_golden();
    test_chunked_kernels();
    test_large_parameters();
    test_invalid_options();
    test_step_errors();
    test_load_state_round_trips<float>();
    test_load_state_round_trips<double>();
    test_load_state_validation();
    test_asgd_scalars();
  } catch (const std::exception& e) {
    ++g_failed;
    std::printf("FAIL: unexpected exception: %s\n", e.what());
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
