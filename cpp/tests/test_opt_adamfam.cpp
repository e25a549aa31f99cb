// C++ tests for Adamax, NAdam and RAdam (fastoptim/adamax, nadam, radam), dependency-free: a tiny CHECK
// harness, a final "N passed, M failed" line and a non-zero exit status when anything failed.
//
//  * golden:   every case of golden_opt_adamfam.hpp (torch 2.13 single-tensor results, see
//              make_golden_opt_adamfam.py) replayed through the C++ optimizers: final parameters and state
//              within kMaxUlps of torch's, bit-identical to torch's with a correctly rounded sqrt; step
//              counts and NAdam's mu_product (float32, or float64 after torch reloaded it) exactly torch's.
//  * defaults: the options default to torch's constructor defaults.
//  * parallel: chunked, multi-threaded kernels (*_step with grain 1) and the optimizer front end against
//              the scalar reference kernels (*_update_ref): bit-identical, past RAdam's rectification switch.
//  * errors:   invalid options and malformed step() arguments throw std::invalid_argument; a throwing
//              step() changes nothing.
//  * state:    load_state round trips resume bit for bit; load_state validation.

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
#include <type_traits>
#include <utility>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "golden_opt_adamfam.hpp"

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

// CHECK_THROWS_WITH(words, statements...): the statements throw std::invalid_argument whose message
// contains `words`.
#define CHECK_THROWS_WITH(words, ...)                                                                  \
  do {                                                                                                 \
    std::string fastoptim_test_got = "nothing";                                                        \
    try {                                                                                              \
      __VA_ARGS__;                                                                                     \
    } catch (const std::invalid_argument& e) {                                                         \
      fastoptim_test_got = std::string(e.what()).find(words) == std::string::npos                      \
                               ? std::string("a message without '") + (words) + "': " + e.what()      \
                               : std::string();                                                        \
    } catch (const std::exception& e) {                                                                \
      fastoptim_test_got = std::string("another exception: ") + e.what();                             \
    }                                                                                                  \
    report(fastoptim_test_got.empty(), "throws: " #__VA_ARGS__, __FILE__, __LINE__,                    \
           fastoptim_test_got.empty() ? std::string() : "threw " + fastoptim_test_got);               \
  } while (0)

#define CHECK_NOTHROW(...)                                                                             \
  do {                                                                                                 \
    std::string fastoptim_test_got;                                                                    \
    try {                                                                                              \
      __VA_ARGS__;                                                                                     \
    } catch (const std::exception& e) {                                                                \
      fastoptim_test_got = e.what();                                                                   \
    }                                                                                                  \
    report(fastoptim_test_got.empty(), "does not throw: " #__VA_ARGS__, __FILE__, __LINE__, fastoptim_test_got); \
  } while (0)

template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}

template <class T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool bit_equal(double a, double b) { return std::memcmp(&a, &b, sizeof(double)) == 0; }

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
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-52 - 1.0; }  // [-1, 1)

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

using fastoptim::AdamaxOptions;
using fastoptim::NAdamOptions;
using fastoptim::RAdamOptions;
using fastoptim::Span;
using golden_adamfam::Hyper;

// Options for a golden case: the C++ defaults, with every field torch did not take at its default set
// from the case (so the cases also exercise the C++ defaults).
template <class Options>
void set_common(Options& o, const Hyper& h, const Hyper& d) {
  if (h.lr != d.lr) o.lr = h.lr;
  if (h.beta1 != d.beta1) o.beta1 = h.beta1;
  if (h.beta2 != d.beta2) o.beta2 = h.beta2;
  if (h.eps != d.eps) o.eps = h.eps;
  if (h.weight_decay != d.weight_decay) o.weight_decay = h.weight_decay;
  if (h.maximize != d.maximize) o.maximize = h.maximize;
}

AdamaxOptions adamax_options(const Hyper& h) {
  AdamaxOptions o;
  set_common(o, h, golden_adamfam::kTorchDefaultsAdamax);
  return o;
}

NAdamOptions nadam_options(const Hyper& h) {
  const Hyper& d = golden_adamfam::kTorchDefaultsNAdam;
  NAdamOptions o;
  set_common(o, h, d);
  if (h.momentum_decay != d.momentum_decay) o.momentum_decay = h.momentum_decay;
  if (h.decoupled_weight_decay != d.decoupled_weight_decay) o.decoupled_weight_decay = h.decoupled_weight_decay;
  return o;
}

