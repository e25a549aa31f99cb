#pragma once
// Scheduler state in checkpoints: each scheduler's state as the JSON object Python's
// `scheduler.state_dict()` is (torch's keys, ints as ints and floats as floats), so a file moves between
// C++ and Python either way.
//
// One SchedulerCodec per scheduler class: `name` (torch's class name), `save` (the state object),
// `load` (reads and checks everything, then returns a Commit that installs it and cannot fail), and for
// the schedulers torch keeps values of in the param groups, `extras` (OneCycleLR's max_lr, SWALR's swa_lr,
// ...). Adding a scheduler: its codec and one entry in `Schedulers`.
//
// Callables follow torch's rule: LambdaLR / MultiplicativeLR save `null` per lambda (a function has no
// state; Python saves a callable object's __dict__, which a C++ function cannot take, so a file holding
// one is rejected), and CyclicLR saves `_scale_fn_custom: null`. The functions themselves are never saved:
// give the same ones to the scheduler you load into.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "../lr_scheduler/chained_scheduler.hpp"
#include "../lr_scheduler/constant_lr.hpp"
#include "../lr_scheduler/cosine_annealing_lr.hpp"
#include "../lr_scheduler/cosine_annealing_warm_restarts.hpp"
#include "../lr_scheduler/cyclic_lr.hpp"
#include "../lr_scheduler/exponential_lr.hpp"
#include "../lr_scheduler/lambda_lr.hpp"
#include "../lr_scheduler/linear_lr.hpp"
#include "../lr_scheduler/lr_scheduler.hpp"
#include "../lr_scheduler/multistep_lr.hpp"
#include "../lr_scheduler/one_cycle_lr.hpp"
#include "../lr_scheduler/polynomial_lr.hpp"
#include "../lr_scheduler/reduce_lr_on_plateau.hpp"
#include "../lr_scheduler/sequential_lr.hpp"
#include "../lr_scheduler/step_lr.hpp"
#include "../lr_scheduler/swalr.hpp"
#include "json.hpp"

namespace fastoptim {

// A scheduler of either kind (torch's ReduceLROnPlateau is not an LRScheduler), or none.
struct SchedulerRef {
  lr_scheduler::LRScheduler* lr = nullptr;
  lr_scheduler::ReduceLROnPlateau* plateau = nullptr;
  SchedulerRef() = default;
  SchedulerRef(lr_scheduler::LRScheduler& s) : lr(&s) {}  // NOLINT: implicit on purpose
  SchedulerRef(lr_scheduler::ReduceLROnPlateau& s) : plateau(&s) {}  // NOLINT
  explicit operator bool() const { return lr || plateau; }
};
struct SchedulerView {
  const lr_scheduler::LRScheduler* lr = nullptr;
  const lr_scheduler::ReduceLROnPlateau* plateau = nullptr;
  SchedulerView() = default;
  SchedulerView(const lr_scheduler::LRScheduler& s) : lr(&s) {}  // NOLINT
  SchedulerView(const lr_scheduler::ReduceLROnPlateau& s) : plateau(&s) {}  // NOLINT
  SchedulerView(SchedulerRef r) : lr(r.lr), plateau(r.plateau) {}  // NOLINT
  explicit operator bool() const { return lr || plateau; }
};

namespace ckpt {

namespace ls = lr_scheduler;

// Values torch's schedulers keep in the param groups: key -> one value per group. Loading sees only the
// keys every group of the file has.
using GroupExtras = std::map<std::string, std::vector<double>>;
inline bool is_group_extra(const std::string& key) {
  return key == "max_lr" || key == "min_lr" || key == "max_momentum" || key == "base_momentum" || key == "swa_lr";
}

using Commit = std::function<void()>;

struct LoadContext {
  std::size_t groups;
  const GroupExtras& extras;
};

// --------------------------------------------------------------------------------- shared pieces

inline void save_base(const ls::LRScheduler& s, ObjectWriter& w) {
  w.reals("base_lrs", s.base_lrs())
      .integer("last_epoch", s.last_epoch())
      .integer("_step_count", s.step_count())
      .flag("_is_initial", false)
      .flag("_get_lr_called_within_step", false)
      .reals("_last_lr", s.get_last_lr());
}

struct BaseState {
  std::vector<double> base_lrs, last_lr;
  std::int64_t last_epoch = 0, step_count = 0;
  void install(ls::LRScheduler& s) const { s.load_base_state(base_lrs, last_epoch, step_count, last_lr); }
};

inline std::vector<double> group_reals(const Json& v, const std::string& key, std::size_t groups) {
  std::vector<double> out = reals(v, key);
  if (out.size() != groups)
    throw Bad("scheduler state '" + key + "' has " + std::to_string(out.size()) + " values, the optimizer has " +
              std::to_string(groups) + " param groups");
  return out;
}

// torch's base keys (Python requires these four).
// A scheduler's integer (an epoch, a count, a period): at most 2^53 in magnitude, as Python's json keeps
// exactly, so a hostile file cannot make the next step overflow.
inline std::int64_t count(const Json& v, const std::string& what) {
  const std::int64_t x = integer(v, what);
  if (x > (std::int64_t(1) << 53) || x < -(std::int64_t(1) << 53)) throw Bad(what + " is out of range");
  return x;
}
inline std::vector<std::int64_t> counts(const Json& v, const std::string& what) {
  std::vector<std::int64_t> out;
  for (const Json& x : array(v, what).items) out.push_back(count(x, what + " entry"));
  return out;
}

inline BaseState read_base(const Json& st, const LoadContext& ctx) {
  BaseState b;
  b.base_lrs = group_reals(need(st, "base_lrs", "scheduler state"), "base_lrs", ctx.groups);
  b.last_lr = group_reals(need(st, "_last_lr", "scheduler state"), "_last_lr", ctx.groups);
  b.last_epoch = count(need(st, "last_epoch", "scheduler state"), "last_epoch");
  b.step_count = count(need(st, "_step_count", "scheduler state"), "_step_count");
  return b;
}

// Calls f(value) when the state has `key` (Python keeps the current value of an absent argument).
template <class F>
void if_present(const Json& st, const char* key, F&& f) {
  if (const Json* v = st.get(key)) f(*v);
}

// Runs a scheduler's own check (torch's messages) on loaded values, as a checkpoint error.
template <class F>
void checked(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    throw Bad(std::string("scheduler state: ") + e.what());
  }
}

// An integer written as one, else the float (Python's int/float distinction for T_cur and end_step).
inline std::string int_if_whole(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) return std::to_string(static_cast<std::int64_t>(v));
  return number(v);
}

