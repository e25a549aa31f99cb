#pragma once
// MultiStepLR: multiply the learning rate by gamma at each milestone epoch (torch.optim.lr_scheduler.MultiStepLR).
// A milestone listed k times multiplies by gamma ** k there (torch keeps the milestones in a Counter).

#include <algorithm>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class MultiStepLR : public LRScheduler {
 public:
  struct Params {
    std::vector<std::int64_t> milestones;  // any order, duplicates count
    double gamma = 0.1;
  };

  MultiStepLR(GroupsAccess& groups, std::vector<std::int64_t> milestones, double gamma = 0.1,
              std::int64_t last_epoch = -1)
      : MultiStepLR(groups, Params{std::move(milestones), gamma}, last_epoch) {}
  MultiStepLR(GroupsAccess& groups, Params p, std::int64_t last_epoch = -1)
      : LRScheduler(groups, last_epoch), params(std::move(p)) {
    initial_step();
  }

  Params params;  // editable between steps, e.g. when loading a state dict

  // torch: lr * gamma ** milestones[last_epoch] at a milestone, else lr.
  std::vector<double> get_lr() override {
    std::vector<double> lrs = current_lrs();
    const auto count = std::count(params.milestones.begin(), params.milestones.end(), last_epoch_);
    if (count == 0) return lrs;
    const double factor = std::pow(params.gamma, static_cast<double>(count));
    for (double& lr : lrs) lr = lr * factor;
    return lrs;
  }

  // torch: base_lr * gamma ** bisect_right(sorted(milestones), last_epoch).
  std::optional<std::vector<double>> closed_form_lr() const override {
    std::int64_t passed = 0;
    for (auto m : params.milestones)
      if (m <= last_epoch_) ++passed;
    const double factor = std::pow(params.gamma, static_cast<double>(passed));
    std::vector<double> lrs = base_lrs_;
    for (double& lr : lrs) lr = lr * factor;
    return lrs;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
