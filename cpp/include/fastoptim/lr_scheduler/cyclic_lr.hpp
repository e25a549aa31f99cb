#pragma once
// CyclicLR: the cyclical learning-rate policy (CLR) between base_lr and max_lr, with momentum (SGD/RMSprop
// `momentum`, Adam-family `betas[0]`) cycled inversely between max_momentum and base_momentum
// (torch.optim.lr_scheduler.CyclicLR). Stepped per batch.

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

namespace cyclic_detail {

// Python's repr of a float, for error messages.
inline std::string repr(double v) {
  char buf[32];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s(buf);
  if (s.find_first_of(".eni") == std::string::npos) s += ".0";
  return s;
}

// torch's check that the optimizer has something to cycle; returns use_beta1.
inline bool check_momentum(const GroupsAccess& groups) {
  bool betas = false;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    if (!groups.momentum(i))
      throw std::invalid_argument("optimizer must support momentum or beta1 with `cycle_momentum` option enabled");
    betas = betas || groups.uses_betas(i);
  }
  return betas;
}

}  // namespace cyclic_detail

class CyclicLR : public LRScheduler {
 public:
  // A custom scaling policy; receives the cycle number or the iteration (see scale_mode).
  using ScaleFn = std::function<double(std::int64_t)>;

  struct Options {
    std::vector<double> base_lr;  // one value or one per group
    std::vector<double> max_lr;
    double step_size_up = 2000;
    std::optional<double> step_size_down;
    std::string mode = "triangular";
    double gamma = 1.0;
    ScaleFn scale_fn;  // empty: use mode
    std::string scale_mode = "cycle";
    bool cycle_momentum = true;
    std::vector<double> base_momentum{0.8};
    std::vector<double> max_momentum{0.9};
  };

  // torch's state-dict attributes.
  struct Params {
    std::vector<double> max_lrs;
    double total_size = 4000;
    double step_ratio = 0.5;
    std::string mode = "triangular";
    double gamma = 1.0;
    std::string scale_mode = "cycle";
    bool cycle_momentum = true;
    bool use_beta1 = false;
    std::vector<double> base_momentums, max_momentums;
    ScaleFn scale_fn_custom;
  };

  CyclicLR(GroupsAccess& groups, Options o, std::int64_t last_epoch = -1)
      : CyclicLR(groups, prepare(groups, o, last_epoch), last_epoch, 0) {}

  Params params;  // editable between steps, e.g. when loading a state dict

  // torch's _init_scale_fn: the built-in modes fix scale_mode (call after changing mode).
  void init_scale_fn() {
    if (params.scale_fn_custom) return;
    if (params.mode == "triangular" || params.mode == "triangular2") params.scale_mode = "cycle";
    else if (params.mode == "exp_range") params.scale_mode = "iterations";
  }

  double scale_fn(std::int64_t x) const {
    if (params.scale_fn_custom) return params.scale_fn_custom(x);
    if (params.mode == "triangular") return 1.0;
    if (params.mode == "triangular2") return 1 / std::pow(2.0, static_cast<double>(x - 1));
    if (params.mode == "exp_range") return std::pow(params.gamma, static_cast<double>(x));
    throw std::invalid_argument("mode is invalid and scale_fn is None");
  }

