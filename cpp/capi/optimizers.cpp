// The C API's optimizers: one type-erased class over every optimizer of fastoptim/registry.hpp and both
// dtypes, built by torch's class name from JSON hyperparameters.

#include "internal.hpp"

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

namespace fastoptim_capi {

namespace {

template <class Opt, class = void>
struct has_modes : std::false_type {};
template <class Opt>
struct has_modes<Opt, std::void_t<decltype(std::declval<Opt&>().train()), decltype(std::declval<Opt&>().eval())>>
    : std::true_type {};

template <class Opt>
class OptimizerImpl final : public AnyOptimizer {
  using T = typename Opt::value_type;
  using Options = typename Opt::options_type;
  using Info = fastoptim::OptimizerInfo<Options>;

 public:
  explicit OptimizerImpl(const Json& defaults) {
    fastoptim::ckpt::apply_options(defaults_, defaults, /*strict_forced=*/true, std::string(Info::name) + " options");
    defaults_.validate();
  }

  const char* name() const override { return Info::name; }

  void add_group(void* const* params, const std::size_t* sizes, std::size_t count, const Json& options) override {
    if (live_schedulers > 0)
      throw bad_state("cannot add a param group to an optimizer a scheduler drives (add all groups first)");
    if (count == 0) throw invalid("a param group needs at least one parameter");
    need(params, "params");
    need(sizes, "sizes");
    typename Opt::group_type group;
    group.options = defaults_;
    fastoptim::ckpt::apply_options(group.options, options, true, "param group options");
    const std::size_t first = num_params();
    for (std::size_t i = 0; i < count; ++i) {
      const std::string who = "parameter " + std::to_string(first + i);
      if (params[i] == nullptr && sizes[i] != 0) throw invalid(who + " is NULL");
      check_aligned(params[i], who);
      group.params.emplace_back(static_cast<T*>(params[i]), sizes[i]);
    }
    std::vector<std::size_t> sizes_after = sizes_;
    sizes_after.insert(sizes_after.end(), sizes, sizes + count);
    if (!opt_) {
      auto opt = std::make_unique<Opt>(std::vector<typename Opt::group_type>{std::move(group)});
      groups_ = std::make_unique<ls::OptimizerGroups<Opt>>(*opt);
      opt_ = std::move(opt);
    } else {
      opt_->add_param_group(std::move(group));  // checks everything before adding
    }
    sizes_ = std::move(sizes_after);
  }

  void step(const void* const* grads, std::size_t count) override {
    built();
    if (count != sizes_.size())
      throw invalid("expected " + std::to_string(sizes_.size()) + " gradients (one per parameter), got " +
                    std::to_string(count));
    if (count > 0) need(grads, "grads");
    spans_.clear();
    for (std::size_t i = 0; i < count; ++i) {
      if (grads[i] == nullptr) {
        spans_.emplace_back(nullptr);
        continue;
      }
      check_aligned(grads[i], "gradient of parameter " + std::to_string(i));
      spans_.emplace_back(static_cast<const T*>(grads[i]), sizes_[i]);
    }
    opt_->step(spans_);
  }

  std::size_t num_groups() const override { return opt_ ? opt_->param_groups().size() : 0; }
  std::size_t num_params() const override { return sizes_.size(); }

  double lr(std::size_t g) const override { return group(g).options.lr; }
  void set_lr(std::size_t g, double lr) override {
    Options o = group(g).options;
    o.lr = lr;
    o.validate();
    group(g).options = o;
  }
  void set_options(std::size_t g, const Json& options) override {
    Options o = group(g).options;
    fastoptim::ckpt::apply_options(o, options, true, "options");
    o.validate();
    group(g).options = o;
  }
  std::string options_json(std::size_t g) const override {
    return "{" + fastoptim::ckpt::options_json(group(g).options) + "}";
  }

  void set_train_mode(bool train) override {
    if constexpr (has_modes<Opt>::value) {
      if (train) built().train();
      else built().eval();
    } else {
      throw invalid(std::string(Info::name) + " has no train and eval modes");
    }
  }

  ls::GroupsAccess& groups() override {
    built();
    return *groups_;
  }

  std::function<void()> snapshot_groups() const override {
    std::vector<std::pair<Options, std::optional<double>>> saved;
    if (opt_)
      for (const auto& g : opt_->param_groups()) saved.emplace_back(g.options, g.initial_lr);
    Opt* opt = opt_.get();
    return [opt, saved] {
      for (std::size_t i = 0; i < saved.size(); ++i) {
        opt->param_groups()[i].options = saved[i].first;
        opt->param_groups()[i].initial_lr = saved[i].second;
      }
    };
  }

  void save(const std::string& path, fastoptim::SchedulerView sched) const override {
    fastoptim::save_checkpoint(path, built(), sched);
  }
  void load(const std::string& path, fastoptim::SchedulerRef sched) override {
    fastoptim::load_checkpoint(path, built(), sched);
  }

 private:
  static void check_aligned(const void* p, const std::string& who) {
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
      throw invalid(who + " is not aligned to its dtype (" + std::to_string(alignof(T)) + " bytes)");
  }
  Opt& built() const {
    if (!opt_) throw bad_state(std::string(Info::name) + " has no parameters yet: add a param group first");
    return *opt_;
  }
  typename Opt::group_type& group(std::size_t g) const {
    Opt& o = built();
    if (g >= o.param_groups().size())
      throw invalid("param group " + std::to_string(g) + " does not exist (the optimizer has " +
                    std::to_string(o.param_groups().size()) + ")");
    return o.param_groups()[g];
  }

  Options defaults_;
  std::unique_ptr<Opt> opt_;
  std::unique_ptr<ls::OptimizerGroups<Opt>> groups_;
  std::vector<std::size_t> sizes_;
  std::vector<fastoptim::Span<const T>> spans_;  // reused by step()
};

using Factory = std::unique_ptr<AnyOptimizer> (*)(fastoptim_dtype, const Json&);
struct OptimizerEntry {
  const char* name;
  Factory make;
};

template <template <class> class Opt>
std::unique_ptr<AnyOptimizer> make_one(fastoptim_dtype dtype, const Json& defaults) {
  if (dtype == FASTOPTIM_FLOAT32) return std::make_unique<OptimizerImpl<Opt<float>>>(defaults);
  return std::make_unique<OptimizerImpl<Opt<double>>>(defaults);
}

template <template <class> class... Opt>
std::vector<OptimizerEntry> entries(fastoptim::OptimizerList<Opt...>) {
  return {OptimizerEntry{fastoptim::InfoOf<Opt<float>>::name, &make_one<Opt>}...};
}

const std::vector<OptimizerEntry>& optimizer_table() {
  static const std::vector<OptimizerEntry> t = entries(fastoptim::Optimizers{});
  return t;
}

}  // namespace

std::unique_ptr<AnyOptimizer> make_optimizer(const std::string& name, fastoptim_dtype dtype, const Json& defaults) {
  if (dtype != FASTOPTIM_FLOAT32 && dtype != FASTOPTIM_FLOAT64)
    throw invalid("dtype must be FASTOPTIM_FLOAT32 or FASTOPTIM_FLOAT64, got " + std::to_string(static_cast<int>(dtype)));
  std::string known;
  for (const auto& e : optimizer_table()) {
    if (name == e.name) return e.make(dtype, defaults);
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  throw invalid("unknown optimizer '" + name + "' (fastoptim has " + known + ")");
}

const char* optimizer_name_at(std::size_t i) {
  return i < optimizer_table().size() ? optimizer_table()[i].name : nullptr;
}

}  // namespace fastoptim_capi
