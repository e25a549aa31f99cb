#pragma once
// OneCycleLR: the 1cycle policy (torch.optim.lr_scheduler.OneCycleLR): anneal from max_lr/div_factor up
// to max_lr and down to initial_lr/final_div_factor (two phases, or three with three_phase), momentum
// cycled inversely. Stepped per batch; stepping past total_steps throws.

#include <cmath>

#include "cyclic_lr.hpp"
#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

class OneCycleLR : public LRScheduler {
 public:
  struct Options {
    std::vector<double> max_lr;  // one value or one per group
    std::optional<std::int64_t> total_steps, epochs, steps_per_epoch;
    double pct_start = 0.3;
    std::string anneal_strategy = "cos";
    bool cycle_momentum = true;
    std::vector<double> base_momentum{0.85};
    std::vector<double> max_momentum{0.95};
    double div_factor = 25.0;
    double final_div_factor = 1e4;
    bool three_phase = false;
    // Resuming (last_epoch >= 0): torch reads group["min_lr"] saved by the first run; give it here (one
    // value or one per group). Empty: initial_lr / final_div_factor.
    std::vector<double> min_lr;
  };

  // torch's _SchedulePhase; the value names are "initial_lr", "max_lr", "min_lr", "max_momentum",
  // "base_momentum".
  struct Phase {
    double end_step = 0;
    std::string start_lr, end_lr, start_momentum, end_momentum;
  };

  struct Params {
    std::int64_t total_steps = 1;
    std::vector<Phase> schedule_phases;
    std::string anneal_func_type = "cos";
    bool cycle_momentum = true;
    bool use_beta1 = false;
    // torch keeps these in the param groups (group["max_lr"], ...): one per group.
    std::vector<double> max_lrs, min_lrs, max_momentums, base_momentums;
  };

  OneCycleLR(GroupsAccess& groups, const Options& o, std::int64_t last_epoch = -1)
      : OneCycleLR(groups, prepare(groups, o, last_epoch), last_epoch, 0) {}

  Params params;  // editable between steps, e.g. when loading a state dict

  static double anneal(const std::string& type, double start, double end, double pct) {
    constexpr double pi = 3.14159265358979323846;
    if (type == "cos") {
      const double cos_out = std::cos(pi * pct) + 1;
      return end + (start - end) / 2.0 * cos_out;
    }
    if (type == "linear") return (end - start) * pct + start;
    throw std::invalid_argument("Unknown _anneal_func_type: " + type);
  }

  std::vector<double> get_lr() override {
    const std::int64_t step_num = last_epoch_;
    if (step_num > params.total_steps)
      throw std::invalid_argument("Tried to step " + std::to_string(step_num) +
                                  " times. The specified number of total steps is " +
                                  std::to_string(params.total_steps));
    const std::size_t n = groups_->size();
    const auto& ph = params.schedule_phases;
    if (ph.empty()) throw std::invalid_argument("OneCycleLR: no schedule phases");
    std::vector<double> lrs(n), moms(n);
    const double s = static_cast<double>(step_num);
    for (std::size_t g = 0; g < n; ++g) {
      double start_step = 0.0;
      for (std::size_t i = 0; i < ph.size(); ++i) {
        const double end_step = ph[i].end_step;
        if (s <= end_step || i == ph.size() - 1) {
          if (end_step - start_step == 0) throw std::domain_error("float division by zero");  // torch: ZeroDivisionError
          const double pct = (s - start_step) / (end_step - start_step);
          // Read in torch's order (start before end): a group missing both reports the start's name.
          const double start_lr = value(g, ph[i].start_lr);
          lrs[g] = anneal(params.anneal_func_type, start_lr, value(g, ph[i].end_lr), pct);
          if (params.cycle_momentum) {
            const double start_momentum = value(g, ph[i].start_momentum);
            moms[g] = anneal(params.anneal_func_type, start_momentum, value(g, ph[i].end_momentum), pct);
          }
          break;
        }
        start_step = ph[i].end_step;
      }
    }
    if (params.cycle_momentum)
      for (std::size_t g = 0; g < n; ++g) groups_->set_momentum(g, moms[g]);
    return lrs;
  }

 private:
  OneCycleLR(GroupsAccess& groups, Params p, std::int64_t last_epoch, int)
      : LRScheduler(groups, last_epoch), params(std::move(p)) {
    initial_step();
  }

