// The cost of one scheduler step in C++, for every scheduler, over a fastoptim::SGD<double> with two
// param groups. Build: cmake -S . -B build/bench -DFASTOPTIM_BUILD_BENCH=ON && cmake --build build/bench
// --target bench_schedulers && build/bench/bench/bench_schedulers

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fastoptim/fastoptim.hpp"

namespace ls = fastoptim::lr_scheduler;
using Opt = fastoptim::SGD<double>;

struct Fixture {
  std::vector<double> a{0.0}, b{0.0};
  Opt opt{make()};
  ls::OptimizerGroups<Opt> groups{opt};
  std::vector<fastoptim::ParamGroup<double, fastoptim::SGDOptions>> make() {
    fastoptim::SGDOptions o1, o2;
    o1.lr = 0.1;
    o1.momentum = 0.9;
    o2.lr = 0.05;
    o2.momentum = 0.8;
    return {{{a}, o1, {}}, {{b}, o2, {}}};
  }
};

// Median over repeats of the mean step time of `n` steps, in ns.
double time_steps(const std::function<void()>& step, int n = 20000, int repeats = 7) {
  std::vector<double> t;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) step();
    const auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <class Make>
void row(const char* name, Make make) {
  Fixture f;
  auto s = make(f.groups);
  std::printf("| %s | %.1f |\n", name, time_steps([&] { s->step(); }));
}

int main() {
  std::printf("| scheduler (2 param groups) | ns per step |\n|---|---|\n");
  using std::make_unique;
  row("StepLR", [](auto& g) { return make_unique<ls::StepLR>(g, 30, 0.1); });
  row("MultiStepLR", [](auto& g) { return make_unique<ls::MultiStepLR>(g, std::vector<std::int64_t>{30, 80}, 0.1); });
  row("ConstantLR", [](auto& g) { return make_unique<ls::ConstantLR>(g, 0.5, 10); });
  row("LinearLR", [](auto& g) { return make_unique<ls::LinearLR>(g, 0.1, 1.0, 1000000); });
  row("ExponentialLR", [](auto& g) { return make_unique<ls::ExponentialLR>(g, 0.9999999); });
  row("PolynomialLR", [](auto& g) { return make_unique<ls::PolynomialLR>(g, 10000000, 2.0); });
  row("LambdaLR", [](auto& g) {
    return make_unique<ls::LambdaLR>(g, ls::LrLambda([](std::int64_t e) { return 1.0 / (1.0 + 1e-6 * e); }));
  });
  row("MultiplicativeLR", [](auto& g) {
    return make_unique<ls::MultiplicativeLR>(g, ls::LrLambda([](std::int64_t) { return 0.9999999; }));
  });
  row("CosineAnnealingLR", [](auto& g) { return make_unique<ls::CosineAnnealingLR>(g, 1000, 1e-5); });
  row("CosineAnnealingWarmRestarts", [](auto& g) { return make_unique<ls::CosineAnnealingWarmRestarts>(g, 100, 2, 1e-5); });
  row("CyclicLR", [](auto& g) {
    ls::CyclicLR::Options o;
    o.base_lr = {1e-3};
    o.max_lr = {0.1};
    o.step_size_up = 500;
    return make_unique<ls::CyclicLR>(g, o);
  });
  row("OneCycleLR", [](auto& g) {
    ls::OneCycleLR::Options o;
    o.max_lr = {0.1};
    o.total_steps = 100000000;
    return make_unique<ls::OneCycleLR>(g, o);
  });
  row("SWALR", [](auto& g) { return make_unique<ls::SWALR>(g, std::vector<double>{0.05}, 100); });
  {
    Fixture f;
    ls::ReduceLROnPlateau::Options o;
    o.patience = 5;
    ls::ReduceLROnPlateau s(f.groups, o);
    double m = 1.0;
    std::printf("| ReduceLROnPlateau | %.1f |\n", time_steps([&] { s.step(m *= 0.99999); }));
  }
  return 0;
}