// Extras of the first n groups from the file, if every group had `key`.
inline const std::vector<double>* extra(const LoadContext& ctx, const char* key) {
  const auto it = ctx.extras.find(key);
  return it == ctx.extras.end() || it->second.size() != ctx.groups ? nullptr : &it->second;
}

template <class S>
struct SchedulerCodec;  // specialized per scheduler below

// ----------------------------------------------------------------------- simple schedulers

// The schedulers whose state is torch's base keys plus a few arguments in `params`.
template <class S>
struct ParamsCodec {
  template <class Write>
  static void save_with(const S& s, ObjectWriter& w, Write&& write_params) {
    write_params(s.params, w);
    save_base(s, w);
  }
  template <class Read>
  static Commit load_with(S& s, const Json& st, const LoadContext& ctx, Read&& read_params) {
    typename S::Params p = s.params;
    read_params(p, st);
    const BaseState base = read_base(st, ctx);
    return [&s, p, base] {
      s.params = p;
      base.install(s);
    };
  }
};

template <>
struct SchedulerCodec<ls::StepLR> {
  static constexpr const char* name = "StepLR";
  static void save(const ls::StepLR& s, ObjectWriter& w) {
    ParamsCodec<ls::StepLR>::save_with(s, w, [](const auto& p, ObjectWriter& o) {
      o.integer("step_size", p.step_size).real("gamma", p.gamma);
    });
  }
  static Commit load(ls::StepLR& s, const Json& st, const LoadContext& ctx) {
    return ParamsCodec<ls::StepLR>::load_with(s, st, ctx, [](ls::StepLR::Params& p, const Json& j) {
      if_present(j, "step_size", [&](const Json& v) { p.step_size = count(v, "step_size"); });
      if_present(j, "gamma", [&](const Json& v) { p.gamma = real(v, "gamma"); });
      checked([&] { ls::StepLR::check(p); });
    });
  }
};

template <>
struct SchedulerCodec<ls::MultiStepLR> {
  static constexpr const char* name = "MultiStepLR";
  // torch keeps the milestones in a Counter; the file holds them as a sorted list with repeats.
  static void save(const ls::MultiStepLR& s, ObjectWriter& w) {
    ParamsCodec<ls::MultiStepLR>::save_with(s, w, [](const auto& p, ObjectWriter& o) {
      std::vector<std::int64_t> m = p.milestones;
      std::sort(m.begin(), m.end());
      o.integers("milestones", m).real("gamma", p.gamma);
    });
  }
  static Commit load(ls::MultiStepLR& s, const Json& st, const LoadContext& ctx) {
    return ParamsCodec<ls::MultiStepLR>::load_with(s, st, ctx, [](ls::MultiStepLR::Params& p, const Json& j) {
      if_present(j, "milestones", [&](const Json& v) { p.milestones = counts(v, "milestones"); });
      if_present(j, "gamma", [&](const Json& v) { p.gamma = real(v, "gamma"); });
    });
  }
};

template <>
struct SchedulerCodec<ls::ConstantLR> {
  static constexpr const char* name = "ConstantLR";
  static void save(const ls::ConstantLR& s, ObjectWriter& w) {
    ParamsCodec<ls::ConstantLR>::save_with(s, w, [](const auto& p, ObjectWriter& o) {
      o.real("factor", p.factor).integer("total_iters", p.total_iters);
    });
  }
  static Commit load(ls::ConstantLR& s, const Json& st, const LoadContext& ctx) {
    return ParamsCodec<ls::ConstantLR>::load_with(s, st, ctx, [](ls::ConstantLR::Params& p, const Json& j) {
      if_present(j, "factor", [&](const Json& v) { p.factor = real(v, "factor"); });
      if_present(j, "total_iters", [&](const Json& v) { p.total_iters = count(v, "total_iters"); });
      checked([&] { ls::ConstantLR::check(p); });
    });
  }
};

