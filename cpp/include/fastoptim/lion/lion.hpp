#pragma once
// fastoptim::Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), as the lion-pytorch
// reference implementation, with maximize. Not in torch.optim.
//
//   fastoptim::LionOptions o;  o.lr = 3e-5;  o.weight_decay = 1.0;
//   fastoptim::Lion<float> opt({weights}, o);
//   opt.step({grads});

#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "lion_kernel.hpp"

namespace fastoptim {

struct LionOptions : LionHyper {
  // `stepping`: the check step() repeats, which takes a negative lr (see AdamOptions::validate).
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    // beta = 1 is allowed, as the reference does (beta1 = 1 follows the momentum's sign alone).
    if (!(beta1 >= 0.0 && beta1 <= 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 0: " + std::to_string(beta1));
    if (!(beta2 >= 0.0 && beta2 <= 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 1: " + std::to_string(beta2));
    detail::check_nonneg(weight_decay, "weight_decay value");
  }
};

// Lion keeps no step count: the update has no bias correction.
template <class T>
struct LionState {
  std::vector<T> exp_avg;

  void check(std::size_t n, const std::string& who) const { detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who); }
};

template <class T>
class Lion : public Optimizer<Lion<T>, T, LionOptions, LionState<T>> {
  using Base = Optimizer<Lion<T>, T, LionOptions, LionState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, LionState<T>& st, const LionOptions&) {
    if (st.exp_avg.size() != p.size()) st.exp_avg.assign(p.size(), T(0));
    return false;
  }

  void update(Span<T> p, Span<const T> g, LionState<T>& st, const LionOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    lion_step<T>(p.data() + b, g.data() + b, st.exp_avg.data() + b, e - b, o, kSerial);
  }
};

}  // namespace fastoptim
