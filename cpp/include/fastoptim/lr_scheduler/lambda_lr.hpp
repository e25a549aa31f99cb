#pragma once
// LambdaLR (lr = base_lr * lambda(epoch)) and MultiplicativeLR (lr = lr * lambda(epoch)), one function of
// the epoch per param group (torch.optim.lr_scheduler.LambdaLR / MultiplicativeLR).

#include <functional>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

using LrLambda = std::function<double(std::int64_t epoch)>;

namespace detail {
inline std::vector<LrLambda> lr_lambdas_for(const GroupsAccess& groups, std::vector<LrLambda> fns) {
  if (fns.size() != groups.size())
    throw std::invalid_argument("Expected " + std::to_string(groups.size()) + " lr_lambdas, but got " +
                                std::to_string(fns.size()));
  for (const auto& f : fns)
    if (!f) throw std::invalid_argument("lr_lambda should be a function, but got an empty function");
  return fns;
}
}  // namespace detail

class LambdaLR : public LRScheduler {
 public:
  struct Params {
    std::vector<LrLambda> lr_lambdas;  // one per group
  };

  // One function for every group.
  LambdaLR(GroupsAccess& groups, const LrLambda& lr_lambda, std::int64_t last_epoch = -1)
      : LambdaLR(groups, std::vector<LrLambda>(groups.size(), lr_lambda), last_epoch) {}
  LambdaLR(GroupsAccess& groups, std::vector<LrLambda> lr_lambdas, std::int64_t last_epoch = -1)
      : LRScheduler(groups, (detail::lr_lambdas_for(groups, lr_lambdas), last_epoch)),
        params{std::move(lr_lambdas)} {
    initial_step();
  }

  Params params;

  std::vector<double> get_lr() override {
    std::vector<double> lrs(base_lrs_.size());
    for (std::size_t i = 0; i < lrs.size(); ++i) lrs[i] = base_lrs_[i] * params.lr_lambdas.at(i)(last_epoch_);
    return lrs;
  }
};

class MultiplicativeLR : public LRScheduler {
 public:
  struct Params {
    std::vector<LrLambda> lr_lambdas;  // one per group
  };

  MultiplicativeLR(GroupsAccess& groups, const LrLambda& lr_lambda, std::int64_t last_epoch = -1)
      : MultiplicativeLR(groups, std::vector<LrLambda>(groups.size(), lr_lambda), last_epoch) {}
  MultiplicativeLR(GroupsAccess& groups, std::vector<LrLambda> lr_lambdas, std::int64_t last_epoch = -1)
      : LRScheduler(groups, (detail::lr_lambdas_for(groups, lr_lambdas), last_epoch)),
        params{std::move(lr_lambdas)} {
    initial_step();
  }

  Params params;

  std::vector<double> get_lr() override {
    std::vector<double> lrs = current_lrs();
    if (is_initial_) return lrs;
    check_group_count(params.lr_lambdas.size());
    for (std::size_t i = 0; i < lrs.size(); ++i) lrs[i] = lrs[i] * params.lr_lambdas.at(i)(last_epoch_);
    return lrs;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
