// The C API's schedulers: built by torch's class name from JSON arguments (torch's keyword arguments and
// defaults), stepped, inspected, composed.

#include "internal.hpp"

#include <algorithm>
#include <set>
#include <utility>

namespace fastoptim_capi {
namespace {

using fastoptim::ckpt::Bad;

// A scheduler's JSON arguments, read by name with torch's defaults; what is left over is an error.
class Args {
 public:
  Args(std::string scheduler, const Json& obj) : scheduler_(std::move(scheduler)), obj_(obj) {}

  const Json* get(const char* key) {
    if (taken_.insert(key).second) order_ += (order_.empty() ? "" : ", ") + std::string(key);
    const Json* v = obj_.get(key);
    return v && v->type != Json::Null ? v : nullptr;
  }
  const Json& required(const char* key) {
    const Json* v = get(key);
    if (!v) throw invalid(scheduler_ + " needs the argument '" + key + "'");
    return *v;
  }
  double real(const char* key, double def) {
    const Json* v = get(key);
    return v ? fastoptim::ckpt::real(*v, what(key)) : def;
  }
  std::int64_t integer(const char* key, std::int64_t def) {
    const Json* v = get(key);
    return v ? fastoptim::ckpt::integer(*v, what(key)) : def;
  }
  std::optional<std::int64_t> optional_integer(const char* key) {
    const Json* v = get(key);
    if (!v) return std::nullopt;
    return fastoptim::ckpt::integer(*v, what(key));
  }
  bool flag(const char* key, bool def) {
    const Json* v = get(key);
    return v ? fastoptim::ckpt::flag(*v, what(key)) : def;
  }
  std::string text(const char* key, const std::string& def) {
    const Json* v = get(key);
    return v ? fastoptim::ckpt::text(*v, what(key)) : def;
  }
  // A number, or a list with one value per param group (torch's scalar-or-list arguments).
  std::vector<double> per_group(const Json& v, const char* key) {
    if (v.type == Json::Array) return fastoptim::ckpt::reals(v, what(key));
    return {fastoptim::ckpt::real(v, what(key))};
  }
  std::vector<double> per_group(const char* key, double def) {
    const Json* v = get(key);
    return v ? per_group(*v, key) : std::vector<double>{def};
  }
  std::int64_t last_epoch() { return integer("last_epoch", -1); }

  // Every argument must have been read: anything else is a typo or an argument of another scheduler.
  void finish() const {
    for (const auto& [k, v] : obj_.members)
      if (!taken_.count(k))
        throw invalid(scheduler_ + " got an unexpected argument '" + k + "' (it takes " + order_ + ")");
  }

