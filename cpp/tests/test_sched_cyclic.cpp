// C++ tests of CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR and OneCycleLR, dependency-free:
//  * golden: every case of golden_sched_cyclic.hpp (torch 2.13, make_golden_sched_cyclic.py) replayed over
//    fastoptim::SGD<double> / fastoptim::Adam<double> with two param groups through OptimizerGroups: lr and
//    momentum (SGD momentum, Adam beta1) after construction and after every step, to 1e-12 relative.
//  * errors: torch's validation messages as std::invalid_argument, with the groups left unchanged;
//    OneCycleLR throws past total_steps and changes nothing.
// Prints "N passed, M failed"; exits non-zero on failure.

#include <fastoptim/fastoptim.hpp>
#include <fastoptim/lr_scheduler/cosine_annealing_lr.hpp>
#include <fastoptim/lr_scheduler/cosine_annealing_warm_restarts.hpp>
#include <fastoptim/lr_scheduler/cyclic_lr.hpp>
#include <fastoptim/lr_scheduler/one_cycle_lr.hpp>
#include <fastoptim/lr_scheduler/reduce_lr_on_plateau.hpp>
#include <fastoptim/lr_scheduler/sequential_lr.hpp>
#include <fastoptim/lr_scheduler/step_lr.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "golden_sched_cyclic.hpp"

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL %s\n", what.c_str());
  }
}

bool close(double ours, double ref) {
  if (std::isnan(ref)) return std::isnan(ours);
  return std::fabs(ours - ref) <= 1e-12 * std::fabs(ref);
}

namespace ls = fastoptim::lr_scheduler;

// The builders of make_golden_sched_cyclic.py's CASES, by name.
std::unique_ptr<ls::LRScheduler> build(const std::string& name, ls::GroupsAccess& g) {
  if (name == "cos_sgd") return std::make_unique<ls::CosineAnnealingLR>(g, 30, 1e-4);
  if (name == "cos_adam") return std::make_unique<ls::CosineAnnealingLR>(g, 7);
  if (name == "cawr_sgd") return std::make_unique<ls::CosineAnnealingWarmRestarts>(g, 5, 2, 1e-5);
  if (name == "cawr_adam") return std::make_unique<ls::CosineAnnealingWarmRestarts>(g, 13);
  if (name.rfind("cyc_", 0) == 0) {
    ls::CyclicLR::Options o;
    if (name == "cyc_tri_sgd") {
      o.base_lr = {1e-3, 5e-4};
      o.max_lr = {1e-2};
      o.step_size_up = 10;
      o.step_size_down = 15;
    } else if (name == "cyc_tri2_adam") {
      o.base_lr = {1e-4};
      o.max_lr = {1e-3, 2e-3};
      o.step_size_up = 7;
      o.mode = "triangular2";
      o.base_momentum = {0.8};
      o.max_momentum = {0.95, 0.9};
    } else if (name == "cyc_exp_sgd") {
      o.base_lr = {1e-3};
      o.max_lr = {5e-2};
      o.step_size_up = 12;
      o.mode = "exp_range";
      o.gamma = 0.98;
    } else if (name == "cyc_nomom_adam") {
      o.base_lr = {1e-4};
      o.max_lr = {1e-3};
      o.step_size_up = 9;
      o.cycle_momentum = false;
    } else {
      return nullptr;
    }
    return std::make_unique<ls::CyclicLR>(g, o);
  }
  if (name.rfind("oc_", 0) == 0) {
    ls::OneCycleLR::Options o;
    if (name == "oc_cos_sgd") {
      o.max_lr = {0.1, 0.05};
      o.total_steps = golden_sched_cyclic::kSteps;
    } else if (name == "oc_lin3_adam") {
      o.max_lr = {0.01};
      o.epochs = 10;
      o.steps_per_epoch = 10;
      o.anneal_strategy = "linear";
      o.three_phase = true;
    } else if (name == "oc_nomom_sgd") {
      o.max_lr = {0.2};
      o.total_steps = 120;
      o.pct_start = 0.25;
      o.cycle_momentum = false;
      o.div_factor = 10.0;
      o.final_div_factor = 100.0;
    } else {
      return nullptr;
    }
    return std::make_unique<ls::OneCycleLR>(g, o);
  }
  return nullptr;
}

