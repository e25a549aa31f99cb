#pragma once
// fastoptim::ASGD, as torch.optim.ASGD (averaged SGD, Polyak & Juditsky 1992, "Acceleration of Stochastic
// Approximation by Averaging"). `ax` holds the running average of the parameter from step t0 on.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "asgd_kernel.hpp"

namespace fastoptim {

struct ASGDOptions : ASGDHyper {
  // `stepping`: the check step() repeats, which takes a negative lr as torch does (a scheduler may round it
  // a hair below zero); construction and new groups require lr >= 0. As torch, lambd, alpha and t0 are
  // not checked.
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    detail::check_nonneg(weight_decay, "weight_decay value");
  }
};

template <class T>
struct ASGDState {
  std::int64_t step = 0;
  // torch keeps eta and mu as float32 tensors, computed in double and rounded; so do we.
  float eta = 0.0f;  // set to lr when the state is created (on the parameter's first step)
  float mu = 1.0f;
  std::vector<T> ax;

  // The eta and mu that the update in progress reads: prepare() moves eta and mu on to the next step's
  // values, as torch does at the end of its step, and keeps the current ones here. Not part of torch's state.
  float eta_now = 0.0f, mu_now = 1.0f;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(ax.size(), n, "ax", who);
  }
};

template <class T>
class ASGD : public Optimizer<ASGD<T>, T, ASGDOptions, ASGDState<T>> {
  using Base = Optimizer<ASGD<T>, T, ASGDOptions, ASGDState<T>>;

 public:
  using Base::Base;

  bool prepare(Span<T> p, ASGDState<T>& st, const ASGDOptions& o) {
    const std::size_t n = p.size();
    if (st.ax.size() != n) {  // torch's lazy initialisation
      st.ax.assign(n, T(0));
      st.eta = static_cast<float>(o.lr);
      st.mu = 1.0f;
    }
    st.step += 1;
    st.eta_now = st.eta;
    st.mu_now = st.mu;
    st.eta = asgd_next_eta(o, static_cast<double>(st.step));
    st.mu = asgd_next_mu(o, static_cast<double>(st.step));
    return false;
  }

  void update(Span<T> p, Span<const T> g, ASGDState<T>& st, const ASGDOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    asgd_step<T>(p.data() + b, g.data() + b, st.ax.data() + b, e - b, o, st.eta_now, st.mu_now, kSerial);
  }
};

}  // namespace fastoptim
