// C++ tests for the optimizers beyond torch.optim: Lion, LAMB, Adan, AdaBelief, ScheduleFreeAdamW.
//
//  * golden:   every case of golden_opt_beyond.hpp (float64 numpy references written from the papers and
//              the public implementations, see make_golden_opt_beyond.py) replayed through the C++ classes
//              in float and double; final parameters and state within a relative tolerance.
//  * defaults: the C++ options default to the references' constructor defaults.
//  * errors:   invalid options throw std::invalid_argument; a throwing step() leaves group counters alone.
//  * kernels:  chunked, multi-threaded kernels (*_step with grain 1) bit-identical to the scalar
//              reference kernels (*_update_ref) at odd sizes; LAMB's norms in the documented order, the
//              same for any thread count and split.
//  * classes:  identical results at 1 and 3 threads; state round trips; ScheduleFreeAdamW's train/eval.

#include <fastoptim/fastoptim.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "golden_opt_beyond.hpp"

namespace {

namespace gb = golden_beyond;
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

// CHECK_THROWS(Exception, statements...): the statements throw Exception (or a class derived from it).
#define CHECK_THROWS(Exception, ...)                                                                  \
  do {                                                                                                \
    std::string fastoptim_test_got = "nothing";                                                       \
    try {                                                                                             \
      __VA_ARGS__;                                                                                    \
    } catch (const Exception&) {                                                                      \
      fastoptim_test_got.clear();                                                                     \
    } catch (const std::exception& e) {                                                               \
      fastoptim_test_got = std::string("another exception: ") + e.what();                            \
    }                                                                                                 \
    report(fastoptim_test_got.empty(), "throws " #Exception ": " #__VA_ARGS__, __FILE__, __LINE__,     \
           fastoptim_test_got.empty() ? std::string() : "threw " + fastoptim_test_got);              \
  } while (0)

template <class T>
const char* type_name() {
  return sizeof(T) == sizeof(float) ? "float" : "double";
}

template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Deterministic pseudo-random values (splitmix64), identical everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  double uniform() {  // in [-1, 1)
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1p-52 - 1.0;
  }

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

// ------------------------------------------------------------------- options, state and per-class hooks

fastoptim::LionOptions options_of(const gb::Hyper& h, fastoptim::LionOptions o) {
  o.lr = h.lr;
  o.beta1 = h.beta1;
  o.beta2 = h.beta2;
  o.weight_decay = h.weight_decay;
  o.maximize = h.maximize;
  return o;
}
fastoptim::LAMBOptions options_of(const gb::Hyper& h, fastoptim::LAMBOptions o) {
  o.lr = h.lr;
  o.beta1 = h.beta1;
  o.beta2 = h.beta2;
  o.eps = h.eps;
  o.weight_decay = h.weight_decay;
  o.bias_correction = h.bias_correction;
  o.clamp_value = h.clamp_value;
  o.trust_clip = h.trust_clip;
  o.exclude_from_layer_adaptation = h.exclude_from_layer_adaptation;
  o.maximize = h.maximize;
  return o;
}
fastoptim::AdanOptions options_of(const gb::Hyper& h, fastoptim::AdanOptions o) {
  o.lr = h.lr;
  o.beta1 = h.beta1;
  o.beta2 = h.beta2;
  o.beta3 = h.beta3;
  o.eps = h.eps;
  o.weight_decay = h.weight_decay;
  o.no_prox = h.no_prox;
  o.maximize = h.maximize;
  return o;
}
fastoptim::AdaBeliefOptions options_of(const gb::Hyper& h, fastoptim::AdaBeliefOptions o) {
  o.lr = h.lr;
  o.beta1 = h.beta1;
  o.beta2 = h.beta2;
  o.eps = h.eps;
  o.weight_decay = h.weight_decay;
  o.amsgrad = h.amsgrad;
  o.weight_decouple = h.weight_decouple;
  o.fixed_decay = h.fixed_decay;
  o.rectify = h.rectify;
  o.degenerated_to_sgd = h.degenerated_to_sgd;
  o.maximize = h.maximize;
  return o;
}
fastoptim::ScheduleFreeAdamWOptions options_of(const gb::Hyper& h, fastoptim::ScheduleFreeAdamWOptions o) {
  o.lr = h.lr;
  o.beta1 = h.beta1;
  o.beta2 = h.beta2;
  o.eps = h.eps;
  o.weight_decay = h.weight_decay;
  o.warmup_steps = h.warmup_steps;
  o.r = h.r;
  o.weight_lr_power = h.weight_lr_power;
  o.maximize = h.maximize;
  return o;
}

template <class T>
using NamedBuffers = std::vector<std::pair<const char*, const std::vector<T>*>>;

template <class T>
NamedBuffers<T> named_buffers(const fastoptim::LionState<T>& s) {
  return {{"exp_avg", &s.exp_avg}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::LAMBState<T>& s) {
  return {{"exp_avg", &s.exp_avg}, {"exp_avg_sq", &s.exp_avg_sq}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::AdanState<T>& s) {
  return {{"exp_avg", &s.exp_avg}, {"exp_avg_sq", &s.exp_avg_sq}, {"exp_avg_diff", &s.exp_avg_diff},
          {"neg_pre_grad", &s.neg_pre_grad}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::AdaBeliefState<T>& s) {
  return {{"exp_avg", &s.exp_avg}, {"exp_avg_var", &s.exp_avg_var}, {"max_exp_avg_var", &s.max_exp_avg_var}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::ScheduleFreeAdamWState<T>& s) {
  return {{"z", &s.z}, {"exp_avg_sq", &s.exp_avg_sq}};
}

template <class T>
long long step_of(const fastoptim::LAMBState<T>& s) {
  return s.step;
}
template <class T>
long long step_of(const fastoptim::AdaBeliefState<T>& s) {
  return s.step;
}
template <class State>
long long step_of(const State&) {  // Lion, Adan (group step), ScheduleFreeAdamW (group k): none per parameter
  return 0;
}

// ScheduleFreeAdamW steps only in train mode; the others have no modes.
template <class Opt>
void start_training(Opt& opt) {
  if constexpr (std::is_same_v<Opt, fastoptim::ScheduleFreeAdamW<typename Opt::value_type>>) opt.train();
}

template <class State>
bool state_equal(const State& a, const State& b) {
  const auto na = named_buffers(a), nb = named_buffers(b);
  for (std::size_t i = 0; i < na.size(); ++i)
    if (!bit_equal(*na[i].second, *nb[i].second)) return false;
  return step_of(a) == step_of(b);
}

// ------------------------------------------------------------------------------------------- golden

// Largest |x - ref| relative to max |ref| (norm-wise). Infinite when x is not finite.
template <class T>
double relative_deviation(const T* x, const double* ref, std::size_t n) {
  double scale = 0, worst = 0;
  for (std::size_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(ref[i]));
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::abs(static_cast<double>(x[i]) - ref[i]));
  }
  return scale > 0 ? worst / scale : worst;
}

// Measured: double <= 8.6e-16, float <= 1.0e-6 over the 24 golden steps.
template <class T>
constexpr double kGoldenTolerance = sizeof(T) == sizeof(float) ? 5e-6 : 1e-13;

template <class T>
struct GoldenProblem {
  std::vector<T> params[gb::kNumParams];
  std::vector<T> grads[gb::kSteps];

  GoldenProblem() {
    for (std::size_t i = 0; i < gb::kNumParams; ++i)
      params[i].assign(gb::kInit + gb::kOffsets[i], gb::kInit + gb::kOffsets[i] + gb::kSizes[i]);
    for (int t = 0; t < gb::kSteps; ++t) grads[t].assign(gb::kGrad[t], gb::kGrad[t] + gb::kTotal);
  }
  std::vector<Span<T>> spans() { return {Span<T>(params[0]), Span<T>(params[1])}; }
  std::vector<Span<const T>> step_grads(int t) const {  // t is 1-based
    std::vector<Span<const T>> g;
    for (std::size_t i = 0; i < gb::kNumParams; ++i) {
      if (i == 1 && t % gb::kNoGradPeriod == 0)
        g.emplace_back(nullptr);
      else
        g.emplace_back(grads[t - 1].data() + gb::kOffsets[i], gb::kSizes[i]);
    }
    return g;
  }
};

const double* golden_state(std::size_t c, const char* key) {
  for (std::size_t j = 0; j < gb::kNumStates; ++j)
    if (gb::kStates[j].case_index == c && std::strcmp(gb::kStates[j].key, key) == 0) return gb::kFinalState[j];
  return nullptr;
}

template <class Opt>
void check_golden_case(std::size_t c, double& worst) {
  using T = typename Opt::value_type;
  const gb::Case& gc = gb::kCases[c];
  const std::string label = std::string(gc.optimizer) + "/" + gc.name + " " + type_name<T>();
  const double tol = kGoldenTolerance<T>;

  GoldenProblem<T> prob;
  Opt opt(prob.spans(), options_of(gc.hyper, typename Opt::options_type{}));
  start_training(opt);
  for (int t = 1; t <= gb::kSteps; ++t) opt.step(prob.step_grads(t));

  double dev = 0;
  for (std::size_t i = 0; i < gb::kNumParams; ++i)
    dev = std::max(dev, relative_deviation(prob.params[i].data(), gb::kFinalParams[c] + gb::kOffsets[i], gb::kSizes[i]));
  CHECK_MSG(dev <= tol, label + ": parameters deviate by " + std::to_string(dev));

  std::size_t seen = 0;
  double state_dev = 0;
  for (std::size_t i = 0; i < gb::kNumParams; ++i) {
    const auto& st = opt.state(i);
    CHECK_MSG(step_of(st) == gc.steps[i], label + ": step of parameter " + std::to_string(i));
    for (const auto& [key, buf] : named_buffers(st)) {
      const double* ref = golden_state(c, key);
      if (ref == nullptr) {
        CHECK_MSG(buf->empty(), label + ": state '" + key + "' should be empty");
        continue;
      }
      ++seen;
      if (buf->size() != gb::kSizes[i]) {
        CHECK_MSG(false, label + ": state '" + key + "' has the wrong size");
        continue;
      }
      const double d = relative_deviation(buf->data(), ref + gb::kOffsets[i], gb::kSizes[i]);
      state_dev = std::max(state_dev, d);
      CHECK_MSG(d <= tol, label + ": state '" + key + "' of parameter " + std::to_string(i) + " deviates by " +
                              std::to_string(d));
    }
  }
  std::size_t expected = 0;
  for (std::size_t j = 0; j < gb::kNumStates; ++j)
    expected += gb::kStates[j].case_index == c && std::strcmp(gb::kStates[j].key, "x") != 0;
  CHECK_MSG(seen == expected * gb::kNumParams, label + ": a state buffer of the reference is missing");

  if constexpr (std::is_same_v<Opt, fastoptim::ScheduleFreeAdamW<T>>) {
    CHECK(opt.param_groups()[0].options.k == gb::kSteps);
    opt.eval();  // the parameters now hold x, the reference's average
    const double* x = golden_state(c, "x");
    double xdev = 0;
    for (std::size_t i = 0; i < gb::kNumParams; ++i)
      xdev = std::max(xdev, relative_deviation(prob.params[i].data(), x + gb::kOffsets[i], gb::kSizes[i]));
    CHECK_MSG(xdev <= tol, label + ": eval() parameters deviate from x by " + std::to_string(xdev));
    dev = std::max(dev, xdev);
  }
  if constexpr (std::is_same_v<Opt, fastoptim::Adan<T>>) CHECK(opt.param_groups()[0].options.step == gb::kSteps);

  std::printf("  %-52s params %.1e, state %.1e (relative)\n", label.c_str(), dev, state_dev);
  worst = std::max({worst, dev, state_dev});
}

template <class T>
void run_golden_case(std::size_t c, double& worst) {
  const std::string opt = gb::kCases[c].optimizer;
  if (opt == "Lion")
    check_golden_case<fastoptim::Lion<T>>(c, worst);
  else if (opt == "LAMB")
    check_golden_case<fastoptim::LAMB<T>>(c, worst);
  else if (opt == "Adan")
    check_golden_case<fastoptim::Adan<T>>(c, worst);
  else if (opt == "AdaBelief")
    check_golden_case<fastoptim::AdaBelief<T>>(c, worst);
  else if (opt == "ScheduleFreeAdamW")
    check_golden_case<fastoptim::ScheduleFreeAdamW<T>>(c, worst);
  else
    CHECK_MSG(false, "unknown optimizer in golden_opt_beyond.hpp: " + opt);
}

void test_golden() {
  std::printf("golden (float64 numpy references, %d steps):\n", gb::kSteps);
  double worst_f = 0, worst_d = 0;
  for (std::size_t c = 0; c < gb::kNumCases; ++c) {
    run_golden_case<float>(c, worst_f);
    run_golden_case<double>(c, worst_d);
  }
  std::printf("  worst: float %.1e (allowed %.0e), double %.1e (allowed %.0e)\n", worst_f, kGoldenTolerance<float>,
              worst_d, kGoldenTolerance<double>);
}

// ------------------------------------------------------------------------------------------ defaults

// Our options as a golden Hyper (the inverse of options_of; fields an optimizer lacks stay zero).
gb::Hyper hyper_of(const fastoptim::LionOptions& o) {
  gb::Hyper h{};
  h.lr = o.lr, h.beta1 = o.beta1, h.beta2 = o.beta2, h.weight_decay = o.weight_decay, h.maximize = o.maximize;
  return h;
}
gb::Hyper hyper_of(const fastoptim::LAMBOptions& o) {
  gb::Hyper h{};
  h.lr = o.lr, h.beta1 = o.beta1, h.beta2 = o.beta2, h.eps = o.eps, h.weight_decay = o.weight_decay;
  h.bias_correction = o.bias_correction, h.clamp_value = o.clamp_value, h.trust_clip = o.trust_clip;
  h.exclude_from_layer_adaptation = o.exclude_from_layer_adaptation, h.maximize = o.maximize;
  return h;
}
gb::Hyper hyper_of(const fastoptim::AdanOptions& o) {
  gb::Hyper h{};
  h.lr = o.lr, h.beta1 = o.beta1, h.beta2 = o.beta2, h.beta3 = o.beta3, h.eps = o.eps;
  h.weight_decay = o.weight_decay, h.no_prox = o.no_prox, h.maximize = o.maximize;
  return h;
}
gb::Hyper hyper_of(const fastoptim::AdaBeliefOptions& o) {
  gb::Hyper h{};
  h.lr = o.lr, h.beta1 = o.beta1, h.beta2 = o.beta2, h.eps = o.eps, h.weight_decay = o.weight_decay;
  h.amsgrad = o.amsgrad, h.weight_decouple = o.weight_decouple, h.fixed_decay = o.fixed_decay;
  h.rectify = o.rectify, h.degenerated_to_sgd = o.degenerated_to_sgd, h.maximize = o.maximize;
  return h;
}
gb::Hyper hyper_of(const fastoptim::ScheduleFreeAdamWOptions& o) {
  gb::Hyper h{};
  h.lr = o.lr, h.beta1 = o.beta1, h.beta2 = o.beta2, h.eps = o.eps, h.weight_decay = o.weight_decay;
  h.warmup_steps = o.warmup_steps, h.r = o.r, h.weight_lr_power = o.weight_lr_power, h.maximize = o.maximize;
  return h;
}

bool same_hyper(const gb::Hyper& a, const gb::Hyper& b) {
  return a.lr == b.lr && a.beta1 == b.beta1 && a.beta2 == b.beta2 && a.beta3 == b.beta3 && a.eps == b.eps &&
         a.weight_decay == b.weight_decay && a.clamp_value == b.clamp_value && a.r == b.r &&
         a.weight_lr_power == b.weight_lr_power && a.warmup_steps == b.warmup_steps && a.maximize == b.maximize &&
         a.bias_correction == b.bias_correction && a.trust_clip == b.trust_clip &&
         a.exclude_from_layer_adaptation == b.exclude_from_layer_adaptation && a.no_prox == b.no_prox &&
         a.amsgrad == b.amsgrad && a.weight_decouple == b.weight_decouple && a.fixed_decay == b.fixed_decay &&
         a.rectify == b.rectify && a.degenerated_to_sgd == b.degenerated_to_sgd;
}

// The C++ options default to the references' constructor defaults.
void test_defaults() {
  CHECK(same_hyper(hyper_of(fastoptim::LionOptions{}), gb::kDefaultsLion));
  CHECK(same_hyper(hyper_of(fastoptim::LAMBOptions{}), gb::kDefaultsLAMB));
  CHECK(same_hyper(hyper_of(fastoptim::AdanOptions{}), gb::kDefaultsAdan));
  CHECK(same_hyper(hyper_of(fastoptim::AdaBeliefOptions{}), gb::kDefaultsAdaBelief));
  CHECK(same_hyper(hyper_of(fastoptim::ScheduleFreeAdamWOptions{}), gb::kDefaultsScheduleFreeAdamW));
  const fastoptim::ScheduleFreeAdamWOptions sf;  // and the reference's initial group schedule
  CHECK(sf.k == 0 && sf.lr_max == -1.0 && sf.weight_sum == 0.0 && sf.scheduled_lr == 0.0 && !sf.train_mode);
  CHECK(fastoptim::AdanOptions{}.step == 0);
}

// ------------------------------------------------------------------------------------------- errors

template <class Opt>
void expect_invalid(const std::function<void(typename Opt::options_type&)>& edit) {
  typename Opt::options_type o;
  edit(o);
  std::vector<float> w(3, 1.0f);
  CHECK_THROWS(std::invalid_argument, Opt({Span<float>(w)}, o));
}

void test_invalid_options() {
  using Lion = fastoptim::Lion<float>;
  using LAMB = fastoptim::LAMB<float>;
  using Adan = fastoptim::Adan<float>;
  using AdaBelief = fastoptim::AdaBelief<float>;
  using SF = fastoptim::ScheduleFreeAdamW<float>;
  expect_invalid<Lion>([](auto& o) { o.lr = -1; });
  expect_invalid<Lion>([](auto& o) { o.beta1 = 1.5; });
  expect_invalid<Lion>([](auto& o) { o.beta2 = -0.1; });
  expect_invalid<Lion>([](auto& o) { o.weight_decay = -1; });
  expect_invalid<LAMB>([](auto& o) { o.lr = std::nan(""); });
  expect_invalid<LAMB>([](auto& o) { o.beta1 = 1.0; });
  expect_invalid<LAMB>([](auto& o) { o.eps = -1e-6; });
  expect_invalid<LAMB>([](auto& o) { o.clamp_value = -1; });
  expect_invalid<Adan>([](auto& o) { o.beta3 = 1.0; });
  expect_invalid<Adan>([](auto& o) { o.step = -1; });
  expect_invalid<Adan>([](auto& o) { o.step = std::numeric_limits<std::int64_t>::max(); });  // += 1 would overflow
  expect_invalid<Adan>([](auto& o) { o.weight_decay = -0.1; });
  expect_invalid<AdaBelief>([](auto& o) { o.beta2 = 1.0; });
  expect_invalid<AdaBelief>([](auto& o) { o.eps = -1; });
  expect_invalid<SF>([](auto& o) { o.beta1 = 0.0; });
  expect_invalid<SF>([](auto& o) { o.warmup_steps = -1; });
  expect_invalid<SF>([](auto& o) { o.r = std::numeric_limits<double>::infinity(); });
  expect_invalid<SF>([](auto& o) { o.weight_lr_power = -1; });
  expect_invalid<SF>([](auto& o) { o.k = -1; });
  expect_invalid<SF>([](auto& o) { o.k = std::numeric_limits<std::int64_t>::max(); });
  expect_invalid<SF>([](auto& o) { o.warmup_steps = std::numeric_limits<std::int64_t>::max(); });
  expect_invalid<SF>([](auto& o) { o.weight_sum = std::nan(""); });
  // Valid edge values are accepted.
  std::vector<float> w(3, 1.0f);
  fastoptim::LionOptions lo;
  lo.beta1 = 1.0;
  CHECK(Lion({Span<float>(w)}, lo).num_params() == 1);
}

// Group counters advance with the step and are restored when step() throws.
void test_group_counters_roll_back() {
  std::vector<double> w(4, 1.0), g(4, 0.5), bad(3, 0.5);
  fastoptim::Adan<double> adan({Span<double>(w)}, fastoptim::AdanOptions{});
  adan.step({Span<const double>(g)});
  CHECK_THROWS(std::invalid_argument, adan.step({Span<const double>(bad)}));
  CHECK(adan.param_groups()[0].options.step == 1);
  adan.step({nullptr});  // no gradient: the group still counts the step, as the official implementation
  CHECK(adan.param_groups()[0].options.step == 2);

  fastoptim::ScheduleFreeAdamWOptions so;
  so.warmup_steps = 3;
  fastoptim::ScheduleFreeAdamW<double> sf({Span<double>(w)}, so);
  CHECK_THROWS(std::logic_error, sf.step({Span<const double>(g)}));  // not in train mode
  sf.train();
  sf.step({Span<const double>(g)});
  const auto before = static_cast<fastoptim::ScheduleFreeSchedule>(sf.param_groups()[0].options);
  CHECK_THROWS(std::invalid_argument, sf.step({Span<const double>(bad)}));
  const auto& after = sf.param_groups()[0].options;
  CHECK(after.k == 1 && after.lr_max == before.lr_max && after.weight_sum == before.weight_sum &&
        after.scheduled_lr == before.scheduled_lr);
}

// ------------------------------------------------------------------------------------------ kernels

const std::size_t kOddSizes[] = {1, 15, 17, 1023, 100003};

// Three steps from fresh state, once chunked (grain 1, split across threads) and once by the reference
// kernel over the whole array: bit-identical parameters and buffers. `step(arrays, t, chunked)`.
template <class T, std::size_t kBuffers, class Step>
void check_chunked(const std::string& label, const Step& step) {
  for (int threads : {1, 3}) {
    ThreadCount tc(threads);
    for (std::size_t n : kOddSizes) {
      Rng rng(n * 31 + 7);
      std::vector<std::vector<T>> x(kBuffers + 1);
      x[0] = random_vector<T>(rng, n, 2.0);
      for (std::size_t b = 1; b <= kBuffers; ++b) x[b] = random_vector<T>(rng, n, 0.5);
      for (auto& v : x[kBuffers]) v = std::abs(v);  // the last buffer is a second moment: >= 0
      auto y = x;
      bool same = true;
      for (int t = 1; t <= 3; ++t) {
        const std::vector<T> g = random_vector<T>(rng, n);
        step(x, g, t, true);
        step(y, g, t, false);
        for (std::size_t b = 0; b <= kBuffers; ++b) same = same && bit_equal(x[b], y[b]);
      }
      CHECK_MSG(same, label + " " + type_name<T>() + " n=" + std::to_string(n) + " threads=" + std::to_string(threads));
    }
  }
}

template <class T>
void test_chunked_kernels() {
  fastoptim::LionHyper lh;
  lh.lr = 1e-2;
  lh.weight_decay = 0.1;
  lh.maximize = true;
  check_chunked<T, 1>("lion", [&](auto& x, const std::vector<T>& g, int, bool chunked) {
    if (chunked)
      fastoptim::lion_step<T>(x[0].data(), g.data(), x[1].data(), g.size(), lh, 1);
    else
      fastoptim::lion_update_ref<T>(x[0].data(), g.data(), x[1].data(), g.size(), fastoptim::LionScalars<T>(lh));
  });
  fastoptim::AdanHyper ah;
  ah.lr = 1e-2;
  ah.weight_decay = 0.02;
  for (bool no_prox : {false, true}) {
    ah.no_prox = no_prox;
    check_chunked<T, 4>("adan", [&](auto& x, const std::vector<T>& g, int t, bool chunked) {
      // buffers: exp_avg, exp_avg_diff, neg_pre_grad, exp_avg_sq (last: >= 0)
      if (chunked)
        fastoptim::adan_step<T>(x[0].data(), g.data(), x[1].data(), x[4].data(), x[2].data(), x[3].data(), g.size(),
                                ah, t, t == 1, 1);
      else
        fastoptim::adan_update_ref<T>(x[0].data(), g.data(), x[1].data(), x[4].data(), x[2].data(), x[3].data(),
                                      g.size(), fastoptim::AdanScalars<T>(ah, t), t == 1);
    });
  }
  fastoptim::AdaBeliefHyper bh;
  bh.lr = 1e-2;
  bh.weight_decay = 0.01;
  bh.amsgrad = true;
  for (bool rectify : {false, true}) {
    bh.rectify = rectify;
    check_chunked<T, 3>("adabelief", [&](auto& x, const std::vector<T>& g, int t, bool chunked) {
      // buffers: exp_avg, max_exp_avg_var, exp_avg_var (both >= 0)
      const double step = rectify ? t + 6 : t;  // rectified steps need rho_t >= 5
      if (chunked)
        fastoptim::adabelief_step<T>(x[0].data(), g.data(), x[1].data(), x[3].data(), x[2].data(), g.size(), bh,
                                     step, 1);
      else
        fastoptim::adabelief_update_ref<T>(x[0].data(), g.data(), x[1].data(), x[3].data(), x[2].data(), g.size(),
                                           fastoptim::AdaBeliefScalars<T>(bh, step));
    });
  }
  fastoptim::ScheduleFreeAdamWHyper sh;
  sh.weight_decay = 0.01;
  check_chunked<T, 2>("schedulefree", [&](auto& x, const std::vector<T>& g, int t, bool chunked) {
    fastoptim::ScheduleFreeSchedule sched;
    fastoptim::ScheduleFreeStepScalars s{};
    for (int k = 0; k < t; ++k) s = fastoptim::schedulefree_advance(sh, sched);
    if (chunked)
      fastoptim::schedulefree_adamw_step<T>(x[0].data(), g.data(), x[1].data(), x[2].data(), g.size(), sh, s, 1);
    else
      fastoptim::schedulefree_adamw_update_ref<T>(x[0].data(), g.data(), x[1].data(), x[2].data(), g.size(),
                                                  fastoptim::ScheduleFreeAdamWScalars<T>(sh, s));
  });
}

// LAMB: the trust ratio of lamb_step equals one computed here in the documented order (blocks of
// kNormBlock, kNormLanes interleaved fma accumulators added pairwise, blocks in order), and the step is the
// same bits for any thread count and grain.
template <class T>
void test_lamb_norms() {
  fastoptim::LAMBHyper h;
  h.lr = 1e-2;
  h.weight_decay = 0.01;
  h.clamp_value = 1e9;
  for (std::size_t n : kOddSizes) {
    Rng rng(n + 99);
    const std::vector<T> p0 = random_vector<T>(rng, n, 2.0), g = random_vector<T>(rng, n);
    std::vector<T> ref_p = p0, ref_m(n, T(0)), ref_v(n, T(0));
    const double trust = fastoptim::lamb_step<T>(ref_p.data(), g.data(), ref_m.data(), ref_v.data(), n, h, 1.0,
                                                 fastoptim::kSerial);
    // The documented order, written out.
    const fastoptim::LAMBScalars<T> s(h, 1.0);
    double wsum = 0, usum = 0;
    for (std::size_t b = 0; b < n; b += fastoptim::kNormBlock) {
      double wl[8] = {}, ul[8] = {};
      for (std::size_t i = b; i < std::min(n, b + fastoptim::kNormBlock); ++i) {
        const T u = (ref_m[i] / s.bias_correction1) / (std::sqrt(ref_v[i]) / s.bias_correction2_sqrt + s.eps);
        const T ut = std::fma(p0[i], s.weight_decay, u);  // + wd * p, before the update
        wl[(i - b) % 8] = std::fma(static_cast<double>(p0[i]), static_cast<double>(p0[i]), wl[(i - b) % 8]);
        ul[(i - b) % 8] = std::fma(static_cast<double>(ut), static_cast<double>(ut), ul[(i - b) % 8]);
      }
      wsum += ((wl[0] + wl[1]) + (wl[2] + wl[3])) + ((wl[4] + wl[5]) + (wl[6] + wl[7]));
      usum += ((ul[0] + ul[1]) + (ul[2] + ul[3])) + ((ul[4] + ul[5]) + (ul[6] + ul[7]));
    }
    const double expected = std::sqrt(wsum) / std::sqrt(usum);
    CHECK_MSG(std::memcmp(&trust, &expected, sizeof(double)) == 0,
              std::string("lamb trust ratio in the documented order, ") + type_name<T>() + " n=" + std::to_string(n));
    for (int threads : {1, 2, 3, 7}) {
      ThreadCount tc(threads);
      for (std::size_t grain : {std::size_t{1}, std::size_t{300}, fastoptim::kDefaultGrain}) {
        std::vector<T> p = p0, m(n, T(0)), v(n, T(0));
        const double tr = fastoptim::lamb_step<T>(p.data(), g.data(), m.data(), v.data(), n, h, 1.0, grain);
        CHECK_MSG(std::memcmp(&tr, &trust, sizeof(double)) == 0 && bit_equal(p, ref_p) && bit_equal(m, ref_m) &&
                      bit_equal(v, ref_v),
                  std::string("lamb ") + type_name<T>() + " n=" + std::to_string(n) + " threads=" +
                      std::to_string(threads) + " grain=" + std::to_string(grain));
      }
    }
  }
}

// ------------------------------------------------------------------------------------------ classes

// Many parameters (one large) stepped by the class at 1 and at 3 threads: the same bits.
template <class Opt>
void check_class_threads(const char* name, typename Opt::options_type o) {
  using T = typename Opt::value_type;
  const std::size_t sizes[] = {100003, 17, 1, 70001, 1023};
  std::vector<std::vector<T>> results[2];
  std::vector<typename Opt::state_type> states[2];
  for (int run = 0; run < 2; ++run) {
    ThreadCount tc(run == 0 ? 1 : 3);
    Rng rng(5);
    std::vector<std::vector<T>> params;
    for (std::size_t n : sizes) params.push_back(random_vector<T>(rng, n));
    std::vector<Span<T>> spans(params.begin(), params.end());
    Opt opt(spans, o);
    start_training(opt);
    for (int t = 0; t < 3; ++t) {
      std::vector<std::vector<T>> grads;
      std::vector<Span<const T>> g;
      for (std::size_t n : sizes) grads.push_back(random_vector<T>(rng, n));
      for (const auto& x : grads) g.emplace_back(x);
      opt.step(g);
    }
    results[run] = params;
    for (std::size_t i = 0; i < params.size(); ++i) states[run].push_back(opt.state(i));
  }
  bool same = true;
  for (std::size_t i = 0; i < results[0].size(); ++i)
    same = same && bit_equal(results[0][i], results[1][i]) && state_equal(states[0][i], states[1][i]);
  CHECK_MSG(same, std::string(name) + " " + type_name<T>() + ": 1 and 3 threads differ");
}

// Five steps, then the state and options copied into a second optimizer over copies of the parameters:
// five more steps on each give the same bits.
template <class Opt>
void check_state_round_trip(const char* name, typename Opt::options_type o) {
  using T = typename Opt::value_type;
  Rng rng(11);
  std::vector<T> a = random_vector<T>(rng, 300), b = random_vector<T>(rng, 7);
  Opt first({Span<T>(a), Span<T>(b)}, o);
  start_training(first);
  std::vector<std::vector<T>> grads;
  for (int t = 0; t < 20; ++t) grads.push_back(random_vector<T>(rng, 307));
  const auto step = [&](Opt& opt, int t) {
    opt.step({Span<const T>(grads[t].data(), 300), Span<const T>(grads[t].data() + 300, 7)});
  };
  for (int t = 0; t < 5; ++t) step(first, t);
  std::vector<T> a2 = a, b2 = b;
  Opt second({Span<T>(a2), Span<T>(b2)}, first.param_groups()[0].options);  // group counters included
  second.load_state(0, first.state(0));
  second.load_state(1, first.state(1));
  for (int t = 5; t < 10; ++t) {
    step(first, t);
    step(second, t);
  }
  CHECK_MSG(bit_equal(a, a2) && bit_equal(b, b2) && state_equal(first.state(0), second.state(0)),
            std::string(name) + " " + type_name<T>() + ": resumed run differs");
  typename Opt::state_type bad = first.state(0);
  const auto buffers = named_buffers(bad);
  const_cast<std::vector<T>*>(buffers[0].second)->resize(299);
  CHECK_THROWS(std::invalid_argument, second.load_state(0, bad));
}

template <class T>
void test_classes() {
  fastoptim::LionOptions lo;
  lo.lr = 1e-3;
  lo.weight_decay = 0.1;
  fastoptim::LAMBOptions la;
  la.weight_decay = 0.01;
  la.trust_clip = true;
  fastoptim::AdanOptions ad;
  ad.weight_decay = 0.02;
  fastoptim::AdaBeliefOptions ab;
  ab.amsgrad = true;
  ab.weight_decay = 0.01;
  fastoptim::ScheduleFreeAdamWOptions sf;
  sf.warmup_steps = 2;
  sf.weight_decay = 0.01;
  check_class_threads<fastoptim::Lion<T>>("Lion", lo);
  check_class_threads<fastoptim::LAMB<T>>("LAMB", la);
  check_class_threads<fastoptim::Adan<T>>("Adan", ad);
  check_class_threads<fastoptim::AdaBelief<T>>("AdaBelief", ab);
  check_class_threads<fastoptim::ScheduleFreeAdamW<T>>("ScheduleFreeAdamW", sf);
  check_state_round_trip<fastoptim::Lion<T>>("Lion", lo);
  check_state_round_trip<fastoptim::LAMB<T>>("LAMB", la);
  check_state_round_trip<fastoptim::Adan<T>>("Adan", ad);
  check_state_round_trip<fastoptim::AdaBelief<T>>("AdaBelief", ab);
  check_state_round_trip<fastoptim::ScheduleFreeAdamW<T>>("ScheduleFreeAdamW", sf);
}

// train() and eval() move only parameters with state, only when the mode changes, and undo each other.
void test_schedulefree_modes() {
  std::vector<double> a{1.0, -2.0, 3.0}, b{0.5, 0.25};
  fastoptim::ScheduleFreeAdamWOptions o;
  o.lr = 0.1;
  fastoptim::ScheduleFreeAdamW<double> opt({Span<double>(a), Span<double>(b)}, o);
  opt.eval();  // already in eval mode, and no state: nothing moves
  CHECK(a[0] == 1.0 && b[0] == 0.5);
  opt.train();
  const std::vector<double> g{0.3, -0.1, 0.2};
  for (int t = 0; t < 4; ++t) opt.step({Span<const double>(g), nullptr});
  const std::vector<double> y = a;
  opt.eval();
  CHECK(!opt.param_groups()[0].options.train_mode && a != y && b[0] == 0.5);
  opt.eval();
  std::vector<double> x = a;
  opt.train();
  bool close = true;
  for (std::size_t i = 0; i < a.size(); ++i) close = close && std::abs(a[i] - y[i]) <= 1e-15 * (1 + std::abs(y[i]));
  CHECK(close && x != a);
}

}  // namespace

int main() {
#if defined(_OPENMP)
  std::printf("OpenMP: %d threads\n", omp_get_max_threads());
#endif
  test_golden();
  test_defaults();
  test_invalid_options();
  test_group_counters_roll_back();
  test_chunked_kernels<float>();
  test_chunked_kernels<double>();
  test_lamb_norms<float>();
  test_lamb_norms<double>();
  test_classes<float>();
  test_classes<double>();
  test_schedulefree_modes();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
