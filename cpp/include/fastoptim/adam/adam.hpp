#pragma once
// fastoptim::Adam and fastoptim::AdamW, as torch.optim.Adam / torch.optim.AdamW (Kingma & Ba 2015;
// Loshchilov & Hutter 2019 for decoupled weight decay; Reddi et al. 2018 for amsgrad).
//
//   fastoptim::AdamOptions o;  o.lr = 3e-4;
//   fastoptim::Adam<float> opt({weights}, o);
//   opt.step({grads});

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "adam_kernel.hpp"

namespace fastoptim {

struct AdamOptions : AdamHyper {
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

// AdamW differs from Adam only in its defaults: decoupled weight decay of 1e-2.
struct AdamWOptions : AdamOptions {
  AdamWOptions() {
    weight_decay = 1e-2;
    decoupled_weight_decay = true;
  }
};

template <class T>
struct AdamState {
  std::int64_t step = 0;
  std::vector<T> exp_avg, exp_avg_sq, max_exp_avg_sq;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who);
    detail::check_buffer_size(exp_avg_sq.size(), n, "exp_avg_sq", who);
    detail::check_buffer_size(max_exp_avg_sq.size(), n, "max_exp_avg_sq", who);
  }
};

template <class T, class Options>
class AdamFamily : public Optimizer<AdamFamily<T, Options>, T, Options, AdamState<T>> {
  using Base = Optimizer<AdamFamily<T, Options>, T, Options, AdamState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, AdamState<T>& st, const Options& o) {
    const std::size_t n = p.size();
    if (st.exp_avg.size() != n) st.exp_avg.assign(n, T(0));
    if (st.exp_avg_sq.size() != n) st.exp_avg_sq.assign(n, T(0));
    if (o.amsgrad && st.max_exp_avg_sq.size() != n) st.max_exp_avg_sq.assign(n, T(0));
    st.step += 1;
    return false;
  }

  void update(Span<T> p, Span<const T> g, AdamState<T>& st, const Options& o, bool, std::size_t b,
              std::size_t e) noexcept {
    adam_step<T>(p.data() + b, g.data() + b, st.exp_avg.data() + b, st.exp_avg_sq.data() + b,
                 o.amsgrad ? st.max_exp_avg_sq.data() + b : nullptr, e - b, o, static_cast<double>(st.step), kSerial);
  }
};

template <class T>
using Adam = AdamFamily<T, AdamOptions>;
template <class T>
using AdamW = AdamFamily<T, AdamWOptions>;

}  // namespace fastoptim
