// Fits y = 3x + 1 from noisy samples with fastoptim::Adam<float>: no Python, no autograd, just the
// optimizer over two caller-owned parameters and hand-written gradients of the mean squared error.
//
//   ./train_linear        exits with status 1 if the fit is poor

#include <fastoptim/fastoptim.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  // Data: x uniform in [-1, 1], y = 3x + 1 + noise with standard deviation 0.1.
  const int n = 256;
  std::mt19937 gen(42);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::normal_distribution<float> noise(0.0f, 0.1f);
  std::vector<float> xs(n), ys(n);
  for (int i = 0; i < n; ++i) {
    xs[i] = uniform(gen);
    ys[i] = 3.0f * xs[i] + 1.0f + noise(gen);
  }

  // Parameters live in our own memory; the optimizer holds views of them and owns only its state.
  std::vector<float> w{0.0f}, b{0.0f};
  std::vector<float> grad_w(1), grad_b(1);
  fastoptim::AdamOptions options;
  options.lr = 0.05;
  fastoptim::Adam<float> opt({w, b}, options);

  float loss = 0.0f;
  for (int epoch = 1; epoch <= 500; ++epoch) {
    // Full-batch loss = mean (w x + b - y)^2 and its gradients.
    double l = 0.0, gw = 0.0, gb = 0.0;
    for (int i = 0; i < n; ++i) {
      const double r = double(w[0]) * xs[i] + b[0] - ys[i];
      l += r * r;
      gw += 2.0 * r * xs[i];
      gb += 2.0 * r;
    }
    loss = static_cast<float>(l / n);
    grad_w[0] = static_cast<float>(gw / n);
    grad_b[0] = static_cast<float>(gb / n);

    opt.step({grad_w, grad_b});  // updates w and b in place

    if (epoch == 1 || epoch % 50 == 0)
      std::printf("epoch %3d  loss %.5f  w %.4f  b %.4f\n", epoch, loss, w[0], b[0]);
  }

  // The noise variance (0.01) is the best achievable loss.
  const bool ok = loss < 0.02f && std::abs(w[0] - 3.0f) < 0.05f && std::abs(b[0] - 1.0f) < 0.05f;
  std::printf("%s: loss %.5f, y = %.4f x + %.4f\n", ok ? "converged" : "FAILED to converge", loss, w[0], b[0]);
  return ok ? 0 : 1;
}
