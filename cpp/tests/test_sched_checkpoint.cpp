// fastoptim::save_checkpoint / load_checkpoint (cpp/include/fastoptim/checkpoint.hpp), C++ only: round trips
// of SGD/Adam/AdamW/RMSprop, and of Adam with every scheduler, resume bit-identically mid-run; truncated,
// bit-flipped, fuzzed and mismatched files (optimizer or scheduler) throw std::runtime_error and leave the
// optimizer and scheduler unchanged. CI also runs it under AddressSanitizer and UndefinedBehaviorSanitizer.
// (tests/test_checkpoint.py checks files crossing between C++ and Python, through cpp/tests/ckpt_cross.c.)

#include <fastoptim/checkpoint.hpp>
#include <fastoptim/fastoptim.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int g_passed = 0;
int g_failed = 0;

void report(bool ok, const char* what, int line, const std::string& ctx = "") {
  if (ok) {
    ++g_passed;
    return;
  }
  ++g_failed;
  std::printf("FAIL line %d: %s%s%s\n", line, what, ctx.empty() ? "" : "  -- ", ctx.c_str());
}
#define CHECK(c) report(static_cast<bool>(c), #c, __LINE__)
#define CHECK_MSG(c, m) report(static_cast<bool>(c), #c, __LINE__, (m))

// ------------------------------------------------------------------------- the shared problem

constexpr std::size_t kN = 5;

template <class T>
std::vector<T> initial_params() {
  std::vector<T> p(kN);
  for (std::size_t i = 0; i < kN; ++i) p[i] = static_cast<T>((static_cast<double>(i) - 2.0) * 0.25);
  return p;
}

// g_i = p_i * 0.5 + c(i, k), with c exact in binary: both languages compute it identically.
template <class T>
void gradient(const std::vector<T>& p, std::size_t k, std::vector<T>& g) {
  g.resize(p.size());
  for (std::size_t i = 0; i < p.size(); ++i)
    g[i] = p[i] * T(0.5) + static_cast<T>(static_cast<double>(static_cast<long>((i * 7 + k * 3) % 11) - 5) * 0.125);
}

fastoptim::AdamOptions adam_options() {
  fastoptim::AdamOptions o;
  o.lr = 0.01;
  o.beta1 = 0.9;
  o.beta2 = 0.99;
  o.weight_decay = 0.1;
  o.amsgrad = true;
  return o;
}

fastoptim::SGDOptions sgd_options() {
  fastoptim::SGDOptions o;
  o.lr = 0.05;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 0.01;
  return o;
}

template <class Opt, class T>
void run(Opt& opt, std::vector<std::vector<T>>& params, std::size_t k0, std::size_t n) {
  std::vector<std::vector<T>> grads(params.size());
  for (std::size_t k = k0; k < k0 + n; ++k) {
    std::vector<fastoptim::Span<const T>> gs;
    for (std::size_t j = 0; j < params.size(); ++j) {
      gradient(params[j], k + j, grads[j]);
      gs.emplace_back(grads[j]);
    }
    opt.step(gs);
  }
}

template <class T>
bool bits_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

std::string temp_dir() {
  const char* t = std::getenv("TMPDIR");
  std::string base = t && *t ? t : "/tmp";
#ifdef _WIN32
  if (!(t && *t)) base = ".";
#endif
  return base;
}

std::string slurp(const std::string& path) { return fastoptim::ckpt::read_file(path); }

// A checkpoint's bytes with [at, at + count) replaced by `with` and the header length (the first 8 bytes,
// little-endian) adjusted: an edited header that still parses as safetensors.
std::string spliced(std::string bytes, std::size_t at, std::size_t count, const std::string& with) {
  bytes.replace(at, count, with);
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  n = n + with.size() - count;
  std::memcpy(&bytes[0], &n, 8);
  return bytes;
}

