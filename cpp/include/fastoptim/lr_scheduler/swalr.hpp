#pragma once
// SWALR (torch.optim.swa_utils.SWALR): anneal each group's learning rate to its swa_lr over
// anneal_epochs steps, by cosine ("cos") or linear interpolation, then hold it there. As torch, each step
// recovers the start of the annealing from the current lr and the previous interpolation weight, so the
// schedule follows edits of the learning rate (and counts steps by step_count, not last_epoch).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class SWALR : public LRScheduler {
 public:
  enum class AnnealStrategy { cos, linear };
  struct Params {
    std::vector<double> swa_lrs;  // one per group (torch's group["swa_lr"])
    std::int64_t anneal_epochs = 10;
    AnnealStrategy anneal_strategy = AnnealStrategy::cos;
  };

  // swa_lr: one value for every group, or one per group.
  SWALR(GroupsAccess& groups, const std::vector<double>& swa_lr, std::int64_t anneal_epochs = 10,
        AnnealStrategy anneal_strategy = AnnealStrategy::cos, std::int64_t last_epoch = -1)
      : LRScheduler((check(groups, swa_lr, anneal_epochs), groups), last_epoch),
        params{per_group(swa_lr, groups.size(), "swa_lr"), anneal_epochs, anneal_strategy} {
    initial_step();
  }

  static AnnealStrategy parse_strategy(const std::string& s) {
    if (s == "cos") return AnnealStrategy::cos;
    if (s == "linear") return AnnealStrategy::linear;
    throw std::invalid_argument("anneal_strategy must be one of 'cos' or 'linear', instead got " + s);
  }
  static const char* strategy_name(AnnealStrategy s) { return s == AnnealStrategy::cos ? "cos" : "linear"; }

  Params params;  // editable between steps

  std::vector<double> get_lr() override {
    if (params.swa_lrs.size() != groups_->size()) throw std::logic_error("SWALR: swa_lrs has a wrong length");
    std::int64_t step = step_count_ - 1;
    if (params.anneal_epochs == 0) step = std::max<std::int64_t>(1, step);
    const double denom = static_cast<double>(std::max<std::int64_t>(1, params.anneal_epochs));
    const double prev_t = clamp01(static_cast<double>(step - 1) / denom);
    const double prev_alpha = anneal(prev_t);
    const double t = clamp01(static_cast<double>(step) / denom);
    const double alpha = anneal(t);
    std::vector<double> out(groups_->size());
    for (std::size_t i = 0; i < out.size(); ++i) {
      const double swa = params.swa_lrs[i];
      const double lr = groups_->lr(i);
      const double prev = prev_alpha == 1.0 ? swa : (lr - prev_alpha * swa) / (1.0 - prev_alpha);
      out[i] = swa * alpha + prev * (1.0 - alpha);
    }
    return out;
  }

 private:
  static void check(const GroupsAccess& groups, const std::vector<double>& swa_lr, std::int64_t anneal_epochs) {
    per_group(swa_lr, groups.size(), "swa_lr");
    if (anneal_epochs < 0)
      throw std::invalid_argument("anneal_epochs must be equal or greater than 0, got " + std::to_string(anneal_epochs));
  }
  static double clamp01(double x) { return std::max(0.0, std::min(1.0, x)); }
  double anneal(double t) const {
    if (params.anneal_strategy == AnnealStrategy::linear) return t;
    return (1.0 - std::cos(3.141592653589793 * t)) / 2.0;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