// Two param groups as in the generator: SGD (0.1, momentum 0.9), (0.05, 0.8); Adam 1e-3, (3e-4, beta1 0.85).
struct Params {
  std::vector<double> p0 = std::vector<double>(2, 0.0), p1 = std::vector<double>(3, 0.0);
  std::vector<double> g0 = std::vector<double>(2, 0.0), g1 = std::vector<double>(3, 0.0);
};

std::unique_ptr<fastoptim::SGD<double>> make_sgd(Params& p) {
  using G = fastoptim::SGD<double>::group_type;
  fastoptim::SGDOptions a, b;
  a.lr = 0.1;
  a.momentum = 0.9;
  b.lr = 0.05;
  b.momentum = 0.8;
  std::vector<G> groups;
  groups.push_back(G{{p.p0}, a, {}});
  groups.push_back(G{{p.p1}, b, {}});
  return std::make_unique<fastoptim::SGD<double>>(std::move(groups));
}

std::unique_ptr<fastoptim::Adam<double>> make_adam(Params& p) {
  using G = fastoptim::Adam<double>::group_type;
  fastoptim::AdamOptions a, b;
  a.lr = 1e-3;
  b.lr = 3e-4;
  b.beta1 = 0.85;
  b.beta2 = 0.99;
  std::vector<G> groups;
  groups.push_back(G{{p.p0}, a, {}});
  groups.push_back(G{{p.p1}, b, {}});
  return std::make_unique<fastoptim::Adam<double>>(std::move(groups));
}

template <class Opt>
void run_case(const golden_sched_cyclic::Case& c, Opt& opt, Params& p) {
  ls::OptimizerGroups<Opt> groups(opt);
  std::unique_ptr<ls::LRScheduler> sched;
  try {
    sched = build(c.name, groups);
  } catch (const std::exception& e) {
    check(false, std::string(c.name) + ": construction threw " + e.what());
    return;
  }
  if (!sched) {
    check(false, std::string(c.name) + ": no builder");
    return;
  }
  int bad = 0;
  for (int t = 0; t <= golden_sched_cyclic::kSteps && bad < 3; ++t) {
    if (t > 0) {
      opt.step({p.g0, p.g1});
      sched->step();
    }
    for (std::size_t i = 0; i < 2; ++i) {
      const double lr = groups.lr(i), mom = *groups.momentum(i);
      if (!close(lr, c.lr[t][i]) || !close(mom, c.momentum[t][i])) {
        ++bad;
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s step %d group %zu: lr %.17g (torch %.17g), momentum %.17g (torch %.17g)",
                      c.name, t, i, lr, c.lr[t][i], mom, c.momentum[t][i]);
        check(false, buf);
      }
    }
  }
  if (bad == 0) check(true, c.name);
  if (!close(sched->get_last_lr()[0], c.lr[golden_sched_cyclic::kSteps][0]))
    check(false, std::string(c.name) + ": get_last_lr");
}

void test_golden() {
  for (const auto& c : golden_sched_cyclic::kCases) {
    Params p;
    if (std::string(c.kind) == "sgd") {
      auto opt = make_sgd(p);
      run_case(c, *opt, p);
    } else {
      auto opt = make_adam(p);
      run_case(c, *opt, p);
    }
  }
}

template <class F>
void expect_throw(const std::string& what, const std::string& message, F&& f) {
  try {
    f();
    check(false, what + ": did not throw");
  } catch (const std::invalid_argument& e) {
    check(std::string(e.what()) == message, what + ": message '" + e.what() + "', expected '" + message + "'");
  } catch (const std::exception& e) {
    check(false, what + ": threw another exception: " + e.what());
  }
}

ls::GroupValues two_groups(bool with_momentum) {
  ls::GroupValues g(2);
  g.lrs = {0.1, 0.05};
  if (with_momentum) g.momenta = {0.9, 0.8};
  return g;
}

bool unchanged(const ls::GroupValues& g, bool with_momentum) {
  bool ok = g.lrs == std::vector<double>{0.1, 0.05} && !g.initial_lrs[0] && !g.initial_lrs[1];
  if (with_momentum) ok = ok && *g.momenta[0] == 0.9 && *g.momenta[1] == 0.8;
  return ok;
}

