#pragma once
// ReduceLROnPlateau (torch.optim.lr_scheduler.ReduceLROnPlateau): cut the learning rate by `factor` once
// the metric has not improved for more than `patience` steps, then wait `cooldown` steps before counting
// again. Each step also reports what it did (last_event(), and an optional callback), so the state machine
// can be watched: improved / no improvement (k of patience) / reduced (old -> new) / cooldown (k left) /
// at min_lr (a reduction was due but every group is already at its floor).

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "lr_scheduler.hpp"

namespace fastoptim {
namespace lr_scheduler {

struct PlateauEvent {
  enum class Kind { improved, no_improvement, reduced, cooldown, at_min_lr };
  Kind kind = Kind::improved;
  std::int64_t epoch = 0;
  double metric = 0.0;
  double best = 0.0;
  std::int64_t num_bad_epochs = 0;  // after the step
  std::int64_t patience = 0;
  std::int64_t cooldown_counter = 0;  // after the step
  std::vector<double> old_lrs, new_lrs;

  static const char* kind_name(Kind k) {
    switch (k) {
      case Kind::improved: return "improved";
      case Kind::no_improvement: return "no_improvement";
      case Kind::reduced: return "reduced";
      case Kind::cooldown: return "cooldown";
      case Kind::at_min_lr: return "at_min_lr";
    }
    return "?";
  }
};

class ReduceLROnPlateau {
 public:
  enum class Mode { min, max };
  enum class ThresholdMode { rel, abs };

  struct Options {
    Mode mode = Mode::min;
    double factor = 0.1;
    std::int64_t patience = 10;
    double threshold = 1e-4;
    ThresholdMode threshold_mode = ThresholdMode::rel;
    std::int64_t cooldown = 0;
    double min_lr = 0.0;          // the floor of every group...
    std::vector<double> min_lrs;  // ...unless given per group (then its length must match the groups)
    double eps = 1e-8;
  };

  ReduceLROnPlateau(GroupsAccess& groups, Options options) : groups_(&groups), o_(std::move(options)) {
    if (!(o_.factor < 1.0)) throw std::invalid_argument("Factor should be < 1.0.");
    if (o_.patience < 0) throw std::invalid_argument("patience must be >= 0, got " + std::to_string(o_.patience));
    if (o_.cooldown < 0) throw std::invalid_argument("cooldown must be >= 0, got " + std::to_string(o_.cooldown));
    if (o_.min_lrs.empty()) {
      default_min_lr_ = o_.min_lr;
      min_lrs_.assign(groups.size(), o_.min_lr);
    } else if (o_.min_lrs.size() != groups.size()) {
      throw std::invalid_argument("expected " + std::to_string(groups.size()) + " min_lrs, got " +
                                  std::to_string(o_.min_lrs.size()));
    } else {
      min_lrs_ = o_.min_lrs;
    }
    last_lr_ = current_lrs();
    reset();
  }

  void step(double metric) {
    if (last_epoch_ >= kMaxEpoch) throw std::domain_error("ReduceLROnPlateau step: last_epoch would pass 2^53");
    step(metric, last_epoch_ + 1);
  }

  // torch's deprecated step(metrics, epoch): last_epoch = epoch, then as step(metric).
  void step(double metric, std::int64_t epoch) {
    check_epoch_range(epoch, "epoch");
    const double current = metric;
    last_epoch_ = epoch;
    PlateauEvent ev;
    ev.epoch = epoch;
    ev.metric = current;
    ev.patience = o_.patience;
    ev.old_lrs = current_lrs();
    if (is_better(current, best_)) {
      best_ = current;
      num_bad_epochs_ = 0;
      ev.kind = PlateauEvent::Kind::improved;
    } else {
      ++num_bad_epochs_;
      ev.kind = PlateauEvent::Kind::no_improvement;
    }
    if (cooldown_counter_ > 0) {
      --cooldown_counter_;
      num_bad_epochs_ = 0;  // bad epochs during cooldown do not count
      ev.kind = PlateauEvent::Kind::cooldown;
    }
    if (num_bad_epochs_ > o_.patience) {
      ev.kind = reduce_lr() ? PlateauEvent::Kind::reduced : PlateauEvent::Kind::at_min_lr;
      cooldown_counter_ = o_.cooldown;
      num_bad_epochs_ = 0;
    }
    last_lr_ = current_lrs();
    ev.best = best_;
    ev.num_bad_epochs = num_bad_epochs_;
    ev.cooldown_counter = cooldown_counter_;
    ev.new_lrs = last_lr_;
    last_event_ = std::move(ev);
    if (on_event) on_event(*last_event_);
  }

