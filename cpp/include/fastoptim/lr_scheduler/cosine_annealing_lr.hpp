#pragma once
// CosineAnnealingLR: cosine annealing from each group's initial lr to eta_min over T_max epochs, without
// restarts (torch.optim.lr_scheduler.CosineAnnealingLR, chainable form and closed form).

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class CosineAnnealingLR : public LRScheduler {
 public:
  struct Params {
    std::int64_t T_max = 1;
    double eta_min = 0.0;
  };

  CosineAnnealingLR(GroupsAccess& groups, std::int64_t T_max, double eta_min = 0.0, std::int64_t last_epoch = -1)
      : CosineAnnealingLR(groups, Params{T_max, eta_min}, last_epoch) {}
  CosineAnnealingLR(GroupsAccess& groups, Params p, std::int64_t last_epoch = -1)
      : LRScheduler((check_epoch_range(p.T_max, "T_max"), groups), last_epoch), params(p) {
    initial_step();
  }

  Params params;  // editable between steps, e.g. when loading a state dict

  std::vector<double> get_lr() override {
    constexpr double pi = 3.14159265358979323846;
    std::vector<double> lrs = current_lrs();
    if (is_initial_) return lrs;
    const double le = static_cast<double>(last_epoch_);
    if (params.T_max == 0) throw std::domain_error("integer modulo by zero");  // Python 3.11+
    check_epoch_range(params.T_max, "T_max");  // params is editable: keep 2 * T_max in range
    const double T = static_cast<double>(params.T_max);
    if (step_count_ == 1 && last_epoch_ > 0) {
      check_group_count(base_lrs_.size());
      for (std::size_t i = 0; i < lrs.size(); ++i)
        lrs[i] = params.eta_min + (base_lrs_[i] - params.eta_min) * (1 + std::cos(le * pi / T)) / 2;
      return lrs;
    }
    if ((last_epoch_ - 1 - params.T_max) % (2 * params.T_max) == 0) {
      check_group_count(base_lrs_.size());
      for (std::size_t i = 0; i < lrs.size(); ++i)
        lrs[i] = lrs[i] + (base_lrs_[i] - params.eta_min) * (1 - std::cos(pi / T)) / 2;
      return lrs;
    }
    const double ratio = (1 + std::cos(pi * le / T)) / (1 + std::cos(pi * static_cast<double>(last_epoch_ - 1) / T));
    for (double& lr : lrs) lr = ratio * (lr - params.eta_min) + params.eta_min;
    return lrs;
  }

  std::optional<std::vector<double>> closed_form_lr() const override {
    constexpr double pi = 3.14159265358979323846;
    if (params.T_max == 0) throw std::domain_error("float division by zero");
    std::vector<double> lrs = base_lrs_;
    const double c = 1 + std::cos(pi * static_cast<double>(last_epoch_) / static_cast<double>(params.T_max));
    for (double& lr : lrs) lr = params.eta_min + (lr - params.eta_min) * c / 2;
    return lrs;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
