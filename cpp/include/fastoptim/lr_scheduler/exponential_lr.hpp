#pragma once
// ExponentialLR: multiply the learning rate by gamma every epoch (torch.optim.lr_scheduler.ExponentialLR).

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class ExponentialLR : public LRScheduler {
 public:
  struct Params {
    double gamma = 0.1;
  };

  ExponentialLR(GroupsAccess& groups, double gamma, std::int64_t last_epoch = -1)
      : ExponentialLR(groups, Params{gamma}, last_epoch) {}
  ExponentialLR(GroupsAccess& groups, Params p, std::int64_t last_epoch = -1)
      : LRScheduler(groups, last_epoch), params(p) {
    initial_step();
  }

  Params params;  // editable between steps, e.g. when loading a state dict

  std::vector<double> get_lr() override {
    std::vector<double> lrs = current_lrs();
    if (is_initial_) return lrs;  // a resumed scheduler does not step ahead of itself
    for (double& lr : lrs) lr = lr * params.gamma;
    return lrs;
  }

  // torch: base_lr * gamma ** last_epoch.
  std::optional<std::vector<double>> closed_form_lr() const override {
    const double f = std::pow(params.gamma, static_cast<double>(last_epoch_));
    std::vector<double> lrs = base_lrs_;
    for (double& lr : lrs) lr = lr * f;
    return lrs;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
