#pragma once
// ConstantLR: scale the learning rate by factor until total_iters epochs have passed
// (torch.optim.lr_scheduler.ConstantLR).

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class ConstantLR : public LRScheduler {
 public:
  struct Params {
    double factor = 1.0 / 3;
    std::int64_t total_iters = 5;
  };

  explicit ConstantLR(GroupsAccess& groups, double factor = 1.0 / 3, std::int64_t total_iters = 5,
                      std::int64_t last_epoch = -1)
      : ConstantLR(groups, Params{factor, total_iters}, last_epoch) {}
  ConstantLR(GroupsAccess& groups, Params p, std::int64_t last_epoch = -1)
      : LRScheduler((check(p), groups), last_epoch), params(p) {
    initial_step();
  }

  static void check(const Params& p) {
    if (p.factor > 1.0 || p.factor < 0)
      throw std::invalid_argument("Constant multiplicative factor expected to be between 0 and 1.");
  }

  Params params;  // editable between steps, e.g. when loading a state dict

  std::vector<double> get_lr() override {
    std::vector<double> lrs = current_lrs();
    if (last_epoch_ == 0) {
      for (double& lr : lrs) lr = lr * params.factor;
      return lrs;
    }
    if (last_epoch_ != params.total_iters) return lrs;
    // Python raises ZeroDivisionError for 1.0 / 0.0.
    if (params.factor == 0.0) throw std::domain_error("float division by zero");
    const double inv = 1.0 / params.factor;
    for (double& lr : lrs) lr = lr * inv;
    return lrs;
  }

  // torch: base_lr * (factor + (last_epoch >= total_iters) * (1 - factor)).
  std::optional<std::vector<double>> closed_form_lr() const override {
    const double done = last_epoch_ >= params.total_iters ? (1.0 - params.factor) : 0.0 * (1.0 - params.factor);
    const double f = params.factor + done;
    std::vector<double> lrs = base_lrs_;
    for (double& lr : lrs) lr = lr * f;
    return lrs;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