void spit(const std::string& path, const std::string& bytes) {
  std::remove(path.c_str());  // a new file, not a truncated one: ext4 flushes truncated-and-rewritten files on close
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

// Everything observable about an optimizer's state, as bytes.
template <class Opt>
std::string snapshot(Opt& opt) {
  std::string out;
  for (auto& g : opt.param_groups()) {
    out += fastoptim::ckpt::options_json(g.options);  // not the raw bytes: padding differs
    out += g.initial_lr ? std::to_string(*g.initial_lr) : "none";
  }
  for (std::size_t i = 0; i < opt.num_params(); ++i) {
    auto e = fastoptim::ckpt::entries_of(opt, i);
    if (e.step_value) out += std::to_string(*e.step_value);
    for (auto& b : e.buffers) {
      out += b.first;
      out.append(reinterpret_cast<const char*>(b.second->data()), b.second->size() * sizeof(b.second->front()));
    }
  }
  return out;
}

// ------------------------------------------------------------------------------- self tests

template <class Opt, class Options>
void round_trip(const char* name, const Options& options) {
  using T = typename Opt::value_type;
  std::vector<std::vector<T>> a = {initial_params<T>(), std::vector<T>(3, T(0.5))};
  typename Opt::group_type g1{{fastoptim::Span<T>(a[0])}, options, {}};
  Options o2 = options;
  o2.lr = options.lr * 0.5;
  typename Opt::group_type g2{{fastoptim::Span<T>(a[1])}, o2, 0.125};
  Opt opt({g1, g2});
  run(opt, a, 0, 7);
  const std::string path = temp_dir() + "/fastoptim_ckpt_" + name + ".safetensors";
  fastoptim::save_checkpoint(path, opt);

  std::vector<std::vector<T>> b = a;  // the parameters are the caller's to save
  Options fresh;
  fresh.lr = 0.9;
  typename Opt::group_type h1{{fastoptim::Span<T>(b[0])}, fresh, {}};
  typename Opt::group_type h2{{fastoptim::Span<T>(b[1])}, fresh, {}};
  Opt opt2({h1, h2});
  try {
    fastoptim::load_checkpoint(path, opt2);
    CHECK_MSG(true, name);
  } catch (const std::exception& e) {
    CHECK_MSG(false, std::string(name) + ": " + e.what());
  }
  CHECK_MSG(snapshot(opt) == snapshot(opt2), name);
  CHECK_MSG(opt2.param_groups()[1].initial_lr && *opt2.param_groups()[1].initial_lr == 0.125, name);
  run(opt, a, 7, 10);
  run(opt2, b, 7, 10);
  CHECK_MSG(bits_equal(a[0], b[0]) && bits_equal(a[1], b[1]), std::string(name) + ": resumed run differs");
  CHECK_MSG(snapshot(opt) == snapshot(opt2), name);
  std::remove(path.c_str());
}

template <class Opt>
bool throws_unchanged(const std::string& path, Opt& target, const std::string& expect = "") {
  const std::string before = snapshot(target);
  bool threw = false;
  try {
    fastoptim::load_checkpoint(path, target);
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    threw = msg.rfind("checkpoint ", 0) == 0 && (expect.empty() || msg.find(expect) != std::string::npos);
    if (!threw) std::printf("  unexpected message: %s\n", msg.c_str());
  }
  return threw && snapshot(target) == before;
}

void robustness() {
  std::vector<double> p = initial_params<double>();
  fastoptim::Adam<double> opt({fastoptim::Span<double>(p)}, adam_options());
  std::vector<std::vector<double>> ps = {p};
  fastoptim::Adam<double> src({fastoptim::Span<double>(ps[0])}, adam_options());
  run(src, ps, 0, 3);
  const std::string dir = temp_dir();
  const std::string good = dir + "/fastoptim_ckpt_good.safetensors", bad = dir + "/fastoptim_ckpt_bad.safetensors";
  fastoptim::save_checkpoint(good, src);
  const std::string bytes = slurp(good);
  std::vector<std::vector<double>> pt = {initial_params<double>()};
  fastoptim::Adam<double> target({fastoptim::Span<double>(pt[0])}, adam_options());
  run(target, pt, 0, 1);

  int truncated_ok = 0;
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    spit(bad, bytes.substr(0, n));
    truncated_ok += throws_unchanged(bad, target) ? 1 : 0;
  }
  CHECK_MSG(truncated_ok == static_cast<int>(bytes.size()), "every truncation throws");

  int flips_bad = 0;
  for (std::size_t i = 0; i < 200 && i < bytes.size(); ++i) {
    for (const unsigned mask : {0x01u, 0x80u, 0xffu}) {
      std::string m = bytes;
      m[i] = static_cast<char>(static_cast<unsigned>(static_cast<unsigned char>(m[i])) ^ mask);
      spit(bad, m);
      std::vector<std::vector<double>> pf = {initial_params<double>()};
      fastoptim::Adam<double> fresh({fastoptim::Span<double>(pf[0])}, adam_options());
      const std::string before = snapshot(fresh);
      try {
        fastoptim::load_checkpoint(bad, fresh);  // may load: a flipped digit of lr is still a checkpoint
      } catch (const std::runtime_error&) {
        flips_bad += snapshot(fresh) == before ? 0 : 1;
      } catch (...) {
        ++flips_bad;
      }
    }
  }
  CHECK_MSG(flips_bad == 0, "bit flips throw runtime_error and change nothing, or load");

  // Bounded fuzz (fixed seed): a few random byte edits, sometimes a truncation; load or runtime_error only.
  int fuzz_bad = 0;
  std::uint64_t rng = 0x9E3779B97F4A7C15ull;
  auto next = [&rng](std::uint64_t n) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::size_t>((rng >> 33) % n);
  };
  for (int trial = 0; trial < 1500; ++trial) {
    std::string m = bytes;
    const std::size_t edits = 1 + next(6);
    for (std::size_t e = 0; e < edits; ++e) m[next(m.size())] = static_cast<char>(next(256));
    if (next(4) == 0) m.resize(next(m.size() + 1));
    spit(bad, m);
    std::vector<std::vector<double>> pf = {initial_params<double>()};
    fastoptim::Adam<double> fresh({fastoptim::Span<double>(pf[0])}, adam_options());
    const std::string before = snapshot(fresh);
    try {
      fastoptim::load_checkpoint(bad, fresh);
    } catch (const std::runtime_error&) {
      fuzz_bad += snapshot(fresh) == before ? 0 : 1;
    } catch (...) {
      ++fuzz_bad;
    }
  }
  CHECK_MSG(fuzz_bad == 0, "fuzzed files load or throw runtime_error, changing nothing");

  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);  // test hosts are little-endian
  const std::string header = bytes.substr(8, static_cast<std::size_t>(header_size));
  auto replaced = [&](const std::string& from, const std::string& to) {
    const auto at = header.find(from);
    return at == std::string::npos ? std::string() : spliced(bytes, 8 + at, from.size(), to);
  };
  {
    std::string huge = bytes;
    const std::uint64_t n = ~std::uint64_t(0);
    std::memcpy(&huge[0], &n, 8);
    spit(bad, huge);
    CHECK(throws_unchanged(bad, target, "exceeds"));
    const std::uint64_t past = bytes.size();
    std::memcpy(&huge[0], &past, 8);
    spit(bad, huge);
    CHECK(throws_unchanged(bad, target, "past the end"));
    const std::uint64_t zero = 0;
    std::memcpy(&huge[0], &zero, 8);
    spit(bad, huge);
    CHECK(throws_unchanged(bad, target, "header length is 0"));
  }
  const struct {
    const char* from;
    const char* to;
    const char* expect;
  } cases[] = {
      {"\"dtype\":\"F64\"", "\"dtype\":\"F65\"", "unknown dtype"},
      {"\"data_offsets\":[0,", "\"data_offsets\":[-8,", "data_offsets begin"},
      {"\"data_offsets\":[0,", "\"data_offsets\":[99999999999999999999999,", "data_offsets begin"},
      {"\"shape\":[5]", "\"shape\":[6]", "bytes"},
      {"\"shape\":[5]", "\"shape\":[5,1,1]", ""},  // loads: C++ params are flat (count 5 matches)
      {"\\\"class\\\":\\\"Adam\\\"", "\\\"class\\\":\\\"SGD\\\"", "optimizer, not Adam"},
      {"\\\"version\\\":1", "\\\"version\\\":3", "unsupported version"},
      {"\\\"format\\\":\\\"fastoptim-checkpoint\\\"", "\\\"format\\\":\\\"other\\\"", "format"},
      {"\\\"exp_avg\\\",", "\\\"exp_avg\\\",\\\"bogus\\\",", "missing"},
      {"{\"__metadata__\"", "[{\"__metadata__\"", "not valid JSON"},
      {"\\\"state_keys\\\":{\\\"0\\\"", "\\\"state_keys\\\":{\\\"00\\\"", "non-index key"},  // a second "0"
  };
  for (const auto& c : cases) {
    const std::string m = replaced(c.from, c.to);
    CHECK_MSG(!m.empty(), c.from);
    if (m.empty()) continue;
    spit(bad, m);
    if (std::string(c.expect).empty()) {
      std::vector<std::vector<double>> pf = {initial_params<double>()};
      fastoptim::Adam<double> fresh({fastoptim::Span<double>(pf[0])}, adam_options());
      bool ok = true;
      try {
        fastoptim::load_checkpoint(bad, fresh);
      } catch (...) {
        ok = false;
      }
      CHECK_MSG(ok, c.to);
    } else {
      CHECK_MSG(throws_unchanged(bad, target, c.expect), c.to);
    }
  }
  // Mismatched optimizers: another class, another dtype, another size.
  {
    std::vector<double> q = initial_params<double>();
    fastoptim::SGD<double> sgd({fastoptim::Span<double>(q)}, sgd_options());
    CHECK(throws_unchanged(good, sgd, "optimizer, not SGD"));
    std::vector<float> f = initial_params<float>();
    fastoptim::Adam<float> adamf({fastoptim::Span<float>(f)}, adam_options());
    CHECK(throws_unchanged(good, adamf, "dtype F64"));
    std::vector<double> longer(7, 0.0);
    fastoptim::Adam<double> adam7({fastoptim::Span<double>(longer)}, adam_options());
    CHECK(throws_unchanged(good, adam7, "elements"));
    std::vector<double> r1 = initial_params<double>(), r2(2, 0.0);
    fastoptim::Adam<double> two({fastoptim::Span<double>(r1), fastoptim::Span<double>(r2)}, adam_options());
    CHECK(throws_unchanged(good, two, "different number of parameters"));
  }
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

