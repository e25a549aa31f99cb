// C++ tests for fastoptim, dependency-free: a tiny CHECK harness, a final "N passed, M failed" line and
// a non-zero exit status when anything failed.
//
//  * golden:     every case of golden_values.hpp (torch 2.13 single-tensor results, see make_golden.py)
//                replayed through the C++ optimizers; final parameters and state buffers must be within
//                kMaxUlps ulps (of the largest magnitude of each parameter / buffer) of torch's, and
//                bit-identical to torch's with its sqrt (MKL, not correctly rounded) replaced by an IEEE one.
//  * parallel:   chunked, multi-threaded kernels (*_step with grain 1) against the scalar reference
//                kernels (*_update_ref) over whole arrays: bit-identical.
//  * errors:     invalid options, malformed step() arguments and overlapping memory throw
//                std::invalid_argument, and a throwing step() changes nothing.
//  * state:      state(i) contents, load_state round trips and load_state validation.

#include <fastoptim/fastoptim.hpp>

#include <algorithm>
#include <atomic>
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

#include "golden_values.hpp"

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
#define CHECK_THROWS(Exception, ...)                                                          \
  do {                                                                                        \
    std::string fastoptim_test_got = "nothing";                                               \
    try {                                                                                     \
      __VA_ARGS__;                                                                            \
    } catch (const Exception&) {                                                              \
      fastoptim_test_got.clear();                                                             \
    } catch (const std::exception& e) {                                                       \
      fastoptim_test_got = std::string("another exception: ") + e.what();                    \
    } catch (...) {                                                                           \
      fastoptim_test_got = "a non-std exception";                                             \
    }                                                                                         \
    report(fastoptim_test_got.empty(), "throws " #Exception ": " #__VA_ARGS__, __FILE__, __LINE__, \
           fastoptim_test_got.empty() ? std::string() : "threw " + fastoptim_test_got);      \
  } while (0)

