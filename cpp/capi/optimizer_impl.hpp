// The C API's type-erased optimizer over one C++ optimizer class (included by optimizers.cpp and, when
// Eigen is found, muon/muon.cpp). Nothing here is installed.
#pragma once

#include "internal.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

namespace fastoptim_capi {

template <class Opt, class = void>
struct has_modes : std::false_type {};
template <class Opt>
struct has_modes<Opt, std::void_t<decltype(std::declval<Opt&>().train()), decltype(std::declval<Opt&>().eval())>>
    : std::true_type {};

// The optimizers whose construction or step differs from the others'.
template <class Opt, class = void>
struct has_shapes : std::false_type {};  // Adafactor: each parameter's shape
template <class Opt>
struct has_shapes<Opt, std::void_t<decltype(std::declval<const Opt&>().shape(0))>> : std::true_type {};
template <class Opt, class = void>
struct has_rows : std::false_type {};  // SparseAdam: each parameter's rows; sparse gradients
template <class Opt>
struct has_rows<Opt, std::void_t<decltype(std::declval<const Opt&>().rows(0))>> : std::true_type {};
template <class Opt, class = void>
struct has_closure : std::false_type {};  // LBFGS: one group, steps with a closure
template <class Opt>
struct has_closure<Opt, std::void_t<typename Opt::Closure>> : std::true_type {};
template <class Opt, class = void>
struct has_matrices : std::false_type {};  // Muon: (rows, cols) parameters
template <class Opt>
struct has_matrices<Opt, std::void_t<decltype(std::declval<typename Opt::group_type&>().params[0].rows)>>
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

  void add_group(void* const* params, const std::vector<std::vector<std::size_t>>& shapes,
                 const Json& options) override {
    if (live_schedulers > 0)
      throw bad_state("cannot add a param group to an optimizer a scheduler drives (add all groups first)");
    const std::size_t count = shapes.size();
    if (count == 0) throw invalid("a param group needs at least one parameter");
    need(params, "params");
    if constexpr (has_closure<Opt>::value)
      if (opt_) throw invalid("LBFGS doesn't support per-parameter options (parameter groups)");
    typename Opt::group_type group;
    group.options = defaults_;
    fastoptim::ckpt::apply_options(group.options, options, true, "param group options");
    const std::size_t first = num_params();
    std::vector<std::size_t> sizes, rows;
    for (std::size_t i = 0; i < count; ++i) {
      const std::string who = "parameter " + std::to_string(first + i);
      std::size_t n = 1;
      for (const std::size_t d : shapes[i]) {
        if (d != 0 && n > std::numeric_limits<std::size_t>::max() / sizeof(T) / d)
          throw invalid("the shape of " + who + " is too large");
        n *= d;
      }
      sizes.push_back(n);
      rows.push_back(shapes[i].empty() ? 1 : shapes[i][0]);
      if (params[i] == nullptr && n != 0) throw invalid(who + " is NULL");
      check_aligned(params[i], who);
      if constexpr (has_matrices<Opt>::value) {
        if (shapes[i].size() != 2)
          throw invalid(std::string(Info::name) + " takes 2-D parameters: give " + who +
                        " a (rows, cols) shape with fastoptim_optimizer_add_param_group_shaped");
        group.params.push_back({static_cast<T*>(params[i]), shapes[i][0], shapes[i][1]});
      } else {
        group.params.emplace_back(static_cast<T*>(params[i]), n);
      }
    }
    std::vector<std::size_t> sizes_after = sizes_;
    sizes_after.insert(sizes_after.end(), sizes.begin(), sizes.end());
    std::unique_ptr<Opt> made;
    if constexpr (has_shapes<Opt>::value) {
      if (!opt_) made = std::make_unique<Opt>(std::vector<typename Opt::group_type>{std::move(group)}, shapes);
      else opt_->add_param_group(std::move(group), shapes);  // checks everything before adding
    } else if constexpr (has_rows<Opt>::value) {
      if (!opt_) made = std::make_unique<Opt>(std::vector<typename Opt::group_type>{std::move(group)}, rows);
      else opt_->add_param_group(std::move(group), rows);
    } else if constexpr (has_closure<Opt>::value) {
      made = std::make_unique<Opt>(std::move(group.params), group.options);
    } else {
      if (!opt_) made = std::make_unique<Opt>(std::vector<typename Opt::group_type>{std::move(group)});
      else opt_->add_param_group(std::move(group));  // checks everything before adding
    }
    if (made) {
      groups_ = std::make_unique<ls::OptimizerGroups<Opt>>(*made);
      opt_ = std::move(made);
    }
    sizes_ = std::move(sizes_after);
  }

