#pragma once
// fastoptim::Adan (Xie et al. 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
// Models"), as the official implementation (sail-sg/Adan), with maximize. Not in torch.optim.
//
//   fastoptim::AdanOptions o;  o.lr = 1e-3;  o.weight_decay = 0.02;
//   fastoptim::Adan<float> opt({weights}, o);
//   opt.step({grads});
//
// As the official implementation, the step count belongs to the param group (AdanOptions::step): every
// step() advances it for every group, gradients or not, and the bias corrections use it.

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "adan_kernel.hpp"

namespace fastoptim {

struct AdanOptions : AdanHyper {
  // The group's step count (the official implementation's group['step']); 0 before the first step.
  std::int64_t step = 0;

  // `stepping`: the check step() repeats, which takes a negative lr (see AdamOptions::validate).
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    detail::check_nonneg(eps, "epsilon value");
    const double betas[3] = {beta1, beta2, beta3};
    for (int k = 0; k < 3; ++k)
      if (!(betas[k] >= 0.0 && betas[k] < 1.0))
        throw std::invalid_argument("Invalid beta parameter at index " + std::to_string(k) + ": " +
                                    std::to_string(betas[k]));
    detail::check_nonneg(weight_decay, "weight_decay value");
    // at most 2^53: each step adds one, and the bias corrections take it as a double
    if (step < 0 || step > (std::int64_t(1) << 53)) throw std::invalid_argument("param group 'step' must be in [0, 2^53]");
  }
};

template <class T>
struct AdanState {
  std::vector<T> exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad;

  void check(std::size_t n, const std::string& who) const {
    detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who);
    detail::check_buffer_size(exp_avg_sq.size(), n, "exp_avg_sq", who);
    detail::check_buffer_size(exp_avg_diff.size(), n, "exp_avg_diff", who);
    detail::check_buffer_size(neg_pre_grad.size(), n, "neg_pre_grad", who);
  }
};

template <class T>
class Adan : public Optimizer<Adan<T>, T, AdanOptions, AdanState<T>> {
  using Base = Optimizer<Adan<T>, T, AdanOptions, AdanState<T>>;

 public:
  using Base::Base;

  // Advances every group's step, then steps; a step that throws leaves the counts as they were.
  void step(const std::vector<Span<const T>>& grads) {
    auto& groups = this->param_groups();
    for (auto& g : groups) g.options.step += 1;
    try {
      Base::step(grads);
    } catch (...) {
      for (auto& g : groups) g.options.step -= 1;
      throw;
    }
  }

  // The official restart_opt(): zero moments and group step counts (neg_pre_grad is reset at the next step).
  void restart() {
    for (auto& g : this->param_groups()) g.options.step = 0;
    for (std::size_t i = 0; i < this->num_params(); ++i) {
      AdanState<T>& st = this->state(i);
      for (auto* buf : {&st.exp_avg, &st.exp_avg_sq, &st.exp_avg_diff}) std::fill(buf->begin(), buf->end(), T(0));
    }
  }

  // The flag tells update() to start from neg_pre_grad = -g (first step of the group or of the parameter).
  bool prepare(Span<T> p, AdanState<T>& st, const AdanOptions& o) {
    const std::size_t n = p.size();
    if (st.exp_avg.size() != n) st.exp_avg.assign(n, T(0));
    if (st.exp_avg_sq.size() != n) st.exp_avg_sq.assign(n, T(0));
    if (st.exp_avg_diff.size() != n) st.exp_avg_diff.assign(n, T(0));
    const bool first = st.neg_pre_grad.size() != n || o.step == 1;
    if (st.neg_pre_grad.size() != n) st.neg_pre_grad.assign(n, T(0));
    return first;
  }

  void update(Span<T> p, Span<const T> g, AdanState<T>& st, const AdanOptions& o, bool first, std::size_t b,
              std::size_t e) noexcept {
    adan_step<T>(p.data() + b, g.data() + b, st.exp_avg.data() + b, st.exp_avg_sq.data() + b,
                 st.exp_avg_diff.data() + b, st.neg_pre_grad.data() + b, e - b, o, static_cast<double>(o.step), first,
                 kSerial);
  }
};

}  // namespace fastoptim
