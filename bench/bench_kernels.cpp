// The C++ step as a header-only consumer gets it, compiled with whatever flags this file is built with:
// median ns per parameter of one optimizer step (float32, one tensor) for the elementwise optimizers, at a
// cache-resident and a larger size, with 1 and 2 threads. It prints the flags that decide the speed of
// header-only code: the instruction set the compiler may use (-march), FMA (without it each fused
// multiply-add is a libm call) and -fno-math-errno (without it sqrt stays a scalar call; fastoptim::fastoptim
// adds it, see CMakeLists.txt).
//
//   cmake -S . -B build/bench -DFASTOPTIM_BUILD_BENCH=ON && cmake --build build/bench --target bench_kernels
//   build/bench/bench/bench_kernels [n ...]
// or by hand, to compare flags: c++ -O3 -std=c++17 -fopenmp -Icpp/include [-march=...] [-fno-math-errno]
//   bench/bench_kernels.cpp

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fastoptim/fastoptim.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

template <class Opt, class Options>
double ns_per_param(std::size_t n, const Options& options, int steps) {
  std::vector<float> w(n), g(n);
  for (std::size_t i = 0; i < n; ++i) {
    w[i] = 0.5f + static_cast<float>(i % 7);
    g[i] = 0.25f - static_cast<float>(i % 5) * 0.125f;
  }
  Opt opt({fastoptim::Span<float>(w)}, options);
  std::vector<fastoptim::Span<const float>> grads{fastoptim::Span<const float>(g)};
  for (int i = 0; i < 3; ++i) opt.step(grads);  // state allocated, caches warm
  std::vector<double> ns;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.step(grads);
    ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(ns.begin(), ns.begin() + ns.size() / 2, ns.end());
  return ns[ns.size() / 2] / static_cast<double>(n);
}

struct Row {
  const char* name;
  double (*run)(std::size_t, int);
};

template <class Opt, class Options>
Row row(const char* name) {
  return {name, [](std::size_t n, int steps) { return ns_per_param<Opt, Options>(n, Options{}, steps); }};
}

fastoptim::SGDOptions sgd_momentum() {
  fastoptim::SGDOptions o;
  o.lr = 0.01;
  o.momentum = 0.9;
  return o;
}

const char* yes(bool b) { return b ? "yes" : "no"; }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(static_cast<std::size_t>(std::atof(argv[i])));
  if (sizes.empty()) sizes = {100000, 1000000};

  bool avx512 = false, avx2 = false, fma = false, no_errno = false;
#if defined(__AVX512F__)
  avx512 = true;
#endif
#if defined(__AVX2__)
  avx2 = true;
#endif
#if defined(__FMA__) || defined(__aarch64__)
  fma = true;
#endif
#if defined(__NO_MATH_ERRNO__) || defined(_MSC_VER)
  no_errno = true;
#endif
  std::printf("compiled for: AVX-512 %s, AVX2 %s, FMA %s, -fno-math-errno %s\n", yes(avx512), yes(avx2), yes(fma),
              yes(no_errno));

  const Row rows[] = {
      {"SGD momentum",
       [](std::size_t n, int steps) {
         return ns_per_param<fastoptim::SGD<float>, fastoptim::SGDOptions>(n, sgd_momentum(), steps);
       }},
      row<fastoptim::Adam<float>, fastoptim::AdamOptions>("Adam"),
      row<fastoptim::AdamW<float>, fastoptim::AdamWOptions>("AdamW"),
      row<fastoptim::RMSprop<float>, fastoptim::RMSpropOptions>("RMSprop"),
      row<fastoptim::Adagrad<float>, fastoptim::AdagradOptions>("Adagrad"),
      row<fastoptim::NAdam<float>, fastoptim::NAdamOptions>("NAdam"),
      row<fastoptim::Lion<float>, fastoptim::LionOptions>("Lion"),
  };
  std::vector<int> threads{1};
#if defined(_OPENMP)
  if (omp_get_max_threads() > 1) threads.push_back(2);
#endif
  std::printf("%-14s", "ns/param");
  for (const int t : threads)
    for (const std::size_t n : sizes) std::printf("  %9.0e/%dt", static_cast<double>(n), t);
  std::printf("\n");
  for (const Row& r : rows) {
    std::printf("%-14s", r.name);
    for (const int t : threads) {
#if defined(_OPENMP)
      omp_set_num_threads(t);
#endif
      for (const std::size_t n : sizes) {
        const int steps = static_cast<int>(std::clamp<std::size_t>(200000000 / (n + 1), 20, 2000));
        std::printf("  %12.3f", r.run(n, steps));
      }
    }
    std::printf("\n");
  }
}
