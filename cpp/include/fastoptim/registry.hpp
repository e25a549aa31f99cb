#pragma once
// What checkpoints and the C API know about each optimizer, in one place: torch's class name, every
// hyperparameter under torch's param-group key, every state entry under torch's state key, and the list
// of all optimizers.
//
// Adding an optimizer: give it an OptimizerInfo specialization below (its keys, in torch's state_dict
// order) and one entry in `Optimizers`. Checkpoints (C++ and Python alike), the C API's
// fastoptim_optimizer_create("<name>", ...) and the cross-language tests then cover it.
//
// An info's visitors are called with a visitor `v` that has:
//   v.real(key, double&)   v.flag(key, bool&)   v.integer(key, std::int64_t&)
//   v.pair(key, double&, double&)        a 2-list such as Adam's betas
//   v.triple(key, double&, double&, double&)   a 3-list (Adan's betas)
//   v.opt_pair(key, std::optional<double>&, double&)   a 2-list whose first entry may be null (Adafactor's eps)
//   v.opt_integer(key, std::optional<std::int64_t>&, fallback)   an integer the options may leave unset
//                                        (LBFGS's max_eval; files hold `fallback`, the value it stands for)
//   v.choice(key, E&, Choices<E>{{name, value}, ...})   a string option (nullptr as name: JSON null)
//   v.mode(key, bool&)                   a flag files hold but options may not set (ScheduleFreeAdamW's
//                                        train_mode says what the parameters hold; train()/eval() move them)
//   v.forced(key, bool& member, value)   always `value` for this optimizer (AdamW's decoupled_weight_decay)
//   v.torch_only(key, TorchFlag)         a torch flag with no meaning here (foreach, fused, capturable, ...)
//   v.buffer(key, std::vector<T>&)       a per-parameter state buffer (empty: not created yet)
//   v.step(key, std::int64_t&)           the step count (torch keeps it as a float32 scalar tensor)
//   v.scalar(key, float&)                a per-parameter float32 scalar (ASGD's eta and mu)
// Optional hooks for optimizers that know their parameters' shapes: state_shape(opt, i, key), the shape a
// file gives state buffer `key` of parameter i (torch's; default [elements]), and check_state(opt, i,
// state), the check of a loaded state (default state.check(elements, who)). Muon's info is in
// registry_muon.hpp (it needs Eigen); LBFGS keeps one state for all parameters, saved by checkpoint.hpp.
//   v.scalar(key, double&, bool& f32)    a per-parameter scalar kept as float32 (f32) or float64 (NAdam's
//                                        mu_product, which torch's load_state_dict may leave float64)
// Values kept per param group rather than per parameter (Adan's step, ScheduleFreeAdamW's schedule and
// train_mode) are hyperparameters here, as they are param-group keys in Python.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "adabelief/adabelief.hpp"
#include "adafactor/adafactor.hpp"
#include "adadelta/adadelta.hpp"
#include "adagrad/adagrad.hpp"
#include "adam/adam.hpp"
#include "adamax/adamax.hpp"
#include "adan/adan.hpp"
#include "asgd/asgd.hpp"
#include "lamb/lamb.hpp"
#include "lbfgs/lbfgs.hpp"
#include "lion/lion.hpp"
#include "nadam/nadam.hpp"
#include "radam/radam.hpp"
#include "rmsprop/rmsprop.hpp"
#include "rprop/rprop.hpp"
#include "schedulefree/schedulefree.hpp"
#include "sgd/sgd.hpp"
#include "sparse_adam/sparse_adam.hpp"

namespace fastoptim {

// torch flags that choose an implementation or need autograd: `foreach`/`fused` take None or a bool (we
// always run one fused kernel; torch's default is None); `capturable`/`differentiable` must be False.
enum class TorchFlag { none_or_bool, false_only };

// The names of a string option's values (nullptr: JSON null / Python None).
template <class E>
using Choices = std::initializer_list<std::pair<const char*, E>>;

template <class Options>
struct OptimizerInfo;  // specialized per optimizer

template <>
struct OptimizerInfo<SGDOptions> {
  static constexpr const char* name = "SGD";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.real("momentum", o.momentum);
    v.real("dampening", o.dampening);
    v.real("weight_decay", o.weight_decay);
    v.flag("nesterov", o.nesterov);
    v.flag("maximize", o.maximize);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.torch_only("differentiable", TorchFlag::false_only);
    v.torch_only("fused", TorchFlag::none_or_bool);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.buffer("momentum_buffer", s.momentum_buffer);
  }
};

