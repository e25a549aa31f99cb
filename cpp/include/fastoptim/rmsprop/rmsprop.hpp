#pragma once
// fastoptim::RMSprop, as torch.optim.RMSprop (Hinton's lecture 6e; centered variant of Graves 2013).

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "rmsprop_kernel.hpp"

namespace fastoptim {

struct RMSpropOptions : RMSpropHyper {
  // `stepping`: the check step() repeats, which takes a negative lr as torch does (a scheduler may round it
  // a hair below zero); construction and new groups require lr >= 0.
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    detail::check_nonneg(eps, "epsilon value");
    detail::check_nonneg(momentum, "momentum value");
    detail::check_nonneg(weight_decay, "weight_decay value");
    detail::check_nonneg(alpha, "alpha value");
  }
};

template <class T>
struct RMSpropState {
  std::int64_t step = 0;
  std::vector<T> square_avg, momentum_buffer, grad_avg;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(square_avg.size(), n, "square_avg", who);
    detail::check_buffer_size(momentum_buffer.size(), n, "momentum_buffer", who);
    detail::check_buffer_size(grad_avg.size(), n, "grad_avg", who);
  }
};

template <class T>
class RMSprop : public Optimizer<RMSprop<T>, T, RMSpropOptions, RMSpropState<T>> {
  using Base = Optimizer<RMSprop<T>, T, RMSpropOptions, RMSpropState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, RMSpropState<T>& st, const RMSpropOptions& o) {
    const std::size_t n = p.size();
    if (st.square_avg.size() != n) st.square_avg.assign(n, T(0));
    if (o.momentum > 0.0 && st.momentum_buffer.size() != n) st.momentum_buffer.assign(n, T(0));
    if (o.centered && st.grad_avg.size() != n) st.grad_avg.assign(n, T(0));
    st.step += 1;
    return false;
  }

  void update(Span<T> p, Span<const T> g, RMSpropState<T>& st, const RMSpropOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    rmsprop_step<T>(p.data() + b, g.data() + b, st.square_avg.data() + b,
                    o.centered ? st.grad_avg.data() + b : nullptr,
                    o.momentum > 0.0 ? st.momentum_buffer.data() + b : nullptr, e - b, o, kSerial);
  }
};

}  // namespace fastoptim