// --------------------------------------------------------------------------- schedulers

namespace ls = fastoptim::lr_scheduler;

// A scheduler with the children it needs, over Adam<double> with two groups.
struct Sched {
  std::vector<std::unique_ptr<ls::LRScheduler>> children;
  std::unique_ptr<ls::LRScheduler> lr;
  std::unique_ptr<ls::ReduceLROnPlateau> plateau;

  fastoptim::SchedulerRef ref() { return lr ? fastoptim::SchedulerRef(*lr) : fastoptim::SchedulerRef(*plateau); }
  void step(std::size_t k) {
    if (plateau) plateau->step(1.0 / (1.0 + static_cast<double>(k / 4)));
    else lr->step();
  }
  std::vector<double> last_lr() const { return lr ? lr->get_last_lr() : plateau->get_last_lr(); }
};

template <class S, class... A>
Sched one(A&&... a) {
  Sched s;
  s.lr = std::make_unique<S>(std::forward<A>(a)...);
  return s;
}

using Factory = std::function<Sched(ls::GroupsAccess&)>;

std::vector<std::pair<std::string, Factory>> schedulers() {
  std::vector<std::pair<std::string, Factory>> out;
  out.emplace_back("StepLR", [](ls::GroupsAccess& g) { return one<ls::StepLR>(g, 3, 0.5); });
  out.emplace_back("MultiStepLR", [](ls::GroupsAccess& g) {
    return one<ls::MultiStepLR>(g, std::vector<std::int64_t>{9, 2, 5, 5}, 0.5);
  });
  out.emplace_back("ConstantLR", [](ls::GroupsAccess& g) { return one<ls::ConstantLR>(g, 0.5, 6); });
  out.emplace_back("LinearLR", [](ls::GroupsAccess& g) { return one<ls::LinearLR>(g, 0.25, 0.75, 10); });
  out.emplace_back("ExponentialLR", [](ls::GroupsAccess& g) { return one<ls::ExponentialLR>(g, 0.9); });
  out.emplace_back("PolynomialLR", [](ls::GroupsAccess& g) { return one<ls::PolynomialLR>(g, 12, 2.0); });
  out.emplace_back("LambdaLR", [](ls::GroupsAccess& g) {
    return one<ls::LambdaLR>(g, ls::LrLambda([](std::int64_t e) { return 0.5 + 0.5 / (1.0 + e); }));
  });
  out.emplace_back("MultiplicativeLR", [](ls::GroupsAccess& g) {
    return one<ls::MultiplicativeLR>(g, ls::LrLambda([](std::int64_t e) { return e % 3 ? 0.9 : 0.8; }));
  });
  out.emplace_back("CosineAnnealingLR", [](ls::GroupsAccess& g) { return one<ls::CosineAnnealingLR>(g, 6, 0.001); });
  out.emplace_back("CosineAnnealingWarmRestarts",
                   [](ls::GroupsAccess& g) { return one<ls::CosineAnnealingWarmRestarts>(g, 3, 2, 0.001); });
  out.emplace_back("CyclicLR", [](ls::GroupsAccess& g) {
    ls::CyclicLR::Options o;
    o.base_lr = {0.01};
    o.max_lr = {0.1, 0.05};
    o.step_size_up = 3;
    o.mode = "triangular2";
    return one<ls::CyclicLR>(g, o);
  });
  out.emplace_back("OneCycleLR", [](ls::GroupsAccess& g) {
    ls::OneCycleLR::Options o;
    o.max_lr = {0.1, 0.05};
    o.total_steps = 30;
    o.three_phase = true;
    return one<ls::OneCycleLR>(g, o);
  });
  out.emplace_back("SequentialLR", [](ls::GroupsAccess& g) {
    Sched s;
    s.children.push_back(std::make_unique<ls::LinearLR>(g, 0.1, 1.0, 4));
    s.children.push_back(std::make_unique<ls::ExponentialLR>(g, 0.9));
    s.lr = std::make_unique<ls::SequentialLR>(
        g, std::vector<ls::LRScheduler*>{s.children[0].get(), s.children[1].get()}, std::vector<std::int64_t>{4});
    return s;
  });
  out.emplace_back("ChainedScheduler", [](ls::GroupsAccess& g) {
    Sched s;
    s.children.push_back(std::make_unique<ls::StepLR>(g, 2, 0.9));
    s.children.push_back(std::make_unique<ls::CosineAnnealingLR>(g, 8));
    s.lr = std::make_unique<ls::ChainedScheduler>(
        std::vector<ls::LRScheduler*>{s.children[0].get(), s.children[1].get()});
    return s;
  });
  out.emplace_back("ReduceLROnPlateau", [](ls::GroupsAccess& g) {
    ls::ReduceLROnPlateau::Options o;
    o.patience = 1;
    o.factor = 0.5;
    o.cooldown = 1;
    Sched s;
    s.plateau = std::make_unique<ls::ReduceLROnPlateau>(g, o);
    return s;
  });
  out.emplace_back("SWALR", [](ls::GroupsAccess& g) {
    return one<ls::SWALR>(g, std::vector<double>{0.05, 0.01}, 5, ls::SWALR::AnnealStrategy::linear);
  });
  return out;
}