template <>
struct SchedulerCodec<ls::LinearLR> {
  static constexpr const char* name = "LinearLR";
  static void save(const ls::LinearLR& s, ObjectWriter& w) {
    ParamsCodec<ls::LinearLR>::save_with(s, w, [](const auto& p, ObjectWriter& o) {
      o.real("start_factor", p.start_factor).real("end_factor", p.end_factor).integer("total_iters", p.total_iters);
    });
  }
  static Commit load(ls::LinearLR& s, const Json& st, const LoadContext& ctx) {
    return ParamsCodec<ls::LinearLR>::load_with(s, st, ctx, [](ls::LinearLR::Params& p, const Json& j) {
      if_present(j, "start_factor", [&](const Json& v) { p.start_factor = real(v, "start_factor"); });
      if_present(j, "end_factor", [&](const Json& v) { p.end_factor = real(v, "end_factor"); });
      if_present(j, "total_iters", [&](const Json& v) { p.total_iters = count(v, "total_iters"); });
      checked([&] { ls::LinearLR::check(p); });
    });
  }
};

template <>
struct SchedulerCodec<ls::ExponentialLR> {
  static constexpr const char* name = "ExponentialLR";
  static void save(const ls::ExponentialLR& s, ObjectWriter& w) {
    ParamsCodec<ls::ExponentialLR>::save_with(s, w, [](const auto& p, ObjectWriter& o) { o.real("gamma", p.gamma); });
  }
  static Commit load(ls::ExponentialLR& s, const Json& st, const LoadContext& ctx) {
    return ParamsCodec<ls::ExponentialLR>::load_with(s, st, ctx, [](ls::ExponentialLR::Params& p, const Json& j) {
      if_present(j, "gamma", [&](const Json& v) { p.gamma = real(v, "gamma"); });
    });
  }
};

template <>
struct SchedulerCodec<ls::PolynomialLR> {
  static constexpr const char* name = "PolynomialLR";
  static void save(const ls::PolynomialLR& s, ObjectWriter& w) {
    ParamsCodec<ls::PolynomialLR>::save_with(s, w, [](const auto& p, ObjectWriter& o) {
      o.integer("total_iters", p.total_iters).real("power", p.power);
    });
  }
  static Commit load(ls::PolynomialLR& s, const Json& st, const LoadContext& ctx) {
    return ParamsCodec<ls::PolynomialLR>::load_with(s, st, ctx, [](ls::PolynomialLR::Params& p, const Json& j) {
      if_present(j, "total_iters", [&](const Json& v) { p.total_iters = count(v, "total_iters"); });
      if_present(j, "power", [&](const Json& v) { p.power = real(v, "power"); });
    });
  }
};

template <>
struct SchedulerCodec<ls::CosineAnnealingLR> {
  static constexpr const char* name = "CosineAnnealingLR";
  static void save(const ls::CosineAnnealingLR& s, ObjectWriter& w) {
    ParamsCodec<ls::CosineAnnealingLR>::save_with(s, w, [](const auto& p, ObjectWriter& o) {
      o.integer("T_max", p.T_max).real("eta_min", p.eta_min);
    });
  }
  static Commit load(ls::CosineAnnealingLR& s, const Json& st, const LoadContext& ctx) {
    return ParamsCodec<ls::CosineAnnealingLR>::load_with(s, st, ctx,
                                                         [](ls::CosineAnnealingLR::Params& p, const Json& j) {
      if_present(j, "T_max", [&](const Json& v) { p.T_max = count(v, "T_max"); });
      if_present(j, "eta_min", [&](const Json& v) { p.eta_min = real(v, "eta_min"); });
    });
  }
};

template <>
struct SchedulerCodec<ls::CosineAnnealingWarmRestarts> {
  static constexpr const char* name = "CosineAnnealingWarmRestarts";
  static void save(const ls::CosineAnnealingWarmRestarts& s, ObjectWriter& w) {
    ParamsCodec<ls::CosineAnnealingWarmRestarts>::save_with(s, w, [](const auto& p, ObjectWriter& o) {
      o.integer("T_0", p.T_0).integer("T_i", p.T_i).integer("T_mult", p.T_mult).real("eta_min", p.eta_min);
      o.raw("T_cur", int_if_whole(p.T_cur));
    });
  }
  static Commit load(ls::CosineAnnealingWarmRestarts& s, const Json& st, const LoadContext& ctx) {
    using P = ls::CosineAnnealingWarmRestarts::Params;
    return ParamsCodec<ls::CosineAnnealingWarmRestarts>::load_with(s, st, ctx, [](P& p, const Json& j) {
      if_present(j, "T_0", [&](const Json& v) { p.T_0 = count(v, "T_0"); });
      if_present(j, "T_i", [&](const Json& v) { p.T_i = count(v, "T_i"); });
      if_present(j, "T_mult", [&](const Json& v) { p.T_mult = count(v, "T_mult"); });
      if_present(j, "eta_min", [&](const Json& v) { p.eta_min = real(v, "eta_min"); });
      if_present(j, "T_cur", [&](const Json& v) { p.T_cur = real(v, "T_cur"); });
      if (p.T_0 <= 0) throw Bad("scheduler state: Expected positive integer T_0, but got " + std::to_string(p.T_0));
      if (p.T_i <= 0) throw Bad("scheduler state: Expected positive integer T_i, but got " + std::to_string(p.T_i));
      if (p.T_mult < 1) throw Bad("scheduler state: Expected integer T_mult >= 1, but got " + std::to_string(p.T_mult));
      if (p.T_i > (std::int64_t(1) << 53) / p.T_mult) throw Bad("scheduler state: T_i * T_mult is out of range");
    });
  }
};

