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

int main() {
  std::printf("| scheduler | ns per step |\n|---|---|\n");
  {
    Fixture f;
    ls::StepLR s(f.groups, 30, 0.1);
    std::printf("| StepLR | %.1f |\n", time_steps([&] { s.step(); }));
  }
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
