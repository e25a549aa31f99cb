#pragma once
// fastoptim::LBFGS, as torch.optim.LBFGS (torch 2.13): limited-memory BFGS (Nocedal 1980; Liu & Nocedal
// 1989) over all parameters flattened into one vector, with torch's optional strong-Wolfe line search.
//
//   std::vector<double> x(n);
//   fastoptim::LBFGSOptions o;
//   o.line_search_fn = fastoptim::LineSearch::strong_wolfe;
//   fastoptim::LBFGS<double> opt({x}, o);
//   double loss = opt.step([&](const std::vector<fastoptim::Span<double>>& grads) {
//     // evaluate the loss at the current x and write its gradient into grads[0] (it arrives zeroed)
//     return f(x, grads[0]);
//   });
//
// step() calls the closure up to max_eval times, as torch's does. Unlike torch's, a step whose closure
// throws leaves the parameters and the state as they were before the step.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../core/optimizer.hpp"
#include "../core/overlap.hpp"
#include "../core/parallel.hpp"
#include "../core/span.hpp"
#include "lbfgs_kernel.hpp"

namespace fastoptim {

struct LBFGSOptions : LBFGSHyper {
  // torch checks only lr; the others would make its step fail or loop on nothing, so they are checked too.
  void validate(bool stepping = false) const {
    detail::check_lr(lr, stepping);
    // (at most 2^53: the step's counters add to them)
    if (max_iter < 1 || max_iter > kLBFGSMaxCount)
      throw std::invalid_argument("Invalid max_iter value: " + std::to_string(max_iter));
    if (max_evals() < 1 || max_evals() > kLBFGSMaxCount)
      throw std::invalid_argument("Invalid max_eval value: " + std::to_string(max_evals()));
    if (history_size < 1 || history_size > kLBFGSMaxCount)
      throw std::invalid_argument("Invalid history_size value: " + std::to_string(history_size));
  }
};

// Flat vectors a step has finished with (the pair dropped from a full history, the last direction and
// gradient, the step's own scratch), kept for the next step: a fresh vector the size of a large model
// faults in every page, each zeroed by the kernel, which was a third of an LBFGS step at 1e7 parameters.
// Holds at most kMax of them between steps (the vectors a step would otherwise allocate and free). Not part
// of torch's state: a copy of the state starts with none, and assigning a state keeps one's own.
template <class T>
class LBFGSSpare {
 public:
  static constexpr std::size_t kMax = 6;

  LBFGSSpare() = default;
  LBFGSSpare(const LBFGSSpare&) noexcept {}
  LBFGSSpare(LBFGSSpare&&) noexcept = default;
  LBFGSSpare& operator=(const LBFGSSpare&) noexcept { return *this; }
  LBFGSSpare& operator=(LBFGSSpare&&) noexcept { return *this; }

  // n elements: a kept vector of that size (stale values) if there is one, else a new one (zeros). Kept
  // vectors of another size (the parameters changed) are freed: a step only ever asks for one size.
  std::vector<T> take(std::size_t n) {
    for (std::size_t i = kept_.size(); i-- > 0;)
      if (kept_[i].size() == n) {
        std::vector<T> v = std::move(kept_[i]);
        kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(i));
        return v;
      }
    kept_.clear();
    return std::vector<T>(n);
  }
  // Keeps v if there is room (reserve() made it), else frees it; never allocates.
  void give(std::vector<T>&& v) noexcept {
    if (!v.empty() && kept_.size() < kept_.capacity())
      kept_.push_back(std::move(v));
    else
      std::vector<T>().swap(v);
  }
  void reserve() { kept_.reserve(kMax); }

 private:
  std::vector<std::vector<T>> kept_;
};