template <>
struct SchedulerCodec<ls::SWALR> {
  static constexpr const char* name = "SWALR";
  static void save(const ls::SWALR& s, ObjectWriter& w) {
    ParamsCodec<ls::SWALR>::save_with(s, w, [](const auto& p, ObjectWriter& o) {
      o.text("_anneal_strategy", ls::SWALR::strategy_name(p.anneal_strategy)).integer("anneal_epochs", p.anneal_epochs);
    });
  }
  // torch keeps swa_lr in the param groups.
  static void extras(const ls::SWALR& s, GroupExtras& out) { out["swa_lr"] = s.params.swa_lrs; }
  static Commit load(ls::SWALR& s, const Json& st, const LoadContext& ctx) {
    return ParamsCodec<ls::SWALR>::load_with(s, st, ctx, [&ctx](ls::SWALR::Params& p, const Json& j) {
      if_present(j, "_anneal_strategy", [&](const Json& v) {
        checked([&] { p.anneal_strategy = ls::SWALR::parse_strategy(text(v, "_anneal_strategy")); });
      });
      if_present(j, "anneal_epochs", [&](const Json& v) {
        p.anneal_epochs = count(v, "anneal_epochs");
        if (p.anneal_epochs < 0)
          throw Bad("scheduler state: anneal_epochs must be equal or greater than 0, got " +
                    std::to_string(p.anneal_epochs));
      });
      if (const auto* swa = extra(ctx, "swa_lr")) p.swa_lrs = *swa;
    });
  }
};

// ------------------------------------------------------------------------------ callables

// lr_lambdas / _scale_fn_custom entries: null (a function) or an empty object (a callable without state).
inline void check_callable_state(const Json& v, const std::string& what) {
  if (v.type == Json::Null || (v.type == Json::Object && v.members.empty())) return;
  throw Bad(what + " holds the state of a Python callable object, which a C++ function cannot take");
}

template <class S>
struct LambdaCodec {
  static void save(const S& s, ObjectWriter& w) {
    save_base(s, w);
    std::string nulls = "[";
    for (std::size_t i = 0; i < s.params.lr_lambdas.size(); ++i) nulls += i ? ",null" : "null";
    w.raw("lr_lambdas", nulls + "]");
  }
  static Commit load(S& s, const Json& st, const LoadContext& ctx) {
    const Json& lambdas = array(need(st, "lr_lambdas", "scheduler state"), "lr_lambdas");
    if (lambdas.items.size() != s.params.lr_lambdas.size())
      throw Bad("scheduler state: Expected " + std::to_string(s.params.lr_lambdas.size()) + " lr_lambdas, but got " +
                std::to_string(lambdas.items.size()));
    for (std::size_t i = 0; i < lambdas.items.size(); ++i)
      check_callable_state(lambdas.items[i], "lr_lambdas[" + std::to_string(i) + "]");
    const BaseState base = read_base(st, ctx);
    return [&s, base] { base.install(s); };
  }
};
template <>
struct SchedulerCodec<ls::LambdaLR> : LambdaCodec<ls::LambdaLR> {
  static constexpr const char* name = "LambdaLR";
};
template <>
struct SchedulerCodec<ls::MultiplicativeLR> : LambdaCodec<ls::MultiplicativeLR> {
  static constexpr const char* name = "MultiplicativeLR";
};

// ------------------------------------------------------------------------------ cyclic

inline void check_modes(const std::vector<double>& values, const std::string& key, std::size_t groups) {
  if (values.size() != groups)
    throw Bad("scheduler state: " + key + " must be a list of " + std::to_string(groups) + " values");
}

