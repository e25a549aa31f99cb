#pragma once
// fastoptim::RAdam, as torch.optim.RAdam (Liu et al. 2020, "On the Variance of the Adaptive Learning Rate
// and Beyond"; decoupled weight decay as Loshchilov & Hutter 2019).

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "radam_kernel.hpp"

namespace fastoptim {

struct RAdamOptions : RAdamHyper {
  // `stepping`: the check step() repeats, which takes a negative lr as torch does (a scheduler may round it
  // a hair below zero); construction and new groups require lr >= 0.
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    detail::check_nonneg(eps, "epsilon value");
    // At step() any beta but NaN is taken, as torch checks only new groups: OneCycleLR's last step can
    // push betas[0] past its maximum (and 1).
    if (stepping ? std::isnan(beta1) : !(beta1 >= 0.0 && beta1 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 0: " + std::to_string(beta1));
    if (stepping ? std::isnan(beta2) : !(beta2 >= 0.0 && beta2 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 1: " + std::to_string(beta2));
    detail::check_nonneg(weight_decay, "weight_decay value");
  }
};

template <class T>
struct RAdamState {
  std::int64_t step = 0;
  std::vector<T> exp_avg, exp_avg_sq;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who);
    detail::check_buffer_size(exp_avg_sq.size(), n, "exp_avg_sq", who);
  }
};

template <class T>
class RAdam : public Optimizer<RAdam<T>, T, RAdamOptions, RAdamState<T>> {
  using Base = Optimizer<RAdam<T>, T, RAdamOptions, RAdamState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, RAdamState<T>& st, const RAdamOptions&) {
    const std::size_t n = p.size();
    if (st.exp_avg.size() != n) st.exp_avg.assign(n, T(0));
    if (st.exp_avg_sq.size() != n) st.exp_avg_sq.assign(n, T(0));
    st.step += 1;
    return false;
  }

  void update(Span<T> p, Span<const T> g, RAdamState<T>& st, const RAdamOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    radam_step<T>(p.data() + b, g.data() + b, st.exp_avg.data() + b, st.exp_avg_sq.data() + b, e - b, o,
                  static_cast<double>(st.step), kSerial);
  }
};

}  // namespace fastoptim
