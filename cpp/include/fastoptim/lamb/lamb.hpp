#pragma once
// fastoptim::LAMB (You et al. 2019, "Large Batch Optimization for Deep Learning"): Adam's direction plus
// weight decay, scaled per parameter tensor by the trust ratio ||p|| / ||u||, with norms computed in a
// fixed order (lamb_kernel.hpp), so results do not depend on the thread count. Not in torch.optim.
//
//   fastoptim::LAMBOptions o;  o.lr = 1e-3;  o.weight_decay = 0.01;
//   fastoptim::LAMB<float> opt({weights}, o);
//   opt.step({grads});

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "lamb_kernel.hpp"

namespace fastoptim {

struct LAMBOptions : LAMBHyper {
  // `stepping`: the check step() repeats, which takes a negative lr (see AdamOptions::validate).
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    detail::check_nonneg(eps, "epsilon value");
    if (!(beta1 >= 0.0 && beta1 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 0: " + std::to_string(beta1));
    if (!(beta2 >= 0.0 && beta2 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 1: " + std::to_string(beta2));
    detail::check_nonneg(weight_decay, "weight_decay value");
    detail::check_nonneg(clamp_value, "clamp value");
  }
};

template <class T>
struct LAMBState {
  std::int64_t step = 0;
  std::vector<T> exp_avg, exp_avg_sq;
  double trust_ratio = 1.0;  // of the last step (informational)

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who);
    detail::check_buffer_size(exp_avg_sq.size(), n, "exp_avg_sq", who);
  }
};

template <class T>
class LAMB : public Optimizer<LAMB<T>, T, LAMBOptions, LAMBState<T>> {
  using Base = Optimizer<LAMB<T>, T, LAMBOptions, LAMBState<T>>;

 public:
  using Base::Base;
  using typename Base::StepItem;

  bool prepare(Span<T> p, LAMBState<T>& st, const LAMBOptions&) {
    const std::size_t n = p.size();
    if (st.exp_avg.size() != n) st.exp_avg.assign(n, T(0));
    if (st.exp_avg_sq.size() != n) st.exp_avg_sq.assign(n, T(0));
    st.step += 1;
    return false;
  }

  // The trust ratio needs whole-tensor norms before any parameter moves: three passes (lamb_passes).
  void run_step(const std::vector<StepItem>& work) {
    std::vector<LAMBScalars<T>> scalars;
    scalars.reserve(work.size());
    for (const auto& w : work) scalars.emplace_back(*w.options, static_cast<double>(w.state->step));
    std::vector<T> neg_step(work.size());
    lamb_passes(
        work.size(), [&](std::size_t i) { return work[i].param.size(); },
        [&](std::size_t i, std::size_t b, std::size_t e, double* sums) {
          const StepItem& w = work[i];
          lamb_moments_ref(w.param.data() + b, w.grad.data() + b, w.state->exp_avg.data() + b,
                           w.state->exp_avg_sq.data() + b, e - b, scalars[i], sums);
        },
        [&](std::size_t i, double param_sq, double update_sq) {
          const StepItem& w = work[i];
          w.state->trust_ratio = lamb_trust_ratio(*w.options, param_sq, update_sq);
          neg_step[i] = static_cast<T>(-w.options->lr * w.state->trust_ratio);
        },
        [&](std::size_t i, std::size_t b, std::size_t e) {
          const StepItem& w = work[i];
          lamb_apply_ref(w.param.data() + b, w.state->exp_avg.data() + b, w.state->exp_avg_sq.data() + b, e - b,
                         scalars[i], neg_step[i]);
        });
  }
};

}  // namespace fastoptim
