#pragma once
// fastoptim::Muon, as torch.optim.Muon (torch 2.13): momentum, then Newton-Schulz orthogonalization of
// each 2-D parameter's update (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural
// networks"; the match_rms_adamw scaling from Liu et al. 2025, "Muon is Scalable for LLM Training").
//
// Needs Eigen 3.4 (the only fastoptim header that does), so fastoptim.hpp does not include it:
//   #include <fastoptim/muon/muon.hpp>
// and with CMake, find_package(fastoptim COMPONENTS muon) and link fastoptim::muon.
//
//   std::vector<float> w(256 * 128), g(256 * 128);
//   fastoptim::Muon<float> opt({{w.data(), 256, 128}}, fastoptim::MuonOptions{});
//   opt.step({g});

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/optimizer.hpp"
#include "../core/overlap.hpp"
#include "../core/span.hpp"
#include "muon_kernel.hpp"

namespace fastoptim {

struct MuonOptions : MuonHyper {
  // torch's messages. torch checks ns_steps only when stepping; we check it with the rest.
  void validate(bool stepping = false) const {
    if (stepping ? std::isnan(lr) : !(lr >= 0.0))
      throw std::invalid_argument("Learning rate should be >= 0 but is: " + std::to_string(lr));
    if (!(momentum >= 0.0)) throw std::invalid_argument("momentum should be >= 0 but is: " + std::to_string(momentum));
    if (!(weight_decay >= 0.0))
      throw std::invalid_argument("weight decay should be >= 0 but is: " + std::to_string(weight_decay));
    if (ns_steps >= 100)
      throw std::invalid_argument("Number of steps must be less than 100 for computational efficiency");
  }
};

template <class T>
struct MuonState {
  std::vector<T> momentum_buffer;  // empty until the parameter's first gradient

  void check(std::size_t n, const std::string& who) const {
    detail::check_buffer_size(momentum_buffer.size(), n, "momentum_buffer", who);
  }
};

// A row-major (rows, cols) matrix in caller-owned memory.
template <class T>
struct MatrixSpan {
  T* data = nullptr;
  std::size_t rows = 0, cols = 0;
  std::size_t size() const noexcept { return rows * cols; }
};

template <class T>
struct MuonGroup {
  std::vector<MatrixSpan<T>> params;
  MuonOptions options{};
  std::optional<double> initial_lr{};  // set by the first learning-rate scheduler attached
};

template <class T>
class Muon {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "fastoptim optimizers take float or double");

 public:
  using value_type = T;
  using options_type = MuonOptions;
  using state_type = MuonState<T>;
  using group_type = MuonGroup<T>;

  Muon(std::vector<MatrixSpan<T>> params, MuonOptions options = {}) {
    if (params.empty()) throw std::invalid_argument("optimizer got an empty parameter list");
    add_param_group(group_type{std::move(params), options});
  }
  explicit Muon(std::vector<group_type> groups) {
    if (groups.empty()) throw std::invalid_argument("optimizer got an empty parameter list");
    for (auto& g : groups) add_param_group(std::move(g));
  }

  void add_param_group(group_type group) {
    group.options.validate();
    for (const auto& p : group.params)
      if (p.data == nullptr && p.size() != 0) throw std::invalid_argument("a parameter is null");
    groups_.push_back(std::move(group));
    try {
      check_params();
    } catch (...) {
      groups_.pop_back();
      throw;
    }
    state_.resize(state_.size() + groups_.back().params.size());
  }

  // grads[i]: the gradient of the i-th parameter in group order (rows * cols elements, row-major), or an
  // empty Span for "no gradient this step". Everything is checked before anything is written.
  void step(const std::vector<Span<const T>>& grads) {
    const std::size_t n = num_params();
    if (grads.size() != n)
      throw std::invalid_argument("expected " + std::to_string(n) + " gradients, got " + std::to_string(grads.size()));
    std::vector<detail::ByteRange> ranges;
    std::size_t k = 0;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        const auto& g = grads[k];
        if (g.data() != nullptr) {
          if (g.size() != p.size())
            throw std::invalid_argument("gradient of " + detail::param_name(k) + " has " + std::to_string(g.size()) +
                                        " elements, the parameter has " + std::to_string(p.size()));
          ranges.push_back(detail::byte_range(g.data(), g.size(), false, k));
        }
        ranges.push_back(detail::byte_range(p.data, p.size(), true, k));
        ++k;
      }
    }
    const auto [a, b] = detail::find_write_overlap(ranges);
    if (a)
      throw std::invalid_argument("arrays of " + detail::param_name(std::min(a->index, b->index)) + " and " +
                                  detail::param_name(std::max(a->index, b->index)) + " overlap in memory");
    for (const auto& group : groups_) group.options.validate(/*stepping=*/true);
    k = 0;
    MuonWorkspace ws;
    for (const auto& group : groups_) {
      for (const auto& p : group.params) {
        if (grads[k].data() != nullptr) {
          auto& buf = state_[k].momentum_buffer;
          if (buf.size() != p.size()) buf.assign(p.size(), T(0));
          muon_update<T>(p.data, grads[k].data(), buf.data(), p.rows, p.cols, group.options, ws);
        }
        ++k;
      }
    }
  }

  std::vector<group_type>& param_groups() noexcept { return groups_; }
  const std::vector<group_type>& param_groups() const noexcept { return groups_; }
  std::size_t num_params() const noexcept { return state_.size(); }

  MuonState<T>& state(std::size_t index) { return state_.at(index); }
  const MuonState<T>& state(std::size_t index) const { return state_.at(index); }

  void load_state(std::size_t index, MuonState<T> state) {
    std::size_t k = 0;
    for (const auto& g : groups_)
      for (const auto& p : g.params)
        if (k++ == index) {
          state.check(p.size(), detail::param_name(index));
          state_.at(index) = std::move(state);
          return;
        }
    throw std::out_of_range("no parameter " + std::to_string(index));
  }

 private:
  void check_params() const {
    std::vector<detail::ByteRange> ranges;
    std::size_t k = 0;
    for (const auto& g : groups_)
      for (const auto& p : g.params) ranges.push_back(detail::byte_range(p.data, p.size(), true, k++));
    const auto [a, b] = detail::find_write_overlap(ranges);
    if (a)
      throw std::invalid_argument(detail::param_name(std::max(a->index, b->index)) + " overlaps " +
                                  detail::param_name(std::min(a->index, b->index)) + "; parameters must not share memory");
  }

  std::vector<group_type> groups_;
  std::vector<MuonState<T>> state_;
};

}  // namespace fastoptim
