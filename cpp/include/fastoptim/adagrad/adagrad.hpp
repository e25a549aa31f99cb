#pragma once
// fastoptim::Adagrad, as torch.optim.Adagrad (Duchi, Hazan & Singer 2011).

#include <cstdint>
#include <utility>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/optimizer.hpp"
#include "adagrad_kernel.hpp"

namespace fastoptim {

struct AdagradOptions : AdagradHyper {
  // Value the `sum` state starts at (torch's initial_accumulator_value).
  double initial_accumulator_value = 0.0;

  // `stepping`: the check step() repeats, which takes a negative lr as torch does (a scheduler may round it
  // a hair below zero); construction and new groups require lr >= 0.
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    detail::check_nonneg(lr_decay, "lr_decay value");
    detail::check_nonneg(weight_decay, "weight_decay value");
    detail::check_nonneg(initial_accumulator_value, "initial_accumulator_value value");
    detail::check_nonneg(eps, "epsilon value");
  }
};

template <class T>
struct AdagradState {
  std::int64_t step = 0;
  std::vector<T> sum;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(sum.size(), n, "sum", who);
  }
};

template <class T>
class Adagrad : public Optimizer<Adagrad<T>, T, AdagradOptions, AdagradState<T>> {
  using Base = Optimizer<Adagrad<T>, T, AdagradOptions, AdagradState<T>>;

 public:
  // As torch, the constructor's parameters have their state from the start (step 0, sum filled), so a
  // checkpoint taken before the first step has it; a group added later gets its state at its first step.
  Adagrad(std::vector<Span<T>> params, AdagradOptions options) : Base(std::move(params), std::move(options)) {
    init_state();
  }
  explicit Adagrad(std::vector<typename Base::group_type> groups) : Base(std::move(groups)) { init_state(); }

  bool prepare(Span<T> p, AdagradState<T>& st, const AdagradOptions& o) {
    const std::size_t n = p.size();
    if (st.sum.size() != n) st.sum.assign(n, static_cast<T>(o.initial_accumulator_value));
    st.step += 1;
    return false;
  }

  void update(Span<T> p, Span<const T> g, AdagradState<T>& st, const AdagradOptions& o, bool, std::size_t b,
              std::size_t e) noexcept {
    adagrad_step<T>(p.data() + b, g.data() + b, st.sum.data() + b, e - b, o, static_cast<double>(st.step), kSerial);
  }

 private:
  void init_state() {
    std::size_t k = 0;
    for (const auto& group : this->param_groups())
      for (const auto& p : group.params)
        this->state(k++).sum.assign(p.size(), static_cast<T>(group.options.initial_accumulator_value));
  }
};

}  // namespace fastoptim