 private:
  std::string what(const char* key) const { return scheduler_ + " argument '" + key + "'"; }
  std::string scheduler_;
  const Json& obj_;
  std::set<std::string> taken_;
  std::string order_;
};

struct Built {
  std::vector<std::unique_ptr<ls::LRScheduler>> children;  // of composites, grandchildren included
  std::unique_ptr<ls::LRScheduler> lr;
  std::unique_ptr<ls::ReduceLROnPlateau> plateau;
};

Built build(ls::GroupsAccess& g, const std::string& name, const Json& json);

// SequentialLR / ChainedScheduler children given as [{"class": ..., args...}, ...].
std::vector<ls::LRScheduler*> build_children(ls::GroupsAccess& g, const std::string& owner, const Json& specs,
                                             Built& out) {
  if (specs.type != Json::Array) throw invalid(owner + " argument 'schedulers' must be a list of {\"class\": ...}");
  std::vector<ls::LRScheduler*> children;
  for (std::size_t i = 0; i < specs.items.size(); ++i) {
    const Json& spec = specs.items[i];
    const Json* cls = spec.type == Json::Object ? spec.get("class") : nullptr;
    if (!cls || cls->type != Json::String)
      throw invalid(owner + " schedulers[" + std::to_string(i) + "] must be an object with a \"class\"");
    Json args;
    args.type = Json::Object;
    for (const auto& m : spec.members)
      if (m.first != "class") args.members.push_back(m);
    Built child = build(g, cls->str, args);
    if (child.plateau)
      throw invalid(owner + " does not support `ReduceLROnPlateau` scheduler as it requires additional kwargs to be "
                            "specified when calling `step`, but got one at index " + std::to_string(i) +
                    " in the given schedulers sequence.");
    for (auto& c : child.children) out.children.push_back(std::move(c));
    children.push_back(child.lr.get());
    out.children.push_back(std::move(child.lr));
  }
  return children;
}

Built build(ls::GroupsAccess& g, const std::string& name, const Json& json) {
  Args a(name, json);
  Built out;
  auto& lr = out.lr;
  if (name == "StepLR") {
    const std::int64_t step_size = fastoptim::ckpt::integer(a.required("step_size"), "StepLR argument 'step_size'");
    const double gamma = a.real("gamma", 0.1);
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::StepLR>(g, step_size, gamma, last_epoch);
  } else if (name == "MultiStepLR") {
    auto milestones = fastoptim::ckpt::integers(a.required("milestones"), "MultiStepLR argument 'milestones'");
    const double gamma = a.real("gamma", 0.1);
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::MultiStepLR>(g, std::move(milestones), gamma, last_epoch);
  } else if (name == "ConstantLR") {
    const double factor = a.real("factor", 1.0 / 3);
    const std::int64_t total_iters = a.integer("total_iters", 5), last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::ConstantLR>(g, factor, total_iters, last_epoch);
  } else if (name == "LinearLR") {
    const double start = a.real("start_factor", 1.0 / 3), end = a.real("end_factor", 1.0);
    const std::int64_t total_iters = a.integer("total_iters", 5), last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::LinearLR>(g, start, end, total_iters, last_epoch);
  } else if (name == "ExponentialLR") {
    const double gamma = fastoptim::ckpt::real(a.required("gamma"), "ExponentialLR argument 'gamma'");
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::ExponentialLR>(g, gamma, last_epoch);
  } else if (name == "PolynomialLR") {
    const std::int64_t total_iters = a.integer("total_iters", 5);
    const double power = a.real("power", 1.0);
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::PolynomialLR>(g, total_iters, power, last_epoch);
  } else if (name == "CosineAnnealingLR") {
    const std::int64_t T_max = fastoptim::ckpt::integer(a.required("T_max"), "CosineAnnealingLR argument 'T_max'");
    const double eta_min = a.real("eta_min", 0.0);
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::CosineAnnealingLR>(g, T_max, eta_min, last_epoch);
  } else if (name == "CosineAnnealingWarmRestarts") {
    const std::int64_t T_0 = fastoptim::ckpt::integer(a.required("T_0"), "CosineAnnealingWarmRestarts argument 'T_0'");
    const std::int64_t T_mult = a.integer("T_mult", 1);
    const double eta_min = a.real("eta_min", 0.0);
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::CosineAnnealingWarmRestarts>(g, T_0, T_mult, eta_min, last_epoch);
  } else if (name == "CyclicLR") {
    ls::CyclicLR::Options o;
    o.base_lr = a.per_group(a.required("base_lr"), "base_lr");
    o.max_lr = a.per_group(a.required("max_lr"), "max_lr");
    o.step_size_up = a.real("step_size_up", 2000);
    if (a.get("step_size_down")) o.step_size_down = a.real("step_size_down", 0);
    o.mode = a.text("mode", "triangular");
    o.gamma = a.real("gamma", 1.0);
    o.scale_mode = a.text("scale_mode", "cycle");
    o.cycle_momentum = a.flag("cycle_momentum", true);
    o.base_momentum = a.per_group("base_momentum", 0.8);
    o.max_momentum = a.per_group("max_momentum", 0.9);
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::CyclicLR>(g, o, last_epoch);
  } else if (name == "OneCycleLR") {
    ls::OneCycleLR::Options o;
    o.max_lr = a.per_group(a.required("max_lr"), "max_lr");
    o.total_steps = a.optional_integer("total_steps");
    o.epochs = a.optional_integer("epochs");
    o.steps_per_epoch = a.optional_integer("steps_per_epoch");
    o.pct_start = a.real("pct_start", 0.3);
    o.anneal_strategy = a.text("anneal_strategy", "cos");
    o.cycle_momentum = a.flag("cycle_momentum", true);
    o.base_momentum = a.per_group("base_momentum", 0.85);
    o.max_momentum = a.per_group("max_momentum", 0.95);
    o.div_factor = a.real("div_factor", 25.0);
    o.final_div_factor = a.real("final_div_factor", 1e4);
    o.three_phase = a.flag("three_phase", false);
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::OneCycleLR>(g, o, last_epoch);
  } else if (name == "SWALR") {
    const std::vector<double> swa_lr = a.per_group(a.required("swa_lr"), "swa_lr");
    const std::int64_t anneal_epochs = a.integer("anneal_epochs", 10);
    const auto strategy = ls::SWALR::parse_strategy(a.text("anneal_strategy", "cos"));
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    lr = std::make_unique<ls::SWALR>(g, swa_lr, anneal_epochs, strategy, last_epoch);
  } else if (name == "ReduceLROnPlateau") {
    using RP = ls::ReduceLROnPlateau;
    RP::Options o;
    const std::string mode = a.text("mode", "min");
    if (mode != "min" && mode != "max") throw invalid("mode " + mode + " is unknown!");
    o.mode = mode == "min" ? RP::Mode::min : RP::Mode::max;
    o.factor = a.real("factor", 0.1);
    o.patience = a.integer("patience", 10);
    o.threshold = a.real("threshold", 1e-4);
    const std::string threshold_mode = a.text("threshold_mode", "rel");
    if (threshold_mode != "rel" && threshold_mode != "abs")
      throw invalid("threshold mode " + threshold_mode + " is unknown!");
    o.threshold_mode = threshold_mode == "rel" ? RP::ThresholdMode::rel : RP::ThresholdMode::abs;
    o.cooldown = a.integer("cooldown", 0);
    if (const Json* m = a.get("min_lr")) {
      if (m->type == Json::Array) o.min_lrs = a.per_group(*m, "min_lr");
      else o.min_lr = fastoptim::ckpt::real(*m, "ReduceLROnPlateau argument 'min_lr'");
    }
    o.eps = a.real("eps", 1e-8);
    a.finish();
    out.plateau = std::make_unique<RP>(g, o);
  } else if (name == "SequentialLR") {
    const Json& specs = a.required("schedulers");
    auto milestones = fastoptim::ckpt::integers(a.required("milestones"), "SequentialLR argument 'milestones'");
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    auto children = build_children(g, name, specs, out);
    lr = std::make_unique<ls::SequentialLR>(g, children, std::move(milestones), last_epoch);
  } else if (name == "ChainedScheduler") {
    const Json& specs = a.required("schedulers");
    a.finish();
    auto children = build_children(g, name, specs, out);
    lr = std::make_unique<ls::ChainedScheduler>(children, &g);
  } else if (name == "LambdaLR" || name == "MultiplicativeLR") {
    throw invalid(name + " takes a function: create it with fastoptim_scheduler_create_lambda");
  } else {
    std::string known;
    for (std::size_t i = 0; fastoptim_scheduler_name_at(i); ++i)
      known += (i ? ", " : "") + std::string(fastoptim_scheduler_name_at(i));
    throw invalid("unknown scheduler '" + name + "' (fastoptim has " + known + ")");
  }
  return out;
}

template <class... S>
std::vector<const char*> scheduler_names(fastoptim::ckpt::SchedulerList<S...>) {
  return {fastoptim::ckpt::SchedulerCodec<S>::name...};
}

const std::vector<const char*>& names() {
  static const std::vector<const char*> n = scheduler_names(fastoptim::ckpt::Schedulers{});
  return n;
}

fastoptim_scheduler& sched_of(const fastoptim_scheduler* s) {
  check_handle(s, Kind::scheduler, "sched");
  return *const_cast<fastoptim_scheduler*>(s);
}

AnyOptimizer& opt_of(const fastoptim_optimizer* opt) {
  check_handle(opt, Kind::optimizer, "opt");
  return *opt->impl;
}

// Builds a scheduler on opt; a failed construction leaves the param groups as they were (torch's
// constructors write lr, initial_lr and momenta).
fastoptim_status create(fastoptim_optimizer* opt, const char* name, fastoptim_scheduler** out,
                        const std::function<void(fastoptim_scheduler&, ls::GroupsAccess&)>& make) {
  return guard([&] {
    AnyOptimizer& o = opt_of(opt);
    need(name, "name");
    need(out, "out");
    ls::GroupsAccess& groups = o.groups();
    auto handle = std::make_unique<fastoptim_scheduler>(opt->impl);
    handle->name = name;
    const auto restore = o.snapshot_groups();
    try {
      make(*handle, groups);
    } catch (...) {
      restore();
      throw;
    }
    register_handle(handle.get(), Kind::scheduler);
    *out = handle.release();
  });
}

// Every LRScheduler's base state in a tree, to put back when a step throws (e.g. OneCycleLR stepped past
// total_steps): a failing call changes nothing.
struct BaseSnapshot {
  struct Entry {
    ls::LRScheduler* s;
    std::vector<double> base_lrs, last_lr;
    std::int64_t last_epoch, step_count;
  };
  std::vector<Entry> entries;
  explicit BaseSnapshot(ls::LRScheduler& root) { add(root); }
  void add(ls::LRScheduler& s) {
    entries.push_back({&s, s.base_lrs(), s.get_last_lr(), s.last_epoch(), s.step_count()});
    if (auto* c = dynamic_cast<ls::CompositeLRScheduler*>(&s))
      for (ls::LRScheduler* child : c->schedulers()) add(*child);
  }
  void restore() const {
    for (const Entry& e : entries) e.s->load_base_state(e.base_lrs, e.last_epoch, e.step_count, e.last_lr);
  }
};

template <class F>
void atomic_step(fastoptim_scheduler& s, F&& f) {
  const auto groups = s.opt->snapshot_groups();
  const BaseSnapshot base(*s.lr);
  try {
    f();
  } catch (...) {
    base.restore();
    groups();
    throw;
  }
}

fastoptim_plateau_kind kind_of(ls::PlateauEvent::Kind k) {
  switch (k) {
    case ls::PlateauEvent::Kind::improved: return FASTOPTIM_PLATEAU_IMPROVED;
    case ls::PlateauEvent::Kind::no_improvement: return FASTOPTIM_PLATEAU_NO_IMPROVEMENT;
    case ls::PlateauEvent::Kind::reduced: return FASTOPTIM_PLATEAU_REDUCED;
    case ls::PlateauEvent::Kind::cooldown: return FASTOPTIM_PLATEAU_COOLDOWN;
    case ls::PlateauEvent::Kind::at_min_lr: return FASTOPTIM_PLATEAU_AT_MIN_LR;
  }
  return FASTOPTIM_PLATEAU_NONE;
}

}  // namespace
}  // namespace fastoptim_capi

