#pragma once
// fastoptim::SGD: stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay,
// as torch.optim.SGD.
//
//   std::vector<float> w(1000), g(1000);
//   fastoptim::SGD<float> opt({w}, {.lr = 0.1, .momentum = 0.9});   // C++20 designated init, or set fields
//   opt.step({g});

#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "sgd_kernel.hpp"

namespace fastoptim {

struct SGDOptions : SGDHyper {
  // `stepping`: the check step() repeats, which takes a negative lr as torch does (a scheduler may round it
  // a hair below zero); construction and new groups require lr >= 0.
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    detail::check_nonneg(momentum, "momentum value");
    detail::check_nonneg(weight_decay, "weight_decay value");
    if (nesterov && (momentum <= 0 || dampening != 0))
      throw std::invalid_argument("Nesterov momentum requires a momentum and zero dampening");
  }
};

template <class T>
struct SGDState {
  std::vector<T> momentum_buffer;  // empty until the first step with momentum != 0

  void check(std::size_t n, const std::string& who) const {
    detail::check_buffer_size(momentum_buffer.size(), n, "momentum_buffer", who);
  }
};

template <class T>
class SGD : public Optimizer<SGD<T>, T, SGDOptions, SGDState<T>> {
  using Base = Optimizer<SGD<T>, T, SGDOptions, SGDState<T>>;

 public:
  using Base::Base;

  // The flag: the momentum buffer is new and starts as the gradient (torch's first step).
  bool prepare(Span<T> p, SGDState<T>& st, const SGDOptions& o) {
    if (o.momentum == 0.0 || !st.momentum_buffer.empty() || p.size() == 0) return false;
    st.momentum_buffer.resize(p.size());
    return true;
  }

  void update(Span<T> p, Span<const T> g, SGDState<T>& st, const SGDOptions& o, bool init, std::size_t b,
              std::size_t e) noexcept {
    T* buf = o.momentum != 0.0 ? st.momentum_buffer.data() + b : nullptr;
    sgd_step<T>(p.data() + b, g.data() + b, buf, init, e - b, o, kSerial);
  }
};

}  // namespace fastoptim