  std::vector<double> get_lr() override {
    const double le = static_cast<double>(last_epoch_);
    if (params.total_size == 0) throw std::domain_error("float division by zero");  // a loaded state's
    const double cyc = std::floor(1 + le / params.total_size);
    // A tiny (or NaN) total_size sends the cycle number past what int64 (and a double's integers) hold.
    if (!(std::fabs(cyc) <= static_cast<double>(kMaxEpoch)))
      throw std::domain_error("CyclicLR: the cycle number 1 + last_epoch / total_size = " + cyclic_detail::repr(cyc) +
                              " is not finite or beyond 2^53 (total_size " + cyclic_detail::repr(params.total_size) + ")");
    const auto cycle = static_cast<std::int64_t>(cyc);
    const double x = 1.0 + le / params.total_size - cyc;
    // torch divides by step_ratio (0 when step_size_up is 0) or step_ratio - 1: ZeroDivisionError, not NaN.
    if (x <= params.step_ratio ? params.step_ratio == 0.0 : params.step_ratio == 1.0)
      throw std::domain_error("float division by zero");
    const double scale_factor = x <= params.step_ratio ? x / params.step_ratio : (x - 1) / (params.step_ratio - 1);
    const std::int64_t arg = params.scale_mode == "cycle" ? cycle : last_epoch_;
    const std::size_t n = groups_->size();
    if (base_lrs_.size() != n || params.max_lrs.size() != n)
      throw std::invalid_argument("CyclicLR: base_lrs / max_lrs do not match the param groups");
    std::vector<double> lrs(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double base_height = (params.max_lrs[i] - base_lrs_[i]) * scale_factor;
      lrs[i] = base_lrs_[i] + base_height * scale_fn(arg);
    }
    if (params.cycle_momentum) {
      if (params.base_momentums.size() != n || params.max_momentums.size() != n)
        throw std::invalid_argument("CyclicLR: base_momentums / max_momentums do not match the param groups");
      std::vector<double> momentums(n);
      for (std::size_t i = 0; i < n; ++i) {
        const double base_height = (params.max_momentums[i] - params.base_momentums[i]) * scale_factor;
        momentums[i] = params.max_momentums[i] - base_height * scale_fn(arg);
      }
      for (std::size_t i = 0; i < n; ++i) groups_->set_momentum(i, momentums[i]);
    }
    return lrs;
  }

  // torch sets base_lrs after its initial step; a state dict restores them through load_base_state.
 private:
  struct Prepared {
    Params params;
    std::vector<double> base_lrs;
  };

  CyclicLR(GroupsAccess& groups, Prepared p, std::int64_t last_epoch, int)
      : LRScheduler(groups, last_epoch), params(std::move(p.params)) {
    init_scale_fn();
    initial_step();
    base_lrs_ = std::move(p.base_lrs);
  }

  // Validates everything, then (when starting, last_epoch == -1) writes base_lr into each group's lr and
  // max_momentum into its momentum, as torch does before its base constructor runs.
  static Prepared prepare(GroupsAccess& groups, const Options& o, std::int64_t last_epoch) {
    const std::size_t n = groups.size();
    Prepared out;
    out.base_lrs = per_group(o.base_lr, n, "base_lr");
    Params& p = out.params;
    p.max_lrs = per_group(o.max_lr, n, "max_lr");
    const double up = o.step_size_up;
    const double down = o.step_size_down ? *o.step_size_down : up;
    // Negative half cycles give a step_ratio outside [0, 1], which a checkpoint of this scheduler could not load.
    if (!(up >= 0 && down >= 0))
      throw std::invalid_argument("step_size_up and step_size_down must be >= 0, got " + cyclic_detail::repr(up) +
                                  " and " + cyclic_detail::repr(down));
    p.total_size = up + down;
    if (p.total_size == 0) throw std::invalid_argument("float division by zero");
    if (!(std::isfinite(p.total_size) && p.total_size > 0))
      throw std::invalid_argument("step_size_up + step_size_down must be finite and positive, got " +
                                  cyclic_detail::repr(p.total_size));
    p.step_ratio = up / p.total_size;
    if (o.mode != "triangular" && o.mode != "triangular2" && o.mode != "exp_range" && !o.scale_fn)
      throw std::invalid_argument("mode is invalid and scale_fn is None");
    p.mode = o.mode;
    p.gamma = o.gamma;
    p.scale_fn_custom = o.scale_fn;
    p.scale_mode = o.scale_mode;
    p.cycle_momentum = o.cycle_momentum;
    if (o.cycle_momentum) {
      p.use_beta1 = cyclic_detail::check_momentum(groups);
      p.base_momentums = per_group(o.base_momentum, n, "base_momentum");
      p.max_momentums = per_group(o.max_momentum, n, "max_momentum");
    }
    if (last_epoch < -1) throw std::invalid_argument("last_epoch must be >= -1, got " + std::to_string(last_epoch));
    if (last_epoch == -1) {
      for (std::size_t i = 0; i < n; ++i) groups.set_lr(i, out.base_lrs[i]);
      if (o.cycle_momentum)
        for (std::size_t i = 0; i < n; ++i) groups.set_momentum(i, p.max_momentums[i]);
    }
    return out;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