using namespace fastoptim_capi;

extern "C" {

const char* fastoptim_scheduler_name_at(size_t i) { return i < names().size() ? names()[i] : nullptr; }

fastoptim_status fastoptim_scheduler_create(fastoptim_optimizer* opt, const char* name, const char* args_json,
                                            fastoptim_scheduler** out) {
  return create(opt, name, out, [&](fastoptim_scheduler& h, ls::GroupsAccess& groups) {
    Built b = build(groups, name, parse_object(args_json, "args_json"));
    h.children = std::move(b.children);
    h.lr = std::move(b.lr);
    h.plateau = std::move(b.plateau);
  });
}

fastoptim_status fastoptim_scheduler_create_lambda(fastoptim_optimizer* opt, const char* name,
                                                   fastoptim_lr_lambda lr_lambda, void* user_data,
                                                   const char* args_json, fastoptim_scheduler** out) {
  return create(opt, name, out, [&](fastoptim_scheduler& h, ls::GroupsAccess& groups) {
    const std::string n = name;
    if (n != "LambdaLR" && n != "MultiplicativeLR")
      throw invalid("fastoptim_scheduler_create_lambda makes LambdaLR or MultiplicativeLR, not '" + n + "'");
    if (lr_lambda == nullptr) throw invalid("lr_lambda is NULL");
    const Json json = parse_object(args_json, "args_json");
    Args a(n, json);
    const std::int64_t last_epoch = a.last_epoch();
    a.finish();
    std::vector<ls::LrLambda> fns;
    for (std::size_t i = 0; i < groups.size(); ++i)
      fns.push_back([lr_lambda, i, user_data](std::int64_t epoch) { return lr_lambda(epoch, i, user_data); });
    if (n == "LambdaLR") h.lr = std::make_unique<ls::LambdaLR>(groups, std::move(fns), last_epoch);
    else h.lr = std::make_unique<ls::MultiplicativeLR>(groups, std::move(fns), last_epoch);
  });
}

fastoptim_status fastoptim_scheduler_compose(fastoptim_optimizer* opt, const char* name,
                                             fastoptim_scheduler* const* children, size_t count,
                                             const char* args_json, fastoptim_scheduler** out) {
  std::vector<fastoptim_scheduler*> consumed;
  const fastoptim_status status = create(opt, name, out, [&](fastoptim_scheduler& h, ls::GroupsAccess& groups) {
    const std::string n = name;
    if (n != "SequentialLR" && n != "ChainedScheduler")
      throw invalid("fastoptim_scheduler_compose makes SequentialLR or ChainedScheduler, not '" + n + "'");
    if (count > 0) need(children, "children");
    std::vector<ls::LRScheduler*> raw;
    for (std::size_t i = 0; i < count; ++i) {
      const std::string which = "children[" + std::to_string(i) + "]";
      check_handle(children[i], Kind::scheduler, which.c_str());
      fastoptim_scheduler& c = *children[i];
      if (c.opt != opt->impl) throw invalid(which + " drives another optimizer");
      if (!c.lr)
        throw invalid(n + " does not support `ReduceLROnPlateau` scheduler as it requires additional kwargs to be "
                          "specified when calling `step`, but got one at index " + std::to_string(i) +
                      " in the given schedulers sequence.");
      for (std::size_t j = 0; j < i; ++j)
        if (children[j] == children[i]) throw invalid(which + " is also children[" + std::to_string(j) + "]");
      raw.push_back(c.lr.get());
    }
    const Json json = parse_object(args_json, "args_json");
    Args a(n, json);
    if (n == "SequentialLR") {
      auto milestones = fastoptim::ckpt::integers(a.required("milestones"), "SequentialLR argument 'milestones'");
      const std::int64_t last_epoch = a.last_epoch();
      a.finish();
      h.lr = std::make_unique<ls::SequentialLR>(groups, raw, std::move(milestones), last_epoch);
    } else {
      a.finish();
      h.lr = std::make_unique<ls::ChainedScheduler>(raw, &groups);
    }
    // Built: the composite takes the children over.
    for (std::size_t i = 0; i < count; ++i) {
      fastoptim_scheduler& c = *children[i];
      for (auto& g : c.children) h.children.push_back(std::move(g));
      h.children.push_back(std::move(c.lr));
      consumed.push_back(children[i]);
    }
  });
  if (status == FASTOPTIM_OK)
    for (fastoptim_scheduler* c : consumed)
      if (unregister_handle(c, Kind::scheduler)) delete c;
  return status;
}

fastoptim_status fastoptim_scheduler_step(fastoptim_scheduler* sched) {
  return guard([&] {
    fastoptim_scheduler& s = sched_of(sched);
    if (!s.lr) throw bad_state("ReduceLROnPlateau steps with a metric: use fastoptim_scheduler_step_metric");
    atomic_step(s, [&] { s.lr->step(); });
  });
}

fastoptim_status fastoptim_scheduler_step_metric(fastoptim_scheduler* sched, double metric) {
  return guard([&] {
    fastoptim_scheduler& s = sched_of(sched);
    if (!s.plateau) throw bad_state(s.name + " steps without a metric: use fastoptim_scheduler_step");
    s.plateau->step(metric);
  });
}

fastoptim_status fastoptim_scheduler_step_epoch(fastoptim_scheduler* sched, double epoch) {
  return guard([&] {
    fastoptim_scheduler& s = sched_of(sched);
    auto* warm = dynamic_cast<ls::CosineAnnealingWarmRestarts*>(s.lr.get());
    if (!warm) throw bad_state("step(epoch) is CosineAnnealingWarmRestarts', not " + s.name + "'s");
    const auto params = warm->params;
    atomic_step(s, [&] {
      try {
        warm->step(epoch);
      } catch (...) {
        warm->params = params;
        throw;
      }
    });
  });
}

fastoptim_status fastoptim_scheduler_get_last_lr(const fastoptim_scheduler* sched, double* out, size_t count) {
  return guard([&] {
    fastoptim_scheduler& s = sched_of(sched);
    const std::vector<double>& lrs = s.lr ? s.lr->get_last_lr() : s.plateau->get_last_lr();
    if (count != lrs.size())
      throw invalid("count is " + std::to_string(count) + ", the scheduler has " + std::to_string(lrs.size()) +
                    " learning rates (one per param group)");
    if (count > 0) need(out, "out");
    std::copy(lrs.begin(), lrs.end(), out);
  });
}

fastoptim_status fastoptim_scheduler_last_epoch(const fastoptim_scheduler* sched, int64_t* out) {
  return guard([&] {
    fastoptim_scheduler& s = sched_of(sched);
    need(out, "out");
    *out = s.lr ? s.lr->last_epoch() : s.plateau->last_epoch();
  });
}

fastoptim_status fastoptim_scheduler_name(const fastoptim_scheduler* sched, const char** out) {
  return guard([&] {
    fastoptim_scheduler& s = sched_of(sched);
    need(out, "out");
    *out = s.name.c_str();
  });
}

void fastoptim_scheduler_destroy(fastoptim_scheduler* sched) {
  if (sched != nullptr && unregister_handle(sched, Kind::scheduler)) delete sched;
}

fastoptim_status fastoptim_plateau_get_event(const fastoptim_scheduler* sched, fastoptim_plateau_event* out) {
  return guard([&] {
    fastoptim_scheduler& s = sched_of(sched);
    if (!s.plateau) throw bad_state(s.name + " is not ReduceLROnPlateau");
    need(out, "out");
    const ls::ReduceLROnPlateau& p = *s.plateau;
    fastoptim_plateau_event e{};
    e.kind = FASTOPTIM_PLATEAU_NONE;
    e.epoch = p.last_epoch();
    e.metric = 0.0;
    e.best = p.best();
    e.num_bad_epochs = p.num_bad_epochs();
    e.patience = p.options().patience;
    e.cooldown_counter = p.cooldown_counter();
    if (const auto& ev = p.last_event()) {
      e.kind = kind_of(ev->kind);
      e.metric = ev->metric;
    }
    *out = e;
  });
}

const char* fastoptim_plateau_kind_name(fastoptim_plateau_kind kind) {
  switch (kind) {
    case FASTOPTIM_PLATEAU_NONE: return "none";
    case FASTOPTIM_PLATEAU_IMPROVED: return "improved";
    case FASTOPTIM_PLATEAU_NO_IMPROVEMENT: return "no_improvement";
    case FASTOPTIM_PLATEAU_REDUCED: return "reduced";
    case FASTOPTIM_PLATEAU_COOLDOWN: return "cooldown";
    case FASTOPTIM_PLATEAU_AT_MIN_LR: return "at_min_lr";
    default: break;
  }
  return "unknown";
}

}  // extern "C"
