#pragma once
// fastoptim::NAdam, as torch.optim.NAdam (Dozat 2016, "Incorporating Nesterov Momentum into Adam"; decoupled
// weight decay as Loshchilov & Hutter 2019).

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "nadam_kernel.hpp"

namespace fastoptim {

struct NAdamOptions : NAdamHyper {
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
    detail::check_nonneg(momentum_decay, "momentum_decay value");
  }
};

template <class T>
struct NAdamState {
  std::int64_t step = 0;
  // Product of the momentum caches mu_1 ... mu_step. torch keeps it as a 0-d tensor of its default dtype
  // (float32) and rounds every update to it; set mu_product_float32 = false for a state saved from torch
  // with float64 mu_product (torch's load_state_dict casts it to the parameter's dtype).
  double mu_product = 1.0;
  bool mu_product_float32 = true;
  std::vector<T> exp_avg, exp_avg_sq;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    if (!std::isfinite(mu_product)) throw std::invalid_argument("state 'mu_product' of " + who + " is not finite");
    detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who);
    detail::check_buffer_size(exp_avg_sq.size(), n, "exp_avg_sq", who);
  }
};

template <class T>
class NAdam : public Optimizer<NAdam<T>, T, NAdamOptions, NAdamState<T>> {
  using Base = Optimizer<NAdam<T>, T, NAdamOptions, NAdamState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, NAdamState<T>& st, const NAdamOptions& o) {
    const std::size_t n = p.size();
    if (st.exp_avg.size() != n) st.exp_avg.assign(n, T(0));
    if (st.exp_avg_sq.size() != n) st.exp_avg_sq.assign(n, T(0));
    st.step += 1;
    const double mu = nadam_mu(o, static_cast<double>(st.step));
    st.mu_product = nadam_mu_product(st.mu_product, mu, st.mu_product_float32);
    return false;
  }

  void update(Span<T> p, Span<const T> g, NAdamState<T>& st, const NAdamOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    nadam_step<T>(p.data() + b, g.data() + b, st.exp_avg.data() + b, st.exp_avg_sq.data() + b, e - b, o,
                  static_cast<double>(st.step), st.mu_product, kSerial);
  }
};

}  // namespace fastoptim
