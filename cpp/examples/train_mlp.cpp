// Trains a 2-16-1 MLP (hand-written backward pass) to tell points inside a circle from points outside,
// with fastoptim::Adam<float> stepping per batch and ReduceLROnPlateau stepping per epoch on the validation
// loss, and prints the epoch table. cpp/examples/train_mlp.c does the same through the C API.
//
//   ./train_mlp        exits with status 1 if the validation accuracy stays below 85%

#include <fastoptim/fastoptim.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

constexpr int kHidden = 16, kTrain = 1024, kVal = 256, kBatch = 32, kEpochs = 30;

// A small deterministic generator, so every platform sees the same data.
struct Rng {
  std::uint64_t state;
  double uniform() {  // [0, 1)
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0);
  }
};

// Points uniform in [-1, 1]^2, labelled 1 inside the circle x^2 + y^2 < 0.45; 5% of the labels flipped, so
// the validation loss has a floor and plateaus.
void make_data(Rng& rng, int n, std::vector<float>& x, std::vector<float>& y) {
  x.resize(2 * n);
  y.resize(n);
  for (int i = 0; i < n; ++i) {
    x[2 * i] = static_cast<float>(2 * rng.uniform() - 1);
    x[2 * i + 1] = static_cast<float>(2 * rng.uniform() - 1);
    const bool inside = x[2 * i] * x[2 * i] + x[2 * i + 1] * x[2 * i + 1] < 0.45f;
    y[i] = (rng.uniform() < 0.05) != inside ? 1.0f : 0.0f;
  }
}

struct Mlp {
  std::vector<float> w1 = std::vector<float>(2 * kHidden), b1 = std::vector<float>(kHidden),
                     w2 = std::vector<float>(kHidden), b2 = std::vector<float>(1);
  // Gradients, same layout.
  std::vector<float> gw1 = w1, gb1 = b1, gw2 = w2, gb2 = b2;

  // The logit of one point; h receives the hidden activations.
  float forward(const float* x, float* h) const {
    float logit = b2[0];
    for (int j = 0; j < kHidden; ++j) {
      h[j] = std::tanh(x[0] * w1[j] + x[1] * w1[kHidden + j] + b1[j]);
      logit += h[j] * w2[j];
    }
    return logit;
  }
};

// Binary cross-entropy with logits, stable for any logit.
float bce(float logit, float y) { return std::fmax(logit, 0.0f) - logit * y + std::log1p(std::exp(-std::fabs(logit))); }

// Mean loss and accuracy over a data set.
void evaluate(const Mlp& m, const std::vector<float>& x, const std::vector<float>& y, double& loss, double& acc) {
  float h[kHidden];
  loss = acc = 0;
  const int n = static_cast<int>(y.size());
  for (int i = 0; i < n; ++i) {
    const float logit = m.forward(&x[2 * i], h);
    loss += bce(logit, y[i]);
    acc += (logit > 0) == (y[i] > 0.5f);
  }
  loss /= n;
  acc /= n;
}

std::string describe(const fastoptim::lr_scheduler::PlateauEvent& e) {
  using Kind = fastoptim::lr_scheduler::PlateauEvent::Kind;
  char buf[96];
  switch (e.kind) {
    case Kind::improved: std::snprintf(buf, sizeof buf, "improved (best %.4f)", e.best); break;
    case Kind::no_improvement:
      std::snprintf(buf, sizeof buf, "no improvement (%lld of patience %lld)", static_cast<long long>(e.num_bad_epochs),
                    static_cast<long long>(e.patience));
      break;
    case Kind::reduced: std::snprintf(buf, sizeof buf, "LR reduced %.3g -> %.3g", e.old_lrs[0], e.new_lrs[0]); break;
    case Kind::cooldown:
      std::snprintf(buf, sizeof buf, "cooldown (%lld left)", static_cast<long long>(e.cooldown_counter));
      break;
    case Kind::at_min_lr: std::snprintf(buf, sizeof buf, "at min_lr"); break;
  }
  return buf;
}

}  // namespace