// Adam over two groups (5 and 3 values), with a scheduler, its groups and its parameters.
struct Run {
  std::vector<std::vector<double>> params{initial_params<double>(), std::vector<double>{0.5, 0.25, 0.0}};
  std::unique_ptr<fastoptim::Adam<double>> opt;
  std::unique_ptr<ls::OptimizerGroups<fastoptim::Adam<double>>> groups;
  Sched sched;

  explicit Run(const Factory& make) {
    fastoptim::AdamOptions o = adam_options(), o2 = adam_options();
    o2.lr = 0.02;
    opt = std::make_unique<fastoptim::Adam<double>>(std::vector<fastoptim::Adam<double>::group_type>{
        {{fastoptim::Span<double>(params[0])}, o, {}}, {{fastoptim::Span<double>(params[1])}, o2, {}}});
    groups = std::make_unique<ls::OptimizerGroups<fastoptim::Adam<double>>>(*opt);
    sched = make(*groups);
  }
  void steps(std::size_t k0, std::size_t n) {
    for (std::size_t k = k0; k < k0 + n; ++k) {
      run(*opt, params, k, 1);
      sched.step(k);
    }
  }
  std::string lrs() const {
    std::string out;
    for (double v : sched.last_lr()) out.append(reinterpret_cast<const char*>(&v), sizeof v);
    for (const auto& g : opt->param_groups()) out += fastoptim::ckpt::options_json(g.options);
    return out;
  }
};

