#pragma once
// StepLR: multiply the learning rate by gamma every step_size epochs (torch.optim.lr_scheduler.StepLR).

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class StepLR : public LRScheduler {
 public:
  struct Params {
    std::int64_t step_size = 1;
    double gamma = 0.1;
  };

  StepLR(GroupsAccess& groups, std::int64_t step_size, double gamma = 0.1, std::int64_t last_epoch = -1)
      : StepLR(groups, Params{step_size, gamma}, last_epoch) {}
  StepLR(GroupsAccess& groups, Params p, std::int64_t last_epoch = -1)
      : LRScheduler((check(p), groups), last_epoch), params(p) {
    initial_step();
  }

  static void check(const Params& p) {
    if (p.step_size <= 0)
      throw std::invalid_argument("step_size must be a positive integer, got " + std::to_string(p.step_size));
  }

  Params params;  // editable between steps, e.g. when loading a state dict

  std::vector<double> get_lr() override {
    std::vector<double> lrs = current_lrs();
    if (last_epoch_ == 0 || last_epoch_ % params.step_size != 0) return lrs;
    for (double& lr : lrs) lr = lr * params.gamma;
    return lrs;
  }

  std::optional<std::vector<double>> closed_form_lr() const override {
    std::vector<double> lrs = base_lrs_;
    const auto k = floor_div(last_epoch_, params.step_size);
    for (double& lr : lrs) lr = lr * std::pow(params.gamma, static_cast<double>(k));
    return lrs;
  }

 private:
  static std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    const std::int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
