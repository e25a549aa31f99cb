#pragma once
// fastoptim::ScheduleFreeAdamW (Defazio et al. 2024, "The Road Less Scheduled"), as the reference
// AdamWScheduleFree of facebookresearch/schedulefree, with maximize. Not in torch.optim.
//
//   fastoptim::ScheduleFreeAdamWOptions o;  o.lr = 1e-3;  o.warmup_steps = 100;
//   fastoptim::ScheduleFreeAdamW<float> opt({weights}, o);
//   opt.train();                 // the parameters now hold y, where gradients are taken
//   opt.step({grads});
//   opt.eval();                  // the parameters now hold x, the average to evaluate or save
//
// As the reference, the optimizer starts in eval mode, step() refuses to run outside train mode, and the
// schedule (step count, lr_max, weight_sum) belongs to each param group.

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "schedulefree_kernel.hpp"

namespace fastoptim {

struct ScheduleFreeAdamWOptions : ScheduleFreeAdamWHyper, ScheduleFreeSchedule {
  bool train_mode = false;  // what the group's parameters hold: y (true) or x (false)

  // `stepping`: the check step() repeats, which takes a negative lr (see AdamOptions::validate).
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    // beta1 = 0 would leave x unrecoverable from y (eval() divides by beta1).
    if (!(beta1 > 0.0 && beta1 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 0: " + std::to_string(beta1));
    if (!(beta2 >= 0.0 && beta2 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 1: " + std::to_string(beta2));
    detail::check_nonneg(eps, "epsilon value");
    detail::check_nonneg(weight_decay, "weight_decay value");
    // counts at most 2^53: each step adds to k, and the schedule takes them as doubles
    if (warmup_steps < 0 || warmup_steps > (std::int64_t(1) << 53))
      throw std::invalid_argument("Invalid warmup_steps value: " + std::to_string(warmup_steps));
    if (!std::isfinite(r)) throw std::invalid_argument("Invalid r value: " + std::to_string(r));
    if (!(weight_lr_power >= 0.0 && std::isfinite(weight_lr_power)))
      throw std::invalid_argument("Invalid weight_lr_power value: " + std::to_string(weight_lr_power));
    if (k < 0 || k > (std::int64_t(1) << 53)) throw std::invalid_argument("param group 'k' must be in [0, 2^53]");
    if (!(weight_sum >= 0.0 && std::isfinite(weight_sum)))
      throw std::invalid_argument("param group 'weight_sum' must be finite and >= 0");
  }
};

template <class T>
struct ScheduleFreeAdamWState {
  std::vector<T> z, exp_avg_sq;

  void check(std::size_t n, const std::string& who) const {
    detail::check_buffer_size(z.size(), n, "z", who);
    detail::check_buffer_size(exp_avg_sq.size(), n, "exp_avg_sq", who);
  }
};

template <class T>
class ScheduleFreeAdamW : public Optimizer<ScheduleFreeAdamW<T>, T, ScheduleFreeAdamWOptions, ScheduleFreeAdamWState<T>> {
  using Base = Optimizer<ScheduleFreeAdamW<T>, T, ScheduleFreeAdamWOptions, ScheduleFreeAdamWState<T>>;

 public:
  using Base::Base;

  // Advances every group's schedule, then steps; a step that throws leaves the schedules as they were.
  void step(const std::vector<Span<const T>>& grads) {
    auto& groups = this->param_groups();
    if (!groups[0].options.train_mode)
      throw std::logic_error("ScheduleFreeAdamW was not in train mode when step() was called: call train() before "
                             "training steps and eval() before evaluating or saving");
    std::vector<ScheduleFreeSchedule> saved;
    for (auto& g : groups) {
      saved.push_back(g.options);
      schedulefree_advance(g.options, g.options);
    }
    try {
      Base::step(grads);
    } catch (...) {
      for (std::size_t i = 0; i < groups.size(); ++i) static_cast<ScheduleFreeSchedule&>(groups[i].options) = saved[i];
      throw;
    }
  }

  // Parameters hold y = lerp(x, z, 1 - beta1), where gradients are taken.
  void train() { switch_mode(true); }
  // Parameters hold x = lerp(y, z, 1 - 1 / beta1), the point to evaluate or save.
  void eval() { switch_mode(false); }

  bool prepare(Span<T> p, ScheduleFreeAdamWState<T>& st, const ScheduleFreeAdamWOptions&) {
    if (st.z.size() != p.size()) st.z.assign(p.begin(), p.end());  // z starts at the parameter
    if (st.exp_avg_sq.size() != p.size()) st.exp_avg_sq.assign(p.size(), T(0));
    return false;
  }

  void update(Span<T> p, Span<const T> g, ScheduleFreeAdamWState<T>& st, const ScheduleFreeAdamWOptions& o, bool,
              std::size_t b, std::size_t e) noexcept {
    schedulefree_adamw_step<T>(p.data() + b, g.data() + b, st.z.data() + b, st.exp_avg_sq.data() + b, e - b, o,
                               schedulefree_current(o, o), kSerial);
  }

 private:
  void switch_mode(bool train) {
    struct Item {
      Span<T> param;
      const T* z;
      T weight;
    };
    std::vector<Item> items;
    std::size_t k = 0;
    for (auto& g : this->param_groups()) {
      const bool move = g.options.train_mode != train;
      const T weight = static_cast<T>(train ? 1 - g.options.beta1 : 1 - 1 / g.options.beta1);
      for (const auto& p : g.params) {
        const auto& st = this->state(k++);
        if (move && st.z.size() == p.size() && !st.z.empty()) items.push_back(Item{p, st.z.data(), weight});
      }
      g.options.train_mode = train;
    }
    parallel_for_items(
        items.size(), [&](std::size_t i) { return items[i].param.size(); }, kDefaultGrain,
        [&](std::size_t i, std::size_t b, std::size_t e) {
          schedulefree_lerp_ref(items[i].param.data() + b, items[i].z + b, e - b, items[i].weight);
        });
  }
};

}  // namespace fastoptim