#define CHECK_NOTHROW(...)                                                                                   \
  do {                                                                                                     \
    std::string fastoptim_test_got;                                                                        \
    try {                                                                                                  \
      __VA_ARGS__;                                                                                         \
    } catch (const std::exception& e) {                                                                    \
      fastoptim_test_got = e.what();                                                                       \
    } catch (...) {                                                                                        \
      fastoptim_test_got = "a non-std exception";                                                          \
    }                                                                                                      \
    report(fastoptim_test_got.empty(), "does not throw: " #__VA_ARGS__, __FILE__, __LINE__, fastoptim_test_got); \
  } while (0)

template <class T>
const char* type_name();
template <>
const char* type_name<float>() {
  return "float";
}
template <>
const char* type_name<double>() {
  return "double";
}

template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
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
  // Uniform in [-1, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-52 - 1.0; }

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

// ------------------------------------------------------------------------- options and state access

using fastoptim::AdagradOptions;
using fastoptim::AdamOptions;
using fastoptim::AdamWOptions;
using fastoptim::RMSpropOptions;
using fastoptim::SGDOptions;
using fastoptim::Span;

// Options for a golden case: the C++ defaults, with every field torch did not take at its default set
// from the case (so the cases also exercise the C++ defaults).
SGDOptions sgd_options(const golden::Hyper& h) {
  const golden::Hyper& d = golden::kTorchDefaultsSGD;
  SGDOptions o;
  if (h.lr != d.lr) o.lr = h.lr;
  if (h.momentum != d.momentum) o.momentum = h.momentum;
  if (h.dampening != d.dampening) o.dampening = h.dampening;
  if (h.weight_decay != d.weight_decay) o.weight_decay = h.weight_decay;
  if (h.nesterov != d.nesterov) o.nesterov = h.nesterov;
  if (h.maximize != d.maximize) o.maximize = h.maximize;
  return o;
}

template <class Options>
Options adam_options(const golden::Hyper& h, const golden::Hyper& d) {
  Options o;
  if (h.lr != d.lr) o.lr = h.lr;
  if (h.beta1 != d.beta1) o.beta1 = h.beta1;
  if (h.beta2 != d.beta2) o.beta2 = h.beta2;
  if (h.eps != d.eps) o.eps = h.eps;
  if (h.weight_decay != d.weight_decay) o.weight_decay = h.weight_decay;
  if (h.amsgrad != d.amsgrad) o.amsgrad = h.amsgrad;
  if (h.maximize != d.maximize) o.maximize = h.maximize;
  if (h.decoupled_weight_decay != d.decoupled_weight_decay) o.decoupled_weight_decay = h.decoupled_weight_decay;
  return o;
}

RMSpropOptions rmsprop_options(const golden::Hyper& h) {
  const golden::Hyper& d = golden::kTorchDefaultsRMSprop;
  RMSpropOptions o;
  if (h.lr != d.lr) o.lr = h.lr;
  if (h.alpha != d.alpha) o.alpha = h.alpha;
  if (h.eps != d.eps) o.eps = h.eps;
  if (h.weight_decay != d.weight_decay) o.weight_decay = h.weight_decay;
  if (h.momentum != d.momentum) o.momentum = h.momentum;
  if (h.centered != d.centered) o.centered = h.centered;
  if (h.maximize != d.maximize) o.maximize = h.maximize;
  return o;
}

fastoptim::AdagradOptions adagrad_options(const golden::Hyper& h) {
  const golden::Hyper& d = golden::kTorchDefaultsAdagrad;
  fastoptim::AdagradOptions o;
  if (h.lr != d.lr) o.lr = h.lr;
  if (h.lr_decay != d.lr_decay) o.lr_decay = h.lr_decay;
  if (h.eps != d.eps) o.eps = h.eps;
  if (h.weight_decay != d.weight_decay) o.weight_decay = h.weight_decay;
  if (h.initial_accumulator_value != d.initial_accumulator_value)
    o.initial_accumulator_value = h.initial_accumulator_value;
  if (h.maximize != d.maximize) o.maximize = h.maximize;
  return o;
}

// Each state's buffers by torch's state_dict key, and its step count (SGD has none).
template <class T>
using NamedBuffers = std::vector<std::pair<const char*, const std::vector<T>*>>;

template <class T>
NamedBuffers<T> named_buffers(const fastoptim::SGDState<T>& s) {
  return {{"momentum_buffer", &s.momentum_buffer}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::AdamState<T>& s) {
  return {{"exp_avg", &s.exp_avg}, {"exp_avg_sq", &s.exp_avg_sq}, {"max_exp_avg_sq", &s.max_exp_avg_sq}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::RMSpropState<T>& s) {
  return {{"square_avg", &s.square_avg}, {"momentum_buffer", &s.momentum_buffer}, {"grad_avg", &s.grad_avg}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::AdagradState<T>& s) {
  return {{"sum", &s.sum}};
}
template <class T>
std::int64_t step_of(const fastoptim::AdagradState<T>& s) {
  return s.step;
}
template <class T>
std::int64_t step_of(const fastoptim::SGDState<T>&) {
  return 0;
}
template <class T>
std::int64_t step_of(const fastoptim::AdamState<T>& s) {
  return s.step;
}
template <class T>
std::int64_t step_of(const fastoptim::RMSpropState<T>& s) {
  return s.step;
}

template <class State>
bool state_equal(const State& a, const State& b) {
  if (step_of(a) != step_of(b)) return false;
  const auto na = named_buffers(a), nb = named_buffers(b);
  for (std::size_t i = 0; i < na.size(); ++i)
    if (!bit_equal(*na[i].second, *nb[i].second)) return false;
  return true;
}

// ------------------------------------------------------------------------------------------- golden

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
std::size_t count_differing(const T* x, const T* ref, std::size_t n) {
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) k += std::memcmp(&x[i], &ref[i], sizeof(T)) != 0;
  return k;
}

template <class T>
struct GoldenProblem {
  using D = golden::Data<T>;
  std::vector<T> params[golden::kNumParams];

  GoldenProblem() {
    for (std::size_t i = 0; i < golden::kNumParams; ++i)
      params[i].assign(D::init + golden::kOffsets[i], D::init + golden::kOffsets[i] + golden::kSizes[i]);
  }
  std::vector<Span<T>> spans() { return {Span<T>(params[0]), Span<T>(params[1])}; }

  // The gradients of step t (1-based), null where the parameter has none.
  static std::vector<Span<const T>> grads(int t) {
    std::vector<Span<const T>> g;
    for (std::size_t i = 0; i < golden::kNumParams; ++i) {
      if (golden::kHasGrad[t - 1][i])
        g.emplace_back(D::grad[t - 1] + golden::kOffsets[i], golden::kSizes[i]);
      else
        g.emplace_back(nullptr);
    }
    return g;
  }
};

struct GoldenSummary {
  double worst_param_ulps = 0;
  double worst_state_ulps = 0;
};

template <class Opt>
void check_golden_case(std::size_t c, const typename Opt::options_type& options, GoldenSummary& summary) {
  using T = typename Opt::value_type;
  using D = golden::Data<T>;
  const golden::Case& gc = golden::kCases[c];
  const std::string label = std::string(gc.optimizer) + "/" + gc.name + " " + type_name<T>();

  GoldenProblem<T> prob;
  Opt opt(prob.spans(), options);
  for (int t = 1; t <= golden::kSteps; ++t) opt.step(GoldenProblem<T>::grads(t));

  // Final parameters.
  double param_dev = 0;
  std::size_t differing = 0;
  for (std::size_t i = 0; i < golden::kNumParams; ++i) {
    const T* ref = D::final_params[c] + golden::kOffsets[i];
    param_dev = std::max(param_dev, ulp_deviation(prob.params[i].data(), ref, golden::kSizes[i]));
    differing += count_differing(prob.params[i].data(), ref, golden::kSizes[i]);
  }
  CHECK_MSG(param_dev <= kMaxUlps, label + ": parameters deviate by " + std::to_string(param_dev) + " ulps");

  // Final state: torch's buffers, and no buffers where torch has none.
  double state_dev = 0;
  std::size_t state_differing = 0;
  std::size_t buffers_seen = 0;
  for (std::size_t i = 0; i < golden::kNumParams; ++i) {
    const auto& st = opt.state(i);
    CHECK_MSG(step_of(st) == gc.steps[i], label + ": step of parameter " + std::to_string(i) + " is " +
                                              std::to_string(step_of(st)) + ", torch has " + std::to_string(gc.steps[i]));
    for (const auto& [key, buf] : named_buffers(st)) {
      const T* ref = nullptr;
      for (std::size_t j = 0; j < golden::kNumStates; ++j)
        if (golden::kStates[j].case_index == c && std::strcmp(golden::kStates[j].key, key) == 0)
          ref = D::final_state[j] + golden::kOffsets[i];
      if (ref == nullptr) {
        CHECK_MSG(buf->empty(), label + ": state '" + key + "' should be empty, torch has none");
        continue;
      }
      ++buffers_seen;
      if (buf->size() != golden::kSizes[i]) {
        CHECK_MSG(buf->size() == golden::kSizes[i], label + ": state '" + key + "' has the wrong size");
        continue;
      }
      const double dev = ulp_deviation(buf->data(), ref, golden::kSizes[i]);
      state_dev = std::max(state_dev, dev);
      state_differing += count_differing(buf->data(), ref, golden::kSizes[i]);
      CHECK_MSG(dev <= kMaxUlps, label + ": state '" + key + "' of parameter " + std::to_string(i) + " deviates by " +
                                     std::to_string(dev) + " ulps");
    }
  }
  std::size_t expected_buffers = 0;
  for (std::size_t j = 0; j < golden::kNumStates; ++j) expected_buffers += golden::kStates[j].case_index == c;
  CHECK_MSG(buffers_seen == expected_buffers * golden::kNumParams, label + ": a state buffer torch has is missing");

  // Against torch with a correctly rounded sqrt: every rounding is torch's, so the results are identical.
  std::size_t exact_differing = 0;
  for (std::size_t i = 0; i < golden::kNumParams; ++i)
    exact_differing += count_differing(prob.params[i].data(), D::final_params_exact_sqrt[c] + golden::kOffsets[i],
                                       golden::kSizes[i]);
  for (std::size_t j = 0; j < golden::kNumStates; ++j) {
    if (golden::kStates[j].case_index != c) continue;
    for (std::size_t i = 0; i < golden::kNumParams; ++i) {
      for (const auto& [key, buf] : named_buffers(opt.state(i))) {
        if (std::strcmp(key, golden::kStates[j].key) != 0) continue;
        exact_differing += buf->size() != golden::kSizes[i]
                               ? golden::kSizes[i]
                               : count_differing(buf->data(), D::final_state_exact_sqrt[j] + golden::kOffsets[i],
                                                 golden::kSizes[i]);
      }
    }
  }
  CHECK_MSG(exact_differing == 0, label + ": " + std::to_string(exact_differing) +
                                      " values differ from torch with a correctly rounded sqrt");

  std::printf("  %-46s vs torch: params %.2f ulps (%2zu/%zu differ), state %.2f ulps (%2zu differ);"
              " vs exact sqrt: %s\n",
              label.c_str(), param_dev, differing, golden::kTotal, state_dev, state_differing,
              exact_differing == 0 ? "identical" : (std::to_string(exact_differing) + " differ").c_str());
  summary.worst_param_ulps = std::max(summary.worst_param_ulps, param_dev);
  summary.worst_state_ulps = std::max(summary.worst_state_ulps, state_dev);
}

template <class T>
void run_golden_case(std::size_t c, GoldenSummary& summary) {
  const golden::Case& gc = golden::kCases[c];
  const std::string opt = gc.optimizer;
  if (opt == "SGD") {
    check_golden_case<fastoptim::SGD<T>>(c, sgd_options(gc.hyper), summary);
  } else if (opt == "Adam") {
    check_golden_case<fastoptim::Adam<T>>(c, adam_options<AdamOptions>(gc.hyper, golden::kTorchDefaultsAdam), summary);
  } else if (opt == "AdamW") {
    check_golden_case<fastoptim::AdamW<T>>(c, adam_options<AdamWOptions>(gc.hyper, golden::kTorchDefaultsAdamW),
                                           summary);
  } else if (opt == "RMSprop") {
    check_golden_case<fastoptim::RMSprop<T>>(c, rmsprop_options(gc.hyper), summary);
  } else if (opt == "Adagrad") {
    check_golden_case<fastoptim::Adagrad<T>>(c, adagrad_options(gc.hyper), summary);
  } else {
    CHECK_MSG(false, "unknown optimizer in golden_values.hpp: " + opt);
  }
}

void test_golden() {
  std::printf("golden (torch 2.13 single-tensor, %d steps):\n", golden::kSteps);
  GoldenSummary summary;
  for (std::size_t c = 0; c < golden::kNumCases; ++c) {
    run_golden_case<float>(c, summary);
    run_golden_case<double>(c, summary);
  }
  std::printf("  worst: params %.2f ulps, state %.2f ulps (allowed %.0f)\n", summary.worst_param_ulps,
              summary.worst_state_ulps, kMaxUlps);
}

// The C++ options default to torch's constructor defaults.
void test_defaults() {
  const SGDOptions s;
  const golden::Hyper& ts = golden::kTorchDefaultsSGD;
  CHECK(s.lr == ts.lr && s.momentum == ts.momentum && s.dampening == ts.dampening &&
        s.weight_decay == ts.weight_decay && s.nesterov == ts.nesterov && s.maximize == ts.maximize);

  const auto adam_like = [](const AdamOptions& o, const golden::Hyper& t) {
    return o.lr == t.lr && o.beta1 == t.beta1 && o.beta2 == t.beta2 && o.eps == t.eps &&
           o.weight_decay == t.weight_decay && o.amsgrad == t.amsgrad && o.maximize == t.maximize &&
           o.decoupled_weight_decay == t.decoupled_weight_decay;
  };
  CHECK(adam_like(AdamOptions{}, golden::kTorchDefaultsAdam));
  CHECK(adam_like(AdamWOptions{}, golden::kTorchDefaultsAdamW));

  const RMSpropOptions r;
  const golden::Hyper& tr = golden::kTorchDefaultsRMSprop;
  CHECK(r.lr == tr.lr && r.alpha == tr.alpha && r.eps == tr.eps && r.weight_decay == tr.weight_decay &&
        r.momentum == tr.momentum && r.centered == tr.centered && r.maximize == tr.maximize);

  const fastoptim::AdagradOptions a;
  const golden::Hyper& ta = golden::kTorchDefaultsAdagrad;
  CHECK(a.lr == ta.lr && a.lr_decay == ta.lr_decay && a.eps == ta.eps && a.weight_decay == ta.weight_decay &&
        a.initial_accumulator_value == ta.initial_accumulator_value && a.maximize == ta.maximize);
}

// ----------------------------------------------------------------------------------------- parallel

const std::size_t kOddSizes[] = {1, 15, 17, 1023, 100003};

// parallel_for covers [0, n) exactly once, in 64-aligned chunks, whatever n, grain and thread count.
void test_parallel_for() {
  for (int threads : {1, 2, 3, 4, 7}) {
    ThreadCount tc(threads);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64}, std::size_t{65},
                          std::size_t{1000}, std::size_t{100003}}) {
      for (std::size_t grain : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64}, fastoptim::kDefaultGrain}) {
        std::vector<unsigned char> visits(n, 0), chunk_start(n, 0);
        std::atomic<bool> bad_range{false};
        fastoptim::parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
          if (!(b < e && e <= n)) {
            bad_range = true;
            return;
          }
          chunk_start[b] = 1;
          for (std::size_t i = b; i < e; ++i) ++visits[i];
        });
        bool once = std::all_of(visits.begin(), visits.end(), [](unsigned char v) { return v == 1; });
        bool aligned = true;
        for (std::size_t i = 0; i < n; ++i) aligned = aligned && (chunk_start[i] == 0 || i % 64 == 0);
        const std::string ctx = "threads=" + std::to_string(threads) + " n=" + std::to_string(n) +
                                " grain=" + std::to_string(grain);
        CHECK_MSG(!bad_range && once && aligned, ctx);
      }
    }
  }
}

