// MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, LambdaLR and MultiplicativeLR driven
// through OptimizerGroups over an SGD<double> with two param groups, against torch 2.13
// (golden_sched_simple.hpp, from make_golden_sched_simple.py: keep the arguments below in sync with its
// CASES), plus closed forms, argument validation and resuming. Prints "N passed, M failed".

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastoptim/fastoptim.hpp"
#include "fastoptim/lr_scheduler/constant_lr.hpp"
#include "fastoptim/lr_scheduler/exponential_lr.hpp"
#include "fastoptim/lr_scheduler/lambda_lr.hpp"
#include "fastoptim/lr_scheduler/linear_lr.hpp"
#include "fastoptim/lr_scheduler/multistep_lr.hpp"
#include "fastoptim/lr_scheduler/polynomial_lr.hpp"
#include "golden_sched_simple.hpp"

namespace ls = fastoptim::lr_scheduler;
namespace gs = golden_sched_simple;

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

bool close(double a, double b, double rtol) {
  if (a == b) return true;
  return std::fabs(a - b) <= rtol * std::fabs(b);
}

template <class F>
void check_throws(F&& f, const std::string& message, const std::string& what) {
  try {
    f();
    check(false, what + ": no exception");
  } catch (const std::invalid_argument& e) {
    check(std::string(e.what()) == message, what + ": message '" + e.what() + "'");
  }
}

struct Fixture {
  std::vector<double> w0 = std::vector<double>(2), w1 = std::vector<double>(3);
  std::unique_ptr<fastoptim::SGD<double>> opt;
  std::unique_ptr<ls::OptimizerGroups<fastoptim::SGD<double>>> groups;

  Fixture() {
    fastoptim::SGDOptions o0, o1;
    o0.lr = 0.1;
    o0.momentum = 0.9;
    o1.lr = 0.05;
    o1.momentum = 0.8;
    std::vector<fastoptim::ParamGroup<double, fastoptim::SGDOptions>> gs_;
    gs_.push_back({{fastoptim::Span<double>(w0.data(), w0.size())}, o0, {}});
    gs_.push_back({{fastoptim::Span<double>(w1.data(), w1.size())}, o1, {}});
    opt = std::make_unique<fastoptim::SGD<double>>(std::move(gs_));
    groups = std::make_unique<ls::OptimizerGroups<fastoptim::SGD<double>>>(*opt);
  }
  double lr(std::size_t i) const { return opt->param_groups().at(i).options.lr; }
};

using Factory = std::function<std::unique_ptr<ls::LRScheduler>(ls::GroupsAccess&)>;

void golden_case(int c, const Factory& make) {
  const std::string name = gs::kNames[c];
  Fixture f;
  auto sched = make(*f.groups);
  int bad = 0, bad_closed = 0;
  for (int t = 0; t <= gs::kSteps; ++t) {
    if (t > 0) sched->step();
    for (std::size_t g = 0; g < 2; ++g) {
      if (!close(f.lr(g), gs::kLrs[c][t][g], 1e-12) || !close(sched->get_last_lr()[g], gs::kLrs[c][t][g], 1e-12)) {
        if (bad++ == 0)
          std::printf("  %s step %d group %zu: ours %a torch %a\n", name.c_str(), t, g, f.lr(g), gs::kLrs[c][t][g]);
      }
    }
    // Nothing else edits the lrs here, so torch's closed form agrees with the chainable form.
    if (const auto closed = sched->closed_form_lr())
      for (std::size_t g = 0; g < 2; ++g)
        if (!close((*closed)[g], gs::kLrs[c][t][g], 1e-11)) ++bad_closed;
  }
  check(bad == 0, name + " matches torch (" + std::to_string(bad) + " mismatches)");
  check(bad_closed == 0, name + " closed form (" + std::to_string(bad_closed) + " mismatches)");
  check(f.opt->param_groups()[0].initial_lr == 0.1 && f.opt->param_groups()[1].initial_lr == 0.05,
        name + " records initial_lr");
  check(sched->last_epoch() == gs::kSteps, name + " last_epoch");
}

void test_golden() {
  golden_case(0, [](ls::GroupsAccess& g) {
    return std::make_unique<ls::MultiStepLR>(g, std::vector<std::int64_t>{3, 10, 10, 25, 7}, 0.5);
  });
  golden_case(1, [](ls::GroupsAccess& g) { return std::make_unique<ls::ConstantLR>(g, 0.3, 12); });
  golden_case(2, [](ls::GroupsAccess& g) { return std::make_unique<ls::LinearLR>(g, 0.2, 0.9, 30); });
  golden_case(3, [](ls::GroupsAccess& g) { return std::make_unique<ls::ExponentialLR>(g, 0.93); });
  golden_case(4, [](ls::GroupsAccess& g) { return std::make_unique<ls::PolynomialLR>(g, 40, 1.7); });
  golden_case(5, [](ls::GroupsAccess& g) {
    std::vector<ls::LrLambda> fns{[](std::int64_t e) { return std::pow(0.95, static_cast<double>(e)); },
                                  [](std::int64_t e) { return 1.0 / (1.0 + 0.1 * static_cast<double>(e)); }};
    return std::make_unique<ls::LambdaLR>(g, std::move(fns));
  });
  golden_case(6, [](ls::GroupsAccess& g) {
    return std::make_unique<ls::MultiplicativeLR>(g, ls::LrLambda([](std::int64_t e) { return e % 3 == 0 ? 0.9 : 1.0; }));
  });
}

