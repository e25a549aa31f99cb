#pragma once
// fastoptim::Adadelta, as torch.optim.Adadelta (Zeiler 2012, "ADADELTA: An Adaptive Learning Rate Method").

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "adadelta_kernel.hpp"

namespace fastoptim {

struct AdadeltaOptions : AdadeltaHyper {
  // `stepping`: the check step() repeats, which takes a negative lr as torch does (a scheduler may round it
  // a hair below zero); construction and new groups require lr >= 0.
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    if (!(rho >= 0.0 && rho <= 1.0)) throw std::invalid_argument("Invalid rho value: " + std::to_string(rho));
    detail::check_nonneg(eps, "epsilon value");
    detail::check_nonneg(weight_decay, "weight_decay value");
  }
};

template <class T>
struct AdadeltaState {
  std::int64_t step = 0;
  std::vector<T> square_avg, acc_delta;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(square_avg.size(), n, "square_avg", who);
    detail::check_buffer_size(acc_delta.size(), n, "acc_delta", who);
  }
};

template <class T>
class Adadelta : public Optimizer<Adadelta<T>, T, AdadeltaOptions, AdadeltaState<T>> {
  using Base = Optimizer<Adadelta<T>, T, AdadeltaOptions, AdadeltaState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, AdadeltaState<T>& st, const AdadeltaOptions&) {
    const std::size_t n = p.size();
    if (st.square_avg.size() != n) st.square_avg.assign(n, T(0));
    if (st.acc_delta.size() != n) st.acc_delta.assign(n, T(0));
    st.step += 1;
    return false;
  }

  void update(Span<T> p, Span<const T> g, AdadeltaState<T>& st, const AdadeltaOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    adadelta_step<T>(p.data() + b, g.data() + b, st.square_avg.data() + b, st.acc_delta.data() + b, e - b, o,
                     kSerial);
  }
};

}  // namespace fastoptim