void test_errors() {
  {
    auto g = two_groups(true);
    expect_throw("T_0", "Expected positive integer T_0, but got 0", [&] { ls::CosineAnnealingWarmRestarts s(g, 0); });
    expect_throw("T_mult", "Expected integer T_mult >= 1, but got 0",
                 [&] { ls::CosineAnnealingWarmRestarts s(g, 3, 0); });
    check(unchanged(g, true), "CosineAnnealingWarmRestarts errors leave the groups unchanged");
  }
  {
    auto g = two_groups(true);
    ls::CosineAnnealingWarmRestarts s(g, 3);
    expect_throw("negative epoch", "Expected non-negative epoch, but got -1.5", [&] { s.step(-1.5); });
    s.step(7.5);  // T_mult 1: T_cur = 7.5 % 3 = 1.5
    check(s.params.T_cur == 1.5 && s.last_epoch() == 7, "CosineAnnealingWarmRestarts step(epoch)");
  }
  {
    auto g = two_groups(true);
    ls::CyclicLR::Options o;
    o.base_lr = {1e-3};
    o.max_lr = {1e-2};
    o.mode = "sawtooth";
    expect_throw("CyclicLR mode", "mode is invalid and scale_fn is None", [&] { ls::CyclicLR s(g, o); });
    o.mode = "triangular";
    o.max_lr = {1e-2, 1e-2, 1e-2};
    expect_throw("CyclicLR max_lr length",
                 "max_lr must have the same length as optimizer.param_groups. max_lr has 3 values, param_groups has 2.",
                 [&] { ls::CyclicLR s(g, o); });
    o.max_lr = {1e-2};
    o.base_momentum = {0.8, 0.7, 0.6};
    expect_throw("CyclicLR base_momentum length",
                 "base_momentum must have the same length as optimizer.param_groups. base_momentum has 3 values, "
                 "param_groups has 2.",
                 [&] { ls::CyclicLR s(g, o); });
    check(unchanged(g, true), "CyclicLR errors leave the groups unchanged");
    auto nomom = two_groups(false);
    o.base_momentum = {0.8};
    expect_throw("CyclicLR without momentum",
                 "optimizer must support momentum or beta1 with `cycle_momentum` option enabled",
                 [&] { ls::CyclicLR s(nomom, o); });
    check(unchanged(nomom, false), "CyclicLR without momentum leaves the groups unchanged");
    o.cycle_momentum = false;
    ls::CyclicLR s(nomom, o);  // fine without momentum when not cycling
    check(nomom.lrs[0] == 1e-3 && !nomom.momenta[0], "CyclicLR writes base_lr, no momentum");
  }
  {
    auto g = two_groups(true);
    ls::OneCycleLR::Options o;
    o.max_lr = {0.1};
    expect_throw("OneCycleLR no total", "You must define either total_steps OR (epochs AND steps_per_epoch)",
                 [&] { ls::OneCycleLR s(g, o); });
    o.epochs = 3;
    expect_throw("OneCycleLR epochs only", "You must define either total_steps OR (epochs AND steps_per_epoch)",
                 [&] { ls::OneCycleLR s(g, o); });
    o.steps_per_epoch = 0;
    expect_throw("OneCycleLR steps_per_epoch", "Expected positive integer steps_per_epoch, but got 0",
                 [&] { ls::OneCycleLR s(g, o); });
    o.total_steps = -4;
    expect_throw("OneCycleLR total_steps", "Expected positive integer total_steps, but got -4",
                 [&] { ls::OneCycleLR s(g, o); });
    o.total_steps = 10;
    o.pct_start = 1.5;
    expect_throw("OneCycleLR pct_start", "Expected float between 0 and 1 pct_start, but got 1.5",
                 [&] { ls::OneCycleLR s(g, o); });
    o.pct_start = 0.3;
    o.anneal_strategy = "cosine";
    expect_throw("OneCycleLR anneal_strategy",
                 "anneal_strategy must be one of 'cos' or 'linear', instead got cosine",
                 [&] { ls::OneCycleLR s(g, o); });
    check(unchanged(g, true), "OneCycleLR errors leave the groups unchanged");

    o.anneal_strategy = "cos";
    ls::OneCycleLR s(g, o);
    check(g.initial_lrs[0] && *g.initial_lrs[0] == 0.1 / 25.0 && *g.momenta[1] == 0.95,
          "OneCycleLR writes initial_lr and max_momentum");
    for (int t = 0; t < 10; ++t) s.step();
    const auto lrs = g.lrs;
    const auto moms = g.momenta;
    expect_throw("OneCycleLR past total_steps", "Tried to step 11 times. The specified number of total steps is 10",
                 [&] { s.step(); });
    check(g.lrs == lrs && g.momenta == moms, "OneCycleLR past total_steps leaves the groups unchanged");
  }
  {
    // A group the schedule has no values for (GroupsAccess grew after construction): MissingGroupValue naming
    // the first value torch reads for it, "initial_lr" in the first phase (torch: KeyError('initial_lr')).
    auto g = two_groups(true);
    ls::OneCycleLR::Options o;
    o.max_lr = {0.1};
    o.total_steps = 10;
    ls::OneCycleLR s(g, o);
    s.step();
    g.lrs.push_back(0.2);
    g.initial_lrs.emplace_back();
    g.momenta.push_back(0.5);
    g.betas.push_back(false);
    const auto lrs = g.lrs;
    const auto epoch = s.last_epoch();
    try {
      s.step();
      check(false, "OneCycleLR new group: did not throw");
    } catch (const ls::MissingGroupValue& e) {
      check(e.key() == "initial_lr" && std::string(e.what()) == "OneCycleLR: 'initial_lr' is not set for param group 2",
            std::string("OneCycleLR new group: ") + e.what());
    }
    // The groups keep their values; last_epoch has advanced, as torch's (the Python package restores it).
    check(g.lrs == lrs && *g.momenta[2] == 0.5 && s.last_epoch() == epoch + 1,
          "OneCycleLR new group: the groups are unchanged");
    g.initial_lrs[2] = 0.01;  // now max_lr, which the core keeps per group, is the first value missing
    try {
      s.step();
      check(false, "OneCycleLR new group with initial_lr: did not throw");
    } catch (const ls::MissingGroupValue& e) {
      check(e.key() == "max_lr", std::string("OneCycleLR new group with initial_lr: ") + e.what());
    }
  }
  {
    // torch's ZeroDivisionError (here std::domain_error with Python's message), at construction as torch:
    // step_size_up 0 divides by step_ratio 0 at epoch 0; OneCycleLR divides max_lr by div_factor and that
    // by final_div_factor.
    const auto domain = [](const std::string& what, const std::function<void()>& f) {
      try {
        f();
        check(false, what + ": did not throw");
      } catch (const std::domain_error& e) {
        check(std::string(e.what()) == "float division by zero", what + ": message '" + e.what() + "'");
      }
    };
    auto g = two_groups(true);
    ls::CyclicLR::Options c;
    c.base_lr = {0.01};
    c.max_lr = {0.1};
    c.step_size_up = 0;
    c.step_size_down = 3;
    domain("CyclicLR step_size_up 0", [&] { ls::CyclicLR s(g, c); });
    c.step_size_up = 2;
    c.step_size_down = 0;
    ls::CyclicLR ok(g, c);  // step_ratio 1: the falling branch is never reached
    ok.step();
    check(close(g.lrs[0], 0.055), "CyclicLR step_size_down 0 rises");
    ls::OneCycleLR::Options o;
    o.max_lr = {0.1};
    o.total_steps = 10;
    o.div_factor = 0.0;
    auto h = two_groups(true);
    domain("OneCycleLR div_factor 0", [&] { ls::OneCycleLR s(h, o); });
    o.div_factor = 25.0;
    o.final_div_factor = 0.0;
    domain("OneCycleLR final_div_factor 0", [&] { ls::OneCycleLR s(h, o); });
    check(unchanged(h, true), "OneCycleLR division errors leave the groups unchanged");
  }
  {
    // Closed form of CosineAnnealingLR agrees with the chainable form.
    auto g = two_groups(true);
    ls::CosineAnnealingLR s(g, 17, 1e-3);
    bool ok = true;
    for (int t = 0; t < 100; ++t) {
      s.step();
      const auto closed = *s.closed_form_lr();
      for (std::size_t i = 0; i < 2; ++i) ok = ok && std::fabs(closed[i] - g.lrs[i]) <= 1e-12 * 0.1;
    }
    check(ok, "CosineAnnealingLR closed form matches the chainable form");
  }
}