  void step(const void* const* grads, std::size_t count) override {
    built();
    if constexpr (has_rows<Opt>::value) {
      throw invalid(std::string(Info::name) + " takes sparse gradients: use fastoptim_optimizer_step_sparse");
    } else if constexpr (has_closure<Opt>::value) {
      throw invalid(std::string(Info::name) + " steps with a closure: use fastoptim_optimizer_step_closure");
    } else {
      check_count(count);
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
  }

  void step_sparse(const std::int64_t* const* indices, const std::size_t* nnz, const void* const* values,
                   std::size_t count) override {
    built();
    if constexpr (has_rows<Opt>::value) {
      check_count(count);
      if (count > 0) {
        need(indices, "indices");
        need(nnz, "nnz");
        need(values, "values");
      }
      std::vector<std::optional<fastoptim::SparseGrad<T>>> grads(count);
      for (std::size_t i = 0; i < count; ++i) {
        if (indices[i] == nullptr) continue;  // no gradient this step
        const std::size_t rows = opt_->rows(i), row = rows == 0 ? 0 : sizes_[i] / rows;
        if (row != 0 && nnz[i] > std::numeric_limits<std::size_t>::max() / sizeof(T) / row)
          throw invalid("gradient of parameter " + std::to_string(i) + ": nnz is too large");
        check_aligned(indices[i], "gradient indices of parameter " + std::to_string(i));
        check_aligned(values[i], "gradient values of parameter " + std::to_string(i));
        grads[i] = fastoptim::SparseGrad<T>{fastoptim::Span<const std::int64_t>(indices[i], nnz[i]),
                                            fastoptim::Span<const T>(static_cast<const T*>(values[i]), nnz[i] * row)};
      }
      opt_->step(grads);
    } else {
      (void)indices, (void)nnz, (void)values, (void)count;
      throw invalid(std::string(Info::name) + " does not take sparse gradients: use fastoptim_optimizer_step");
    }
  }

  double step_closure(fastoptim_closure closure, void* user_data) override {
    built();
    if constexpr (has_closure<Opt>::value) {
      need(reinterpret_cast<const void*>(closure), "closure");
      std::vector<const void*> params;
      for (const auto& p : opt_->param_groups()[0].params) params.push_back(p.data());
      std::vector<void*> grad_ptrs;
      return opt_->step([&](const std::vector<fastoptim::Span<T>>& grads) {
        grad_ptrs.clear();
        for (const auto& g : grads) grad_ptrs.push_back(g.data());
        double loss = 0.0;
        const int rc = closure(user_data, params.data(), grad_ptrs.data(), grads.size(), &loss);
        if (rc != 0)
          throw Error(FASTOPTIM_ERROR_CALLBACK, "the closure returned " + std::to_string(rc) +
                                                    " (the step was undone: parameters and state are unchanged)");
        return loss;
      });
    } else {
      (void)closure, (void)user_data;
      throw invalid(std::string(Info::name) + " does not step with a closure: use fastoptim_optimizer_step");
    }
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
  void check_count(std::size_t count) const {
    if (count != sizes_.size())
      throw invalid("expected " + std::to_string(sizes_.size()) + " gradients (one per parameter), got " +
                    std::to_string(count));
  }
  template <class E = T>
  static void check_aligned(const void* p, const std::string& who) {
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(E) != 0)
      throw invalid(who + " is not aligned to its dtype (" + std::to_string(alignof(E)) + " bytes)");
  }
  static void check_aligned(const std::int64_t* p, const std::string& who) { check_aligned<std::int64_t>(p, who); }
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

}  // namespace fastoptim_capi