  double value(std::size_t g, const std::string& key) const {
    const auto pick = [&](const std::vector<double>& v) {
      if (g >= v.size()) throw MissingGroupValue("OneCycleLR", key, g);
      return v[g];
    };
    if (key == "initial_lr") {
      const auto v = groups_->initial_lr(g);
      if (!v) throw MissingGroupValue("OneCycleLR", key, g);
      return *v;
    }
    if (key == "max_lr") return pick(params.max_lrs);
    if (key == "min_lr") return pick(params.min_lrs);
    if (key == "max_momentum") return pick(params.max_momentums);
    if (key == "base_momentum") return pick(params.base_momentums);
    throw std::invalid_argument("OneCycleLR: unknown schedule value '" + key + "'");
  }

  // Validates everything (torch's messages), then when starting (last_epoch == -1) writes each group's
  // initial_lr = max_lr / div_factor and its momentum = max_momentum, as torch does before its base
  // constructor runs.
  static Params prepare(GroupsAccess& groups, const Options& o, std::int64_t last_epoch) {
    Params p;
    if (o.total_steps) {
      if (*o.total_steps <= 0)
        throw std::invalid_argument("Expected positive integer total_steps, but got " + std::to_string(*o.total_steps));
      p.total_steps = *o.total_steps;
    } else if (o.epochs && o.steps_per_epoch) {
      if (*o.epochs <= 0) throw std::invalid_argument("Expected positive integer epochs, but got " + std::to_string(*o.epochs));
      if (*o.steps_per_epoch <= 0)
        throw std::invalid_argument("Expected positive integer steps_per_epoch, but got " +
                                    std::to_string(*o.steps_per_epoch));
      // Checked before multiplying: the product must not overflow.
      if (*o.epochs > kMaxEpoch / *o.steps_per_epoch)
        throw std::invalid_argument("epochs * steps_per_epoch must be at most 2^53, got epochs " +
                                    std::to_string(*o.epochs) + " and steps_per_epoch " +
                                    std::to_string(*o.steps_per_epoch));
      p.total_steps = *o.epochs * *o.steps_per_epoch;
    } else {
      throw std::invalid_argument("You must define either total_steps OR (epochs AND steps_per_epoch)");
    }
    check_epoch_range(p.total_steps, "total_steps");
    const double T = static_cast<double>(p.total_steps);
    if (o.three_phase) {
      p.schedule_phases = {
          {o.pct_start * T - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
          {2 * o.pct_start * T - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"},
          {T - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"},
      };
    } else {
      p.schedule_phases = {
          {o.pct_start * T - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"},
          {T - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"},
      };
    }
    if (!(o.pct_start >= 0 && o.pct_start <= 1))
      throw std::invalid_argument("Expected float between 0 and 1 pct_start, but got " + cyclic_detail::repr(o.pct_start));
    if (o.anneal_strategy != "cos" && o.anneal_strategy != "linear")
      throw std::invalid_argument("anneal_strategy must be one of 'cos' or 'linear', instead got " + o.anneal_strategy);
    p.anneal_func_type = o.anneal_strategy;
    const std::size_t n = groups.size();
    p.max_lrs = per_group(o.max_lr, n, "max_lr");
    std::vector<double> initial(n);
    p.min_lrs.resize(n);
    // torch computes max_lr / div_factor and initial_lr / final_div_factor (only when starting): a zero
    // divisor is a ZeroDivisionError there, at construction.
    if (last_epoch == -1 && n > 0 && (o.div_factor == 0.0 || o.final_div_factor == 0.0))
      throw std::domain_error("float division by zero");
    for (std::size_t i = 0; i < n; ++i) {
      initial[i] = p.max_lrs[i] / o.div_factor;
      p.min_lrs[i] = initial[i] / o.final_div_factor;
    }
    if (!o.min_lr.empty()) p.min_lrs = per_group(o.min_lr, n, "min_lr");
    p.cycle_momentum = o.cycle_momentum;
    if (o.cycle_momentum) {
      p.use_beta1 = cyclic_detail::check_momentum(groups);
      p.max_momentums = per_group(o.max_momentum, n, "max_momentum");
      p.base_momentums = per_group(o.base_momentum, n, "base_momentum");
    }
    if (last_epoch < -1) throw std::invalid_argument("last_epoch must be >= -1, got " + std::to_string(last_epoch));
    if (last_epoch == -1) {
      for (std::size_t i = 0; i < n; ++i) groups.set_initial_lr(i, initial[i]);
      if (o.cycle_momentum)
        for (std::size_t i = 0; i < n; ++i) groups.set_momentum(i, p.max_momentums[i]);
    }
    return p;
  }
};

}  // namespace lr_scheduler
}  // namespace fastoptim
