#pragma once
// ChainedScheduler (torch.optim.lr_scheduler.ChainedScheduler): every step, step each of a list of
// schedulers in turn, so their multiplicative effects compose. Also the base of composite schedulers
// (CompositeLRScheduler), which SequentialLR shares.
//
// The children are not owned: they must outlive the composite, and they must all act on the same
// GroupsAccess object (torch: "belong to the same optimizer"). ReduceLROnPlateau is not an LRScheduler,
// so it cannot be a child (torch rejects it with a ValueError).
//
//   OptimizerGroups groups(opt);
//   StepLR a(groups, 30, 0.1);
//   StepLR b(groups, 7, 0.9);
//   ChainedScheduler chain({&a, &b});
//   for (...) { train(opt); chain.step(); }

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

// A scheduler made of other schedulers (torch: an object with `_schedulers`).
class CompositeLRScheduler : public LRScheduler {
 public:
  const std::vector<LRScheduler*>& schedulers() const noexcept { return schedulers_; }

  // torch's composites have no get_lr of their own (LRScheduler.get_lr raises NotImplementedError), so
  // update_lr(epoch) on a composite fails too.
  std::vector<double> get_lr() override {
    throw std::logic_error(std::string(name_) + " has no get_lr(); it delegates to its schedulers");
  }

  // torch's SequentialLR.recursive_undo: decrement last_epoch of every non-composite scheduler below `s`.
  static void recursive_undo(LRScheduler& s) {
    if (auto* c = dynamic_cast<CompositeLRScheduler*>(&s)) {
      for (LRScheduler* child : c->schedulers_) recursive_undo(*child);
    } else {
      s.set_last_epoch(s.last_epoch() - 1);
    }
  }

 protected:
  // Checks the children (in torch's order: none given, then each child) and returns the groups they share;
  // `groups` null means the first child's.
  static GroupsAccess& checked_groups(const std::vector<LRScheduler*>& schedulers, GroupsAccess* groups,
                                      const char* name, const char* none_message) {
    if (schedulers.empty()) throw std::invalid_argument(std::string(name) + none_message);
    for (std::size_t i = 0; i < schedulers.size(); ++i)
      if (schedulers[i] == nullptr)
        throw std::invalid_argument(std::string(name) + " at index " + std::to_string(i) + " is a null scheduler.");
    GroupsAccess& g = groups ? *groups : schedulers[0]->groups();
    for (std::size_t i = 0; i < schedulers.size(); ++i)
      if (&schedulers[i]->groups() != &g)
        throw std::invalid_argument(std::string(name) +
                                    " expects all schedulers to belong to the same optimizer, but got scheduler at "
                                    "index " +
                                    std::to_string(i) + " with different param groups.");
    return g;
  }

  // The base constructor runs with last_epoch -1: every child has already recorded initial_lr.
  CompositeLRScheduler(GroupsAccess& groups, std::vector<LRScheduler*> schedulers, const char* name)
      : LRScheduler(groups, -1), schedulers_(std::move(schedulers)), name_(name) {}

  std::vector<LRScheduler*> schedulers_;
  const char* name_;
};

class ChainedScheduler : public CompositeLRScheduler {
 public:
  // The children's groups; `groups` (torch's optional `optimizer`) defaults to the first child's.
  explicit ChainedScheduler(std::vector<LRScheduler*> schedulers, GroupsAccess* groups = nullptr)
      : CompositeLRScheduler(checked_groups(schedulers, groups, "ChainedScheduler",
                                            " expects at least one scheduler to be chained, but got no scheduler."),
                             schedulers, "ChainedScheduler") {
    last_lr_ = current_lrs();
  }

  void step() override {
    check_can_advance();
    ++step_count_;
    for (LRScheduler* s : schedulers_) s->step();
    last_lr_ = current_lrs();
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
