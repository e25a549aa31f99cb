#pragma once
// LinearLR: scale the learning rate by a factor going linearly from start_factor to end_factor over
// total_iters epochs (torch.optim.lr_scheduler.LinearLR).

#include <algorithm>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class LinearLR : public LRScheduler {
 public:
  struct Params {
    double start_factor = 1.0 / 3;
    double end_factor = 1.0;
    std::int64_t total_iters = 5;
  };

  explicit LinearLR(GroupsAccess& groups, double start_factor = 1.0 / 3, double end_factor = 1.0,
                    std::int64_t total_iters = 5, std::int64_t last_epoch = -1)
      : LinearLR(groups, Params{start_factor, end_factor, total_iters}, last_epoch) {}
  LinearLR(GroupsAccess& groups, Params p, std::int64_t last_epoch = -1)
      : LRScheduler((check(p), groups), last_epoch), params(p) {
    initial_step();
  }

  static void check(const Params& p) {
    if (p.start_factor > 1.0 || p.start_factor <= 0)
      throw std::invalid_argument(
          "Starting multiplicative factor expected to be greater than 0 and less or equal to 1.");
    if (p.end_factor > 1.0 || p.end_factor < 0)
      throw std::invalid_argument("Ending multiplicative factor expected to be between 0 and 1.");
  }

  Params params;  // editable between steps, e.g. when loading a state dict

  std::vector<double> get_lr() override {
    std::vector<double> lrs = current_lrs();
    const Params& p = params;
    if (last_epoch_ == 0) {
      for (double& lr : lrs) lr = lr * p.start_factor;
      return lrs;
    }
    if (is_initial_ || last_epoch_ > p.total_iters) return lrs;
    const double denom = static_cast<double>(p.total_iters) * p.start_factor +
                         static_cast<double>(last_epoch_ - 1) * (p.end_factor - p.start_factor);
    if (denom == 0.0) throw std::domain_error("float division by zero");
    const double f = 1.0 + (p.end_factor - p.start_factor) / denom;
    for (double& lr : lrs) lr = lr * f;
    return lrs;
  }

  // torch: base_lr * (start + (end - start) * min(total_iters, last_epoch) / total_iters).
  std::optional<std::vector<double>> closed_form_lr() const override {
    const Params& p = params;
    if (p.total_iters == 0) throw std::domain_error("float division by zero");  // a float over total_iters
    const double f = p.start_factor + (p.end_factor - p.start_factor) *
                                          static_cast<double>(std::min(p.total_iters, last_epoch_)) /
                                          static_cast<double>(p.total_iters);
    std::vector<double> lrs = base_lrs_;
    for (double& lr : lrs) lr = lr * f;
    return lrs;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
