// StepLR and ReduceLROnPlateau over a fastoptim::SGD<double>, against torch's values; prints the cost of
// one scheduler step.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "fastoptim/fastoptim.hpp"
#include "golden_sched_basic.hpp"

namespace ls = fastoptim::lr_scheduler;

static int passed = 0, failed = 0;
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (cond) {                                                            \
      ++passed;                                                            \
    } else {                                                               \
      ++failed;                                                            \
      std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
    }                                                                      \
  } while (0)

static bool close(double a, double b) { return std::fabs(a - b) <= 1e-12 * std::fabs(b); }

struct Model {
  std::vector<double> a{0.0}, b{0.0};
  fastoptim::SGD<double> opt;
  Model() : opt(groups()) {}
  std::vector<fastoptim::ParamGroup<double, fastoptim::SGDOptions>> groups() {
    fastoptim::SGDOptions o1, o2;
    o1.lr = 0.1;
    o1.momentum = 0.9;
    o2.lr = 0.03;
    o2.momentum = 0.9;
    return {{{a}, o1, {}}, {{b}, o2, {}}};
  }
  void step() { opt.step({std::vector<double>{0.0}, std::vector<double>{0.0}}); }
};

int main() {
  {
    Model m;
    ls::OptimizerGroups<fastoptim::SGD<double>> g(m.opt);
    ls::StepLR s(g, 7, 0.3);
    CHECK(m.opt.param_groups()[0].initial_lr == 0.1);
    for (int t = 0; t <= golden_sched_basic::kStepSteps; ++t) {
      if (t > 0) {
        m.step();
        s.step();
      }
      for (int i = 0; i < 2; ++i) CHECK(close(m.opt.param_groups()[i].options.lr, golden_sched_basic::kStepLR[2 * t + i]));
      CHECK(close(s.closed_form_lr()->at(0), s.get_last_lr()[0]));
    }
    bool threw = false;
    try {
      ls::StepLR bad(g, 0);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHECK(threw);
  }
  {
    Model m;
    ls::OptimizerGroups<fastoptim::SGD<double>> g(m.opt);
    ls::ReduceLROnPlateau::Options o;
    o.factor = 0.5;
    o.patience = 2;
    o.cooldown = 1;
    o.threshold = 1e-3;
    o.min_lrs = {0.02, 0.001};
    ls::ReduceLROnPlateau s(g, o);
    int events = 0;
    s.on_event = [&](const ls::PlateauEvent&) { ++events; };
    for (int t = 0; t < golden_sched_basic::kPlateauSteps; ++t) {
      s.step(golden_sched_basic::kPlateauMetrics[t]);
      for (int i = 0; i < 2; ++i)
        CHECK(close(m.opt.param_groups()[i].options.lr, golden_sched_basic::kPlateauLR[2 * t + i]));
      CHECK(s.num_bad_epochs() == golden_sched_basic::kPlateauBad[t]);
      CHECK(s.cooldown_counter() == golden_sched_basic::kPlateauCooldown[t]);
      CHECK(s.last_event().has_value());
    }
    CHECK(events == golden_sched_basic::kPlateauSteps);
    // torch's deprecated step(metrics, epoch) sets last_epoch; the next plain step counts on from there.
    s.step(1.0, 7);
    CHECK(s.last_epoch() == 7 && s.last_event()->epoch == 7);
    s.step(1.0);
    CHECK(s.last_epoch() == 8);
  }
  {
    // The cost of one step, printed (measured, not asserted).
    Model m;
    ls::OptimizerGroups<fastoptim::SGD<double>> g(m.opt);
    ls::StepLR s(g, 7, 0.3);
    const int n = 200000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) s.step();
    const auto t1 = std::chrono::steady_clock::now();
    std::printf("StepLR step: %.1f ns\n", std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
