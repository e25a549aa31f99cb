#pragma once
// The C++ optimizer front end shared by every optimizer: parameter groups over caller-owned memory,
// per-parameter state owned by the optimizer, and a step() that validates every gradient before it
// touches anything. Each optimizer supplies its options type, its state type and one update hook.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "overlap.hpp"
#include "parallel.hpp"
#include "span.hpp"

namespace fastoptim {

template <class T, class Options>
struct ParamGroup {
  std::vector<Span<T>> params;
  Options options{};
  // Set by the first learning-rate scheduler attached (torch's group["initial_lr"]).
  std::optional<double> initial_lr{};
};

namespace detail {

inline std::string param_name(std::size_t index) { return "parameter " + std::to_string(index); }

}  // namespace detail

// CRTP base. Derived provides
//   bool prepare(Span<T> param, State& state, const Options& options)
//       allocates the state on first use and advances per-parameter counters (may throw); the flag it
//       returns is handed to update (e.g. "initialise the momentum buffer from this gradient");
//   void update(Span<T> param, Span<const T> grad, State& state, const Options& options, bool flag,
//               std::size_t begin, std::size_t end) noexcept
//       the update rule over elements [begin, end) of one parameter, on the calling thread;
// and Options provides `void validate(bool stepping = false) const`. step() prepares every parameter, then
// splits the elements of all of them across threads at once (parallel_for_items), so many small tensors
// use every thread and a tiny step wakes none. A rule that needs a reduction over a whole parameter first
// (LAMB's norms) replaces that last part by defining `void run_step(const std::vector<StepItem>&)`.
template <class Derived, class T, class Options, class State>
class Optimizer {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "fastoptim optimizers take float or double");

 public:
  using value_type = T;
  using options_type = Options;
  using state_type = State;
  using group_type = ParamGroup<T, Options>;

  Optimizer(std::vector<Span<T>> params, Options options) {
    if (params.empty()) throw std::invalid_argument("optimizer got an empty parameter list");
    add_param_group(group_type{std::move(params), options});
  }
  explicit Optimizer(std::vector<group_type> groups) {
    if (groups.empty()) throw std::invalid_argument("optimizer got an empty parameter list");
    for (auto& g : groups) add_param_group(std::move(g));
  }

  void add_param_group(group_type group) {
    group.options.validate();
    const std::size_t first = num_params();
    std::vector<detail::ByteRange> ranges;
    std::size_t k = 0;
    for (const auto& g : groups_)
      for (const auto& p : g.params) ranges.push_back(detail::byte_range(p.data(), p.size(), true, k++));
    for (const auto& p : group.params) {
      if (p.data() == nullptr && p.size() != 0) throw std::invalid_argument(detail::param_name(k) + " is null");
      ranges.push_back(detail::byte_range(p.data(), p.size(), true, k++));
    }
    const auto [a, b] = detail::find_write_overlap(ranges);
    if (a) {
      const auto i = std::min(a->index, b->index), j = std::max(a->index, b->index);
      throw std::invalid_argument(detail::param_name(j) + " overlaps " + detail::param_name(i) +
                                  (i < first ? " of an earlier group" : "") + "; parameters must not share memory");
    }
    state_.resize(state_.size() + group.params.size());
    groups_.push_back(std::move(group));
  }

  // grads[i] is the gradient of the i-th parameter in group order, or an empty Span (nullptr) for "no
  // gradient this step": that parameter and its state are left untouched.
  void step(const std::vector<Span<const T>>& grads) {
    const std::size_t n = num_params();
    if (grads.size() != n)
      throw std::invalid_argument("expected " + std::to_string(n) + " gradients, got " + std::to_string(grads.size()));
    std::vector<detail::ByteRange> ranges;
    std::size_t k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        const Span<const T>& g = grads[k];
        if (g.data() != nullptr) {
          if (g.size() != p.size())
            throw std::invalid_argument("gradient of " + detail::param_name(k) + " has " + std::to_string(g.size()) +
                                        " elements, the parameter has " + std::to_string(p.size()));
          ranges.push_back(detail::byte_range(g.data(), g.size(), false, k));
        }
        ranges.push_back(detail::byte_range(p.data(), p.size(), true, k));
        ++k;
      }
    }
    const auto [a, b] = detail::find_write_overlap(ranges);
    if (a) {
      if (a->written && b->written)  // parameters edited into param_groups after construction
        throw std::invalid_argument(detail::param_name(std::max(a->index, b->index)) + " overlaps " +
                                    detail::param_name(std::min(a->index, b->index)));
      const auto* grad = a->written ? b : a;
      const auto* param = a->written ? a : b;
      throw std::invalid_argument("gradient of " + detail::param_name(grad->index) + " overlaps " +
                                  detail::param_name(param->index));
    }
    for (const auto& group : groups_) group.options.validate(/*stepping=*/true);  // may have been edited since
    std::vector<StepItem> work;
    work.reserve(n);
    k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        if (grads[k].data() != nullptr) {
          const bool flag = derived().prepare(p, state_[k], group.options);
          work.push_back(StepItem{p, grads[k], &state_[k], &group.options, flag});
        }
        ++k;
      }
    }
    derived().run_step(work);
  }

  // One prepared parameter of a step.
  struct StepItem {
    Span<T> param;
    Span<const T> grad;
    State* state;
    const Options* options;
    bool flag;
  };

  // The element-wise update of every prepared parameter, all elements split across threads at once.
  void run_step(const std::vector<StepItem>& work) {
    parallel_for_items(
        work.size(), [&](std::size_t i) { return work[i].param.size(); }, kDefaultGrain,
        [&](std::size_t i, std::size_t b, std::size_t e) {
          const StepItem& w = work[i];
          derived().update(w.param, w.grad, *w.state, *w.options, w.flag, b, e);
        });
  }

  std::vector<group_type>& param_groups() noexcept { return groups_; }
  const std::vector<group_type>& param_groups() const noexcept { return groups_; }
  std::size_t num_params() const noexcept { return state_.size(); }

  // Per-parameter state, indexed like torch's state_dict (group order). Empty until the first step
  // that gives the parameter a gradient (Adagrad's constructor fills its parameters' state, as torch's).
  State& state(std::size_t index) { return state_.at(index); }
  const State& state(std::size_t index) const { return state_.at(index); }

  // Installs a saved state for one parameter, after checking its buffers match the parameter.
  void load_state(std::size_t index, State state) {
    const Span<T> p = flat_params().at(index);
    state.check(p.size(), detail::param_name(index));
    state_.at(index) = std::move(state);
  }

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  std::vector<Span<T>> flat_params() const {
    std::vector<Span<T>> all;
    for (const auto& g : groups_) all.insert(all.end(), g.params.begin(), g.params.end());
    return all;
  }

  std::vector<group_type> groups_;
  std::vector<State> state_;
};

namespace detail {

inline void check_buffer_size(std::size_t got, std::size_t want, const char* key, const std::string& who) {
  if (got != 0 && got != want)
    throw std::invalid_argument("state '" + std::string(key) + "' of " + who + " has " + std::to_string(got) +
                                " elements, the parameter has " + std::to_string(want));
}

inline void check_lr(double lr, bool stepping) {
  if (stepping ? std::isnan(lr) : !(lr >= 0.0))
    throw std::invalid_argument("Invalid learning rate: " + std::to_string(lr));
}

inline void check_nonneg(double v, const char* what) {
  if (!(v >= 0.0)) throw std::invalid_argument(std::string("Invalid ") + what + ": " + std::to_string(v));
}

}  // namespace detail
}  // namespace fastoptim