template <>
struct SchedulerCodec<ls::CyclicLR> {
  static constexpr const char* name = "CyclicLR";
  static void save(const ls::CyclicLR& s, ObjectWriter& w) {
    const auto& p = s.params;
    w.reals("max_lrs", p.max_lrs)
        .real("total_size", p.total_size)
        .real("step_ratio", p.step_ratio)
        .text("mode", p.mode)
        .real("gamma", p.gamma)
        .text("scale_mode", p.scale_mode)
        .flag("cycle_momentum", p.cycle_momentum);
    if (p.cycle_momentum)
      w.flag("use_beta1", p.use_beta1).reals("base_momentums", p.base_momentums).reals("max_momentums", p.max_momentums);
    save_base(s, w);
    w.null("_scale_fn_custom");
  }
  // torch writes max_momentum / base_momentum into the groups when it starts cycling them.
  static void extras(const ls::CyclicLR& s, GroupExtras& out) {
    if (!s.params.cycle_momentum) return;
    out["max_momentum"] = s.params.max_momentums;
    out["base_momentum"] = s.params.base_momentums;
  }
  static Commit load(ls::CyclicLR& s, const Json& st, const LoadContext& ctx) {
    ls::CyclicLR::Params p = s.params;
    const bool had_momentum = p.cycle_momentum;
    if_present(st, "max_lrs", [&](const Json& v) { p.max_lrs = group_reals(v, "max_lrs", ctx.groups); });
    if_present(st, "total_size", [&](const Json& v) { p.total_size = real(v, "total_size"); });
    if_present(st, "step_ratio", [&](const Json& v) { p.step_ratio = real(v, "step_ratio"); });
    if_present(st, "mode", [&](const Json& v) { p.mode = text(v, "mode"); });
    if_present(st, "gamma", [&](const Json& v) { p.gamma = real(v, "gamma"); });
    if_present(st, "scale_mode", [&](const Json& v) { p.scale_mode = text(v, "scale_mode"); });
    if_present(st, "cycle_momentum", [&](const Json& v) { p.cycle_momentum = flag(v, "cycle_momentum"); });
    if_present(st, "use_beta1", [&](const Json& v) { p.use_beta1 = flag(v, "use_beta1"); });
    if_present(st, "base_momentums", [&](const Json& v) { p.base_momentums = group_reals(v, "base_momentums", ctx.groups); });
    if_present(st, "max_momentums", [&](const Json& v) { p.max_momentums = group_reals(v, "max_momentums", ctx.groups); });
    if_present(st, "_scale_fn_custom", [&](const Json& v) {
      check_callable_state(v, "_scale_fn_custom");
      if (v.type != Json::Null && !p.scale_fn_custom)
        throw Bad("scheduler state holds a custom scale_fn state but this CyclicLR has no scale_fn");
    });
    if (p.mode != "triangular" && p.mode != "triangular2" && p.mode != "exp_range" && !p.scale_fn_custom)
      throw Bad("scheduler state: mode is invalid and scale_fn is None");
    if (p.scale_mode != "cycle" && p.scale_mode != "iterations")
      throw Bad("scheduler state: scale_mode must be 'cycle' or 'iterations', got '" + p.scale_mode + "'");
    // torch's values: total_size = step_size_up + step_size_down > 0, step_ratio = step_size_up / total_size.
    if (!(std::isfinite(p.total_size) && p.total_size > 0))
      throw Bad("scheduler state: total_size must be finite and positive, got " + ls::cyclic_detail::repr(p.total_size));
    if (!(p.step_ratio >= 0 && p.step_ratio <= 1))
      throw Bad("scheduler state: step_ratio must be in [0, 1], got " + ls::cyclic_detail::repr(p.step_ratio));
    if (p.cycle_momentum) {
      checked([&] { ls::cyclic_detail::check_momentum(s.groups()); });
      if (!had_momentum && (!st.get("base_momentums") || !st.get("max_momentums")))
        throw Bad("scheduler state is missing base_momentums / max_momentums");
      check_modes(p.base_momentums, "base_momentums", ctx.groups);
      check_modes(p.max_momentums, "max_momentums", ctx.groups);
    }
    const BaseState base = read_base(st, ctx);
    return [&s, p, base] {
      const auto custom = s.params.scale_fn_custom;  // the function is the caller's, never the file's
      s.params = p;
      s.params.scale_fn_custom = custom;
      base.install(s);
      s.init_scale_fn();
    };
  }
};