void scheduler_round_trips() {
  const std::string path = temp_dir() + "/fastoptim_ckpt_sched.safetensors";
  for (const auto& [name, make] : schedulers()) {
    Run a(make);
    a.steps(0, 7);
    fastoptim::save_checkpoint(path, *a.opt, a.sched.ref());
    Run b(make);
    b.params = a.params;  // the parameters are the caller's to save
    b.opt->param_groups()[0].params[0] = fastoptim::Span<double>(b.params[0]);
    b.opt->param_groups()[1].params[0] = fastoptim::Span<double>(b.params[1]);
    try {
      fastoptim::load_checkpoint(path, *b.opt, b.sched.ref());
    } catch (const std::exception& e) {
      CHECK_MSG(false, name + ": " + e.what());
      continue;
    }
    CHECK_MSG(a.lrs() == b.lrs() && snapshot(*a.opt) == snapshot(*b.opt), name + ": loaded state differs");
    a.steps(7, 10);
    b.steps(7, 10);
    CHECK_MSG(bits_equal(a.params[0], b.params[0]) && bits_equal(a.params[1], b.params[1]) && a.lrs() == b.lrs(),
              name + ": resumed run differs");
  }
  std::remove(path.c_str());
}

// A load that throws changes neither the optimizer nor the scheduler.
bool rejects(const std::string& path, Run& target, const std::string& expect) {
  const std::string before = snapshot(*target.opt) + target.lrs();
  try {
    fastoptim::load_checkpoint(path, *target.opt, target.sched.ref());
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    if (msg.find(expect) == std::string::npos) std::printf("  unexpected message: %s\n", msg.c_str());
    return msg.find(expect) != std::string::npos && snapshot(*target.opt) + target.lrs() == before;
  }
  return false;
}

