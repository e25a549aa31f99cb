#pragma once
// fastoptim::Rprop, as torch.optim.Rprop (resilient backpropagation, Riedmiller & Braun 1993): per-element
// step sizes that grow while the gradient keeps its sign and shrink when it flips.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "rprop_kernel.hpp"

namespace fastoptim {

struct RpropOptions : RpropHyper {
  // `stepping`: the check step() repeats, which takes a negative lr as torch does (a scheduler may round it
  // a hair below zero); construction and new groups require lr >= 0. As torch, step sizes are not checked.
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    if (!(0.0 < etaminus && etaminus < 1.0 && 1.0 < etaplus))
      throw std::invalid_argument("Invalid eta values: " + std::to_string(etaminus) + ", " + std::to_string(etaplus));
  }
};

template <class T>
struct RpropState {
  std::int64_t step = 0;
  std::vector<T> prev, step_size;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(prev.size(), n, "prev", who);
    detail::check_buffer_size(step_size.size(), n, "step_size", who);
  }
};

template <class T>
class Rprop : public Optimizer<Rprop<T>, T, RpropOptions, RpropState<T>> {
  using Base = Optimizer<Rprop<T>, T, RpropOptions, RpropState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, RpropState<T>& st, const RpropOptions& o) {
    const std::size_t n = p.size();
    if (st.prev.size() != n) st.prev.assign(n, T(0));
    if (st.step_size.size() != n) st.step_size.assign(n, static_cast<T>(o.lr));  // torch's full_like(grad, lr)
    st.step += 1;
    return false;
  }

  void update(Span<T> p, Span<const T> g, RpropState<T>& st, const RpropOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    rprop_step<T>(p.data() + b, g.data() + b, st.prev.data() + b, st.step_size.data() + b, e - b, o, kSerial);
  }
};

}  // namespace fastoptim
