#pragma once
// Learning-rate schedulers as state machines, as torch.optim.lr_scheduler (torch 2.13).
//
// A scheduler reads and writes per-group values through GroupsAccess: the learning rate, torch's
// group["initial_lr"], and for cyclic schedules the momentum (SGD/RMSprop `momentum`, Adam-family
// `betas[0]`). OptimizerGroups adapts any fastoptim C++ optimizer; the Python package fills a GroupValues
// from `optimizer.param_groups` around each step. Every scheduler computes torch's chainable form (the
// one its step() uses) in double, in torch's order of operations.
//
//   fastoptim::Adam<float> opt({w}, options);
//   fastoptim::lr_scheduler::OptimizerGroups groups(opt);
//   fastoptim::lr_scheduler::StepLR sched(groups, /*step_size=*/30, /*gamma=*/0.1);
//   for (int epoch = 0; epoch < 100; ++epoch) { train(opt); sched.step(); }

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace fastoptim {
namespace lr_scheduler {

// The largest epoch, count or period a scheduler accepts (in magnitude): 2^53, what a double (and Python's
// json) keeps exactly, so epoch arithmetic (last_epoch + 1, 2 * T_max, ...) never overflows int64.
constexpr std::int64_t kMaxEpoch = std::int64_t(1) << 53;

// A param group lacks a value the schedule reads at this step (OneCycleLR's "initial_lr", "max_lr", ...,
// e.g. in a group added after construction): torch raises KeyError(key) there; the Python bindings
// translate this to the same. key() is the value's name.
class MissingGroupValue : public std::out_of_range {
 public:
  MissingGroupValue(const std::string& scheduler, std::string key, std::size_t group)
      : std::out_of_range(scheduler + ": '" + key + "' is not set for param group " + std::to_string(group)),
        key_(std::move(key)) {}
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

// Throws std::invalid_argument unless |value| <= 2^53.
inline void check_epoch_range(std::int64_t value, const char* what) {
  if (value > kMaxEpoch || value < -kMaxEpoch)
    throw std::invalid_argument(std::string(what) + " must be at most 2^53 in magnitude, got " + std::to_string(value));
}

class GroupsAccess {
 public:
  virtual ~GroupsAccess() = default;
  virtual std::size_t size() const = 0;
  virtual double lr(std::size_t i) const = 0;
  virtual void set_lr(std::size_t i, double value) = 0;
  virtual std::optional<double> initial_lr(std::size_t i) const = 0;
  virtual void set_initial_lr(std::size_t i, double value) = 0;
  // The value cyclic schedules cycle: nullopt when the group has none.
  virtual std::optional<double> momentum(std::size_t) const { return std::nullopt; }
  virtual void set_momentum(std::size_t, double) {}
  // True when momentum() is Adam's betas[0] (torch names the cycled value by this).
  virtual bool uses_betas(std::size_t) const { return false; }
};

// Plain per-group values; what the Python binding hands to schedulers.
class GroupValues : public GroupsAccess {
 public:
  std::vector<double> lrs;
  std::vector<std::optional<double>> initial_lrs, momenta;
  std::vector<bool> betas;

  explicit GroupValues(std::size_t n = 0) { resize(n); }
  void resize(std::size_t n) {
    lrs.resize(n, 0.0);
    initial_lrs.resize(n);
    momenta.resize(n);
    betas.resize(n, false);
  }
  std::size_t size() const override { return lrs.size(); }
  double lr(std::size_t i) const override { return lrs.at(i); }
  void set_lr(std::size_t i, double v) override { lrs.at(i) = v; }
  std::optional<double> initial_lr(std::size_t i) const override { return initial_lrs.at(i); }
  void set_initial_lr(std::size_t i, double v) override { initial_lrs.at(i) = v; }
  std::optional<double> momentum(std::size_t i) const override { return momenta.at(i); }
  void set_momentum(std::size_t i, double v) override { momenta.at(i) = v; }
  bool uses_betas(std::size_t i) const override { return betas.at(i); }
};

namespace detail {
template <class O, class = void>
struct has_beta1 : std::false_type {};
template <class O>
struct has_beta1<O, std::void_t<decltype(std::declval<O&>().beta1)>> : std::true_type {};
template <class O, class = void>
struct has_momentum : std::false_type {};
template <class O>
struct has_momentum<O, std::void_t<decltype(std::declval<O&>().momentum)>> : std::true_type {};
}  // namespace detail

// A fastoptim C++ optimizer's param groups as seen by a scheduler.
template <class Opt>
class OptimizerGroups : public GroupsAccess {
 public:
  explicit OptimizerGroups(Opt& opt) : opt_(&opt) {}
  std::size_t size() const override { return opt_->param_groups().size(); }
  double lr(std::size_t i) const override { return opt_->param_groups().at(i).options.lr; }
  void set_lr(std::size_t i, double v) override { opt_->param_groups().at(i).options.lr = v; }
  std::optional<double> initial_lr(std::size_t i) const override { return opt_->param_groups().at(i).initial_lr; }
  void set_initial_lr(std::size_t i, double v) override { opt_->param_groups().at(i).initial_lr = v; }
  std::optional<double> momentum(std::size_t i) const override {
    const auto& o = opt_->param_groups().at(i).options;
    if constexpr (detail::has_beta1<decltype(o)>::value) return o.beta1;
    else if constexpr (detail::has_momentum<decltype(o)>::value) return o.momentum;
    else return std::nullopt;
  }
  void set_momentum(std::size_t i, double v) override {
    auto& o = opt_->param_groups().at(i).options;
    if constexpr (detail::has_beta1<std::remove_reference_t<decltype(o)>>::value) o.beta1 = v;
    else if constexpr (detail::has_momentum<std::remove_reference_t<decltype(o)>>::value) o.momentum = v;
  }
  bool uses_betas(std::size_t i) const override {
    return detail::has_beta1<std::remove_reference_t<decltype(opt_->param_groups().at(i).options)>>::value;
  }

 private:
  Opt* opt_;
};

// torch.optim.lr_scheduler.LRScheduler: construction records initial_lr (or requires it when resuming
// with last_epoch >= 0) and performs the initial step; step() advances last_epoch and applies get_lr().
class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  virtual void step() {
    check_can_advance();
    ++step_count_;
    ++last_epoch_;
    apply(get_lr());
  }

  const std::vector<double>& get_last_lr() const noexcept { return last_lr_; }
  const std::vector<double>& base_lrs() const noexcept { return base_lrs_; }
  std::int64_t last_epoch() const noexcept { return last_epoch_; }
  std::int64_t step_count() const noexcept { return step_count_; }
  GroupsAccess& groups() noexcept { return *groups_; }

  // Restores the state every scheduler shares (torch's base_lrs, last_epoch, _step_count, _last_lr).
  void load_base_state(std::vector<double> base_lrs, std::int64_t last_epoch, std::int64_t step_count,
                       std::vector<double> last_lr) {
    check_epoch_range(last_epoch, "last_epoch");
    check_epoch_range(step_count, "_step_count");
    base_lrs_ = std::move(base_lrs);
    last_epoch_ = last_epoch;
    step_count_ = step_count;
    last_lr_ = std::move(last_lr);
  }

  // The learning rates for the current last_epoch, from the groups' current values (torch's chainable
  // get_lr, which step() applies right after advancing last_epoch).
  virtual std::vector<double> get_lr() = 0;

  // torch's _get_closed_form_lr: the learning rates at last_epoch from base_lrs alone, where torch has one.
  virtual std::optional<std::vector<double>> closed_form_lr() const { return std::nullopt; }

  // torch's _update_lr(epoch) (used by SequentialLR at milestones): jump to `epoch`, closed form if any.
  void update_lr(std::int64_t epoch) {
    check_epoch_range(epoch, "epoch");
    last_epoch_ = epoch;
    const auto closed = closed_form_lr();
    apply(closed ? *closed : get_lr());
  }
  void set_last_epoch(std::int64_t epoch) {
    check_epoch_range(epoch, "last_epoch");
    last_epoch_ = epoch;
  }

  // torch's deprecated step(epoch): counts as a step, sets last_epoch = epoch and applies the closed form
  // where the scheduler has one, else get_lr(). An epoch beyond 2^53 throws before anything changes; an
  // error of the schedule itself leaves last_epoch / _step_count advanced, as torch does.
  void step_epoch(std::int64_t epoch) {
    check_can_advance();
    check_epoch_range(epoch, "epoch");  // before anything changes
    ++step_count_;
    update_lr(epoch);
  }

  // torch's _initial_step: _step_count = 0, then step() in _initial_mode (is_initial_ set), where the
  // chainable get_lr of ExponentialLR, MultiplicativeLR, LinearLR, PolynomialLR and CosineAnnealingLR
  // keeps the current lrs. Every concrete scheduler's constructor ends with it (get_lr is virtual, so the
  // base constructor cannot); SequentialLR calls it on the child that runs at epoch 0.
  void initial_step() {
    struct Mode {
      bool& flag;
      explicit Mode(bool& f) : flag(f) { flag = true; }
      ~Mode() { flag = false; }
    } mode(is_initial_);
    step_count_ = 0;
    step();
  }

 protected:
  LRScheduler(GroupsAccess& groups, std::int64_t last_epoch) : groups_(&groups), last_epoch_(last_epoch) {
    if (last_epoch < -1) throw std::invalid_argument("last_epoch must be >= -1, got " + std::to_string(last_epoch));
    check_epoch_range(last_epoch, "last_epoch");
    const std::size_t n = groups.size();
    if (last_epoch == -1) {
      for (std::size_t i = 0; i < n; ++i)
        if (!groups.initial_lr(i)) groups.set_initial_lr(i, groups.lr(i));
    } else {
      for (std::size_t i = 0; i < n; ++i)
        if (!groups.initial_lr(i))
          throw std::invalid_argument("param 'initial_lr' is not specified in param_groups[" + std::to_string(i) +
                                      "] when resuming scheduler with last_epoch >= 0.");
    }
    for (std::size_t i = 0; i < n; ++i) base_lrs_.push_back(*groups.initial_lr(i));
  }

  // step() adds one to last_epoch and _step_count: both stay within 2^53.
  void check_can_advance() const {
    if (last_epoch_ >= kMaxEpoch || step_count_ >= kMaxEpoch)
      throw std::domain_error("scheduler step: last_epoch / _step_count would pass 2^53");
  }

  void apply(const std::vector<double>& lrs) {
    check_group_count(lrs.size());
    for (std::size_t i = 0; i < lrs.size(); ++i) groups_->set_lr(i, lrs[i]);
    last_lr_.assign(lrs.begin(), lrs.end());
    for (std::size_t i = 0; i < lrs.size(); ++i) last_lr_[i] = groups_->lr(i);
  }

  // Per-group values (base_lrs, lr_lambdas, ...) must match the optimizer's param groups, which can grow
  // after construction (add_param_group): torch then raises ValueError (zip strict); so do we, before any
  // per-group value is read out of range or any group is written.
  void check_group_count(std::size_t count) const {
    if (count != groups_->size())
      throw std::invalid_argument("the scheduler has " + std::to_string(count) +
                                  " per-group values but the optimizer has " + std::to_string(groups_->size()) +
                                  " param groups (was a param group added after the scheduler was created?)");
  }

  std::vector<double> current_lrs() const {
    std::vector<double> out(groups_->size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = groups_->lr(i);
    return out;
  }

  // A scalar-or-per-group argument, checked against the number of groups (torch's _format_param).
  static std::vector<double> per_group(const std::vector<double>& values, std::size_t groups, const char* name) {
    if (values.size() == 1) return std::vector<double>(groups, values[0]);
    if (values.size() != groups)
      throw std::invalid_argument(std::string(name) + " must have the same length as optimizer.param_groups. " +
                                  name + " has " + std::to_string(values.size()) + " values, param_groups has " +
                                  std::to_string(groups) + ".");
    return values;
  }

  GroupsAccess* groups_;
  std::vector<double> base_lrs_;
  std::int64_t last_epoch_;
  std::int64_t step_count_ = 0;
  std::vector<double> last_lr_;
  bool is_initial_ = false;  // torch's _is_initial: set during initial_step()
};

}  // namespace lr_scheduler
}  // namespace fastoptim