// CyclicLR's total_size / step_ratio come from the file: a tiny, zero or NaN total_size made get_lr cast an
// out-of-range cycle number to int64. torch's values: total_size > 0, step_ratio in [0, 1].
void cyclic_ranges() {
  Factory cyclic;
  for (const auto& [n, f] : schedulers())
    if (n == "CyclicLR") cyclic = f;
  const std::string dir = temp_dir(), good = dir + "/fastoptim_ckpt_c1.safetensors",
                    bad = dir + "/fastoptim_ckpt_c2.safetensors";
  Run saved(cyclic);
  saved.steps(0, 3);
  fastoptim::save_checkpoint(good, *saved.opt, saved.sched.ref());
  const std::string bytes = slurp(good);
  // Replaces the value of `key` (up to the next comma) and fixes the header length.
  const auto with = [&](const std::string& key, const std::string& value) {
    const std::string k = "\\\"" + key + "\\\":";
    const auto at = bytes.find(k);
    if (at == std::string::npos) return false;
    const auto from = at + k.size();
    spit(bad, spliced(bytes, from, bytes.find(',', from) - from, value));
    return true;
  };
  Run target(cyclic);
  target.steps(0, 1);
  const struct {
    const char* key;
    const char* value;
    const char* expect;
  } cases[] = {
      {"total_size", "1e-310", ""},  // loads (positive), but the next step's cycle number is out of range
      {"total_size", "0.0", "total_size must be finite and positive, got 0.0"},
      {"total_size", "-6.0", "total_size must be finite and positive, got -6.0"},
      {"total_size", "NaN", "total_size must be finite and positive, got nan"},
      {"total_size", "Infinity", "total_size must be finite and positive, got inf"},
      {"step_ratio", "NaN", "step_ratio must be in [0, 1], got nan"},
      {"step_ratio", "-0.5", "step_ratio must be in [0, 1], got -0.5"},
      {"step_ratio", "1.5", "step_ratio must be in [0, 1], got 1.5"},
      {"last_epoch", "9223372036854775807", "last_epoch is out of range"},
  };
  for (const auto& c : cases) {
    const bool found = with(c.key, c.value);
    CHECK_MSG(found, c.key);
    if (!found) continue;
    if (std::string(c.expect).empty()) {
      Run r(cyclic);
      r.steps(0, 1);
      fastoptim::load_checkpoint(bad, *r.opt, r.sched.ref());
      const std::string before = r.lrs();
      bool threw = false;
      try {
        r.sched.step(3);
      } catch (const std::domain_error& e) {
        threw = std::string(e.what()).find("is not finite or beyond 2^53") != std::string::npos;
      }
      CHECK_MSG(threw && r.lrs() == before, "CyclicLR total_size 1e-310: the step throws std::domain_error");
    } else {
      CHECK_MSG(rejects(bad, target, c.expect), c.expect);
    }
  }
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

void scheduler_mismatches() {
  const auto all = schedulers();
  const auto factory = [&all](const std::string& name) {
    for (const auto& [n, f] : all)
      if (n == name) return f;
    return Factory();
  };
  const std::string dir = temp_dir(), good = dir + "/fastoptim_ckpt_s1.safetensors",
                    bad = dir + "/fastoptim_ckpt_s2.safetensors";
  Run seq(factory("SequentialLR"));
  seq.steps(0, 3);
  fastoptim::save_checkpoint(good, *seq.opt, seq.sched.ref());
  const std::string bytes = slurp(good);

  Run step(factory("StepLR"));
  step.steps(0, 1);
  CHECK(rejects(good, step, "scheduler is a SequentialLR, but a StepLR was given"));
  Run chained(factory("ChainedScheduler"));
  CHECK(rejects(good, chained, "scheduler is a SequentialLR, but a ChainedScheduler was given"));
  {  // the same composite over other children
    Run other([](ls::GroupsAccess& g) {
      Sched s;
      s.children.push_back(std::make_unique<ls::LinearLR>(g, 0.1, 1.0, 4));
      s.children.push_back(std::make_unique<ls::StepLR>(g, 2));
      s.lr = std::make_unique<ls::SequentialLR>(
          g, std::vector<ls::LRScheduler*>{s.children[0].get(), s.children[1].get()}, std::vector<std::int64_t>{4});
      return s;
    });
    CHECK(rejects(good, other, "scheduler child 1 is a ExponentialLR, but a StepLR was given"));
  }
  Run target(factory("SequentialLR"));
  target.steps(0, 1);
  {  // no scheduler in the file
    Run plain(factory("SequentialLR"));
    fastoptim::save_checkpoint(bad, *plain.opt);
    CHECK(rejects(bad, target, "holds no scheduler state, but a scheduler was given"));
  }
  const auto edited = [&](const std::string& from, const std::string& to) {
    const auto at = bytes.find(from);
    if (at == std::string::npos) return false;
    spit(bad, spliced(bytes, at, from.size(), to));
    return true;
  };
  const struct {
    const char* from;
    const char* to;
    const char* expect;
  } cases[] = {
      {"\\\"_milestones\\\":[4]", "\\\"_milestones\\\":[4,5]", "has 2 milestones, expected 1"},
      {"\\\"start_factor\\\":0.1", "\\\"start_factor\\\":1.5", "Starting multiplicative factor"},
      {"\\\"gamma\\\":0.9", "\\\"gamma\\\":\\\"x\\\"", "gamma must be a number"},
      {"\\\"_step_count\\\":", "\\\"_step_counts\\\":", "has no '_step_count'"},
      {"\\\"base_lrs\\\":[", "\\\"base_lrs\\\":[1.0,", "has 3 values, the optimizer has 2 param groups"},
      {"\\\"last_epoch\\\":3", "\\\"last_epoch\\\":3.5", "last_epoch must be an integer"},
      {"\\\"last_epoch\\\":3", "\\\"last_epoch\\\":9000000000000000000", "last_epoch is out of range"},
  };
  for (const auto& c : cases) {
    const bool found = edited(c.from, c.to);
    CHECK_MSG(found, c.from);
    if (found) CHECK_MSG(rejects(bad, target, c.expect), c.expect);
  }
  // A Python callable object's state cannot go into a C++ function.
  {
    Run lambda(factory("LambdaLR"));
    lambda.steps(0, 2);
    fastoptim::save_checkpoint(good, *lambda.opt, lambda.sched.ref());
    const std::string h = slurp(good);
    const std::string from = "\\\"lr_lambdas\\\":[null,null]", to = "\\\"lr_lambdas\\\":[{\\\"k\\\":1},null]";
    const auto at = h.find(from);
    CHECK(at != std::string::npos);
    if (at != std::string::npos) {
      spit(bad, spliced(h, at, from.size(), to));
      Run t(factory("LambdaLR"));
      CHECK(rejects(bad, t, "lr_lambdas[0] holds the state of a Python callable object"));
    }
  }
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

}  // namespace

// ----------------------------------------------------------------- LBFGS: version 2, lists and numbers

std::string lbfgs_snapshot(const fastoptim::LBFGS<double>& opt) {
  const auto& s = opt.state();
  std::string out = fastoptim::ckpt::options_json(opt.param_groups()[0].options) + std::to_string(s.func_evals) +
                    "/" + std::to_string(s.n_iter) + "/" + std::to_string(s.t.value) + std::to_string(s.t.tensor) +
                    std::to_string(s.H_diag.value) + std::to_string(s.H_diag.tensor) + std::to_string(s.prev_loss);
  const auto add = [&out](const std::vector<double>& v) {
    out += "|" + std::to_string(v.size()) + ":";
    out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(double));
  };
  add(s.d);
  add(s.prev_flat_grad);
  add(s.ro);
  for (const auto& v : s.old_dirs) add(v);
  for (const auto& v : s.old_stps) add(v);
  for (const auto& a : s.al) out += a ? std::to_string(*a) : std::string("None");
  return out;
}