// parallel_for_items: every element of every item visited exactly once, ranges within their item, for any
// thread count, grain and mix of sizes (empty items included).
void test_parallel_for_items() {
  const std::vector<std::vector<std::size_t>> mixes{
      {}, {0}, {0, 0, 5}, {1, 63, 64, 65}, std::vector<std::size_t>(1000, 1000), {100003, 3, 0, 70001, 1},
      {5, std::size_t{3} * fastoptim::kDefaultGrain + 11, 7}};
  for (int threads : {1, 2, 3, 4, 7}) {
    ThreadCount tc(threads);
    for (std::size_t m = 0; m < mixes.size(); ++m) {
      const auto& sizes = mixes[m];
      for (std::size_t grain : {std::size_t{0}, std::size_t{1}, std::size_t{64}, fastoptim::kDefaultGrain}) {
        std::vector<std::vector<unsigned char>> visits;
        for (std::size_t n : sizes) visits.emplace_back(n, 0);
        std::atomic<bool> bad_range{false};
        fastoptim::parallel_for_items(
            sizes.size(), [&](std::size_t i) { return sizes[i]; }, grain,
            [&](std::size_t i, std::size_t b, std::size_t e) {
              if (!(i < sizes.size() && b < e && e <= sizes[i])) {
                bad_range = true;
                return;
              }
              for (std::size_t j = b; j < e; ++j) ++visits[i][j];
            });
        bool once = true;
        for (const auto& v : visits) once = once && std::all_of(v.begin(), v.end(), [](unsigned char c) { return c == 1; });
        CHECK_MSG(!bad_range && once, "parallel_for_items threads=" + std::to_string(threads) +
                                          " mix=" + std::to_string(m) + " grain=" + std::to_string(grain));
      }
    }
  }
}