namespace detail {
template <class O, class V>
void adam_hyperparameters(O& o, V& v, bool adamw) {
  v.real("lr", o.lr);
  v.pair("betas", o.beta1, o.beta2);
  v.real("eps", o.eps);
  v.real("weight_decay", o.weight_decay);
  v.flag("amsgrad", o.amsgrad);
  v.flag("maximize", o.maximize);
  v.torch_only("foreach", TorchFlag::none_or_bool);
  v.torch_only("capturable", TorchFlag::false_only);
  v.torch_only("differentiable", TorchFlag::false_only);
  v.torch_only("fused", TorchFlag::none_or_bool);
  if (adamw) v.forced("decoupled_weight_decay", o.decoupled_weight_decay, true);
  else v.flag("decoupled_weight_decay", o.decoupled_weight_decay);
}
template <class S, class V>
void adam_state(S& s, V& v) {
  v.buffer("exp_avg", s.exp_avg);
  v.buffer("exp_avg_sq", s.exp_avg_sq);
  v.buffer("max_exp_avg_sq", s.max_exp_avg_sq);
  v.step("step", s.step);
}
}  // namespace detail

template <>
struct OptimizerInfo<AdamOptions> {
  static constexpr const char* name = "Adam";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) { detail::adam_hyperparameters(o, v, false); }
  template <class S, class V>
  static void state(S& s, V& v) { detail::adam_state(s, v); }
};

template <>
struct OptimizerInfo<AdamWOptions> {
  static constexpr const char* name = "AdamW";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) { detail::adam_hyperparameters(o, v, true); }
  template <class S, class V>
  static void state(S& s, V& v) { detail::adam_state(s, v); }
};

template <>
struct OptimizerInfo<RMSpropOptions> {
  static constexpr const char* name = "RMSprop";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.real("momentum", o.momentum);
    v.real("alpha", o.alpha);
    v.real("eps", o.eps);
    v.flag("centered", o.centered);
    v.real("weight_decay", o.weight_decay);
    v.torch_only("capturable", TorchFlag::false_only);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.flag("maximize", o.maximize);
    v.torch_only("differentiable", TorchFlag::false_only);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.buffer("square_avg", s.square_avg);
    v.buffer("momentum_buffer", s.momentum_buffer);
    v.buffer("grad_avg", s.grad_avg);
    v.step("step", s.step);
  }
};

template <>
struct OptimizerInfo<AdagradOptions> {
  static constexpr const char* name = "Adagrad";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.real("lr_decay", o.lr_decay);
    v.real("eps", o.eps);
    v.real("weight_decay", o.weight_decay);
    v.real("initial_accumulator_value", o.initial_accumulator_value);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.flag("maximize", o.maximize);
    v.torch_only("differentiable", TorchFlag::false_only);
    v.torch_only("fused", TorchFlag::none_or_bool);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.buffer("sum", s.sum);
    v.step("step", s.step);
  }
};

template <>
struct OptimizerInfo<AdadeltaOptions> {
  static constexpr const char* name = "Adadelta";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.real("rho", o.rho);
    v.real("eps", o.eps);
    v.real("weight_decay", o.weight_decay);
    v.flag("maximize", o.maximize);
    v.torch_only("capturable", TorchFlag::false_only);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.torch_only("differentiable", TorchFlag::false_only);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.buffer("square_avg", s.square_avg);
    v.buffer("acc_delta", s.acc_delta);
  }
};

template <>
struct OptimizerInfo<ASGDOptions> {
  static constexpr const char* name = "ASGD";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.real("lambd", o.lambd);
    v.real("alpha", o.alpha);
    v.real("t0", o.t0);
    v.real("weight_decay", o.weight_decay);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.flag("maximize", o.maximize);
    v.torch_only("differentiable", TorchFlag::false_only);
    v.torch_only("capturable", TorchFlag::false_only);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.scalar("eta", s.eta);
    v.scalar("mu", s.mu);
    v.buffer("ax", s.ax);
  }
};

template <>
struct OptimizerInfo<RpropOptions> {
  static constexpr const char* name = "Rprop";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("etas", o.etaminus, o.etaplus);
    v.pair("step_sizes", o.step_size_min, o.step_size_max);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.flag("maximize", o.maximize);
    v.torch_only("differentiable", TorchFlag::false_only);
    v.torch_only("capturable", TorchFlag::false_only);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.buffer("prev", s.prev);
    v.buffer("step_size", s.step_size);
  }
};

