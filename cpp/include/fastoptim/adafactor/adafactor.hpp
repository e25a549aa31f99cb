#pragma once
// fastoptim::Adafactor, as torch.optim.Adafactor (Shazeer & Stern 2018). Parameters of two or more
// dimensions keep factored second moments (a row and a column factor over the last two dimensions), so
// the optimizer needs each parameter's shape besides its memory:
//
//   std::vector<float> w(784 * 10), b(10);
//   fastoptim::Adafactor<float> opt({w, b}, {{784, 10}, {10}});   // shapes in parameter order
//   opt.step({gw, gb});
//   opt.state(0).row_var;   // 784 values (torch's shape (784, 1)); col_var: 10 (torch's (1, 10))

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/optimizer.hpp"
#include "adafactor_kernel.hpp"

namespace fastoptim {

struct AdafactorOptions : AdafactorHyper {
  // torch's messages. `stepping`: the check step() repeats, which takes a negative lr as torch does (a
  // scheduler may round it a hair below zero); construction and new groups require lr >= 0.
  void validate(bool stepping = false) const {
    if (stepping ? std::isnan(lr) : !(lr >= 0.0))
      throw std::invalid_argument("Learning rate should be >= 0 but is: " + std::to_string(lr));
    if (!(beta2_decay <= 0.0))
      throw std::invalid_argument("beta2_decay should be <= 0 but is: " + std::to_string(beta2_decay));
    if (eps1 && !(*eps1 >= 0.0))
      throw std::invalid_argument("epsilon1 should be >= 0 but is: " + std::to_string(*eps1));
    if (!(eps2 >= 0.0)) throw std::invalid_argument("epsilon2 should be >= 0 but is: " + std::to_string(eps2));
    if (!(d >= 1.0)) throw std::invalid_argument("Clipping threshold d should be >= 1 but is: " + std::to_string(d));
    if (!(weight_decay >= 0.0))
      throw std::invalid_argument("weight_decay should be >= 0 but is: " + std::to_string(weight_decay));
  }
};

// torch's state: row_var and col_var for a parameter of two or more dimensions, variance otherwise.
template <class T>
struct AdafactorState {
  std::int64_t step = 0;
  std::vector<T> row_var, col_var, variance;

  void check(const AdafactorShape& shape, const std::string& who) const {
    if (step < 0) throw std::invalid_argument("state 'step' of " + who + " is negative");
    const auto want = [&](const std::vector<T>& buf, std::size_t n, const char* key) {
      if (!buf.empty() && buf.size() != n)
        throw std::invalid_argument("state '" + std::string(key) + "' of " + who + " has " +
                                    std::to_string(buf.size()) + " elements, expected " + std::to_string(n));
    };
    if (shape.factored) {
      want(row_var, shape.batch * shape.rows, "row_var");
      want(col_var, shape.batch * shape.cols, "col_var");
      if (!variance.empty()) throw std::invalid_argument("state 'variance' of " + who + " is for parameters of at most one dimension");
      if (row_var.empty() != col_var.empty())
        throw std::invalid_argument("state of " + who + " has only one of 'row_var' and 'col_var'");
    } else {
      want(variance, numel(shape), "variance");
      if (!row_var.empty() || !col_var.empty())
        throw std::invalid_argument("state 'row_var'/'col_var' of " + who + " is for parameters of two or more dimensions");
    }
  }
};

template <class T>
class Adafactor : public Optimizer<Adafactor<T>, T, AdafactorOptions, AdafactorState<T>> {
  using Base = Optimizer<Adafactor<T>, T, AdafactorOptions, AdafactorState<T>>;

 public:
  using Shape = std::vector<std::size_t>;  // a parameter's dimensions, as torch's tensor.shape
  using typename Base::group_type;

  // shapes[i] is the shape of the i-th parameter (in group order); its product must be the span's size.
  Adafactor(std::vector<Span<T>> params, std::vector<Shape> shapes, AdafactorOptions options = {})
      : Base(std::move(params), options) {
    add_shapes(0, std::move(shapes));
  }
  Adafactor(std::vector<group_type> groups, std::vector<Shape> shapes) : Base(std::move(groups)) {
    add_shapes(0, std::move(shapes));
  }

  void add_param_group(group_type group, std::vector<Shape> shapes) {
    const std::size_t first = this->num_params();
    check_shapes(group.params, first, shapes);
    Base::add_param_group(std::move(group));
    shapes_.insert(shapes_.end(), shapes.begin(), shapes.end());
  }

  const Shape& shape(std::size_t index) const { return shapes_.at(index); }