template <class T>
struct KernelArrays {
  std::vector<T> param, a, b, c;  // a, b, c: the state buffers, in the kernel's argument order
  bool operator==(const KernelArrays& o) const {
    return bit_equal(param, o.param) && bit_equal(a, o.a) && bit_equal(b, o.b) && bit_equal(c, o.c);
  }
};

// Three steps from zero state, chunked (grain 1, split across threads) and by the reference kernel over the
// whole array: bit-identical parameters and state.
template <class T, class Chunked, class Reference>
void check_chunked(const std::string& label, std::size_t n, std::uint64_t seed, const Chunked& chunked,
                   const Reference& reference) {
  Rng rng(seed);
  KernelArrays<T> x;
  x.param = random_vector<T>(rng, n, 2.0);
  x.a.assign(n, T(0));
  x.b.assign(n, T(0));
  x.c.assign(n, T(0));
  KernelArrays<T> y = x;
  bool same = true;
  for (int step = 1; step <= 3; ++step) {
    std::vector<T> grad = random_vector<T>(rng, n, step == 2 ? 1e-3 : 1.0);
    if (n > 3) grad[3] = T(0);
    chunked(x, grad, step);
    reference(y, grad, step);
    same = same && x == y;
  }
  CHECK_MSG(same, label + " n=" + std::to_string(n) + ": chunked kernel differs from the reference");
}

template <class T>
void test_chunked_kernels_for_case(std::size_t c, int threads) {
  const golden::Case& gc = golden::kCases[c];
  const std::string opt = gc.optimizer;
  const std::string label = opt + "/" + gc.name + " " + type_name<T>() + " threads=" + std::to_string(threads);
  for (std::size_t n : kOddSizes) {
    const std::uint64_t seed = 1000 * c + n;
    if (opt == "SGD") {
      const SGDOptions o = sgd_options(gc.hyper);
      const fastoptim::SGDScalars<T> s(o);
      const bool mom = o.momentum != 0.0;  // the momentum buffer is k.a, initialized from the gradient at step 1
      check_chunked<T>(
          label, n, seed,
          [&](KernelArrays<T>& k, const std::vector<T>& g, int step) {
            fastoptim::sgd_step<T>(k.param.data(), g.data(), mom ? k.a.data() : nullptr, step == 1, n, o, 1);
          },
          [&](KernelArrays<T>& k, const std::vector<T>& g, int step) {
            fastoptim::sgd_update_ref<T>(k.param.data(), g.data(), mom ? k.a.data() : nullptr, step == 1, n, s);
          });
    } else if (opt == "Adam" || opt == "AdamW") {
      const AdamOptions o = opt == "Adam" ? adam_options<AdamOptions>(gc.hyper, golden::kTorchDefaultsAdam)
                                          : adam_options<AdamWOptions>(gc.hyper, golden::kTorchDefaultsAdamW);
      check_chunked<T>(
          label, n, seed,
          [&](KernelArrays<T>& k, const std::vector<T>& g, int step) {
            fastoptim::adam_step<T>(k.param.data(), g.data(), k.a.data(), k.b.data(), o.amsgrad ? k.c.data() : nullptr,
                                    n, o, step, 1);
          },
          [&](KernelArrays<T>& k, const std::vector<T>& g, int step) {
            const fastoptim::AdamScalars<T> s(o, step);
            fastoptim::adam_update_ref<T>(k.param.data(), g.data(), k.a.data(), k.b.data(),
                                          o.amsgrad ? k.c.data() : nullptr, n, s);
          });
    } else if (opt == "RMSprop") {
      const RMSpropOptions o = rmsprop_options(gc.hyper);
      const fastoptim::RMSpropScalars<T> s(o);
      const bool mom = o.momentum > 0.0;
      check_chunked<T>(
          label, n, seed,
          [&](KernelArrays<T>& k, const std::vector<T>& g, int) {
            fastoptim::rmsprop_step<T>(k.param.data(), g.data(), k.a.data(), o.centered ? k.b.data() : nullptr,
                                       mom ? k.c.data() : nullptr, n, o, 1);
          },
          [&](KernelArrays<T>& k, const std::vector<T>& g, int) {
            fastoptim::rmsprop_update_ref<T>(k.param.data(), g.data(), k.a.data(), o.centered ? k.b.data() : nullptr,
                                             mom ? k.c.data() : nullptr, n, s);
          });
    } else if (opt == "Adagrad") {
      const fastoptim::AdagradOptions o = adagrad_options(gc.hyper);
      check_chunked<T>(
          label, n, seed,
          [&](KernelArrays<T>& k, const std::vector<T>& g, int step) {
            fastoptim::adagrad_step<T>(k.param.data(), g.data(), k.a.data(), n, o, step, 1);
          },
          [&](KernelArrays<T>& k, const std::vector<T>& g, int step) {
            const fastoptim::AdagradScalars<T> s(o, step);
            fastoptim::adagrad_update_ref<T>(k.param.data(), g.data(), k.a.data(), n, s);
          });
    }
  }
}