template <>
struct SchedulerCodec<ls::OneCycleLR> {
  static constexpr const char* name = "OneCycleLR";
  static bool known_value(const std::string& v) {
    return v == "initial_lr" || v == "max_lr" || v == "min_lr" || v == "max_momentum" || v == "base_momentum";
  }
  static void save(const ls::OneCycleLR& s, ObjectWriter& w) {
    const auto& p = s.params;
    std::string phases = "[";
    for (std::size_t i = 0; i < p.schedule_phases.size(); ++i) {
      const auto& ph = p.schedule_phases[i];
      // torch's last phase ends at the int total_steps - 1; the others at a float.
      const std::string end = i + 1 == p.schedule_phases.size() ? int_if_whole(ph.end_step) : number(ph.end_step);
      phases += (i ? "," : "") + ObjectWriter()
                                     .raw("end_step", end)
                                     .text("start_lr", ph.start_lr)
                                     .text("end_lr", ph.end_lr)
                                     .text("start_momentum", ph.start_momentum)
                                     .text("end_momentum", ph.end_momentum)
                                     .str();
    }
    w.integer("total_steps", p.total_steps)
        .raw("_schedule_phases", phases + "]")
        .text("_anneal_func_type", p.anneal_func_type)
        .flag("cycle_momentum", p.cycle_momentum);
    if (p.cycle_momentum) w.flag("use_beta1", p.use_beta1);
    save_base(s, w);
  }
  // torch keeps these in the param groups and reads them back at every step.
  static void extras(const ls::OneCycleLR& s, GroupExtras& out) {
    out["max_lr"] = s.params.max_lrs;
    out["min_lr"] = s.params.min_lrs;
    if (s.params.cycle_momentum) {
      out["max_momentum"] = s.params.max_momentums;
      out["base_momentum"] = s.params.base_momentums;
    }
  }
  static Commit load(ls::OneCycleLR& s, const Json& st, const LoadContext& ctx) {
    ls::OneCycleLR::Params p = s.params;
    if_present(st, "total_steps", [&](const Json& v) {
      p.total_steps = count(v, "total_steps");
      if (p.total_steps <= 0)
        throw Bad("scheduler state: Expected positive integer total_steps, but got " + std::to_string(p.total_steps));
    });
    if_present(st, "_schedule_phases", [&](const Json& v) {
      if (array(v, "_schedule_phases").items.empty()) throw Bad("scheduler state: _schedule_phases is empty");
      p.schedule_phases.clear();
      for (const Json& ph : v.items) {
        ls::OneCycleLR::Phase out;
        out.end_step = real(need(ph, "end_step", "_schedule_phases entry"), "end_step");
        for (auto [key, field] : {std::pair<const char*, std::string*>{"start_lr", &out.start_lr},
                                  {"end_lr", &out.end_lr},
                                  {"start_momentum", &out.start_momentum},
                                  {"end_momentum", &out.end_momentum}}) {
          *field = text(need(ph, key, "_schedule_phases entry"), key);
          if (!known_value(*field)) throw Bad("scheduler state: unknown schedule value '" + *field + "'");
        }
        p.schedule_phases.push_back(out);
      }
    });
    if_present(st, "_anneal_func_type", [&](const Json& v) {
      p.anneal_func_type = text(v, "_anneal_func_type");
      if (p.anneal_func_type != "cos" && p.anneal_func_type != "linear")
        throw Bad("scheduler state: Unknown _anneal_func_type: " + p.anneal_func_type);
    });
    if_present(st, "cycle_momentum", [&](const Json& v) { p.cycle_momentum = flag(v, "cycle_momentum"); });
    if_present(st, "use_beta1", [&](const Json& v) { p.use_beta1 = flag(v, "use_beta1"); });
    if (const auto* v = extra(ctx, "max_lr")) p.max_lrs = *v;
    if (const auto* v = extra(ctx, "min_lr")) p.min_lrs = *v;
    if (const auto* v = extra(ctx, "max_momentum")) p.max_momentums = *v;
    if (const auto* v = extra(ctx, "base_momentum")) p.base_momentums = *v;
    if (p.cycle_momentum) {
      checked([&] { ls::cyclic_detail::check_momentum(s.groups()); });
      check_modes(p.max_momentums, "max_momentum", ctx.groups);
      check_modes(p.base_momentums, "base_momentum", ctx.groups);
    }
    check_modes(p.max_lrs, "max_lr", ctx.groups);
    check_modes(p.min_lrs, "min_lr", ctx.groups);
    const BaseState base = read_base(st, ctx);
    return [&s, p, base] {
      s.params = p;
      base.install(s);
    };
  }
};

// ------------------------------------------------------------------------------ plateau

