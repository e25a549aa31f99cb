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
//   v.forced(key, bool& member, value)   always `value` for this optimizer (AdamW's decoupled_weight_decay)
//   v.torch_only(key, TorchFlag)         a torch flag with no meaning here (foreach, fused, capturable, ...)
//   v.buffer(key, std::vector<T>&)       a per-parameter state buffer (empty: not created yet)
//   v.step(key, std::int64_t&)           the step count (torch keeps it as a float32 scalar tensor)

#include <cstdint>
#include <vector>

#include "adagrad/adagrad.hpp"
#include "adam/adam.hpp"
#include "rmsprop/rmsprop.hpp"
#include "sgd/sgd.hpp"

namespace fastoptim {

// torch flags that choose an implementation or need autograd: `foreach`/`fused` take None or a bool (we
// always run one fused kernel; torch's default is None); `capturable`/`differentiable` must be False.
enum class TorchFlag { none_or_bool, false_only };

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

// Every optimizer, as class templates over the element type (float or double).
template <template <class> class... Opt>
struct OptimizerList {};
using Optimizers = OptimizerList<SGD, Adam, AdamW, RMSprop, Adagrad>;

template <class Opt>
using InfoOf = OptimizerInfo<typename Opt::options_type>;

}  // namespace fastoptim
