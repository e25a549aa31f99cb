// Trains y = 2x - 1 with Adam and a StepLR through the installed (or added) fastoptim package.
#include <cmath>
#include <cstdio>
#include <vector>

#include <fastoptim/fastoptim.hpp>

// The package's compile flags reach its consumers: without -fno-math-errno, sqrt would not vectorize.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__NO_MATH_ERRNO__)
#error "fastoptim::fastoptim (or pkg-config --cflags fastoptim) did not add -fno-math-errno"
#endif

int main() {
  std::vector<double> w{0.0}, b{0.0};
  fastoptim::AdamOptions o;
  o.lr = 0.05;
  fastoptim::Adam<double> opt({w, b}, o);
  fastoptim::lr_scheduler::OptimizerGroups groups(opt);
  fastoptim::lr_scheduler::StepLR sched(groups, 200, 0.5);
  std::vector<double> gw{0.0}, gb{0.0};
  for (int epoch = 0; epoch < 600; ++epoch) {
    gw[0] = gb[0] = 0.0;
    for (int i = 0; i < 16; ++i) {
      const double x = -1.0 + i / 7.5, err = w[0] * x + b[0] - (2.0 * x - 1.0);
      gw[0] += err * x / 8.0;
      gb[0] += err / 8.0;
    }
    opt.step({gw, gb});
    sched.step();
  }
  std::printf("w=%.4f b=%.4f lr=%.4g (fastoptim %s)\n", w[0], b[0], sched.get_last_lr()[0], FASTOPTIM_VERSION_STRING);
  return std::fabs(w[0] - 2.0) < 1e-2 && std::fabs(b[0] + 1.0) < 1e-2 ? 0 : 1;
}