// Fuzzed inputs that overflowed int64 (or cast an out-of-range double to it): each is now an exception of
// type E whose message contains `part`, and leaves the scheduler as it was.
template <class E, class F>
void expect_error(const std::string& what, const std::string& part, F&& f) {
  try {
    f();
    check(false, what + ": did not throw");
  } catch (const E& e) {
    check(std::string(e.what()).find(part) != std::string::npos,
          what + ": message '" + e.what() + "' lacks '" + part + "'");
  } catch (const std::exception& e) {
    check(false, what + ": threw another exception: " + e.what());
  }
}

void test_overflow() {
  constexpr std::int64_t max64 = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t min64 = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t two53 = std::int64_t(1) << 53;
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  {
    // last_epoch INT64_MAX: the initial step's ++last_epoch overflowed; SequentialLR's last_epoch + 1.
    auto g = two_groups(false);
    g.initial_lrs = {0.1, 0.05};
    expect_error<std::invalid_argument>("StepLR last_epoch", "last_epoch must be at most 2^53",
                                        [&] { ls::StepLR s(g, 3, 0.1, max64); });
    ls::StepLR child(g, 3, 0.1, -1);
    expect_error<std::invalid_argument>("SequentialLR last_epoch", "last_epoch must be at most 2^53",
                                        [&] { ls::SequentialLR s(g, {&child}, {}, max64); });
    // step_epoch / load_base_state / set_last_epoch take any int64.
    const auto epoch = child.last_epoch(), count = child.step_count();
    expect_error<std::invalid_argument>("step_epoch", "epoch must be at most 2^53", [&] { child.step_epoch(max64); });
    expect_error<std::invalid_argument>("step_epoch min", "epoch must be at most 2^53", [&] { child.step_epoch(min64); });
    expect_error<std::invalid_argument>("set_last_epoch", "last_epoch must be at most 2^53",
                                        [&] { child.set_last_epoch(max64); });
    expect_error<std::invalid_argument>("load_base_state", "_step_count must be at most 2^53",
                                        [&] { child.load_base_state({0.1, 0.05}, 0, max64, {0.1, 0.05}); });
    check(child.last_epoch() == epoch && child.step_count() == count, "rejected epochs leave the scheduler unchanged");
    child.step_epoch(two53);  // the largest accepted epoch; one more step would pass it
    expect_error<std::domain_error>("step past 2^53", "2^53", [&] { child.step(); });
    check(child.last_epoch() == two53, "a step past 2^53 leaves last_epoch unchanged");

    ls::ReduceLROnPlateau::Options po;
    ls::ReduceLROnPlateau plateau(g, po);
    expect_error<std::invalid_argument>("ReduceLROnPlateau epoch", "epoch must be at most 2^53",
                                        [&] { plateau.step(1.0, max64); });
  }
  {
    // CosineAnnealingLR: 2 * T_max overflowed.
    auto g = two_groups(false);
    expect_error<std::invalid_argument>("T_max INT64_MAX", "T_max must be at most 2^53",
                                        [&] { ls::CosineAnnealingLR s(g, max64); });
    expect_error<std::invalid_argument>("T_max INT64_MIN", "T_max must be at most 2^53",
                                        [&] { ls::CosineAnnealingLR s(g, min64); });
    ls::CosineAnnealingLR s(g, two53);
    s.step();
    s.params.T_max = max64;  // editable: get_lr checks again
    expect_error<std::invalid_argument>("T_max edited", "T_max must be at most 2^53", [&] { s.step(); });
  }
  {
    // OneCycleLR: epochs * steps_per_epoch overflowed.
    auto g = two_groups(true);
    ls::OneCycleLR::Options o;
    o.max_lr = {0.1};
    o.epochs = std::int64_t(1) << 62;
    o.steps_per_epoch = 4;
    expect_error<std::invalid_argument>("OneCycleLR epochs", "epochs * steps_per_epoch must be at most 2^53",
                                        [&] { ls::OneCycleLR s(g, o); });
    o.epochs.reset();
    o.total_steps = max64;
    expect_error<std::invalid_argument>("OneCycleLR total_steps", "total_steps must be at most 2^53",
                                        [&] { ls::OneCycleLR s(g, o); });
    check(unchanged(g, true), "OneCycleLR range errors leave the groups unchanged");
  }
  {
    // CosineAnnealingWarmRestarts: floor(epoch) of NaN / inf / 1e300 cast to int64; T_mult ** n and
    // T_0 * (p - 1) overflowed.
    auto g = two_groups(false);
    ls::CosineAnnealingWarmRestarts s(g, 3);
    s.step(4.5);
    const auto p = s.params;
    const auto lrs = g.lrs;
    expect_error<std::invalid_argument>("epoch NaN", "cannot convert float NaN to integer", [&] { s.step(nan); });
    expect_error<std::invalid_argument>("epoch inf", "Expected a finite epoch below 2^53, but got inf",
                                        [&] { s.step(inf); });
    expect_error<std::invalid_argument>("epoch -inf", "Expected a finite epoch below 2^53", [&] { s.step(-inf); });
    expect_error<std::invalid_argument>("epoch 1e300", "Expected a finite epoch below 2^53, but got 1e+300",
                                        [&] { s.step(1e300); });
    check(s.params.T_cur == p.T_cur && s.params.T_i == p.T_i && s.last_epoch() == 4 && g.lrs == lrs,
          "rejected epochs leave CosineAnnealingWarmRestarts unchanged");

    ls::CosineAnnealingWarmRestarts doubling(g, 3, 2);
    expect_error<std::invalid_argument>("T_mult 2, epoch 1e30", "Expected a finite epoch below 2^53",
                                        [&] { doubling.step(1e30); });
    // Below 2^53 but T_0 * 2^n past 2^53 / T_mult: checked before the multiply.
    expect_error<std::domain_error>("T_mult 2, epoch 2^53 - 2", "would pass 2^53",
                                      [&] { doubling.step(static_cast<double>(two53 - 2)); });
    doubling.step(1e15);  // fine: T_i = 3 * 2^48
    check(doubling.params.T_i == 3 * (std::int64_t(1) << 48), "CosineAnnealingWarmRestarts large epoch");
    expect_error<std::invalid_argument>("T_0 = T_mult = INT64_MAX", "T_0 * T_mult must be at most 2^53",
                                        [&] { ls::CosineAnnealingWarmRestarts w(g, max64, max64); });
    expect_error<std::invalid_argument>("T_0 INT64_MAX", "T_0 * T_mult must be at most 2^53",
                                        [&] { ls::CosineAnnealingWarmRestarts w(g, max64); });
  }
  {
    // CyclicLR: floor(1 + last_epoch / total_size) for a tiny total_size was cast to int64.
    auto g = two_groups(true);
    ls::CyclicLR::Options o;
    o.base_lr = {1e-3};
    o.max_lr = {1e-2};
    o.step_size_up = -3;
    o.step_size_down = 1;
    expect_error<std::invalid_argument>("CyclicLR negative step size",
                                        "step_size_up and step_size_down must be >= 0, got -3.0 and 1.0",
                                        [&] { ls::CyclicLR s(g, o); });
    o.step_size_down = nan;
    expect_error<std::invalid_argument>("CyclicLR NaN step size", "must be >= 0, got -3.0 and nan",
                                        [&] { ls::CyclicLR s(g, o); });
    o.step_size_down = 1;
    o.step_size_up = inf;
    expect_error<std::invalid_argument>("CyclicLR infinite total", "must be finite and positive, got inf",
                                        [&] { ls::CyclicLR s(g, o); });
    check(unchanged(g, true), "CyclicLR range errors leave the groups unchanged");
    o.step_size_up = 1e-310;
    o.step_size_down = 1e-310;
    ls::CyclicLR s(g, o);  // epoch 0 is cycle 1
    const auto lrs = g.lrs;
    expect_error<std::domain_error>("CyclicLR tiny total_size", "is not finite or beyond 2^53", [&] { s.step(); });
    check(g.lrs == lrs, "a failed CyclicLR step leaves the groups unchanged");
    s.params.total_size = nan;
    expect_error<std::domain_error>("CyclicLR NaN total_size", "is not finite or beyond 2^53", [&] { s.step(); });
  }
}
}  // namespace

int main() {
  test_golden();
  test_errors();
  test_overflow();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
