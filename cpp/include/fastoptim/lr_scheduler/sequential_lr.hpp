#pragma once
// SequentialLR (torch.optim.lr_scheduler.SequentialLR): run schedulers one after another, switching at
// milestone epochs. Construction resets every group's lr to its initial_lr, undoes the initial step of
// every child (recursively through composite children), then performs the initial step of the scheduler
// active at epoch 0. At a milestone the next scheduler restarts with update_lr(0) (its closed form at
// epoch 0 where it has one); otherwise the active scheduler steps.
//
// The children are not owned: they must outlive the SequentialLR and act on the same GroupsAccess object.
//
//   OptimizerGroups groups(opt);
//   LinearLR warmup(groups, ...);
//   CosineAnnealingLR cosine(groups, ...);
//   SequentialLR sched(groups, {&warmup, &cosine}, /*milestones=*/{5});

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "chained_scheduler.hpp"
#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class SequentialLR : public CompositeLRScheduler {
 public:
  SequentialLR(GroupsAccess& groups, std::vector<LRScheduler*> schedulers, std::vector<std::int64_t> milestones,
               std::int64_t last_epoch = -1)
      : CompositeLRScheduler(
            checked_groups(schedulers, &groups, "SequentialLR",
                           " expects at least one scheduler, but got no scheduler."),
            schedulers, "SequentialLR"),
        milestones_(std::move(milestones)) {
    if (milestones_.size() != schedulers_.size() - 1)
      throw std::invalid_argument(
          "Sequential Schedulers expects number of schedulers provided to be one more than the number of "
          "milestone points, but got number of schedulers " +
          std::to_string(schedulers_.size()) + " and the number of milestones to be equal to " +
          std::to_string(milestones_.size()));
    if (last_epoch < -1) throw std::invalid_argument("last_epoch must be >= -1, got " + std::to_string(last_epoch));
    check_epoch_range(last_epoch, "last_epoch");  // before last_epoch + 1
    last_epoch_ = last_epoch + 1;
    // Reset learning rates back to initial values.
    for (std::size_t i = 0; i < groups.size(); ++i) {
      const auto init = groups.initial_lr(i);
      if (!init) throw std::invalid_argument("param_groups[" + std::to_string(i) + "] has no initial_lr");
      groups.set_lr(i, *init);
    }
    // Undo the initial steps of the children, then redo it (torch's _initial_step, in _initial_mode) for
    // the one that runs at epoch 0.
    for (LRScheduler* s : schedulers_) recursive_undo(*s);
    const std::size_t idx = bisect_right(milestones_, 0);
    schedulers_[idx]->initial_step();
    last_lr_ = schedulers_[idx]->get_last_lr();
  }

  void step() override {
    check_can_advance();
    ++step_count_;
    ++last_epoch_;
    const std::size_t idx = bisect_right(milestones_, last_epoch_);
    LRScheduler& s = *schedulers_[idx];
    if (idx > 0 && milestones_[idx - 1] == last_epoch_) {
      s.update_lr(0);
    } else {
      s.step();
    }
    last_lr_ = s.get_last_lr();
  }

  const std::vector<std::int64_t>& milestones() const noexcept { return milestones_; }
  void set_milestones(std::vector<std::int64_t> m) {
    if (m.size() != schedulers_.size() - 1)
      throw std::invalid_argument("SequentialLR: expected " + std::to_string(schedulers_.size() - 1) +
                                  " milestones, got " + std::to_string(m.size()));
    milestones_ = std::move(m);
  }

  // Python's bisect.bisect_right (also on an unsorted list, as torch does not check the order).
  static std::size_t bisect_right(const std::vector<std::int64_t>& a, std::int64_t x) {
    std::size_t lo = 0, hi = a.size();
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (x < a[mid]) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

 private:
  std::vector<std::int64_t> milestones_;
};

}  // namespace lr_scheduler
}  // namespace fastoptim