// torch's LBFGS state (kept on its first parameter), key for key. func_evals and n_iter count over all
// steps. The rest exists once a step has run an iteration (n_iter > 0); before that the vectors are empty.
template <class T>
struct LBFGSState {
  std::int64_t func_evals = 0;
  std::int64_t n_iter = 0;
  std::vector<T> d;                                 // last search direction
  LBFGSScalar t{};                                  // last step length
  std::vector<std::vector<T>> old_dirs, old_stps;   // the (y, s) pairs, oldest first
  std::vector<T> ro;                                // 1 / (y . s) of each pair
  LBFGSScalar H_diag{1.0, false};                   // scale of the initial inverse Hessian
  std::vector<T> prev_flat_grad;
  double prev_loss = 0.0;
  std::vector<std::optional<T>> al;                 // torch's scratch "al": history_size slots, empty until used
  LBFGSSpare<T> spare;                              // recycled vectors (not state: see LBFGSSpare)

  void check(std::size_t n) const {
    const auto fail = [](const std::string& what) { throw std::invalid_argument("LBFGS state: " + what); };
    if (func_evals < 0 || n_iter < 0) fail("func_evals and n_iter must be >= 0");
    if (n_iter == 0) {
      if (!d.empty() || !prev_flat_grad.empty() || !old_dirs.empty() || !old_stps.empty() || !ro.empty())
        fail("n_iter is 0 but the state holds a direction or history");
      return;
    }
    const auto check_vector = [&](const std::vector<T>& v, const std::string& key) {
      if (v.size() != n)
        fail("'" + key + "' has " + std::to_string(v.size()) + " elements, the parameters have " + std::to_string(n));
    };
    check_vector(d, "d");
    check_vector(prev_flat_grad, "prev_flat_grad");
    if (old_stps.size() != old_dirs.size() || ro.size() != old_dirs.size())
      fail("old_dirs, old_stps and ro must have the same length");
    for (std::size_t i = 0; i < old_dirs.size(); ++i) {
      check_vector(old_dirs[i], "old_dirs[" + std::to_string(i) + "]");
      check_vector(old_stps[i], "old_stps[" + std::to_string(i) + "]");
    }
  }
};

// Writes the gradient of the loss at the current parameters into grads (one view per parameter, zeroed
// before the call) and returns the loss.
template <class T>
using LBFGSClosure = std::function<double(const std::vector<Span<T>>& grads)>;

FASTOPTIM_ISA_BEGIN
namespace impl {

// The parameters as one flat vector, as torch's _gather_flat_grad / _add_grad / _clone_param see them.
template <class T>
class LBFGSFlat {
 public:
  explicit LBFGSFlat(const std::vector<Span<T>>& params) : params_(params) {
    for (const auto& p : params_) {
      offsets_.push_back(n_);
      n_ += p.size();
    }
  }

  std::size_t size() const noexcept { return n_; }

  void copy_to(T* x) const {
    each([&](const Span<T>& p, std::size_t off, std::size_t b, std::size_t e) {
      std::copy(p.data() + b, p.data() + e, x + off + b);
    });
  }
  void copy_from(const T* x) const {
    each([&](const Span<T>& p, std::size_t off, std::size_t b, std::size_t e) {
      std::copy(x + off + b, x + off + e, p.data() + b);
    });
  }
  // params = x + t * d (torch: _set_param(x), then _add_grad(t, d), whose add_ is fused)
  void assign(const T* x, const T* d, T t) const {
    each([&](const Span<T>& p, std::size_t off, std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) p[i] = fmadd(d[off + i], t, x[off + i]);
    });
  }
  // params += t * d
  void add(const T* d, T t) const {
    each([&](const Span<T>& p, std::size_t off, std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) p[i] = fmadd(d[off + i], t, p[i]);
    });
  }
  // Calls the closure with views into grad (zeroed unless zeroed is false, when the closure writes every
  // element itself: a parameter it leaves alone has a zero gradient, as a torch parameter whose .grad is None).
  double evaluate(const LBFGSClosure<T>& closure, std::vector<T>& grad, bool zeroed = true) const {
    if (zeroed)
      grad.assign(n_, T(0));
    else
      grad.resize(n_);
    std::vector<Span<T>> views;
    views.reserve(params_.size());
    for (std::size_t k = 0; k < params_.size(); ++k) views.emplace_back(grad.data() + offsets_[k], params_[k].size());
    return closure(views);
  }

 private:
  template <class F>
  void each(const F& f) const {
    parallel_for_items(
        params_.size(), [&](std::size_t k) { return params_[k].size(); }, kDefaultGrain,
        [&](std::size_t k, std::size_t b, std::size_t e) { f(params_[k], offsets_[k], b, e); });
  }

  const std::vector<Span<T>>& params_;
  std::vector<std::size_t> offsets_;
  std::size_t n_ = 0;
};