int main() {
  Rng rng{2024};
  std::vector<float> x_train, y_train, x_val, y_val;
  make_data(rng, kTrain, x_train, y_train);
  make_data(rng, kVal, x_val, y_val);
  Mlp m;
  for (float& w : m.w1) w = static_cast<float>(2 * rng.uniform() - 1);
  for (float& w : m.w2) w = static_cast<float>((2 * rng.uniform() - 1) / std::sqrt(double(kHidden)));

  // Two param groups: weights with a little weight decay, biases without. The optimizer holds views of
  // our vectors and updates them in place.
  fastoptim::AdamOptions weights;
  weights.lr = 0.02;
  weights.weight_decay = 1e-4;
  fastoptim::AdamOptions biases = weights;
  biases.weight_decay = 0.0;
  using Adam = fastoptim::Adam<float>;
  Adam opt({Adam::group_type{{m.w1, m.w2}, weights, {}}, Adam::group_type{{m.b1, m.b2}, biases, {}}});

  fastoptim::lr_scheduler::OptimizerGroups<Adam> groups(opt);
  fastoptim::lr_scheduler::ReduceLROnPlateau::Options po;
  po.patience = 2;
  po.factor = 0.5;
  po.threshold = 0.01;
  fastoptim::lr_scheduler::ReduceLROnPlateau plateau(groups, po);

  std::printf("Adam per batch + ReduceLROnPlateau(patience=2, factor=0.5) per epoch; MLP 2-%d-1, %d train / "
              "%d val, batch %d\n",
              kHidden, kTrain, kVal, kBatch);
  std::printf("%5s %8s %8s %8s %10s  %s\n", "epoch", "train", "val", "val acc", "lr", "scheduler");
  std::vector<int> order(kTrain);
  for (int i = 0; i < kTrain; ++i) order[i] = i;
  double val_loss = 0, val_acc = 0;
  for (int epoch = 1; epoch <= kEpochs; ++epoch) {
    for (int i = kTrain - 1; i > 0; --i) std::swap(order[i], order[static_cast<int>(rng.uniform() * (i + 1))]);
    double train_loss = 0;
    for (int start = 0; start < kTrain; start += kBatch) {
      for (auto* g : {&m.gw1, &m.gb1, &m.gw2, &m.gb2}) std::fill(g->begin(), g->end(), 0.0f);
      for (int b = start; b < start + kBatch; ++b) {
        const float* xi = &x_train[2 * order[b]];
        const float yi = y_train[order[b]];
        float h[kHidden];
        const float logit = m.forward(xi, h);
        train_loss += bce(logit, yi);
        // d loss / d logit = sigmoid(logit) - y, averaged over the batch.
        const float dlogit = (1.0f / (1.0f + std::exp(-logit)) - yi) / kBatch;
        m.gb2[0] += dlogit;
        for (int j = 0; j < kHidden; ++j) {
          m.gw2[j] += dlogit * h[j];
          const float dz = dlogit * m.w2[j] * (1.0f - h[j] * h[j]);
          m.gw1[j] += dz * xi[0];
          m.gw1[kHidden + j] += dz * xi[1];
          m.gb1[j] += dz;
        }
      }
      opt.step({m.gw1, m.gw2, m.gb1, m.gb2});  // one gradient per parameter, in group order
    }
    evaluate(m, x_val, y_val, val_loss, val_acc);
    plateau.step(val_loss);
    std::printf("%5d %8.4f %8.4f %7.1f%% %10.3g  %s\n", epoch, train_loss / kTrain, val_loss, 100 * val_acc,
                opt.param_groups()[0].options.lr, describe(*plateau.last_event()).c_str());
  }
  const bool ok = val_acc >= 0.85;
  std::printf("%s: validation accuracy %.1f%%\n", ok ? "converged" : "FAILED to converge", 100 * val_acc);
  return ok ? 0 : 1;
}
