// C++ tests of SequentialLR, ChainedScheduler and SWALR over OptimizerGroups<SGD<double>>: the learning
// rates of two param groups after construction and after each of 1000 steps, against torch 2.13
// (golden_sched_compose.hpp, from make_golden_sched_compose.py; relative 1e-12), plus validation errors,
// nesting and a printed (not asserted) timing of one scheduler step. Prints "N passed, M failed".

#include <fastoptim/fastoptim.hpp>
#include <fastoptim/lr_scheduler/chained_scheduler.hpp>
#include <fastoptim/lr_scheduler/cosine_annealing_lr.hpp>
#include <fastoptim/lr_scheduler/exponential_lr.hpp>
#include <fastoptim/lr_scheduler/lambda_lr.hpp>
#include <fastoptim/lr_scheduler/polynomial_lr.hpp>
#include <fastoptim/lr_scheduler/sequential_lr.hpp>
#include <fastoptim/lr_scheduler/swalr.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "golden_sched_compose.hpp"

namespace {

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

// CHECK_THROWS_WITH(Exception, "message start", statements...)
#define CHECK_THROWS_WITH(Exception, prefix, ...)                                                 \
  do {                                                                                            \
    std::string got_ = "nothing";                                                                 \
    try {                                                                                         \
      __VA_ARGS__;                                                                                \
    } catch (const Exception& e) {                                                                \
      got_ = std::string(e.what()).rfind(prefix, 0) == 0 ? std::string() : std::string(e.what()); \
    } catch (const std::exception& e) {                                                           \
      got_ = std::string("other exception: ") + e.what();                                         \
    }                                                                                             \
    report(got_.empty(), #Exception " " prefix, __FILE__, __LINE__, got_);                        \
  } while (0)

namespace ls = fastoptim::lr_scheduler;
using Opt = fastoptim::SGD<double>;

// The problem of make_golden_sched_compose.py: two groups, (lr 0.1, momentum 0.9) and (0.05, 0.8).
struct Problem {
  std::vector<double> w0 = std::vector<double>(2, 0.0), w1 = std::vector<double>(3, 0.0);
  std::vector<double> g0 = std::vector<double>(2, 0.0), g1 = std::vector<double>(3, 0.0);
  std::unique_ptr<Opt> opt;
  std::unique_ptr<ls::OptimizerGroups<Opt>> groups;
  std::vector<std::unique_ptr<ls::LRScheduler>> owned;  // children, then the scheduler under test

  Problem() {
    fastoptim::SGDOptions a, b;
    a.lr = 0.1;
    a.momentum = 0.9;
    b.lr = 0.05;
    b.momentum = 0.8;
    std::vector<Opt::group_type> gs;
    gs.push_back(Opt::group_type{{fastoptim::Span<double>(w0)}, a});
    gs.push_back(Opt::group_type{{fastoptim::Span<double>(w1)}, b});
    opt = std::make_unique<Opt>(std::move(gs));
    groups = std::make_unique<ls::OptimizerGroups<Opt>>(*opt);
  }
  template <class S, class... Args>
  S* make(Args&&... args) {
    owned.push_back(std::make_unique<S>(std::forward<Args>(args)...));
    return static_cast<S*>(owned.back().get());
  }
  void train_step() { opt->step({fastoptim::Span<const double>(g0), fastoptim::Span<const double>(g1)}); }
  double lr(std::size_t i) const { return opt->param_groups()[i].options.lr; }
};

using Build = std::function<ls::LRScheduler*(Problem&)>;

struct Case {
  const char* name;
  const double* golden;
  Build build;
};

std::vector<Case> cases() {
  namespace gs = golden_sched_compose;
  using Cos = ls::SWALR::AnnealStrategy;
  return {
      {"seq_step_step", gs::seq_step_step,
       [](Problem& p) -> ls::LRScheduler* {
         auto* a = p.make<ls::StepLR>(*p.groups, 7, 0.8);
         auto* b = p.make<ls::StepLR>(*p.groups, 50, 0.5);
         return p.make<ls::SequentialLR>(*p.groups, std::vector<ls::LRScheduler*>{a, b},
                                         std::vector<std::int64_t>{300});
       }},
      {"seq_step_swalr", gs::seq_step_swalr,
       [](Problem& p) -> ls::LRScheduler* {
         auto* a = p.make<ls::StepLR>(*p.groups, 30, 0.5);
         auto* b = p.make<ls::SWALR>(*p.groups, std::vector<double>{0.005}, 25);
         return p.make<ls::SequentialLR>(*p.groups, std::vector<ls::LRScheduler*>{a, b},
                                         std::vector<std::int64_t>{600});
       }},
      {"seq_step_x3", gs::seq_step_x3,
       [](Problem& p) -> ls::LRScheduler* {
         auto* a = p.make<ls::StepLR>(*p.groups, 5, 0.9);
         auto* b = p.make<ls::StepLR>(*p.groups, 20, 0.5);
         auto* c = p.make<ls::StepLR>(*p.groups, 100, 0.3);
         return p.make<ls::SequentialLR>(*p.groups, std::vector<ls::LRScheduler*>{a, b, c},
                                         std::vector<std::int64_t>{100, 450});
       }},
      {"seq_milestone0", gs::seq_milestone0,
       [](Problem& p) -> ls::LRScheduler* {
         auto* a = p.make<ls::StepLR>(*p.groups, 3, 0.9);
         auto* b = p.make<ls::StepLR>(*p.groups, 40, 0.7);
         return p.make<ls::SequentialLR>(*p.groups, std::vector<ls::LRScheduler*>{a, b},
                                         std::vector<std::int64_t>{0});
       }},
      {"chain_step_step", gs::chain_step_step,
       [](Problem& p) -> ls::LRScheduler* {
         auto* a = p.make<ls::StepLR>(*p.groups, 9, 0.9);
         auto* b = p.make<ls::StepLR>(*p.groups, 25, 0.8);
         return p.make<ls::ChainedScheduler>(std::vector<ls::LRScheduler*>{a, b});
       }},
      {"chain_step_swalr", gs::chain_step_swalr,
       [](Problem& p) -> ls::LRScheduler* {
         auto* a = p.make<ls::StepLR>(*p.groups, 50, 0.9);
         auto* b = p.make<ls::SWALR>(*p.groups, std::vector<double>{0.02, 0.001}, 100);
         return p.make<ls::ChainedScheduler>(std::vector<ls::LRScheduler*>{a, b}, p.groups.get());
       }},
      {"swalr_cos", gs::swalr_cos,
       [](Problem& p) -> ls::LRScheduler* {
         return p.make<ls::SWALR>(*p.groups, std::vector<double>{0.005}, 10, Cos::cos);
       }},
      {"swalr_linear", gs::swalr_linear,
       [](Problem& p) -> ls::LRScheduler* {
         return p.make<ls::SWALR>(*p.groups, std::vector<double>{0.02, 0.001}, 250, Cos::linear);
       }},
      {"swalr_zero", gs::swalr_zero,
       [](Problem& p) -> ls::LRScheduler* {
         return p.make<ls::SWALR>(*p.groups, std::vector<double>{0.001}, 0);
       }},
  };
}

bool close(double a, double b) { return a == b || std::fabs(a - b) <= 1e-12 * std::fabs(b); }

void test_golden() {
  for (const Case& c : cases()) {
    Problem p;
    ls::LRScheduler* s = c.build(p);
    std::string first_bad;
    for (int t = 0; t <= golden_sched_compose::kSteps && first_bad.empty(); ++t) {
      if (t > 0) {
        p.train_step();
        s->step();
      }
      for (std::size_t g = 0; g < 2; ++g) {
        const double want = c.golden[t * golden_sched_compose::kGroups + static_cast<int>(g)];
        if (!close(p.lr(g), want)) {
          char buf[200];
          std::snprintf(buf, sizeof buf, "%s step %d group %zu: ours %.17g torch %.17g", c.name, t, g, p.lr(g), want);
          first_bad = buf;
          break;
        }
      }
    }
    CHECK_MSG(first_bad.empty(), first_bad);
    const auto& last = s->get_last_lr();
    CHECK_MSG(last.size() == 2 && last[0] == p.lr(0) && last[1] == p.lr(1), c.name);
  }
}

void test_errors() {
  Problem p;
  auto* a = p.make<ls::StepLR>(*p.groups, 2, 0.5);
  auto* b = p.make<ls::StepLR>(*p.groups, 3, 0.5);
  CHECK_THROWS_WITH(std::invalid_argument, "SequentialLR expects at least one scheduler, but got no scheduler.",
                    ls::SequentialLR(*p.groups, {}, {}));
  CHECK_THROWS_WITH(std::invalid_argument, "Sequential Schedulers expects number of schedulers provided to be one",
                    ls::SequentialLR(*p.groups, {a, b}, {1, 2}));
  CHECK_THROWS_WITH(std::invalid_argument, "ChainedScheduler expects at least one scheduler to be chained",
                    ls::ChainedScheduler(std::vector<ls::LRScheduler*>{}));
  CHECK_THROWS_WITH(std::invalid_argument, "ChainedScheduler at index 1 is a null scheduler.",
                    ls::ChainedScheduler({a, nullptr}));
  Problem other;
  auto* c = other.make<ls::StepLR>(*other.groups, 2, 0.5);
  CHECK_THROWS_WITH(std::invalid_argument, "SequentialLR expects all schedulers to belong to the same optimizer",
                    ls::SequentialLR(*p.groups, {a, c}, {4}));
  CHECK_THROWS_WITH(std::invalid_argument, "ChainedScheduler expects all schedulers to belong to the same optimizer",
                    ls::ChainedScheduler({a, c}));
  CHECK_THROWS_WITH(std::invalid_argument, "anneal_strategy must be one of 'cos' or 'linear', instead got exp",
                    ls::SWALR::parse_strategy("exp"));
  CHECK_THROWS_WITH(std::invalid_argument, "anneal_epochs must be equal or greater than 0, got -1",
                    ls::SWALR(*p.groups, {0.1}, -1));
  CHECK_THROWS_WITH(std::invalid_argument, "swa_lr must have the same length as optimizer.param_groups",
                    ls::SWALR(*p.groups, {0.1, 0.2, 0.3}));
  // A composite has no get_lr of its own (torch: NotImplementedError), so update_lr on it fails.
  ls::ChainedScheduler chain({a, b});
  CHECK_THROWS_WITH(std::logic_error, "ChainedScheduler has no get_lr()", chain.update_lr(0));
  // ReduceLROnPlateau is not an LRScheduler: it cannot be a child at all (a compile-time rejection).
  static_assert(!std::is_convertible<ls::ReduceLROnPlateau*, ls::LRScheduler*>::value,
                "ReduceLROnPlateau must not be accepted as a child scheduler");
}

void test_nesting() {
  // ChainedScheduler inside SequentialLR: recursive_undo reaches the chained children, and the initial
  // step steps both of them (as torch).
  Problem p;
  auto* a = p.make<ls::StepLR>(*p.groups, 2, 0.5);
  auto* b = p.make<ls::StepLR>(*p.groups, 3, 0.1);
  auto* chain = p.make<ls::ChainedScheduler>(std::vector<ls::LRScheduler*>{a, b});
  auto* c = p.make<ls::StepLR>(*p.groups, 1, 0.9);
  ls::SequentialLR seq(*p.groups, {chain, c}, {4});
  CHECK(a->last_epoch() == 0 && b->last_epoch() == 0 && c->last_epoch() == -1);
  CHECK(close(p.lr(0), 0.1));
  std::vector<double> got;
  for (int t = 0; t < 6; ++t) {
    p.train_step();
    seq.step();
    got.push_back(p.lr(0));
  }
  // epochs 1..3 in the chain: StepLR(2) halves at 2, StepLR(3) cuts at 3; epoch 4: c restarts at 0.1.
  const std::vector<double> want{0.1, 0.05, 0.005, 0.1, 0.09, 0.081};
  bool ok = got.size() == want.size();
  for (std::size_t i = 0; ok && i < want.size(); ++i) ok = close(got[i], want[i]);
  CHECK(ok);
}

// The child that runs at epoch 0 redoes its initial step in torch's _initial_mode: the chainable forms that
// keep the current lrs then (ExponentialLR, MultiplicativeLR, PolynomialLR, CosineAnnealingLR) start at the
// initial lr, not one step ahead. Values from torch 2.13 (lrs 0.1 and 0.05).
void test_initial_mode() {
  constexpr double pi = 3.14159265358979323846;
  const std::vector<std::pair<const char*, std::function<ls::LRScheduler*(Problem&)>>> firsts{
      {"ExponentialLR", [](Problem& p) -> ls::LRScheduler* { return p.make<ls::ExponentialLR>(*p.groups, 0.5); }},
      {"MultiplicativeLR",
       [](Problem& p) -> ls::LRScheduler* {
         return p.make<ls::MultiplicativeLR>(*p.groups, [](std::int64_t) { return 0.5; });
       }},
      {"PolynomialLR", [](Problem& p) -> ls::LRScheduler* { return p.make<ls::PolynomialLR>(*p.groups, 4, 1.0); }},
      {"CosineAnnealingLR",
       [](Problem& p) -> ls::LRScheduler* { return p.make<ls::CosineAnnealingLR>(*p.groups, 10); }},
  };
  const std::vector<double> second{0.05, 0.05, 0.075, 0.1 * (1 + std::cos(pi / 10)) / 2};
  for (std::size_t k = 0; k < firsts.size(); ++k) {
    Problem p;
    ls::LRScheduler* a = firsts[k].second(p);
    auto* b = p.make<ls::StepLR>(*p.groups, 100, 0.1);
    ls::SequentialLR seq(*p.groups, {a, b}, {5});
    const std::string name = firsts[k].first;
    CHECK_MSG(p.lr(0) == 0.1 && p.lr(1) == 0.05, name + " at construction");
    CHECK_MSG(seq.get_last_lr() == std::vector<double>({0.1, 0.05}), name + " get_last_lr");
    CHECK_MSG(a->last_epoch() == 0 && a->step_count() == 1 && b->last_epoch() == -1, name + " counters");
    p.train_step();
    seq.step();
    CHECK_MSG(close(p.lr(0), second[k]) && close(p.lr(1), second[k] / 2), name + " after one step");
  }
  {
    // milestones {0}: the second scheduler does the initial step (and keeps the lrs); the first never runs.
    Problem p;
    auto* a = p.make<ls::StepLR>(*p.groups, 3, 0.9);
    auto* b = p.make<ls::ExponentialLR>(*p.groups, 0.5);
    ls::SequentialLR seq(*p.groups, {a, b}, {0});
    CHECK(p.lr(0) == 0.1 && p.lr(1) == 0.05 && b->last_epoch() == 0 && a->last_epoch() == -1);
    p.train_step();
    seq.step();
    CHECK(p.lr(0) == 0.05 && p.lr(1) == 0.025);
  }
  {
    // A ChainedScheduler at epoch 0: torch's _initial_mode is the chain's own, so its children step as usual.
    Problem p;
    auto* e = p.make<ls::ExponentialLR>(*p.groups, 0.5);
    auto* chain = p.make<ls::ChainedScheduler>(std::vector<ls::LRScheduler*>{e});
    auto* b = p.make<ls::StepLR>(*p.groups, 100, 0.1);
    ls::SequentialLR seq(*p.groups, {chain, b}, {5});
    CHECK(p.lr(0) == 0.05 && p.lr(1) == 0.025);
  }
  {
    // initial_step() is public (torch's _initial_step): step count 1, lrs kept, the flag cleared after.
    Problem p;
    ls::ExponentialLR e(*p.groups, 0.5);
    p.train_step();
    e.step();
    e.initial_step();
    CHECK(e.step_count() == 1 && e.last_epoch() == 2 && close(p.lr(0), 0.05));
    e.step();
    CHECK(close(p.lr(0), 0.025));
  }
}

void time_steps() {
  Problem p;
  auto* a = p.make<ls::StepLR>(*p.groups, 7, 0.99);
  auto* b = p.make<ls::SWALR>(*p.groups, std::vector<double>{0.005}, 1000000);
  ls::SequentialLR seq(*p.groups, {a, b}, {5});
  ls::SWALR* sw = b;
  const int n = 200000;
  for (int k = 0; k < 2; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) (k == 0 ? static_cast<ls::LRScheduler&>(seq) : *sw).step();
    const auto t1 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / n;
    std::printf("timing: one %s step (2 groups): %.1f ns\n", k == 0 ? "SequentialLR(StepLR, SWALR)" : "SWALR", ns);
  }
}

}  // namespace

int main() {
  test_golden();
  test_errors();
  test_nesting();
  test_initial_mode();
  time_steps();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