void lbfgs_lists() {
  using fastoptim::Span;
  std::vector<double> x = {1.5, -0.5, 2.0, 0.25}, y = x;
  fastoptim::LBFGSOptions o;
  o.max_iter = 3;
  o.history_size = 6;  // al keeps None slots
  double target = 3.0;
  const auto closure_for = [&target](std::vector<double>& p) {
    return [&target, &p](const std::vector<Span<double>>& grads) {
      double loss = 0.0;
      for (std::size_t i = 0; i < p.size(); ++i) {
        loss += (p[i] - target) * (p[i] - target) * double(i + 1);
        grads[0][i] = 2.0 * (p[i] - target) * double(i + 1);
      }
      return loss;
    };
  };
  fastoptim::LBFGS<double> opt({Span<double>(x)}, o), other({Span<double>(y)}, o);
  for (int k = 0; k < 3; ++k, target -= 0.5) opt.step(closure_for(x));
  other.step(closure_for(y));  // a stepped target: refused loads must leave it as it was
  CHECK(opt.state().old_dirs.size() >= 2 && !opt.state().al.back());
  const std::string good = temp_dir() + "/fastoptim_ckpt_lbfgs.safetensors", bad = good + ".bad";
  fastoptim::save_checkpoint(good, opt);
  const std::string bytes = slurp(good);
  const auto throws = [&](const std::string& expect) {
    const std::string before = lbfgs_snapshot(other);
    try {
      fastoptim::load_checkpoint(bad, other);
    } catch (const fastoptim::CheckpointError& e) {
      const bool ok = std::string(e.what()).find(expect) != std::string::npos;
      if (!ok) std::printf("  unexpected message: %s\n", e.what());
      return ok && lbfgs_snapshot(other) == before;
    }
    return false;
  };
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const std::string header = bytes.substr(8, static_cast<std::size_t>(n));
  const auto replaced = [&](const std::string& from, const std::string& to) {
    const auto at = header.find(from);
    CHECK_MSG(at != std::string::npos, from);
    return at == std::string::npos ? bytes : spliced(bytes, 8 + at, from.size(), to);
  };
  const std::string dirs = std::to_string(opt.state().old_dirs.size());
  const struct {
    std::string from, to, expect;
  } cases[] = {
      {"\\\"old_dirs\\\":{\\\"length\\\":" + dirs, "\\\"old_dirs\\\":{\\\"length\\\":" + std::to_string(opt.state().old_dirs.size() + 1),
       "is missing"},
      {"\\\"old_stps\\\":{\\\"length\\\":" + dirs, "\\\"old_stps\\\":{\\\"length\\\":0", "unexpected tensor"},
      {"\\\"al\\\":{\\\"length\\\":6", "\\\"al\\\":{\\\"length\\\":4294967297", "length"},
      {"\\\"al\\\":{\\\"length\\\":6", "\\\"al\\\":{\\\"length\\\":4294967296", "more elements than the file has"},
      {"\\\"al\\\":{\\\"length\\\":6,\\\"none\\\":[", "\\\"al\\\":{\\\"length\\\":6,\\\"none\\\":[5,", "increasing"},
      {"\\\"ro\\\":{\\\"length\\\":" + dirs + ",\\\"none\\\":[", "\\\"ro\\\":{\\\"length\\\":" + dirs + ",\\\"none\\\":[0",
       "cannot hold None"},
      {"\\\"func_evals\\\":", "\\\"func_evals\\\":-", "must be an integer in"},
      {"\\\"func_evals\\\":", "\\\"func_evals\\\":90071992547409930", "must be an integer in"},  // > 2^53
      {"\\\"n_iter\\\":", "\\\"n_iter\\\":922337203685477580", "must be an integer in"},
      {"\\\"max_iter\\\":3", "\\\"max_iter\\\":9223372036854775807", "max_iter"},  // * 5 / 4 overflowed
      {"\\\"state_values\\\"", "\\\"state_valuez\\\"", "no 'func_evals'"},
      {"\\\"version\\\":2", "\\\"version\\\":1", "need version 2"},
      {"\"state.0.old_dirs.1\":{\"dtype\":\"F64\",\"shape\":[4]", "\"state.0.old_dirs.1\":{\"dtype\":\"F64\",\"shape\":[2,2]",
       "must have shape [4]"},
      {"\"state.0.ro.0\":{\"dtype\":\"F64\"", "\"state.0.ro.0\":{\"dtype\":\"I64\"", "must be F64"},
      {"\"state.0.d\":{\"dtype\":\"F64\",\"shape\":[4]", "\"state.0.d\":{\"dtype\":\"F64\",\"shape\":[2,2]", ""},  // flat: loads
  };
  for (const auto& c : cases) {
    spit(bad, replaced(c.from, c.to));
    if (c.expect.empty()) {
      fastoptim::LBFGS<double> fresh({Span<double>(y)}, o);
      bool ok = true;
      try {
        fastoptim::load_checkpoint(bad, fresh);
      } catch (...) {
        ok = false;
      }
      CHECK_MSG(ok, c.to);
    } else {
      CHECK_MSG(throws(c.expect), c.to);
    }
  }
  // The intact file resumes bit-identically.
  y = x;
  fastoptim::load_checkpoint(good, other);
  CHECK(lbfgs_snapshot(other) == lbfgs_snapshot(opt));
  for (int k = 0; k < 3; ++k, target -= 0.5) {
    const double t = target;
    opt.step(closure_for(x));
    target = t;
    other.step(closure_for(y));
  }
  CHECK(bits_equal(x, y) && lbfgs_snapshot(other) == lbfgs_snapshot(opt));
  std::remove(good.c_str());
  std::remove(bad.c_str());
}