// The (y, s, ro) history during a step: the state's pairs minus those dropped from the front, plus the new
// ones. The state itself changes only in commit(), so a step that throws leaves it intact.
template <class T>
class LBFGSHistory {
 public:
  explicit LBFGSHistory(const LBFGSState<T>& base) : base_(base) {}

  std::size_t size() const noexcept { return base_.old_dirs.size() - dropped_ + dirs_.size(); }
  const std::vector<T>& dir(std::size_t i) const { return i < kept() ? base_.old_dirs[dropped_ + i] : dirs_[i - kept()]; }
  const std::vector<T>& stp(std::size_t i) const { return i < kept() ? base_.old_stps[dropped_ + i] : stps_[i - kept()]; }
  T ro(std::size_t i) const { return i < kept() ? base_.ro[dropped_ + i] : ro_[i - kept()]; }

  void clear() {
    dropped_ = base_.old_dirs.size();
    dirs_.clear(), stps_.clear(), ro_.clear();
  }
  void pop_front() {
    if (kept() > 0) {
      ++dropped_;
    } else {
      dirs_.erase(dirs_.begin()), stps_.erase(stps_.begin()), ro_.erase(ro_.begin());
    }
  }
  void push_back(std::vector<T> y, std::vector<T> s, T ro) {
    dirs_.push_back(std::move(y)), stps_.push_back(std::move(s)), ro_.push_back(ro);
  }
  // Makes commit() allocation-free (so it cannot throw once the parameters have moved).
  void reserve(LBFGSState<T>& state) const {
    const std::size_t total = size();
    state.old_dirs.reserve(std::max(total, state.old_dirs.size()));
    state.old_stps.reserve(std::max(total, state.old_stps.size()));
    state.ro.reserve(std::max(total, state.ro.size()));
  }
  void commit(LBFGSState<T>& state) {
    for (std::size_t i = 0; i < dropped_; ++i) {
      state.spare.give(std::move(state.old_dirs[i]));
      state.spare.give(std::move(state.old_stps[i]));
    }
    const auto drop = [&](auto& v) { v.erase(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(dropped_)); };
    drop(state.old_dirs), drop(state.old_stps), drop(state.ro);
    for (std::size_t i = 0; i < dirs_.size(); ++i) {
      state.old_dirs.push_back(std::move(dirs_[i]));
      state.old_stps.push_back(std::move(stps_[i]));
      state.ro.push_back(ro_[i]);
    }
  }

 private:
  std::size_t kept() const noexcept { return base_.old_dirs.size() - dropped_; }

  const LBFGSState<T>& base_;
  std::size_t dropped_ = 0;
  std::vector<std::vector<T>> dirs_, stps_;
  std::vector<T> ro_;
};

}  // namespace impl