void test_chunked_kernels() {
  // Thread counts 2..4 force splitting even where OMP_NUM_THREADS=1; without OpenMP they all run serially.
  for (int threads : {2, 3, 4}) {
    ThreadCount tc(threads);
    for (std::size_t c = 0; c < golden::kNumCases; ++c) {
      test_chunked_kernels_for_case<float>(c, threads);
      test_chunked_kernels_for_case<double>(c, threads);
    }
  }
}

// Through the optimizer front end at the default grain and the environment's thread count: a parameter
// above the grain (split when OpenMP has threads) next to a small one, against the reference kernels.
template <class T>
void test_large_parameter() {
  const std::size_t n_big = 3 * fastoptim::kDefaultGrain + 17, n_small = 5;
  Rng rng(99);
  std::vector<T> big = random_vector<T>(rng, n_big), small = random_vector<T>(rng, n_small);
  std::vector<T> big_ref = big, small_ref = small;
  std::vector<T> m(n_big + n_small, T(0)), v(n_big + n_small, T(0)), vmax(n_big + n_small, T(0));
  AdamOptions o;
  o.lr = 1e-2;
  o.amsgrad = true;
  o.weight_decay = 0.1;
  fastoptim::Adam<T> opt({big, small}, o);
  bool same = true;
  for (int step = 1; step <= 3; ++step) {
    std::vector<T> g_big = random_vector<T>(rng, n_big), g_small = random_vector<T>(rng, n_small);
    opt.step({g_big, g_small});
    const fastoptim::AdamScalars<T> s(o, step);
    fastoptim::adam_update_ref<T>(big_ref.data(), g_big.data(), m.data(), v.data(), vmax.data(), n_big, s);
    fastoptim::adam_update_ref<T>(small_ref.data(), g_small.data(), m.data() + n_big, v.data() + n_big,
                                  vmax.data() + n_big, n_small, s);
    same = same && bit_equal(big, big_ref) && bit_equal(small, small_ref);
  }
  CHECK_MSG(same, std::string("Adam<") + type_name<T>() + "> with a parameter above the grain differs from the reference");
}

// Many small parameters whose total exceeds the grain: step() splits their concatenation across threads
// (cutting inside parameters), which must equal the reference kernel run per parameter.
template <class T>
void test_many_small_parameters() {
  const std::size_t count = 300, each = 257;  // 77100 elements: above the grain, each below it
  Rng rng(7);
  std::vector<std::vector<T>> params, refs;
  for (std::size_t i = 0; i < count; ++i) params.push_back(random_vector<T>(rng, each));
  refs = params;
  std::vector<std::vector<T>> m(count, std::vector<T>(each, T(0))), v = m;
  AdamOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.1;
  std::vector<fastoptim::Span<T>> spans(params.begin(), params.end());
  fastoptim::Adam<T> opt(spans, o);
  bool same = true;
  for (int step = 1; step <= 3; ++step) {
    std::vector<std::vector<T>> grads;
    for (std::size_t i = 0; i < count; ++i) grads.push_back(random_vector<T>(rng, each));
    opt.step(std::vector<fastoptim::Span<const T>>(grads.begin(), grads.end()));
    const fastoptim::AdamScalars<T> s(o, step);
    for (std::size_t i = 0; i < count; ++i)
      fastoptim::adam_update_ref<T>(refs[i].data(), grads[i].data(), m[i].data(), v[i].data(), nullptr, each, s);
    for (std::size_t i = 0; i < count; ++i) same = same && bit_equal(params[i], refs[i]);
  }
  CHECK_MSG(same, std::string("Adam<") + type_name<T>() + "> over many small parameters differs from the reference");
}

// --------------------------------------------------------------------------------------------- errors

void test_invalid_options() {
  std::vector<float> p(4, 1.0f);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    SGDOptions o;
    o.lr = -0.1;
    CHECK_THROWS(std::invalid_argument, fastoptim::SGD<float>({p}, o));
    o.lr = nan;
    CHECK_THROWS(std::invalid_argument, fastoptim::SGD<float>({p}, o));
    o = SGDOptions{};
    o.momentum = -0.5;
    CHECK_THROWS(std::invalid_argument, fastoptim::SGD<float>({p}, o));
    o = SGDOptions{};
    o.weight_decay = -1e-3;
    CHECK_THROWS(std::invalid_argument, fastoptim::SGD<float>({p}, o));
    o = SGDOptions{};
    o.nesterov = true;  // without momentum
    CHECK_THROWS(std::invalid_argument, fastoptim::SGD<float>({p}, o));
    o.momentum = 0.9;
    o.dampening = 0.1;  // Nesterov needs zero dampening
    CHECK_THROWS(std::invalid_argument, fastoptim::SGD<float>({p}, o));
    o.dampening = 0.0;
    CHECK_NOTHROW(fastoptim::SGD<float>({p}, o));
  }
  {
    const auto bad = [&](auto edit) {
      AdamOptions o;
      edit(o);
      CHECK_THROWS(std::invalid_argument, fastoptim::Adam<double>({Span<double>()}, o));
      AdamWOptions w;
      edit(w);
      CHECK_THROWS(std::invalid_argument, fastoptim::AdamW<float>({p}, w));
    };
    bad([](AdamOptions& o) { o.lr = -1e-3; });
    bad([](AdamOptions& o) { o.eps = -1e-8; });
    bad([](AdamOptions& o) { o.beta1 = 1.0; });
    bad([](AdamOptions& o) { o.beta1 = -0.1; });
    bad([](AdamOptions& o) { o.beta2 = 1.0; });
    bad([](AdamOptions& o) { o.beta2 = -1e-9; });
    bad([nan](AdamOptions& o) { o.beta2 = nan; });
    bad([](AdamOptions& o) { o.weight_decay = -0.01; });
    AdamOptions edge;
    edge.beta1 = 0.0;  // the closed end of [0, 1)
    edge.beta2 = 0.0;
    CHECK_NOTHROW(fastoptim::Adam<float>({p}, edge));
  }
  {
    const auto bad = [&](auto edit) {
      RMSpropOptions o;
      edit(o);
      CHECK_THROWS(std::invalid_argument, fastoptim::RMSprop<float>({p}, o));
    };
    bad([](RMSpropOptions& o) { o.lr = -1.0; });
    bad([](RMSpropOptions& o) { o.alpha = -0.5; });
    bad([](RMSpropOptions& o) { o.eps = -1.0; });
    bad([](RMSpropOptions& o) { o.momentum = -0.9; });
    bad([](RMSpropOptions& o) { o.weight_decay = -0.1; });
  }
  // add_param_group validates the new group's options.
  fastoptim::SGD<float> opt({p}, SGDOptions{});
  std::vector<float> q(3);
  SGDOptions neg;
  neg.lr = -1;
  CHECK_THROWS(std::invalid_argument, opt.add_param_group({{q}, neg}));
  CHECK(opt.num_params() == 1);
  // No groups at all.
  CHECK_THROWS(std::invalid_argument, fastoptim::SGD<float>(std::vector<fastoptim::ParamGroup<float, SGDOptions>>{}));
}

