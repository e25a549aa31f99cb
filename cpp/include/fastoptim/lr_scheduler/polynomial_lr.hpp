#pragma once
// PolynomialLR: decay the learning rate as (1 - epoch / total_iters) ** power over total_iters epochs
// (torch.optim.lr_scheduler.PolynomialLR).

#include <algorithm>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class PolynomialLR : public LRScheduler {
 public:
  struct Params {
    std::int64_t total_iters = 5;
    double power = 1.0;
  };

  explicit PolynomialLR(GroupsAccess& groups, std::int64_t total_iters = 5, double power = 1.0,
                        std::int64_t last_epoch = -1)
      : PolynomialLR(groups, Params{total_iters, power}, last_epoch) {}
  PolynomialLR(GroupsAccess& groups, Params p, std::int64_t last_epoch = -1)
      : LRScheduler(groups, last_epoch), params(p) {
    initial_step();
  }

  Params params;  // editable between steps, e.g. when loading a state dict

  // torch: lr * ((1 - e / T) / (1 - (e - 1) / T)) ** power while e <= T.
  std::vector<double> get_lr() override {
    std::vector<double> lrs = current_lrs();
    const Params& p = params;
    if (is_initial_ || last_epoch_ > p.total_iters) return lrs;
    if (p.total_iters == 0) throw std::domain_error("division by zero");
    const double t = static_cast<double>(p.total_iters);
    const double den = 1.0 - static_cast<double>(last_epoch_ - 1) / t;
    if (den == 0.0) throw std::domain_error("float division by zero");
    const double decay = pow0((1.0 - static_cast<double>(last_epoch_) / t) / den, p.power);
    for (double& lr : lrs) lr = lr * decay;
    return lrs;
  }

  // torch: base_lr * (1 - min(T, e) / T) ** power.
  std::optional<std::vector<double>> closed_form_lr() const override {
    const Params& p = params;
    if (p.total_iters == 0) throw std::domain_error("division by zero");
    const double f = pow0(
        1.0 - static_cast<double>(std::min(p.total_iters, last_epoch_)) / static_cast<double>(p.total_iters), p.power);
    std::vector<double> lrs = base_lrs_;
    for (double& lr : lrs) lr = lr * f;
    return lrs;
  }

 private:
  // Python's float ** float: 0.0 to a negative power raises ZeroDivisionError (std::pow gives inf).
  static double pow0(double base, double power) {
    if (base == 0.0 && power < 0) throw std::domain_error("0.0 cannot be raised to a negative power");
    return std::pow(base, power);
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