// The JSON reader's limits: numbers past double's range where NaN/Infinity are not allowed (C API options:
// 1e999 would be an infinite lr), and the count of values in one document (each costs ~100 bytes parsed).
void json_limits() {
  using fastoptim::ckpt::Bad;
  using fastoptim::ckpt::JsonParser;
  const auto parses = [](const std::string& text, bool allow_nan, std::size_t max_values) {
    try {
      JsonParser(text.data(), text.size(), allow_nan, "test", max_values).parse();
      return std::string();
    } catch (const Bad& e) {
      return std::string(e.what());
    }
  };
  CHECK(parses("{\"lr\":1e999}", false, 100).find("number out of range") != std::string::npos);
  CHECK(parses("{\"lr\":-1e999}", false, 100).find("number out of range") != std::string::npos);
  CHECK(parses("{\"lr\":1e308}", false, 100).empty());
  CHECK(parses("{\"lr\":1e999}", true, 100).empty());  // checkpoints: Python's json writes Infinity anyway
  CHECK(parses("[0,0,0]", false, 4).empty());
  CHECK(parses("[0,0,0,0]", false, 4).find("too many values") != std::string::npos);
}

int main() {
  json_limits();
  lbfgs_lists();
  round_trip<fastoptim::Adam<double>>("adam_f64", adam_options());
  round_trip<fastoptim::SGD<float>>("sgd_f32", sgd_options());
  {
    fastoptim::AdamWOptions o;
    o.lr = 0.02;
    o.amsgrad = true;
    round_trip<fastoptim::AdamW<float>>("adamw_f32", o);
    fastoptim::RMSpropOptions r;
    r.centered = true;
    r.momentum = 0.5;
    r.weight_decay = 0.01;
    round_trip<fastoptim::RMSprop<double>>("rmsprop_f64", r);
    fastoptim::AdagradOptions a;
    a.lr_decay = 0.01;
    a.initial_accumulator_value = 0.1;
    round_trip<fastoptim::Adagrad<float>>("adagrad_f32", a);
  }
  robustness();
  scheduler_round_trips();
  scheduler_mismatches();
  cyclic_ranges();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