RAdamOptions radam_options(const Hyper& h) {
  const Hyper& d = golden_adamfam::kTorchDefaultsRAdam;
  RAdamOptions o;
  set_common(o, h, d);
  if (h.decoupled_weight_decay != d.decoupled_weight_decay) o.decoupled_weight_decay = h.decoupled_weight_decay;
  return o;
}

template <class T>
using NamedBuffers = std::vector<std::pair<const char*, const std::vector<T>*>>;

template <class T>
NamedBuffers<T> named_buffers(const fastoptim::AdamaxState<T>& s) {
  return {{"exp_avg", &s.exp_avg}, {"exp_inf", &s.exp_inf}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::NAdamState<T>& s) {
  return {{"exp_avg", &s.exp_avg}, {"exp_avg_sq", &s.exp_avg_sq}};
}
template <class T>
NamedBuffers<T> named_buffers(const fastoptim::RAdamState<T>& s) {
  return {{"exp_avg", &s.exp_avg}, {"exp_avg_sq", &s.exp_avg_sq}};
}

template <class State>
double mu_product_of(const State&) {
  return 0.0;
}
template <class T>
double mu_product_of(const fastoptim::NAdamState<T>& s) {
  return s.mu_product;
}

template <class State>
bool state_equal(const State& a, const State& b) {
  if (a.step != b.step || !bit_equal(mu_product_of(a), mu_product_of(b))) return false;
  const auto na = named_buffers(a), nb = named_buffers(b);
  for (std::size_t i = 0; i < na.size(); ++i)
    if (!bit_equal(*na[i].second, *nb[i].second)) return false;
  return true;
}

// What torch's load_state_dict does to a state: casts mu_product to the parameter's dtype.
template <class Opt>
void reload_like_torch(Opt& opt) {
  using T = typename Opt::value_type;
  for (std::size_t i = 0; i < opt.num_params(); ++i) {
    auto st = opt.state(i);
    if constexpr (std::is_same_v<typename Opt::state_type, fastoptim::NAdamState<T>>)
      st.mu_product_float32 = std::is_same_v<T, float>;
    opt.load_state(i, std::move(st));
  }
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

template <class Opt>
void check_golden_case(std::size_t c, const typename Opt::options_type& options) {
  using T = typename Opt::value_type;
  using D = golden_adamfam::Data<T>;
  const golden_adamfam::Case& gc = golden_adamfam::kCases[c];
  const std::string label = std::string(gc.optimizer) + "/" + gc.name + " " + type_name<T>();

  GoldenProblem<T> prob;
  Opt opt(prob.spans(), options);
  for (int t = 1; t <= golden::kSteps; ++t) {
    opt.step(GoldenProblem<T>::grads(t));
    if (t == gc.reload_at) reload_like_torch(opt);
  }

  double param_dev = 0, state_dev = 0;
  std::size_t exact_differing = 0;
  for (std::size_t i = 0; i < golden::kNumParams; ++i) {
    const std::size_t off = golden::kOffsets[i], n = golden::kSizes[i];
    param_dev = std::max(param_dev, ulp_deviation(prob.params[i].data(), D::final_params[c] + off, n));
    exact_differing += count_differing(prob.params[i].data(), D::final_params_exact_sqrt[c] + off, n);
    const auto& st = opt.state(i);
    CHECK_MSG(st.step == gc.steps[i], label + ": step of parameter " + std::to_string(i));
    CHECK_MSG(bit_equal(mu_product_of(st), D::mu_product[c][i]),
              label + ": mu_product of parameter " + std::to_string(i) + " is not torch's");
    const auto buffers = named_buffers(st);
    for (std::size_t j = 0; j < buffers.size(); ++j) {
      const auto& [key, buf] = buffers[j];
      CHECK_MSG(std::strcmp(key, golden_adamfam::kStateKeys[c][j]) == 0, label + ": state key order");
      if (buf->size() != n) {
        CHECK_MSG(buf->size() == n, label + ": state '" + key + "' has the wrong size");
        continue;
      }
      state_dev = std::max(state_dev, ulp_deviation(buf->data(), D::final_state[c][j] + off, n));
      exact_differing += count_differing(buf->data(), D::final_state_exact_sqrt[c][j] + off, n);
    }
  }
  CHECK_MSG(param_dev <= kMaxUlps, label + ": parameters deviate by " + std::to_string(param_dev) + " ulps");
  CHECK_MSG(state_dev <= kMaxUlps, label + ": state deviates by " + std::to_string(state_dev) + " ulps");
  CHECK_MSG(exact_differing == 0, label + ": " + std::to_string(exact_differing) +
                                      " values differ from torch with a correctly rounded sqrt");
  std::printf("  %-46s vs torch: params %.2f ulps, state %.2f ulps; vs exact sqrt: %s\n", label.c_str(), param_dev,
              state_dev, exact_differing == 0 ? "identical" : (std::to_string(exact_differing) + " differ").c_str());
}

template <class T>
void run_golden_case(std::size_t c) {
  const golden_adamfam::Case& gc = golden_adamfam::kCases[c];
  const std::string opt = gc.optimizer;
  if (opt == "Adamax")
    check_golden_case<fastoptim::Adamax<T>>(c, adamax_options(gc.hyper));
  else if (opt == "NAdam")
    check_golden_case<fastoptim::NAdam<T>>(c, nadam_options(gc.hyper));
  else if (opt == "RAdam")
    check_golden_case<fastoptim::RAdam<T>>(c, radam_options(gc.hyper));
  else
    CHECK_MSG(false, "unknown optimizer in golden_opt_adamfam.hpp: " + opt);
}

void test_golden() {
  std::printf("golden (torch 2.13 single-tensor, %d steps):\n", golden::kSteps);
  for (std::size_t c = 0; c < golden_adamfam::kNumCases; ++c) {
    run_golden_case<float>(c);
    run_golden_case<double>(c);
  }
}

// The C++ options default to torch's constructor defaults.
void test_defaults() {
  const auto common = [](const auto& o, const Hyper& t) {
    return o.lr == t.lr && o.beta1 == t.beta1 && o.beta2 == t.beta2 && o.eps == t.eps &&
           o.weight_decay == t.weight_decay && o.maximize == t.maximize;
  };
  CHECK(common(AdamaxOptions{}, golden_adamfam::kTorchDefaultsAdamax));
  const NAdamOptions n;
  CHECK(common(n, golden_adamfam::kTorchDefaultsNAdam) &&
        n.momentum_decay == golden_adamfam::kTorchDefaultsNAdam.momentum_decay &&
        n.decoupled_weight_decay == golden_adamfam::kTorchDefaultsNAdam.decoupled_weight_decay);
  const RAdamOptions r;
  CHECK(common(r, golden_adamfam::kTorchDefaultsRAdam) &&
        r.decoupled_weight_decay == golden_adamfam::kTorchDefaultsRAdam.decoupled_weight_decay);
  // A fresh state's mu_product is torch's: 1, a float32 0-d tensor.
  const fastoptim::NAdamState<double> s;
  CHECK(s.mu_product == 1.0 && s.mu_product_float32 && s.step == 0);
}

// ----------------------------------------------------------------------------------------- parallel

const std::size_t kOddSizes[] = {1, 15, 17, 1023, 100003};
constexpr int kKernelSteps = 8;  // RAdam is rectified from step 6 at beta2 >= 0.85 (others need fewer steps)

template <class T>
struct KernelArrays {
  std::vector<T> param, a, b;  // a, b: the two state buffers, in the kernel's argument order
  bool operator==(const KernelArrays& o) const {
    return bit_equal(param, o.param) && bit_equal(a, o.a) && bit_equal(b, o.b);
  }
};

// `steps` steps from zero state, chunked (grain 1, split across threads) and by the reference kernel over
// the whole array: bit-identical parameters and state after every step.
template <class T, class Chunked, class Reference>
void check_chunked(const std::string& label, std::size_t n, std::uint64_t seed, int steps, const Chunked& chunked,
                   const Reference& reference) {
  Rng rng(seed);
  KernelArrays<T> x;
  x.param = random_vector<T>(rng, n, 2.0);
  x.a.assign(n, T(0));
  x.b.assign(n, T(0));
  auto y = x;
  bool same = true;
  for (int step = 1; step <= steps; ++step) {
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
  using B = KernelArrays<T>;
  const golden_adamfam::Case& gc = golden_adamfam::kCases[c];
  const std::string opt = gc.optimizer;
  const std::string label = opt + "/" + gc.name + " " + type_name<T>() + " threads=" + std::to_string(threads);
  for (std::size_t n : kOddSizes) {
    const std::uint64_t seed = 1000 * c + n;
    if (opt == "Adamax") {
      const AdamaxOptions o = adamax_options(gc.hyper);
      check_chunked<T>(
          label, n, seed, 3,
          [&](B& k, const std::vector<T>& g, int step) {
            fastoptim::adamax_step<T>(k.param.data(), g.data(), k.a.data(), k.b.data(), n, o, step, 1);
          },
          [&](B& k, const std::vector<T>& g, int step) {
            fastoptim::adamax_update_ref<T>(k.param.data(), g.data(), k.a.data(), k.b.data(), n,
                                            fastoptim::AdamaxScalars<T>(o, step));
          });
    } else if (opt == "NAdam") {
      const NAdamOptions o = nadam_options(gc.hyper);
      double mu_product = 1.0;  // advanced once per step, before the two kernels run
      check_chunked<T>(
          label, n, seed, 3,
          [&](B& k, const std::vector<T>& g, int step) {
            mu_product = fastoptim::nadam_mu_product(mu_product, fastoptim::nadam_mu(o, step), true);
            fastoptim::nadam_step<T>(k.param.data(), g.data(), k.a.data(), k.b.data(), n, o, step, mu_product, 1);
          },
          [&](B& k, const std::vector<T>& g, int step) {
            fastoptim::nadam_update_ref<T>(k.param.data(), g.data(), k.a.data(), k.b.data(), n,
                                           fastoptim::NAdamScalars<T>(o, step, mu_product));
          });
    } else if (opt == "RAdam") {
      const RAdamOptions o = radam_options(gc.hyper);
      check_chunked<T>(
          label, n, seed, kKernelSteps,
          [&](B& k, const std::vector<T>& g, int step) {
            fastoptim::radam_step<T>(k.param.data(), g.data(), k.a.data(), k.b.data(), n, o, step, 1);
          },
          [&](B& k, const std::vector<T>& g, int step) {
            fastoptim::radam_update_ref<T>(k.param.data(), g.data(), k.a.data(), k.b.data(), n,
                                           fastoptim::RAdamScalars<T>(o, step));
          });
    }
  }
}

void test_chunked_kernels() {
  // Thread counts 2 and 3 force splitting even where OMP_NUM_THREADS=1; without OpenMP they all run serially.
  for (int threads : {2, 3}) {
    ThreadCount tc(threads);
    for (std::size_t c = 0; c < golden_adamfam::kNumCases; ++c) {
      test_chunked_kernels_for_case<float>(c, threads);
      test_chunked_kernels_for_case<double>(c, threads);
    }
  }
}

// Through the optimizer front end at the default grain and the environment's thread count: a parameter
// above the grain (split when OpenMP has threads) next to a small one, against the reference kernel run
// by `reference(param, grad, a, b, n, step)` with its own state buffers.
template <class Opt, class Reference>
void check_front_end(const std::string& label, const typename Opt::options_type& o, const Reference& reference) {
  using T = typename Opt::value_type;
  const std::size_t sizes[2] = {3 * fastoptim::kDefaultGrain + 17, 5};
  Rng rng(99);
  std::vector<T> params[2] = {random_vector<T>(rng, sizes[0]), random_vector<T>(rng, sizes[1])};
  std::vector<T> refs[2] = {params[0], params[1]};
  std::vector<T> a[2] = {std::vector<T>(sizes[0]), std::vector<T>(sizes[1])}, b[2] = {a[0], a[1]};
  Opt opt({params[0], params[1]}, o);
  bool same = true;
  for (int step = 1; step <= kKernelSteps; ++step) {
    std::vector<T> grads[2] = {random_vector<T>(rng, sizes[0]), random_vector<T>(rng, sizes[1])};
    opt.step({grads[0], grads[1]});
    for (int i = 0; i < 2; ++i) reference(refs[i].data(), grads[i].data(), a[i].data(), b[i].data(), sizes[i], step);
    same = same && bit_equal(params[0], refs[0]) && bit_equal(params[1], refs[1]);
  }
  CHECK_MSG(same, label + "<" + type_name<T>() + "> with a parameter above the grain differs from the reference");
}

template <class T>
void test_front_end() {
  AdamaxOptions ax;
  ax.weight_decay = 0.1;
  check_front_end<fastoptim::Adamax<T>>("Adamax", ax, [&](T* p, const T* g, T* a, T* b, std::size_t n, int step) {
    fastoptim::adamax_update_ref<T>(p, g, a, b, n, fastoptim::AdamaxScalars<T>(ax, step));
  });
  NAdamOptions na;
  na.weight_decay = 0.1;
  na.decoupled_weight_decay = true;
  double mu_product = 1.0;
  int advanced_to = 0;  // both parameters share the step count: advance mu_product once per step
  check_front_end<fastoptim::NAdam<T>>("NAdam", na, [&](T* p, const T* g, T* a, T* b, std::size_t n, int step) {
    if (advanced_to != step) mu_product = fastoptim::nadam_mu_product(mu_product, fastoptim::nadam_mu(na, step), true);
    advanced_to = step;
    fastoptim::nadam_update_ref<T>(p, g, a, b, n, fastoptim::NAdamScalars<T>(na, step, mu_product));
  });
  RAdamOptions ra;
  ra.weight_decay = 0.1;
  check_front_end<fastoptim::RAdam<T>>("RAdam", ra, [&](T* p, const T* g, T* a, T* b, std::size_t n, int step) {
    fastoptim::radam_update_ref<T>(p, g, a, b, n, fastoptim::RAdamScalars<T>(ra, step));
  });
}

// --------------------------------------------------------------------------------------------- errors

template <class Opt>
void check_invalid_options() {
  using Options = typename Opt::options_type;
  std::vector<float> p(4, 1.0f);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto bad = [&](const char* words, auto edit) {
    Options o;
    edit(o);
    CHECK_THROWS_WITH(words, Opt opt({p}, o));
  };
  bad("Invalid learning rate", [](Options& o) { o.lr = -1e-3; });
  bad("Invalid learning rate", [&](Options& o) { o.lr = nan; });
  bad("Invalid epsilon value", [](Options& o) { o.eps = -1e-8; });
  bad("Invalid beta parameter at index 0", [](Options& o) { o.beta1 = 1.0; });
  bad("Invalid beta parameter at index 0", [](Options& o) { o.beta1 = -0.1; });
  bad("Invalid beta parameter at index 1", [](Options& o) { o.beta2 = 1.0; });
  bad("Invalid beta parameter at index 1", [&](Options& o) { o.beta2 = nan; });
  bad("Invalid weight_decay value", [](Options& o) { o.weight_decay = -0.1; });
  if constexpr (std::is_same_v<Options, NAdamOptions>)
    bad("Invalid momentum_decay value", [](Options& o) { o.momentum_decay = -4e-3; });
  Options edge;  // the edges torch accepts
  edge.lr = 0.0;
  edge.beta1 = 0.0;
  edge.beta2 = 0.0;
  edge.eps = 0.0;
  CHECK_NOTHROW(Opt({p}, edge));
}

// A malformed step() throws before touching anything: parameters and state stay as they were.
template <class Opt>
void check_bad_step_changes_nothing() {
  using T = typename Opt::value_type;
  Rng rng(5);
  std::vector<T> a = random_vector<T>(rng, 6), b = random_vector<T>(rng, 3);
  Opt opt({a, b}, typename Opt::options_type{});
  const std::vector<T> ga = random_vector<T>(rng, 6), gb = random_vector<T>(rng, 3), short_grad(2);
  opt.step({ga, gb});
  const auto a0 = a, b0 = b;
  const auto s0 = opt.state(0), s1 = opt.state(1);
  CHECK_THROWS_WITH("expected 2 gradients", opt.step({ga}));
  CHECK_THROWS_WITH("gradient of parameter 1 has 2 elements", opt.step({ga, short_grad}));
  CHECK_THROWS_WITH("gradient of parameter 0 overlaps parameter 0", opt.step({Span<const T>(a), gb}));
  // Edited into an unusable value after construction (step() takes any other beta, as torch does).
  opt.param_groups()[0].options.beta1 = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH("Invalid beta parameter at index 0", opt.step({ga, gb}));
  CHECK(bit_equal(a, a0) && bit_equal(b, b0) && state_equal(opt.state(0), s0) && state_equal(opt.state(1), s1));
}

void test_errors() {
  check_invalid_options<fastoptim::Adamax<float>>();
  check_invalid_options<fastoptim::NAdam<float>>();
  check_invalid_options<fastoptim::RAdam<float>>();
  check_bad_step_changes_nothing<fastoptim::Adamax<double>>();
  check_bad_step_changes_nothing<fastoptim::NAdam<float>>();
  check_bad_step_changes_nothing<fastoptim::RAdam<double>>();
}

// ---------------------------------------------------------------------------------------------- state

// Five steps, states copied into a fresh optimizer with load_state, five more steps on both: identical.
template <class Opt>
void check_round_trip(const std::string& label, const typename Opt::options_type& o) {
  using T = typename Opt::value_type;
  Rng rng(11);
  std::vector<T> a = random_vector<T>(rng, 40), b = random_vector<T>(rng, 7);
  Opt first({a, b}, o);
  const auto grads = [&](int t) {
    Rng g(100 + static_cast<std::uint64_t>(t));
    return std::make_pair(random_vector<T>(g, 40), random_vector<T>(g, 7));
  };
  for (int t = 1; t <= 5; ++t) {
    const auto [ga, gb] = grads(t);
    first.step({ga, t % 2 ? Span<const T>(gb) : Span<const T>(nullptr)});
  }
  std::vector<T> a2 = a, b2 = b;
  Opt second({a2, b2}, o);
  for (std::size_t i = 0; i < 2; ++i) second.load_state(i, first.state(i));
  for (int t = 6; t <= 10; ++t) {
    const auto [ga, gb] = grads(t);
    first.step({ga, gb});
    second.step({ga, gb});
  }
  CHECK_MSG(bit_equal(a, a2) && bit_equal(b, b2) && state_equal(first.state(0), second.state(0)) &&
                state_equal(first.state(1), second.state(1)),
            label + ": resumed run differs");
  CHECK(first.state(1).step == 8);  // no gradient at steps 2 and 4

  auto wrong = first.state(0);
  wrong.exp_avg.resize(39);
  CHECK_THROWS_WITH("state 'exp_avg' of parameter 0 has 39 elements", second.load_state(0, wrong));
  auto negative = first.state(1);
  negative.step = -1;
  CHECK_THROWS_WITH("state 'step' of parameter 1 is negative", second.load_state(1, negative));
  CHECK(state_equal(first.state(0), second.state(0)));
}

void test_state() {
  AdamaxOptions ax;
  ax.maximize = true;
  check_round_trip<fastoptim::Adamax<float>>("Adamax<float>", ax);
  NAdamOptions na;
  na.momentum_decay = 0.5;
  check_round_trip<fastoptim::NAdam<double>>("NAdam<double>", na);
  RAdamOptions ra;
  ra.decoupled_weight_decay = true;
  ra.weight_decay = 0.1;
  check_round_trip<fastoptim::RAdam<float>>("RAdam<float>", ra);

  // mu_product: rounded to float32 unless the state says float64; a non-finite one is rejected.
  std::vector<double> p(3, 1.0), g(3, 0.5);
  fastoptim::NAdam<double> opt({p}, na);
  opt.step({g});
  const double mu1 = fastoptim::nadam_mu(na, 1.0);
  CHECK(bit_equal(opt.state(0).mu_product, static_cast<double>(static_cast<float>(mu1))));
  auto st = opt.state(0);
  st.mu_product_float32 = false;
  st.mu_product = 0.3;
  opt.load_state(0, st);
  opt.step({g});
  CHECK(bit_equal(opt.state(0).mu_product, 0.3 * fastoptim::nadam_mu(na, 2.0)));
  st.mu_product = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH("state 'mu_product' of parameter 0 is not finite", opt.load_state(0, st));
}

}  // namespace

int main() {
  test_golden();
  test_defaults();
  test_chunked_kernels();
  test_front_end<float>();
  test_front_end<double>();
  test_errors();
  test_state();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