void test_overlapping_parameters() {
  std::vector<float> buf(10, 1.0f);
  // Adjacent ranges do not overlap.
  CHECK_NOTHROW(fastoptim::SGD<float>({Span<float>(buf.data(), 5), Span<float>(buf.data() + 5, 5)}, SGDOptions{}));
  // One shared element.
  CHECK_THROWS(std::invalid_argument,
               fastoptim::SGD<float>({Span<float>(buf.data(), 5), Span<float>(buf.data() + 4, 5)}, SGDOptions{}));
  // The same parameter twice.
  CHECK_THROWS(std::invalid_argument, fastoptim::Adam<float>({Span<float>(buf), Span<float>(buf)}, AdamOptions{}));
  // One contained in another.
  CHECK_THROWS(std::invalid_argument,
               fastoptim::RMSprop<float>({Span<float>(buf), Span<float>(buf.data() + 2, 3)}, RMSpropOptions{}));
  // Across parameter groups.
  fastoptim::SGD<float> opt({Span<float>(buf.data(), 5)}, SGDOptions{});
  CHECK_THROWS(std::invalid_argument, opt.add_param_group({{Span<float>(buf.data() + 3, 4)}, SGDOptions{}}));
  CHECK(opt.num_params() == 1);
  CHECK_NOTHROW(opt.add_param_group({{Span<float>(buf.data() + 5, 5)}, SGDOptions{}}));
  CHECK(opt.num_params() == 2);
  // Empty parameters overlap nothing; a null parameter must be empty.
  CHECK_NOTHROW(fastoptim::SGD<float>({Span<float>(), Span<float>(buf.data(), 0), Span<float>(buf)}, SGDOptions{}));
  CHECK_THROWS(std::invalid_argument, fastoptim::SGD<float>({Span<float>(nullptr, 3)}, SGDOptions{}));
}