void test_validation() {
  {
    Fixture f;
    check_throws([&] { ls::ConstantLR s(*f.groups, 1.5); }, "Constant multiplicative factor expected to be between 0 and 1.",
                 "ConstantLR factor > 1");
    check_throws([&] { ls::ConstantLR s(*f.groups, -0.5); },
                 "Constant multiplicative factor expected to be between 0 and 1.", "ConstantLR factor < 0");
    check_throws([&] { ls::LinearLR s(*f.groups, 0.0); },
                 "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.",
                 "LinearLR start_factor 0");
    check_throws([&] { ls::LinearLR s(*f.groups, 0.5, 1.5); },
                 "Ending multiplicative factor expected to be between 0 and 1.", "LinearLR end_factor > 1");
    check_throws([&] { ls::LambdaLR s(*f.groups, std::vector<ls::LrLambda>{[](std::int64_t) { return 1.0; }}); },
                 "Expected 2 lr_lambdas, but got 1", "LambdaLR list length");
    check_throws(
        [&] {
          ls::MultiplicativeLR s(*f.groups, std::vector<ls::LrLambda>(3, [](std::int64_t) { return 1.0; }));
        },
        "Expected 2 lr_lambdas, but got 3", "MultiplicativeLR list length");
    // Nothing was written to the groups by the failed constructions.
    check(!f.opt->param_groups()[0].initial_lr && !f.opt->param_groups()[1].initial_lr && f.lr(0) == 0.1,
          "failed constructions leave the groups unchanged");
  }
  {
    Fixture f;
    check_throws([&] { ls::ExponentialLR s(*f.groups, 0.5, 3); },
                 "param 'initial_lr' is not specified in param_groups[0] when resuming scheduler with last_epoch >= 0.",
                 "resuming needs initial_lr");
  }
}

void test_resume_and_params() {
  // A resumed ExponentialLR does not step ahead of itself (torch's _is_initial); MultiStepLR does apply a
  // milestone that the initial step lands on.
  {
    Fixture f;
    for (auto& g : f.opt->param_groups()) {
      g.initial_lr = g.options.lr;
      g.options.lr *= 0.25;
    }
    ls::ExponentialLR s(*f.groups, 0.5, 3);
    check(f.lr(0) == 0.025 && f.lr(1) == 0.0125 && s.last_epoch() == 4, "resumed ExponentialLR keeps lrs");
    s.step();
    check(f.lr(0) == 0.0125, "resumed ExponentialLR steps");
  }
  {
    Fixture f;
    for (auto& g : f.opt->param_groups()) g.initial_lr = g.options.lr;
    ls::MultiStepLR s(*f.groups, std::vector<std::int64_t>{4, 4}, 0.5, 3);
    check(f.lr(0) == 0.1 * 0.25, "resumed MultiStepLR applies the milestone (twice)");
  }
  {
    // Params are editable between steps.
    Fixture f;
    ls::ExponentialLR s(*f.groups, 0.5);
    s.params.gamma = 0.25;
    s.step();
    check(f.lr(0) == 0.025, "edited ExponentialLR gamma");
  }
}

// torch's deprecated step(epoch): a step (step_count + 1) to last_epoch = epoch, by the closed form where
// the scheduler has one, else by get_lr().
void test_step_epoch() {
  {
    Fixture f;
    ls::MultiStepLR s(*f.groups, std::vector<std::int64_t>{2, 4}, 0.5);
    s.step_epoch(5);
    check(s.last_epoch() == 5 && s.step_count() == 2 && f.lr(0) == 0.025 && f.lr(1) == 0.0125,
          "MultiStepLR step_epoch(5): closed form");
    s.step_epoch(1);
    check(f.lr(0) == 0.1 && s.get_last_lr()[0] == 0.1, "MultiStepLR step_epoch back to 1");
  }
  {
    Fixture f;
    ls::ExponentialLR s(*f.groups, 0.5);
    s.step_epoch(3);
    check(f.lr(0) == 0.1 * 0.125 && s.step_count() == 2, "ExponentialLR step_epoch(3)");
  }
  {
    Fixture f;
    ls::LambdaLR s(*f.groups, [](std::int64_t e) { return 1.0 / static_cast<double>(e + 1); });
    s.step_epoch(4);
    check(close(f.lr(0), 0.02, 1e-15) && s.last_epoch() == 4, "LambdaLR step_epoch(4): get_lr");
  }
}

// Where torch's arithmetic raises ZeroDivisionError the cores throw std::domain_error with Python's message.
void test_zero_division() {
  const auto domain = [](const std::function<void()>& f, const std::string& message, const std::string& what) {
    try {
      f();
      check(false, what + ": no exception");
    } catch (const std::domain_error& e) {
      check(std::string(e.what()) == message, what + ": message '" + e.what() + "'");
    }
  };
  {
    // (0 / 0.25) ** -1 at epoch 4; the closed form at or past total_iters too.
    Fixture f;
    ls::PolynomialLR s(*f.groups, 4, -1.0);
    for (int i = 0; i < 3; ++i) s.step();
    check(close(f.lr(0), 0.4, 1e-12), "PolynomialLR power -1 before the end");
    domain([&] { s.step(); }, "0.0 cannot be raised to a negative power", "PolynomialLR power -1 at total_iters");
    domain([&] { s.update_lr(6); }, "0.0 cannot be raised to a negative power", "PolynomialLR closed form");
  }
  {
    Fixture f;
    ls::ConstantLR s(*f.groups, 0.0, 2);
    s.step();
    domain([&] { s.step(); }, "float division by zero", "ConstantLR factor 0 at total_iters");
  }
}

}  // namespace

int main() {
  try {
    test_golden();
    test_validation();
    test_resume_and_params();
    test_step_epoch();
    test_zero_division();
  } catch (const std::exception& e) {
    std::printf("FAIL: unexpected exception: %s\n", e.what());
    ++g_failed;
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