  // grads[i]: the gradient of parameter i (its size), or nullptr for none this step. Everything is checked
  // before anything is written, as Optimizer::step does.
  void step(const std::vector<Span<const T>>& grads) {
    const std::size_t n = this->num_params();
    if (grads.size() != n)
      throw std::invalid_argument("expected " + std::to_string(n) + " gradients, got " + std::to_string(grads.size()));
    std::vector<detail::ByteRange> ranges;
    std::vector<AdafactorShape> shapes;
    std::size_t k = 0;
    for (const auto& group : this->param_groups()) {
      group.options.validate(/*stepping=*/true);
      for (const auto& p : group.params) {
        const AdafactorShape sh = shape_of(k, p);
        const Span<const T>& g = grads[k];
        if (g.data() != nullptr) {
          if (g.size() != p.size())
            throw std::invalid_argument("gradient of " + detail::param_name(k) + " has " + std::to_string(g.size()) +
                                        " elements, the parameter has " + std::to_string(p.size()));
          // torch divides by the element count (ZeroDivisionError).
          if (p.size() == 0) throw std::invalid_argument(detail::param_name(k) + " has no elements; Adafactor cannot step it");
          ranges.push_back(detail::byte_range(g.data(), g.size(), false, k));
        }
        ranges.push_back(detail::byte_range(p.data(), p.size(), true, k));
        shapes.push_back(sh);
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
    std::vector<AdafactorTensor<T>> items;
    k = 0;
    for (const auto& group : this->param_groups()) {
      // torch: eps1 = None means the machine epsilon of the parameter's dtype.
      const double eps1 = group.options.eps1.value_or(std::numeric_limits<T>::epsilon());
      for (const auto& p : group.params) {
        if (grads[k].data() != nullptr) {
          AdafactorState<T>& st = this->state(k);
          const AdafactorShape& sh = shapes[k];
          if (sh.factored && st.row_var.empty()) {
            st.row_var.assign(sh.batch * sh.rows, T(0));
            st.col_var.assign(sh.batch * sh.cols, T(0));
          }
          if (!sh.factored && st.variance.empty()) st.variance.assign(p.size(), T(0));
          st.step += 1;
          items.push_back(AdafactorTensor<T>{p.data(), grads[k].data(), sh.factored ? st.row_var.data() : nullptr,
                                             sh.factored ? st.col_var.data() : nullptr,
                                             sh.factored ? nullptr : st.variance.data(), sh,
                                             AdafactorScalars<T>(group.options, static_cast<double>(st.step), eps1)});
        }
        ++k;
      }
    }
    adafactor_step(items.data(), items.size());
  }

  // Installs a saved state for one parameter, after checking its buffers fit the parameter's shape.
  void load_state(std::size_t index, AdafactorState<T> state) {
    state.check(shape_of(index), detail::param_name(index));
    this->state(index) = std::move(state);
  }

 private:
  static void check_shapes(const std::vector<Span<T>>& params, std::size_t first, const std::vector<Shape>& shapes) {
    if (shapes.size() != params.size())
      throw std::invalid_argument("expected " + std::to_string(params.size()) + " shapes (one per parameter), got " +
                                  std::to_string(shapes.size()));
    for (std::size_t i = 0; i < params.size(); ++i) {
      std::size_t n = 1;
      for (std::size_t d : shapes[i]) n *= d;
      if (n != params[i].size())
        throw std::invalid_argument("shape of " + detail::param_name(first + i) + " has " + std::to_string(n) +
                                    " elements, the parameter has " + std::to_string(params[i].size()));
    }
  }

  void add_shapes(std::size_t first, std::vector<Shape> shapes) {
    check_shapes(all_params(), first, shapes);
    shapes_ = std::move(shapes);
  }

  std::vector<Span<T>> all_params() const {
    std::vector<Span<T>> all;
    for (const auto& g : this->param_groups()) all.insert(all.end(), g.params.begin(), g.params.end());
    return all;
  }

  // The shape of parameter k, checked against its span (param_groups may have been edited since).
  AdafactorShape shape_of(std::size_t k, Span<T> p) const {
    if (k >= shapes_.size())
      throw std::invalid_argument(detail::param_name(k) + " has no shape (added to param_groups() directly?)");
    std::size_t n = 1;
    for (std::size_t d : shapes_[k]) n *= d;
    if (n != p.size())
      throw std::invalid_argument("shape of " + detail::param_name(k) + " has " + std::to_string(n) +
                                  " elements, the parameter has " + std::to_string(p.size()));
    return adafactor_shape(shapes_[k].data(), shapes_[k].size());
  }
  AdafactorShape shape_of(std::size_t k) const { return shape_of(k, all_params().at(k)); }

  std::vector<Shape> shapes_;
};

}  // namespace fastoptim