// One torch LBFGS step over params (torch's LBFGS.step, line by line). Returns the loss of the first
// closure call. Everything is committed at the end: if the closure throws, params and state are restored.
// zeroed_grads = false: the closure writes every element of the gradient views itself (they arrive with
// whatever the last call left there), which saves a pass over the gradient per call.
//
// Memory traffic, the cost at large n: the two-loop recursion runs each axpy fused with the dot product
// that reads its result next (flat_update_dot: the same blocks summed in the same order, so the same
// bits); the state's direction and previous gradient are read where they are rather than copied; and the
// parameters are saved for a restore only once they are about to move ahead of a closure call.
template <class T>
double lbfgs_step(const std::vector<Span<T>>& params, LBFGSState<T>& state, const LBFGSHyper& o,
                  const LBFGSClosure<T>& closure, bool zeroed_grads = true) {
  using N = LBFGSNum<T>;
  const impl::LBFGSFlat<T> flat(params);
  const std::size_t n = flat.size();
  state.check(n);
  state.spare.reserve();
  const std::int64_t max_iter = o.max_iter, max_eval = o.max_evals();
  const std::size_t history_size = static_cast<std::size_t>(o.history_size);
  const N tolerance_grad = N::py(o.tolerance_grad), tolerance_change = N::py(o.tolerance_change);

  // The parameters at the start, saved before they first move if a closure call (or anything else that
  // can throw) follows; while it is empty the parameters are untouched.
  std::vector<T> x_start;
  const auto save_start = [&] {
    if (x_start.empty()) {
      x_start = state.spare.take(n);
      flat.copy_to(x_start.data());
    }
  };
  try {
    std::int64_t func_evals = state.func_evals, state_n_iter = state.n_iter;

    // evaluate initial f(x) and df/dx
    std::vector<T> flat_grad = state.spare.take(n);
    const double orig_loss = flat.evaluate(closure, flat_grad, zeroed_grads);
    double loss = orig_loss;
    std::int64_t current_evals = 1;
    func_evals += 1;
    bool opt_cond = N::of(flat_abs_max(flat_grad.data(), n)) <= tolerance_grad;
    // optimal condition
    if (opt_cond) {
      state.func_evals = func_evals;
      state.spare.give(std::move(flat_grad));
      return orig_loss;
    }

    // This step's direction and previous gradient: empty until first set, the state's are read until then.
    std::vector<T> d, prev_flat_grad;
    N t = N::from(state.t), H_diag = N::from(state.H_diag);
    double prev_loss = state.prev_loss;
    std::vector<std::optional<T>> al = state.al;
    impl::LBFGSHistory<T> history(state);

    std::int64_t n_iter = 0;
    // optimize for a max of max_iter iterations
    while (n_iter < max_iter) {
      n_iter += 1;
      state_n_iter += 1;

      const T* g = flat_grad.data();
      T gtd_value;  // flat_grad . d, the directional derivative (fused into the last pass over d)
      // compute gradient descent direction
      if (state_n_iter == 1) {
        if (d.empty()) d = state.spare.take(n);
        T* dd = d.data();
        gtd_value = flat_update_dot(n, [&](std::size_t b, std::size_t e) {
          for (std::size_t i = b; i < e; ++i) dd[i] = mul_rounded(g[i], T(-1));
        }, g, dd);
        history.clear();
        H_diag = N::py(1);
      } else {
        // do lbfgs update (update memory)
        const std::vector<T>& old_d = d.empty() ? state.d : d;
        const std::vector<T>& old_g = prev_flat_grad.empty() ? state.prev_flat_grad : prev_flat_grad;
        std::vector<T> y = state.spare.take(n), s = state.spare.take(n);
        flat_sub(y.data(), g, old_g.data(), n);
        flat_scale(s.data(), old_d.data(), t.as_t(), n);
        const N ys = N::of(flat_dot(y.data(), s.data(), n));
        if (ys > N::py(1e-10)) {
          // updating memory; torch pops once at a full history, which is the same while history_size is
          // unchanged; popping down to it also handles a history_size lowered between steps
          while (history.size() >= history_size) history.pop_front();
          const N yy = N::of(flat_dot(y.data(), y.data(), n));
          history.push_back(std::move(y), std::move(s), (N::py(1.0) / ys).as_t());
          // update scale of initial Hessian approximation
          H_diag = ys / yy;
        } else {
          state.spare.give(std::move(y)), state.spare.give(std::move(s));
        }

        // compute the approximate (L-BFGS) inverse Hessian multiplied by the gradient
        const std::size_t num_old = history.size();
        if (al.empty()) al.assign(history_size, std::nullopt);
        if (al.size() < num_old) al.resize(num_old);  // history_size raised between steps (torch fails)

        // iteration in L-BFGS loop collapsed to use just one buffer (q, written over the old direction,
        // which is no longer needed); each pass updates q and takes the next dot product with it
        if (d.empty()) d = state.spare.take(n);
        T* q = d.data();
        const T h = H_diag.as_t();
        if (num_old == 0) {
          // q = -g; d = q * H_diag; then flat_grad . d
          gtd_value = flat_update_dot(n, [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) q[i] = mul_rounded(mul_rounded(g[i], T(-1)), h);
          }, g, q);
        } else {
          T dot = flat_update_dot(n, [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) q[i] = mul_rounded(g[i], T(-1));
          }, history.stp(num_old - 1).data(), q);
          for (std::size_t i = num_old; i-- > 0;) {
            const T a = mul_rounded(dot, history.ro(i));
            al[i] = a;
            const T* yi = history.dir(i).data();
            const T minus_a = -a;
            const auto axpy = [&](std::size_t b, std::size_t e) {
              for (std::size_t j = b; j < e; ++j) q[j] = fmadd(yi[j], minus_a, q[j]);
            };
            if (i > 0) {
              dot = flat_update_dot(n, axpy, history.stp(i - 1).data(), q);
            } else {
              // last update of q, then d = q * H_diag (r/d is the final direction), then dir(0) . d
              dot = flat_update_dot(n, [&](std::size_t b, std::size_t e) {
                axpy(b, e);
                for (std::size_t j = b; j < e; ++j) q[j] = mul_rounded(q[j], h);
              }, history.dir(0).data(), q);
            }
          }
          for (std::size_t i = 0; i < num_old; ++i) {
            const T be_i = mul_rounded(dot, history.ro(i));
            const T c = T(*al[i] - be_i);
            const T* si = history.stp(i).data();
            // the next dot product: dir(i + 1) . d, or after the last update flat_grad . d
            const T* next = i + 1 < num_old ? history.dir(i + 1).data() : g;
            dot = flat_update_dot(n, [&](std::size_t b, std::size_t e) {
              for (std::size_t j = b; j < e; ++j) q[j] = fmadd(si[j], c, q[j]);
            }, next, q);
          }
          gtd_value = dot;
        }
      }
      if (prev_flat_grad.empty()) prev_flat_grad = state.spare.take(n);
      flat_copy(prev_flat_grad.data(), flat_grad.data(), n);
      prev_loss = loss;

      // compute step length: reset initial guess for step size
      if (state_n_iter == 1)
        t = py_min(N::py(1.0), N::py(1.0) / N::of(flat_abs_sum(flat_grad.data(), n))) * N::py(o.lr);
      else
        t = N::py(o.lr);

      // directional derivative
      const N gtd = N::of(gtd_value);
      // directional derivative is below tolerance
      if (gtd > -tolerance_change) break;

      std::int64_t ls_func_evals = 0;
      if (o.line_search_fn == LineSearch::strong_wolfe) {
        // the parameters at this iteration's start: x_start in the first iteration that moves them
        std::vector<T> x_copy;
        const T* x_init;
        if (x_start.empty()) {
          save_start();
          x_init = x_start.data();
        } else {
          x_copy = state.spare.take(n);
          flat.copy_to(x_copy.data());
          x_init = x_copy.data();
        }
        const auto obj_func = [&](N step) {
          flat.assign(x_init, d.data(), step.as_t());
          std::vector<T> g_new;
          const double f = flat.evaluate(closure, g_new, zeroed_grads);
          return std::make_pair(f, std::move(g_new));
        };
        WolfeResult<T> r = strong_wolfe<T>(obj_func, t, d, loss, std::move(flat_grad), gtd.as_t(), max_eval - current_evals);
        loss = r.f;
        flat_grad = std::move(r.g);
        t = r.t;
        ls_func_evals = r.func_evals;
        flat.assign(x_init, d.data(), t.as_t());
        state.spare.give(std::move(x_copy));
        opt_cond = N::of(flat_abs_max(flat_grad.data(), n)) <= tolerance_grad;
      } else {
        // no line search, simply move with fixed-step
        if (n_iter != max_iter)
          save_start();  // a closure call follows
        else
          history.reserve(state);  // nothing follows but the commit, which must not throw then
        flat.add(d.data(), t.as_t());
        if (n_iter != max_iter) {
          // re-evaluate function only if not in last iteration (in a stochastic setting there is no use
          // re-evaluating it)
          loss = flat.evaluate(closure, flat_grad, zeroed_grads);
          opt_cond = N::of(flat_abs_max(flat_grad.data(), n)) <= tolerance_grad;
          ls_func_evals = 1;
        }
      }
      // update func eval
      current_evals += ls_func_evals;
      func_evals += ls_func_evals;

      // check conditions
      if (n_iter == max_iter) break;
      if (current_evals >= max_eval) break;
      // optimal condition
      if (opt_cond) break;
      // lack of progress: max |d * t|, computed as round(max|d| * |t|), the same by monotone rounding
      if (N::of(mul_rounded(flat_abs_max(d.data(), n), std::fabs(t.as_t()))) <= tolerance_change) break;
      if (std::fabs(loss - prev_loss) < o.tolerance_change) break;
    }

    history.reserve(state);
    state.func_evals = func_evals;
    state.n_iter = state_n_iter;
    state.d.swap(d);
    state.t = t.scalar();
    history.commit(state);
    state.H_diag = H_diag.scalar();
    state.prev_flat_grad.swap(prev_flat_grad);
    state.prev_loss = prev_loss;
    state.al = std::move(al);
    // the replaced direction and gradient, and this step's scratch, for the next step
    for (std::vector<T>* v : {&d, &prev_flat_grad, &flat_grad, &x_start}) state.spare.give(std::move(*v));
    return orig_loss;
  } catch (...) {
    if (!x_start.empty()) flat.copy_from(x_start.data());
    throw;
  }
}

