#pragma once
// fastoptim::AdaBelief (Zhuang et al. 2020, "AdaBelief Optimizer: Adapting Stepsizes by the Belief in
// Observed Gradients"), as the adabelief-pytorch reference (0.2.x, whose defaults are decoupled weight decay
// and RAdam-style rectification), with maximize. Not in torch.optim.
//
//   fastoptim::AdaBeliefOptions o;  o.lr = 1e-3;  o.weight_decay = 1e-2;
//   fastoptim::AdaBelief<float> opt({weights}, o);
//   opt.step({grads});

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "adabelief_kernel.hpp"

namespace fastoptim {

struct AdaBeliefOptions : AdaBeliefHyper {
  // `stepping`: the check step() repeats, which takes a negative lr (see AdamOptions::validate).
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    detail::check_nonneg(eps, "epsilon value");
    if (!(beta1 >= 0.0 && beta1 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 0: " + std::to_string(beta1));
    if (!(beta2 >= 0.0 && beta2 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 1: " + std::to_string(beta2));
    detail::check_nonneg(weight_decay, "weight_decay value");
  }
};

template <class T>
struct AdaBeliefState {
  std::int64_t step = 0;
  std::vector<T> exp_avg, exp_avg_var, max_exp_avg_var;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who);
    detail::check_buffer_size(exp_avg_var.size(), n, "exp_avg_var", who);
    detail::check_buffer_size(max_exp_avg_var.size(), n, "max_exp_avg_var", who);
  }
};

template <class T>
class AdaBelief : public Optimizer<AdaBelief<T>, T, AdaBeliefOptions, AdaBeliefState<T>> {
  using Base = Optimizer<AdaBelief<T>, T, AdaBeliefOptions, AdaBeliefState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, AdaBeliefState<T>& st, const AdaBeliefOptions& o) {
    const std::size_t n = p.size();
    if (st.exp_avg.size() != n) st.exp_avg.assign(n, T(0));
    if (st.exp_avg_var.size() != n) st.exp_avg_var.assign(n, T(0));
    if (o.amsgrad && st.max_exp_avg_var.size() != n) st.max_exp_avg_var.assign(n, T(0));
    st.step += 1;
    return false;
  }

  void update(Span<T> p, Span<const T> g, AdaBeliefState<T>& st, const AdaBeliefOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    adabelief_step<T>(p.data() + b, g.data() + b, st.exp_avg.data() + b, st.exp_avg_var.data() + b,
                      o.amsgrad ? st.max_exp_avg_var.data() + b : nullptr, e - b, o, static_cast<double>(st.step),
                      kSerial);
  }
};

}  // namespace fastoptim