template <>
struct SchedulerCodec<ls::ReduceLROnPlateau> {
  using RP = ls::ReduceLROnPlateau;
  static constexpr const char* name = "ReduceLROnPlateau";
  static void save(const RP& s, ObjectWriter& w) {
    const RP::Options& o = s.options();
    w.real("factor", o.factor);
    if (o.min_lrs.empty()) w.real("default_min_lr", o.min_lr);
    else w.null("default_min_lr");
    w.reals("min_lrs", s.min_lrs())
        .integer("patience", o.patience)
        .integer("cooldown", o.cooldown)
        .real("eps", o.eps)
        .integer("last_epoch", s.last_epoch())
        .reals("_last_lr", s.get_last_lr())
        .real("mode_worse", s.mode_worse())
        .text("mode", o.mode == RP::Mode::min ? "min" : "max")
        .real("threshold", o.threshold)
        .text("threshold_mode", o.threshold_mode == RP::ThresholdMode::rel ? "rel" : "abs")
        .real("best", s.best())
        .integer("cooldown_counter", s.cooldown_counter())
        .integer("num_bad_epochs", s.num_bad_epochs());
  }
  // As Python's load_state_dict: every key optional, the state machine rebuilt with the loaded options.
  static Commit load(RP& s, const Json& st, const LoadContext& ctx) {
    RP::Options o = s.options();
    if_present(st, "mode", [&](const Json& v) {
      const std::string& m = text(v, "mode");
      if (m != "min" && m != "max") throw Bad("scheduler state: mode " + m + " is unknown!");
      o.mode = m == "min" ? RP::Mode::min : RP::Mode::max;
    });
    if_present(st, "threshold_mode", [&](const Json& v) {
      const std::string& m = text(v, "threshold_mode");
      if (m != "rel" && m != "abs") throw Bad("scheduler state: threshold mode " + m + " is unknown!");
      o.threshold_mode = m == "rel" ? RP::ThresholdMode::rel : RP::ThresholdMode::abs;
    });
    if_present(st, "factor", [&](const Json& v) { o.factor = real(v, "factor"); });
    if_present(st, "patience", [&](const Json& v) { o.patience = count(v, "patience"); });
    if_present(st, "cooldown", [&](const Json& v) { o.cooldown = count(v, "cooldown"); });
    if_present(st, "eps", [&](const Json& v) { o.eps = real(v, "eps"); });
    if_present(st, "threshold", [&](const Json& v) { o.threshold = real(v, "threshold"); });
    std::vector<double> min_lrs = s.min_lrs();
    if_present(st, "min_lrs", [&](const Json& v) { min_lrs = reals(v, "min_lrs"); });
    if (const Json* d = st.get("default_min_lr")) {
      if (d->type == Json::Null) {
        o.min_lrs = min_lrs;  // per group: the constructor checks the count
      } else {
        o.min_lr = real(*d, "default_min_lr");
        o.min_lrs.clear();
      }
    }
    double best = s.best();
    std::int64_t bad = s.num_bad_epochs(), cooldown_counter = s.cooldown_counter(), last_epoch = s.last_epoch();
    std::vector<double> last_lr = s.get_last_lr();
    if_present(st, "best", [&](const Json& v) { best = real(v, "best"); });
    if_present(st, "num_bad_epochs", [&](const Json& v) { bad = count(v, "num_bad_epochs"); });
    if_present(st, "cooldown_counter", [&](const Json& v) { cooldown_counter = count(v, "cooldown_counter"); });
    if_present(st, "last_epoch", [&](const Json& v) { last_epoch = count(v, "last_epoch"); });
    if_present(st, "_last_lr", [&](const Json& v) { last_lr = group_reals(v, "_last_lr", ctx.groups); });
    std::shared_ptr<RP> fresh;
    checked([&] { fresh = std::make_shared<RP>(s.groups(), o); });
    fresh->load_state(best, bad, cooldown_counter, last_epoch, min_lrs, last_lr);
    return [&s, fresh] {
      fresh->on_event = std::move(s.on_event);
      s = std::move(*fresh);
    };
  }
};

// ------------------------------------------------------------------------------ the list

template <class... S>
struct SchedulerList {};
using Schedulers =
    SchedulerList<ls::StepLR, ls::MultiStepLR, ls::ConstantLR, ls::LinearLR, ls::ExponentialLR, ls::PolynomialLR,
                  ls::LambdaLR, ls::MultiplicativeLR, ls::CosineAnnealingLR, ls::CosineAnnealingWarmRestarts,
                  ls::CyclicLR, ls::OneCycleLR, ls::SequentialLR, ls::ChainedScheduler, ls::ReduceLROnPlateau,
                  ls::SWALR>;

template <class C, class = void>
struct has_extras : std::false_type {};
template <class C>
struct has_extras<C, std::void_t<decltype(&C::extras)>> : std::true_type {};

// A scheduler's saved form: the metadata entry's "class" and "children" (composites), and its state.
struct SavedScheduler {
  std::string desc;   // {"class": ..., "children": [...]} without the closing brace
  std::string state;  // the state object
};

SavedScheduler save_scheduler(SchedulerView s, GroupExtras& extras);
Commit load_scheduler(SchedulerRef s, const Json& desc, const Json& state, const LoadContext& ctx,
                      const std::string& where);

// Calls f(codec, object) with the codec of s's exact class; false when no codec has that class.
template <class F, class View, class... S>
bool with_codec(View s, F&& f, SchedulerList<S...>) {
  bool found = false;
  auto try_one = [&](auto* tag) {
    using Sched = std::remove_pointer_t<decltype(tag)>;
    if (found) return;
    if constexpr (std::is_base_of_v<ls::LRScheduler, Sched>) {
      if (s.lr && typeid(*s.lr) == typeid(Sched)) {
        found = true;
        f(SchedulerCodec<Sched>{}, static_cast<std::conditional_t<std::is_const_v<std::remove_pointer_t<decltype(s.lr)>>,
                                                                    const Sched&, Sched&>>(*s.lr));
      }
    } else {
      if (s.plateau && typeid(*s.plateau) == typeid(Sched)) {
        found = true;
        f(SchedulerCodec<Sched>{}, *s.plateau);
      }
    }
  };
  (try_one(static_cast<S*>(nullptr)), ...);
  return found;
}

inline std::string type_name(SchedulerView s) {
  return s.lr ? typeid(*s.lr).name() : typeid(*s.plateau).name();
}

// ------------------------------------------------------------------------------ composites