  bool in_cooldown() const noexcept { return cooldown_counter_ > 0; }
  double best() const noexcept { return best_; }
  std::int64_t num_bad_epochs() const noexcept { return num_bad_epochs_; }
  std::int64_t cooldown_counter() const noexcept { return cooldown_counter_; }
  std::int64_t last_epoch() const noexcept { return last_epoch_; }
  const std::vector<double>& min_lrs() const noexcept { return min_lrs_; }
  const std::vector<double>& get_last_lr() const noexcept { return last_lr_; }
  const std::optional<PlateauEvent>& last_event() const noexcept { return last_event_; }
  const Options& options() const noexcept { return o_; }
  GroupsAccess& groups() noexcept { return *groups_; }
  double mode_worse() const noexcept {
    return o_.mode == Mode::min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  }

  // Restores a saved state (torch's state_dict entries).
  void load_state(double best, std::int64_t num_bad_epochs, std::int64_t cooldown_counter, std::int64_t last_epoch,
                  std::vector<double> min_lrs, std::vector<double> last_lr) {
    check_epoch_range(num_bad_epochs, "num_bad_epochs");
    check_epoch_range(cooldown_counter, "cooldown_counter");
    check_epoch_range(last_epoch, "last_epoch");
    best_ = best;
    num_bad_epochs_ = num_bad_epochs;
    cooldown_counter_ = cooldown_counter;
    last_epoch_ = last_epoch;
    min_lrs_ = std::move(min_lrs);
    last_lr_ = std::move(last_lr);
  }

  // Called after every step with what it did.
  std::function<void(const PlateauEvent&)> on_event;

 private:
  void reset() {
    best_ = mode_worse();
    cooldown_counter_ = 0;
    num_bad_epochs_ = 0;
  }

  // NaN is never better: every comparison with it is false, as in torch.
  bool is_better(double a, double best) const {
    if (o_.mode == Mode::min && o_.threshold_mode == ThresholdMode::rel) return a < best * (1.0 - o_.threshold);
    if (o_.mode == Mode::min) return a < best - o_.threshold;
    if (o_.threshold_mode == ThresholdMode::rel) return a > best * (o_.threshold + 1.0);
    return a > best + o_.threshold;
  }

  // Returns whether any group's learning rate changed.
  bool reduce_lr() {
    const std::size_t n = groups_->size();
    if (n != min_lrs_.size()) {
      if (!default_min_lr_)
        throw std::runtime_error("The number of param groups in the `optimizer` (" + std::to_string(n) +
                                 ") differs from when `ReduceLROnPlateau` was initialized (" +
                                 std::to_string(min_lrs_.size()) +
                                 "), usually due to a new param group being added to the optimizer.");
      min_lrs_.assign(n, *default_min_lr_);
    }
    bool changed = false;
    for (std::size_t i = 0; i < n; ++i) {
      const double old_lr = groups_->lr(i);
      const double new_lr = std::max(old_lr * o_.factor, min_lrs_[i]);
      if (old_lr - new_lr > o_.eps) {
        groups_->set_lr(i, new_lr);
        changed = true;
      }
    }
    return changed;
  }

  std::vector<double> current_lrs() const {
    std::vector<double> out(groups_->size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = groups_->lr(i);
    return out;
  }

  GroupsAccess* groups_;
  Options o_;
  std::optional<double> default_min_lr_;
  std::vector<double> min_lrs_;
  double best_ = 0.0;
  std::int64_t num_bad_epochs_ = 0, cooldown_counter_ = 0, last_epoch_ = 0;
  std::vector<double> last_lr_;
  std::optional<PlateauEvent> last_event_;
};

}  // namespace lr_scheduler
}  // namespace fastoptim
