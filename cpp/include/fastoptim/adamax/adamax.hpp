#pragma once
// fastoptim::Adamax, as torch.optim.Adamax (Kingma & Ba 2015, section 7.1: Adam with the infinity norm).

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "adamax_kernel.hpp"

namespace fastoptim {

struct AdamaxOptions : AdamaxHyper {
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
struct AdamaxState {
  std::int64_t step = 0;
  std::vector<T> exp_avg, exp_inf;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who);
    detail::check_buffer_size(exp_inf.size(), n, "exp_inf", who);
  }
};

template <class T>
class Adamax : public Optimizer<Adamax<T>, T, AdamaxOptions, AdamaxState<T>> {
  using Base = Optimizer<Adamax<T>, T, AdamaxOptions, AdamaxState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, AdamaxState<T>& st, const AdamaxOptions&) {
    const std::size_t n = p.size();
    if (st.exp_avg.size() != n) st.exp_avg.assign(n, T(0));
    if (st.exp_inf.size() != n) st.exp_inf.assign(n, T(0));
    st.step += 1;
    return false;
  }

  void update(Span<T> p, Span<const T> g, AdamaxState<T>& st, const AdamaxOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    adamax_step<T>(p.data() + b, g.data() + b, st.exp_avg.data() + b, st.exp_inf.data() + b, e - b, o,
                   static_cast<double>(st.step), kSerial);
  }
};

}  // namespace fastoptim