template <class S>
struct CompositeCodec {
  static void save_children(const S& s, ObjectWriter& w, std::string& children, GroupExtras& extras) {
    std::string states = "[";
    children = "[";
    for (std::size_t i = 0; i < s.schedulers().size(); ++i) {
      const SavedScheduler c = save_scheduler(SchedulerView(*s.schedulers()[i]), extras);
      states += (i ? "," : "") + c.state;
      children += (i ? "," : "") + c.desc + "}";
    }
    children += "]";
    w.raw("_schedulers", states + "]");
  }
  static std::vector<Commit> load_children(S& s, const Json& desc, const Json& st, const LoadContext& ctx,
                                           const std::string& where) {
    const Json& states = array(need(st, "_schedulers", "scheduler state"), "_schedulers");
    const Json* descs = desc.get("children");
    const std::size_t n = s.schedulers().size();
    if (!descs || descs->type != Json::Array || descs->items.size() != n)
      throw Bad(where + " does not have the given " + name_of() + "'s " + std::to_string(n) + " schedulers");
    if (states.items.size() != n)
      throw Bad("scheduler state holds " + std::to_string(states.items.size()) + " scheduler states, " + name_of() +
                " has " + std::to_string(n) + " schedulers");
    std::vector<Commit> out;
    for (std::size_t i = 0; i < n; ++i)
      out.push_back(load_scheduler(SchedulerRef(*s.schedulers()[i]), descs->items[i], states.items[i], ctx,
                                   where + " child " + std::to_string(i)));
    return out;
  }
  static std::string name_of() { return SchedulerCodec<S>::name; }
};

template <>
struct SchedulerCodec<ls::SequentialLR> : CompositeCodec<ls::SequentialLR> {
  static constexpr const char* name = "SequentialLR";
};
template <>
struct SchedulerCodec<ls::ChainedScheduler> : CompositeCodec<ls::ChainedScheduler> {
  static constexpr const char* name = "ChainedScheduler";
};

inline SavedScheduler save_scheduler(SchedulerView s, GroupExtras& extras) {
  SavedScheduler out;
  const bool found = with_codec(
      s,
      [&](auto codec, const auto& sched) {
        using Codec = decltype(codec);
        using Sched = std::decay_t<decltype(sched)>;
        ObjectWriter w;
        out.desc = "{\"class\":" + quote(Codec::name);
        if constexpr (std::is_base_of_v<ls::CompositeLRScheduler, Sched>) {
          if constexpr (std::is_same_v<Sched, ls::SequentialLR>) w.integers("_milestones", sched.milestones());
          if constexpr (std::is_same_v<Sched, ls::SequentialLR>) w.integer("last_epoch", sched.last_epoch());
          w.reals("_last_lr", sched.get_last_lr());
          std::string children;
          Codec::save_children(sched, w, children, extras);
          out.desc += ",\"children\":" + children;
        } else {
          Codec::save(sched, w);
          if constexpr (has_extras<Codec>::value) Codec::extras(sched, extras);
        }
        out.state = w.str();
      },
      Schedulers{});
  if (!found) throw std::invalid_argument("cannot save a scheduler of type " + type_name(s) + " (not a fastoptim scheduler)");
  return out;
}

inline Commit load_scheduler(SchedulerRef s, const Json& desc, const Json& state, const LoadContext& ctx,
                             const std::string& where) {
  if (desc.type != Json::Object || !desc.get("class") || desc.get("class")->type != Json::String)
    throw Bad(where + " entry is malformed");
  if (state.type != Json::Object) throw Bad(where + " has no 'state' object");
  const std::string& saved = desc.get("class")->str;
  Commit out;
  const bool found = with_codec(
      s,
      [&](auto codec, auto& sched) {
        using Codec = decltype(codec);
        using Sched = std::decay_t<decltype(sched)>;
        if (saved != Codec::name) throw Bad(where + " is a " + saved + ", but a " + Codec::name + " was given");
        if constexpr (std::is_base_of_v<ls::CompositeLRScheduler, Sched>) {
          std::vector<double> last_lr = sched.get_last_lr();
          std::int64_t last_epoch = sched.last_epoch();
          std::vector<std::int64_t> milestones;
          if constexpr (std::is_same_v<Sched, ls::SequentialLR>) {
            milestones = sched.milestones();
            if_present(state, "_milestones", [&](const Json& v) {
              milestones = counts(v, "_milestones");
              if (milestones.size() != sched.schedulers().size() - 1)
                throw Bad("scheduler state has " + std::to_string(milestones.size()) + " milestones, expected " +
                          std::to_string(sched.schedulers().size() - 1));
            });
            if_present(state, "last_epoch", [&](const Json& v) { last_epoch = count(v, "last_epoch"); });
          }
          if_present(state, "_last_lr", [&](const Json& v) { last_lr = group_reals(v, "_last_lr", ctx.groups); });
          std::vector<Commit> children = Codec::load_children(sched, desc, state, ctx, where);
          out = [&sched, last_lr, last_epoch, milestones, children] {
            if constexpr (std::is_same_v<Sched, ls::SequentialLR>) sched.set_milestones(milestones);
            sched.load_base_state(sched.base_lrs(), last_epoch, sched.step_count(), last_lr);
            for (const Commit& c : children) c();
          };
        } else {
          out = Codec::load(sched, state, ctx);
        }
      },
      Schedulers{});
  if (!found) throw std::invalid_argument("cannot load into a scheduler of type " + type_name(s) + " (not a fastoptim scheduler)");
  return out;
}

}  // namespace ckpt
}  // namespace fastoptim