template <>
struct OptimizerInfo<AdamaxOptions> {
  static constexpr const char* name = "Adamax";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("betas", o.beta1, o.beta2);
    v.real("eps", o.eps);
    v.real("weight_decay", o.weight_decay);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.flag("maximize", o.maximize);
    v.torch_only("differentiable", TorchFlag::false_only);
    v.torch_only("capturable", TorchFlag::false_only);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.buffer("exp_avg", s.exp_avg);
    v.buffer("exp_inf", s.exp_inf);
  }
};

template <>
struct OptimizerInfo<NAdamOptions> {
  static constexpr const char* name = "NAdam";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("betas", o.beta1, o.beta2);
    v.real("eps", o.eps);
    v.real("weight_decay", o.weight_decay);
    v.real("momentum_decay", o.momentum_decay);
    v.flag("decoupled_weight_decay", o.decoupled_weight_decay);
    v.flag("maximize", o.maximize);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.torch_only("capturable", TorchFlag::false_only);
    v.torch_only("differentiable", TorchFlag::false_only);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.scalar("mu_product", s.mu_product, s.mu_product_float32);
    v.buffer("exp_avg", s.exp_avg);
    v.buffer("exp_avg_sq", s.exp_avg_sq);
  }
};

template <>
struct OptimizerInfo<RAdamOptions> {
  static constexpr const char* name = "RAdam";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("betas", o.beta1, o.beta2);
    v.real("eps", o.eps);
    v.real("weight_decay", o.weight_decay);
    v.flag("maximize", o.maximize);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.torch_only("capturable", TorchFlag::false_only);
    v.flag("decoupled_weight_decay", o.decoupled_weight_decay);
    v.torch_only("differentiable", TorchFlag::false_only);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.buffer("exp_avg", s.exp_avg);
    v.buffer("exp_avg_sq", s.exp_avg_sq);
  }
};

template <>
struct OptimizerInfo<LionOptions> {
  static constexpr const char* name = "Lion";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("betas", o.beta1, o.beta2);
    v.real("weight_decay", o.weight_decay);
    v.flag("maximize", o.maximize);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.buffer("exp_avg", s.exp_avg);
  }
};

// LAMBState::trust_ratio is informational (the last step's ratio, never read by the update) and not saved.
template <>
struct OptimizerInfo<LAMBOptions> {
  static constexpr const char* name = "LAMB";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("betas", o.beta1, o.beta2);
    v.real("eps", o.eps);
    v.real("weight_decay", o.weight_decay);
    v.flag("bias_correction", o.bias_correction);
    v.real("clamp_value", o.clamp_value);
    v.flag("trust_clip", o.trust_clip);
    v.flag("exclude_from_layer_adaptation", o.exclude_from_layer_adaptation);
    v.flag("maximize", o.maximize);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.buffer("exp_avg", s.exp_avg);
    v.buffer("exp_avg_sq", s.exp_avg_sq);
  }
};

template <>
struct OptimizerInfo<AdanOptions> {
  static constexpr const char* name = "Adan";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.triple("betas", o.beta1, o.beta2, o.beta3);
    v.real("eps", o.eps);
    v.real("weight_decay", o.weight_decay);
    v.flag("no_prox", o.no_prox);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.flag("maximize", o.maximize);
    v.integer("step", o.step);  // the group's step count (Python adds the key at the first step)
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.buffer("exp_avg", s.exp_avg);
    v.buffer("exp_avg_sq", s.exp_avg_sq);
    v.buffer("exp_avg_diff", s.exp_avg_diff);
    v.buffer("neg_pre_grad", s.neg_pre_grad);
  }
};

template <>
struct OptimizerInfo<AdaBeliefOptions> {
  static constexpr const char* name = "AdaBelief";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("betas", o.beta1, o.beta2);
    v.real("eps", o.eps);
    v.real("weight_decay", o.weight_decay);
    v.flag("amsgrad", o.amsgrad);
    v.flag("weight_decouple", o.weight_decouple);
    v.flag("fixed_decay", o.fixed_decay);
    v.flag("rectify", o.rectify);
    v.flag("degenerated_to_sgd", o.degenerated_to_sgd);
    v.flag("maximize", o.maximize);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.buffer("exp_avg", s.exp_avg);
    v.buffer("exp_avg_var", s.exp_avg_var);
    v.buffer("max_exp_avg_var", s.max_exp_avg_var);
  }
};

