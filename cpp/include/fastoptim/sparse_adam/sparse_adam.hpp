#pragma once
// fastoptim::SparseAdam, as torch.optim.SparseAdam: Adam on the rows of the leading dimension that a
// sparse gradient touches (e.g. the looked-up rows of an embedding table). The optimizer needs each
// parameter's number of rows; a gradient is a list of row indices and one row of values per index:
//
//   std::vector<float> table(10000 * 64);
//   fastoptim::SparseAdam<float> opt({table}, {10000});            // 10000 rows of 64
//   std::vector<std::int64_t> rows{3, 17, 3};                      // row 3 twice: its gradients are summed
//   std::vector<float> values(3 * 64);
//   opt.step({fastoptim::SparseGrad<float>{rows, values}});        // std::nullopt: no gradient this step

#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/optimizer.hpp"
#include "sparse_adam_kernel.hpp"

namespace fastoptim {

struct SparseAdamOptions : SparseAdamHyper {
  // torch's checks and messages (lr and eps strictly positive). `stepping`: the check step() repeats, which
  // takes any lr but NaN (torch checks at construction only; a scheduler may round lr to zero or below).
  void validate(bool stepping = false) const {
    if (stepping ? std::isnan(lr) : !(lr > 0.0)) throw std::invalid_argument("Invalid learning rate: " + std::to_string(lr));
    if (!(eps > 0.0)) throw std::invalid_argument("Invalid epsilon value: " + std::to_string(eps));
    // At step() any beta but NaN is taken, as torch checks only new groups: OneCycleLR's last step can
    // push betas[0] past its maximum (and 1).
    if (stepping ? std::isnan(beta1) : !(beta1 >= 0.0 && beta1 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 0: " + std::to_string(beta1));
    if (stepping ? std::isnan(beta2) : !(beta2 >= 0.0 && beta2 < 1.0))
      throw std::invalid_argument("Invalid beta parameter at index 1: " + std::to_string(beta2));
  }
};

template <class T>
struct SparseAdamState {
  std::int64_t step = 0;
  std::vector<T> exp_avg, exp_avg_sq;

  void check(std::size_t n, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    detail::check_buffer_size(exp_avg.size(), n, "exp_avg", who);
    detail::check_buffer_size(exp_avg_sq.size(), n, "exp_avg_sq", who);
  }
};

// A sparse gradient: values holds indices.size() rows of the parameter's row size, row k for row indices[k].
template <class T>
struct SparseGrad {
  Span<const std::int64_t> indices;
  Span<const T> values;
};

template <class T>
class SparseAdam : public Optimizer<SparseAdam<T>, T, SparseAdamOptions, SparseAdamState<T>> {
  using Base = Optimizer<SparseAdam<T>, T, SparseAdamOptions, SparseAdamState<T>>;

 public:
  using typename Base::group_type;

  // rows[i]: the leading dimension of the i-th parameter (in group order); its size must be a multiple.
  SparseAdam(std::vector<Span<T>> params, std::vector<std::size_t> rows, SparseAdamOptions options = {})
      : Base(std::move(params), options) {
    check_rows(all_params(), 0, rows);
    rows_ = std::move(rows);
  }
  SparseAdam(std::vector<group_type> groups, std::vector<std::size_t> rows) : Base(std::move(groups)) {
    check_rows(all_params(), 0, rows);
    rows_ = std::move(rows);
  }

  void add_param_group(group_type group, std::vector<std::size_t> rows) {
    check_rows(group.params, this->num_params(), rows);
    Base::add_param_group(std::move(group));
    rows_.insert(rows_.end(), rows.begin(), rows.end());
  }

  std::size_t rows(std::size_t index) const { return rows_.at(index); }

  // grads[i]: parameter i's sparse gradient, or std::nullopt for none this step. Every index, size and
  // overlap is checked before anything is written.
  void step(const std::vector<std::optional<SparseGrad<T>>>& grads) {
    const std::size_t n = this->num_params();
    if (grads.size() != n)
      throw std::invalid_argument("expected " + std::to_string(n) + " gradients, got " + std::to_string(grads.size()));
    if (rows_.size() != n) throw std::invalid_argument("param_groups() were edited: expected " + std::to_string(rows_.size()) + " parameters");
    std::vector<detail::ByteRange> ranges;
    std::vector<std::size_t> row_size(n, 0);
    std::size_t k = 0;
    for (const auto& group : this->param_groups()) {
      group.options.validate(/*stepping=*/true);
      for (const auto& p : group.params) {
        const std::size_t rows = rows_[k];
        if (rows == 0 ? p.size() != 0 : p.size() % rows != 0)
          throw std::invalid_argument(detail::param_name(k) + " has " + std::to_string(p.size()) +
                                      " elements, not a multiple of its " + std::to_string(rows) + " rows");
        row_size[k] = rows == 0 ? 0 : p.size() / rows;
        if (const auto& g = grads[k]) {
          const std::size_t nnz = g->indices.size();
          if (g->values.size() != nnz * row_size[k])
            throw std::invalid_argument("gradient values of " + detail::param_name(k) + " have " +
                                        std::to_string(g->values.size()) + " elements, expected " +
                                        std::to_string(nnz) + " rows of " + std::to_string(row_size[k]));
          if (nnz != 0 && g->indices.data() == nullptr)
            throw std::invalid_argument("gradient indices of " + detail::param_name(k) + " are null");
          if (g->values.size() != 0 && g->values.data() == nullptr)
            throw std::invalid_argument("gradient values of " + detail::param_name(k) + " are null");
          for (std::int64_t row : g->indices)
            if (row < 0 || static_cast<std::uint64_t>(row) >= rows)
              throw std::invalid_argument("gradient indices of " + detail::param_name(k) + ": index " +
                                          std::to_string(row) + " is out of range for dimension 0 of size " +
                                          std::to_string(rows));
          ranges.push_back(detail::byte_range(g->indices.data(), nnz, false, k));
          ranges.push_back(detail::byte_range(g->values.data(), g->values.size(), false, k));
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
    std::vector<SparseAdamTensor<T>> items;
    k = 0;
    for (const auto& group : this->param_groups()) {
      for (const auto& p : group.params) {
        if (const auto& g = grads[k]) {
          SparseAdamState<T>& st = this->state(k);
          if (st.exp_avg.size() != p.size()) st.exp_avg.assign(p.size(), T(0));
          if (st.exp_avg_sq.size() != p.size()) st.exp_avg_sq.assign(p.size(), T(0));
          st.step += 1;
          items.push_back(SparseAdamTensor<T>{p.data(), st.exp_avg.data(), st.exp_avg_sq.data(), row_size[k],
                                              g->indices.data(), g->values.data(), g->indices.size(),
                                              SparseAdamScalars<T>(group.options, static_cast<double>(st.step))});
        }
        ++k;
      }
    }
    sparse_adam_step(items.data(), items.size());
  }

 private:
  static void check_rows(const std::vector<Span<T>>& params, std::size_t first, const std::vector<std::size_t>& rows) {
    if (rows.size() != params.size())
      throw std::invalid_argument("expected " + std::to_string(params.size()) + " row counts (one per parameter), got " +
                                  std::to_string(rows.size()));
    for (std::size_t i = 0; i < params.size(); ++i)
      if (rows[i] == 0 ? params[i].size() != 0 : params[i].size() % rows[i] != 0)
        throw std::invalid_argument(detail::param_name(first + i) + " has " + std::to_string(params[i].size()) +
                                    " elements, not a multiple of its " + std::to_string(rows[i]) + " rows");
  }

  std::vector<Span<T>> all_params() const {
    std::vector<Span<T>> all;
    for (const auto& g : this->param_groups()) all.insert(all.end(), g.params.begin(), g.params.end());
    return all;
  }

  std::vector<std::size_t> rows_;
};

}  // namespace fastoptim