template <class T>
std::vector<T> concat(const std::vector<T>& a, const std::vector<T>& b) {
  std::vector<T> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

// step() with malformed arguments throws std::invalid_argument and changes neither the parameters nor
// the state, even when the first gradients are fine.
template <class Opt>
void check_step_errors(const std::string& label, const typename Opt::options_type& options) {
  using T = typename Opt::value_type;
  Rng rng(7);
  std::vector<T> p0 = random_vector<T>(rng, 6), p1 = random_vector<T>(rng, 9);
  std::vector<T> g0 = random_vector<T>(rng, 6), g1 = random_vector<T>(rng, 9), g_short = random_vector<T>(rng, 8);
  Opt opt({p0, p1}, options);
  for (int t = 0; t < 3; ++t) opt.step({g0, g1});

  const std::vector<T> saved_params = concat(p0, p1);
  const auto saved0 = opt.state(0), saved1 = opt.state(1);
  const auto unchanged = [&] {
    return bit_equal(concat(p0, p1), saved_params) && state_equal(opt.state(0), saved0) &&
           state_equal(opt.state(1), saved1);
  };
  const auto check = [&](const char* what) {
    CHECK_MSG(unchanged(), label + ": a throwing step (" + what + ") changed the parameters or the state");
  };

  CHECK_THROWS(std::invalid_argument, opt.step({g0}));
  check("too few gradients");
  CHECK_THROWS(std::invalid_argument, opt.step({g0, g1, g1}));
  check("too many gradients");
  CHECK_THROWS(std::invalid_argument, opt.step({}));
  check("no gradients");
  CHECK_THROWS(std::invalid_argument, opt.step({g0, g_short}));
  check("size mismatch");
  CHECK_THROWS(std::invalid_argument, opt.step({Span<const T>(g1.data(), 6), Span<const T>(g0.data(), 6)}));
  check("size mismatch of a second gradient taken from another's memory");
  CHECK_THROWS(std::invalid_argument, opt.step({g0, Span<const T>(p1)}));
  check("gradient is its own parameter");
  CHECK_THROWS(std::invalid_argument, opt.step({g0, Span<const T>(p0.data() + 1, 5)}));
  check("gradient of the wrong size inside another parameter");
  CHECK_THROWS(std::invalid_argument, opt.step({Span<const T>(p1.data() + 3, 6), g1}));
  check("gradient overlapping another parameter");
  // A gradient inside a parameter's memory but the right size, for a parameter of the same size.
  {
    std::vector<T> big = random_vector<T>(rng, 12);
    std::vector<T> big_saved = big;
    Opt opt2({Span<T>(big.data(), 6)}, options);
    CHECK_THROWS(std::invalid_argument, opt2.step({Span<const T>(big.data() + 5, 6)}));
    CHECK_NOTHROW(opt2.step({Span<const T>(big.data() + 6, 6)}));  // adjacent memory is fine
    CHECK(std::equal(big.begin() + 6, big.end(), big_saved.begin() + 6));
  }
  // Options edited into an invalid state are caught by step().
  // (A negative lr is taken by step(), as torch does: schedulers may round it a hair below zero; NaN is not.)
  const double wd = opt.param_groups()[0].options.weight_decay;
  opt.param_groups()[0].options.weight_decay = -1.0;
  CHECK_THROWS(std::invalid_argument, opt.step({g0, g1}));
  check("invalid options");
  opt.param_groups()[0].options.weight_decay = wd;
  const double lr = opt.param_groups()[0].options.lr;
  opt.param_groups()[0].options.lr = std::nan("");
  CHECK_THROWS(std::invalid_argument, opt.step({g0, g1}));
  check("NaN learning rate");
  opt.param_groups()[0].options.lr = lr;
  // Valid steps still work afterwards, and a null gradient skips its parameter entirely.
  CHECK_NOTHROW(opt.step({nullptr, g1}));
  CHECK_MSG(bit_equal(p0, std::vector<T>(saved_params.begin(), saved_params.begin() + 6)) &&
                state_equal(opt.state(0), saved0),
            label + ": a null gradient changed its parameter or state");
  CHECK_MSG(!bit_equal(p1, std::vector<T>(saved_params.begin() + 6, saved_params.end())),
            label + ": a valid step did not change the parameter");
  CHECK_NOTHROW(opt.step({nullptr, nullptr}));
}

void test_step_errors() {
  SGDOptions s;
  s.lr = 0.1;
  s.momentum = 0.9;
  check_step_errors<fastoptim::SGD<float>>("SGD<float>", s);
  check_step_errors<fastoptim::SGD<double>>("SGD<double>", s);
  AdamOptions a;
  a.lr = 0.01;
  a.amsgrad = true;
  check_step_errors<fastoptim::Adam<float>>("Adam<float>", a);
  check_step_errors<fastoptim::AdamW<double>>("AdamW<double>", AdamWOptions{});
  RMSpropOptions r;
  r.centered = true;
  r.momentum = 0.5;
  check_step_errors<fastoptim::RMSprop<float>>("RMSprop<float>", r);
  check_step_errors<fastoptim::RMSprop<double>>("RMSprop<double>", RMSpropOptions{});
}

// ---------------------------------------------------------------------------------------------- state

void test_state_access() {
  std::vector<float> p0(5, 0.5f), p1(7, -0.5f), g0(5, 0.25f), g1(7, 1.0f);
  {
    AdamOptions o;
    fastoptim::Adam<float> opt({p0, p1}, o);
    CHECK(opt.num_params() == 2);
    CHECK(opt.state(0).step == 0 && opt.state(0).exp_avg.empty() && opt.state(0).exp_avg_sq.empty());
    CHECK_THROWS(std::out_of_range, opt.state(2));
    opt.step({g0, nullptr});
    opt.step({g0, nullptr});
    CHECK(opt.state(0).step == 2 && opt.state(0).exp_avg.size() == 5 && opt.state(0).exp_avg_sq.size() == 5);
    CHECK(opt.state(0).max_exp_avg_sq.empty());  // no amsgrad
    CHECK(opt.state(1).step == 0 && opt.state(1).exp_avg.empty());  // never had a gradient
    opt.step({g0, g1});
    CHECK(opt.state(0).step == 3 && opt.state(1).step == 1 && opt.state(1).exp_avg_sq.size() == 7);
    // First Adam step: m = (1 - beta1) g, v = (1 - beta2) g^2, in float.
    CHECK(opt.state(1).exp_avg[0] == static_cast<float>(1.0 - o.beta1) * 1.0f);
    CHECK(opt.state(1).exp_avg_sq[0] == static_cast<float>(1.0 - o.beta2) * 1.0f);
    const auto& copts = static_cast<const fastoptim::Adam<float>&>(opt);
    CHECK(copts.state(1).step == 1 && copts.param_groups().size() == 1 && copts.param_groups()[0].params.size() == 2);
  }
  {
    SGDOptions o;
    fastoptim::SGD<float> plain({p0}, o);
    plain.step({g0});
    CHECK(plain.state(0).momentum_buffer.empty());
    o.momentum = 0.9;
    fastoptim::SGD<float> mom({p0}, o);
    mom.step({g0});
    CHECK(mom.state(0).momentum_buffer.size() == 5 && mom.state(0).momentum_buffer[0] == 0.25f);  // buf = g
  }
  {
    RMSpropOptions o;
    fastoptim::RMSprop<double> plain({Span<double>()}, o);
    CHECK(plain.state(0).square_avg.empty());
    std::vector<double> q(3, 1.0), g(3, 2.0);
    fastoptim::RMSprop<double> opt({q}, o);
    opt.step({g});
    CHECK(opt.state(0).step == 1 && opt.state(0).square_avg.size() == 3 && opt.state(0).grad_avg.empty() &&
          opt.state(0).momentum_buffer.empty());
    o.centered = true;
    o.momentum = 0.1;
    fastoptim::RMSprop<double> opt2({q}, o);
    opt2.step({g});
    CHECK(opt2.state(0).grad_avg.size() == 3 && opt2.state(0).momentum_buffer.size() == 3);
  }
  {
    // Adagrad, as torch: the constructor's parameters have state from the start; a later group's at its first step.
    AdagradOptions o;
    o.initial_accumulator_value = 0.25;
    fastoptim::Adagrad<float> opt({p0}, o);
    CHECK(opt.state(0).step == 0 && opt.state(0).sum == std::vector<float>(5, 0.25f));
    o.initial_accumulator_value = 0.5;
    opt.add_param_group({{p1}, o});
    CHECK(opt.state(1).step == 0 && opt.state(1).sum.empty());
    opt.step({nullptr, g1});
    CHECK(opt.state(0).step == 0 && opt.state(1).step == 1 && opt.state(1).sum.size() == 7);
    CHECK(opt.state(1).sum[0] == 1.5f);  // 0.5 + g^2
    fastoptim::Adagrad<double> groups({{{Span<double>()}, AdagradOptions{}}});
    CHECK(groups.state(0).step == 0 && groups.state(0).sum.empty());
  }
}

// Two optimizers, one of which takes over the other's state with load_state after `split` steps, then both
// continue: the trajectories must be bit-identical. Runs on the golden problem and its gradients.
template <class Opt>
void check_load_state_round_trip(const std::string& label, const typename Opt::options_type& options, int split) {
  using T = typename Opt::value_type;
  GoldenProblem<T> a;
  Opt opt_a(a.spans(), options);
  for (int t = 1; t <= split; ++t) opt_a.step(GoldenProblem<T>::grads(t));

  GoldenProblem<T> b;
  for (std::size_t i = 0; i < golden::kNumParams; ++i) b.params[i] = a.params[i];
  Opt opt_b(b.spans(), options);
  for (std::size_t i = 0; i < golden::kNumParams; ++i) opt_b.load_state(i, opt_a.state(i));
  bool same_state = true;
  for (std::size_t i = 0; i < golden::kNumParams; ++i) same_state = same_state && state_equal(opt_a.state(i), opt_b.state(i));
  CHECK_MSG(same_state, label + ": load_state did not install the state");

  for (int t = split + 1; t <= golden::kSteps; ++t) {
    opt_a.step(GoldenProblem<T>::grads(t));
    opt_b.step(GoldenProblem<T>::grads(t));
  }
  bool same = true;
  for (std::size_t i = 0; i < golden::kNumParams; ++i)
    same = same && bit_equal(a.params[i], b.params[i]) && state_equal(opt_a.state(i), opt_b.state(i));
  CHECK_MSG(same, label + ": trajectories differ after load_state at step " + std::to_string(split));
}

template <class T>
void test_load_state_round_trips() {
  for (std::size_t c = 0; c < golden::kNumCases; ++c) {
    const golden::Case& gc = golden::kCases[c];
    const std::string opt = gc.optimizer;
    const std::string label = opt + "/" + gc.name + " " + type_name<T>();
    for (int split : {0, 1, 7}) {
      if (opt == "SGD")
        check_load_state_round_trip<fastoptim::SGD<T>>(label, sgd_options(gc.hyper), split);
      else if (opt == "Adam")
        check_load_state_round_trip<fastoptim::Adam<T>>(
            label, adam_options<AdamOptions>(gc.hyper, golden::kTorchDefaultsAdam), split);
      else if (opt == "AdamW")
        check_load_state_round_trip<fastoptim::AdamW<T>>(
            label, adam_options<AdamWOptions>(gc.hyper, golden::kTorchDefaultsAdamW), split);
      else if (opt == "RMSprop")
        check_load_state_round_trip<fastoptim::RMSprop<T>>(label, rmsprop_options(gc.hyper), split);
    }
  }
}

void test_load_state_validation() {
  std::vector<float> p0(5, 1.0f), p1(3, 1.0f), g0(5, 0.5f), g1(3, 0.5f);
  {
    AdamOptions o;
    o.amsgrad = true;
    fastoptim::Adam<float> opt({p0, p1}, o);
    opt.step({g0, g1});
    const fastoptim::AdamState<float> good = opt.state(0);

    fastoptim::AdamState<float> s = good;
    s.exp_avg.resize(4);
    CHECK_THROWS(std::invalid_argument, opt.load_state(0, s));
    s = good;
    s.max_exp_avg_sq.resize(6);
    CHECK_THROWS(std::invalid_argument, opt.load_state(0, s));
    s = good;
    s.step = -1;
    CHECK_THROWS(std::invalid_argument, opt.load_state(0, s));
    CHECK_THROWS(std::invalid_argument, opt.load_state(1, good));  // 5 elements for a 3-element parameter
    CHECK_THROWS(std::out_of_range, opt.load_state(2, good));
    CHECK(state_equal(opt.state(0), good));  // failed loads leave the state alone

    CHECK_NOTHROW(opt.load_state(0, fastoptim::AdamState<float>{}));  // a fresh state is always valid
    CHECK(opt.state(0).step == 0 && opt.state(0).exp_avg.empty());
  }
  {
    fastoptim::SGDState<double> s;
    s.momentum_buffer.resize(2);
    std::vector<double> q(3);
    SGDOptions o;
    o.momentum = 0.9;
    fastoptim::SGD<double> opt({q}, o);
    CHECK_THROWS(std::invalid_argument, opt.load_state(0, s));
  }
  {
    fastoptim::RMSpropState<float> s;
    s.grad_avg.resize(7);
    fastoptim::RMSprop<float> opt({p0}, RMSpropOptions{});
    CHECK_THROWS(std::invalid_argument, opt.load_state(0, s));
    s = fastoptim::RMSpropState<float>{};
    s.step = -3;
    CHECK_THROWS(std::invalid_argument, opt.load_state(0, s));
  }
}

// Per-group options apply to their own group's parameters only: two groups in one optimizer give what
// two single-group optimizers give.
template <class T>
void test_param_groups() {
  Rng rng(11);
  std::vector<T> a = random_vector<T>(rng, 9), b = random_vector<T>(rng, 4);
  std::vector<T> a2 = a, b2 = b;
  AdamOptions oa, ob;
  oa.lr = 1e-2;
  ob.lr = 3e-3;
  ob.beta1 = 0.8;
  ob.amsgrad = true;
  fastoptim::Adam<T> both(std::vector<fastoptim::ParamGroup<T, AdamOptions>>{{{a}, oa}, {{b}, ob}});
  fastoptim::Adam<T> only_a({a2}, oa), only_b({b2}, ob);
  for (int t = 0; t < 5; ++t) {
    std::vector<T> ga = random_vector<T>(rng, 9), gb = random_vector<T>(rng, 4);
    both.step({ga, t == 2 ? Span<const T>() : Span<const T>(gb)});
    only_a.step({ga});
    if (t != 2) only_b.step({gb});
  }
  CHECK(bit_equal(a, a2) && bit_equal(b, b2));
  CHECK(state_equal(both.state(0), only_a.state(0)) && state_equal(both.state(1), only_b.state(0)));
  CHECK(both.state(1).step == 4);
  // Editing a group's options between steps takes effect at the next step.
  both.param_groups()[1].options.lr = 0.0;
  const std::vector<T> b_before = b;
  std::vector<T> ga = random_vector<T>(rng, 9), gb = random_vector<T>(rng, 4);
  both.step({ga, gb});
  CHECK(bit_equal(b, b_before));  // lr 0: the parameter stays, the state moves
  CHECK(both.state(1).step == 5);
}

}  // namespace

int main() {
#if defined(_OPENMP)
  std::printf("fastoptim %s tests, OpenMP with %d threads\n", FASTOPTIM_VERSION_STRING, fastoptim::max_threads());
#else
  std::printf("fastoptim %s tests, without OpenMP\n", FASTOPTIM_VERSION_STRING);
#endif
  try {
    test_defaults();
    test_golden();
    test_parallel_for();
    test_parallel_for_items();
    test_chunked_kernels();
    test_large_parameter<float>();
    test_large_parameter<double>();
    test_many_small_parameters<float>();
    test_many_small_parameters<double>();
    test_invalid_options();
    test_overlapping_parameters();
    test_step_errors();
    test_state_access();
    test_load_state_round_trips<float>();
    test_load_state_round_trips<double>();
    test_load_state_validation();
    test_param_groups<float>();
    test_param_groups<double>();
  } catch (const std::exception& e) {
    ++g_failed;
    std::printf("FAIL: unexpected exception: %s\n", e.what());
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