// The schedule (k, lr_max, weight_sum, scheduled_lr) and train_mode are the group's, as in the reference.
template <>
struct OptimizerInfo<ScheduleFreeAdamWOptions> {
  static constexpr const char* name = "ScheduleFreeAdamW";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("betas", o.beta1, o.beta2);
    v.real("eps", o.eps);
    v.real("r", o.r);
    v.integer("k", o.k);
    v.integer("warmup_steps", o.warmup_steps);
    v.mode("train_mode", o.train_mode);
    v.real("weight_sum", o.weight_sum);
    v.real("lr_max", o.lr_max);
    v.real("scheduled_lr", o.scheduled_lr);
    v.real("weight_lr_power", o.weight_lr_power);
    v.real("weight_decay", o.weight_decay);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.flag("maximize", o.maximize);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.buffer("z", s.z);
    v.buffer("exp_avg_sq", s.exp_avg_sq);
  }
};

// Parameters of two or more dimensions keep row_var (torch's shape (..., R, 1)) and col_var ((..., 1, C)).
template <>
struct OptimizerInfo<AdafactorOptions> {
  static constexpr const char* name = "Adafactor";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.real("beta2_decay", o.beta2_decay);
    v.opt_pair("eps", o.eps1, o.eps2);
    v.real("d", o.d);
    v.real("weight_decay", o.weight_decay);
    v.torch_only("foreach", TorchFlag::none_or_bool);
    v.flag("maximize", o.maximize);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.buffer("row_var", s.row_var);
    v.buffer("col_var", s.col_var);
    v.buffer("variance", s.variance);
  }
  template <class T>
  static std::vector<std::uint64_t> state_shape(const Adafactor<T>& opt, std::size_t i, const std::string& key) {
    std::vector<std::uint64_t> shape(opt.shape(i).begin(), opt.shape(i).end());
    if (shape.size() >= 2 && key == "row_var") shape.back() = 1;
    if (shape.size() >= 2 && key == "col_var") shape[shape.size() - 2] = 1;
    return shape;
  }
  template <class T>
  static void check_state(const Adafactor<T>& opt, std::size_t i, const AdafactorState<T>& state) {
    state.check(adafactor_shape(opt.shape(i).data(), opt.shape(i).size()), "parameter " + std::to_string(i));
  }
};

// Buffers have the parameter's shape, (rows, elements / rows).
template <>
struct OptimizerInfo<SparseAdamOptions> {
  static constexpr const char* name = "SparseAdam";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.pair("betas", o.beta1, o.beta2);
    v.real("eps", o.eps);
    v.flag("maximize", o.maximize);
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.step("step", s.step);
    v.buffer("exp_avg", s.exp_avg);
    v.buffer("exp_avg_sq", s.exp_avg_sq);
  }
  template <class T>
  static std::vector<std::uint64_t> state_shape(const SparseAdam<T>& opt, std::size_t i, const std::string&) {
    const std::size_t rows = opt.rows(i);
    std::size_t size = 0, k = 0;
    for (const auto& g : opt.param_groups())
      for (const auto& p : g.params)
        if (k++ == i) size = p.size();
    return {rows, rows == 0 ? 0 : size / rows};
  }
};

// Hyperparameters only: LBFGS's state (one for all parameters, with lists) is saved by checkpoint.hpp.
template <>
struct OptimizerInfo<LBFGSOptions> {
  static constexpr const char* name = "LBFGS";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.integer("max_iter", o.max_iter);
    v.opt_integer("max_eval", o.max_eval, lbfgs_default_max_eval(o.max_iter));
    v.real("tolerance_grad", o.tolerance_grad);
    v.real("tolerance_change", o.tolerance_change);
    v.integer("history_size", o.history_size);
    v.choice("line_search_fn", o.line_search_fn,
             Choices<LineSearch>{{nullptr, LineSearch::none}, {"strong_wolfe", LineSearch::strong_wolfe}});
  }
};

// Every optimizer, as class templates over the element type (float or double).
template <template <class> class... Opt>
struct OptimizerList {};
using Optimizers = OptimizerList<SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, ASGD, Rprop, Adamax, NAdam, RAdam,
                                 Lion, LAMB, Adan, AdaBelief, ScheduleFreeAdamW>;

template <class Opt>
using InfoOf = OptimizerInfo<typename Opt::options_type>;

}  // namespace fastoptim