FASTOPTIM_ISA_END

template <class T>
class LBFGS {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "fastoptim optimizers take float or double");

 public:
  using value_type = T;
  using options_type = LBFGSOptions;
  using state_type = LBFGSState<T>;
  using group_type = ParamGroup<T, LBFGSOptions>;
  using Closure = LBFGSClosure<T>;

  LBFGS(std::vector<Span<T>> params, LBFGSOptions options = {}) {
    if (params.empty()) throw std::invalid_argument("optimizer got an empty parameter list");
    options.validate();
    groups_.push_back(group_type{std::move(params), options});
    check_params();
  }

  // Runs torch's LBFGS step (up to max_iter iterations, max_eval closure calls); returns the first loss.
  double step(const Closure& closure) {
    if (!closure) throw std::invalid_argument("LBFGS.step needs a closure");
    if (groups_.size() != 1) throw std::invalid_argument("LBFGS doesn't support per-parameter options (parameter groups)");
    groups_[0].options.validate(/*stepping=*/true);
    check_params();
    return lbfgs_step(groups_[0].params, state_, groups_[0].options, closure);
  }

  // One group, as torch's LBFGS (its param_groups()[0].options.lr is what schedulers drive).
  std::vector<group_type>& param_groups() noexcept { return groups_; }
  const std::vector<group_type>& param_groups() const noexcept { return groups_; }
  const LBFGSState<T>& state() const noexcept { return state_; }

  // Installs a saved state, after checking its vectors match the parameters.
  void load_state(LBFGSState<T> state) {
    state.check(num_elements());
    state_ = std::move(state);
  }

  std::size_t num_elements() const noexcept {
    std::size_t n = 0;
    for (const auto& p : groups_[0].params) n += p.size();
    return n;
  }

 private:
  void check_params() const {
    std::vector<detail::ByteRange> ranges;
    std::size_t k = 0;
    for (const auto& p : groups_[0].params) {
      if (p.data() == nullptr && p.size() != 0) throw std::invalid_argument(detail::param_name(k) + " is null");
      ranges.push_back(detail::byte_range(p.data(), p.size(), true, k++));
    }
    if (num_elements() == 0) throw std::invalid_argument("LBFGS needs at least one parameter element");
    const auto [a, b] = detail::find_write_overlap(ranges);
    if (a)
      throw std::invalid_argument(detail::param_name(std::max(a->index, b->index)) + " overlaps " +
                                  detail::param_name(std::min(a->index, b->index)) +
                                  "; parameters must not share memory");
  }

  std::vector<group_type> groups_;
  LBFGSState<T> state_;
};

}  // namespace fastoptim
