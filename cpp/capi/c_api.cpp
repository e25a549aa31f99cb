// The C API (fastoptim/c_api.h): errors, handles, and the entry points of optimizers and checkpoints. The
// optimizers themselves are in optimizers.cpp, schedulers in schedulers.cpp.

#include "internal.hpp"

#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>

namespace fastoptim_capi {

// ------------------------------------------------------------------------------------------ errors

namespace {
thread_local std::string t_last_error;

fastoptim_status fail(fastoptim_status status, const char* what) noexcept {
  try {
    t_last_error = what;
  } catch (...) {  // no memory for the message: keep the status
  }
  return status;
}
}  // namespace

fastoptim_status guard(const std::function<void()>& f) noexcept {
  try {
    f();
    return FASTOPTIM_OK;
  } catch (const Error& e) {
    return fail(e.status, e.what());
  } catch (const fastoptim::CheckpointError& e) {
    return fail(e.kind() == fastoptim::CheckpointError::Kind::io ? FASTOPTIM_ERROR_IO : FASTOPTIM_ERROR_CHECKPOINT,
                e.what());
  } catch (const fastoptim::ckpt::Bad& e) {  // JSON arguments
    return fail(FASTOPTIM_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const std::bad_alloc&) {
    return fail(FASTOPTIM_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::invalid_argument& e) {  // the optimizers' and schedulers' checks, with torch's messages
    return fail(FASTOPTIM_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const std::domain_error& e) {  // a schedule dividing by zero, as torch's ZeroDivisionError
    return fail(FASTOPTIM_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const std::out_of_range& e) {
    return fail(FASTOPTIM_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const std::logic_error& e) {  // e.g. a composite asked for a learning rate of its own
    return fail(FASTOPTIM_ERROR_INVALID_STATE, e.what());
  } catch (const std::exception& e) {
    return fail(FASTOPTIM_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(FASTOPTIM_ERROR_INTERNAL, "unknown exception");
  }
}

Json parse_object(const char* json, const std::string& what) {
  if (json == nullptr || *json == '\0') {
    Json empty;
    empty.type = Json::Object;
    return empty;
  }
  const std::size_t n = std::strlen(json);
  if (!fastoptim::ckpt::valid_utf8(reinterpret_cast<const unsigned char*>(json), n))
    throw invalid(what + " is not UTF-8");
  Json v = fastoptim::ckpt::JsonParser(json, n, false, what).parse();
  if (v.type != Json::Object) throw invalid(what + " must be a JSON object");
  return v;
}

// ------------------------------------------------------------------------------------------ handles

namespace {
struct HandleTable {
  std::mutex mutex;
  std::unordered_map<const void*, Kind> live;
};
// Never destroyed: handles may be released by finalizers running during process exit.
HandleTable& table() {
  static HandleTable* t = new HandleTable;
  return *t;
}
const char* kind_name(Kind k) { return k == Kind::optimizer ? "fastoptim_optimizer" : "fastoptim_scheduler"; }
}  // namespace

void register_handle(const void* h, Kind kind) {
  HandleTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.live[h] = kind;
}

bool unregister_handle(const void* h, Kind kind) {
  HandleTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  const auto it = t.live.find(h);
  if (it == t.live.end() || it->second != kind) return false;
  t.live.erase(it);
  return true;
}

void check_handle(const void* h, Kind kind, const char* what) {
  if (h == nullptr) throw Error(FASTOPTIM_ERROR_INVALID_HANDLE, std::string(what) + " is NULL");
  HandleTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  const auto it = t.live.find(h);
  if (it == t.live.end())
    throw Error(FASTOPTIM_ERROR_INVALID_HANDLE, std::string(what) + " is not a live " + kind_name(kind) +
                                                    " (destroyed, or never created)");
  if (it->second != kind)
    throw Error(FASTOPTIM_ERROR_INVALID_HANDLE,
                std::string(what) + " is a " + kind_name(it->second) + ", not a " + kind_name(kind));
}

}  // namespace fastoptim_capi

using namespace fastoptim_capi;

namespace {
AnyOptimizer& opt_of(const fastoptim_optimizer* opt) {
  check_handle(opt, Kind::optimizer, "opt");
  return *opt->impl;
}
}  // namespace

extern "C" {

int fastoptim_c_api_version(void) { return FASTOPTIM_C_API_VERSION; }

const char* fastoptim_version(void) { return FASTOPTIM_VERSION_STRING; }

const char* fastoptim_last_error(void) { return fastoptim_capi::t_last_error.c_str(); }

const char* fastoptim_status_name(fastoptim_status status) {
  switch (status) {
    case FASTOPTIM_OK: return "FASTOPTIM_OK";
    case FASTOPTIM_ERROR_INVALID_ARGUMENT: return "FASTOPTIM_ERROR_INVALID_ARGUMENT";
    case FASTOPTIM_ERROR_INVALID_HANDLE: return "FASTOPTIM_ERROR_INVALID_HANDLE";
    case FASTOPTIM_ERROR_INVALID_STATE: return "FASTOPTIM_ERROR_INVALID_STATE";
    case FASTOPTIM_ERROR_CHECKPOINT: return "FASTOPTIM_ERROR_CHECKPOINT";
    case FASTOPTIM_ERROR_IO: return "FASTOPTIM_ERROR_IO";
    case FASTOPTIM_ERROR_BUFFER_TOO_SMALL: return "FASTOPTIM_ERROR_BUFFER_TOO_SMALL";
    case FASTOPTIM_ERROR_OUT_OF_MEMORY: return "FASTOPTIM_ERROR_OUT_OF_MEMORY";
    case FASTOPTIM_ERROR_INTERNAL: return "FASTOPTIM_ERROR_INTERNAL";
    case FASTOPTIM_ERROR_CALLBACK: return "FASTOPTIM_ERROR_CALLBACK";
    default: break;
  }
  return "unknown fastoptim_status";
}

const char* fastoptim_optimizer_name_at(size_t i) { return optimizer_name_at(i); }

fastoptim_status fastoptim_optimizer_create(const char* name, fastoptim_dtype dtype, const char* options_json,
                                            fastoptim_optimizer** out) {
  return guard([&] {
    need(name, "name");
    need(out, "out");
    const Json defaults = parse_object(options_json, "options_json");
    auto handle = std::make_unique<fastoptim_optimizer>();
    handle->impl = make_optimizer(name, dtype, defaults);
    register_handle(handle.get(), Kind::optimizer);
    *out = handle.release();
  });
}

fastoptim_status fastoptim_optimizer_add_param_group(fastoptim_optimizer* opt, void* const* params,
                                                     const size_t* sizes, size_t count, const char* options_json) {
  return guard([&] {
    AnyOptimizer& o = opt_of(opt);
    if (count > 0) need(sizes, "sizes");
    std::vector<std::vector<std::size_t>> shapes;
    for (std::size_t i = 0; i < count; ++i) shapes.push_back({sizes[i]});
    o.add_group(params, shapes, parse_object(options_json, "options_json"));
  });
}

fastoptim_status fastoptim_optimizer_add_param_group_shaped(fastoptim_optimizer* opt, void* const* params,
                                                            const size_t* const* shapes, const size_t* ndims,
                                                            size_t count, const char* options_json) {
  return guard([&] {
    AnyOptimizer& o = opt_of(opt);
    if (count > 0) {
      need(shapes, "shapes");
      need(ndims, "ndims");
    }
    std::vector<std::vector<std::size_t>> dims;
    for (std::size_t i = 0; i < count; ++i) {
      if (ndims[i] > 64) throw invalid("parameter shapes have at most 64 dimensions");
      if (ndims[i] > 0 && shapes[i] == nullptr) throw invalid("shapes[" + std::to_string(i) + "] is NULL");
      dims.emplace_back(shapes[i], shapes[i] + ndims[i]);
    }
    o.add_group(params, dims, parse_object(options_json, "options_json"));
  });
}

fastoptim_status fastoptim_optimizer_step(fastoptim_optimizer* opt, const void* const* grads, size_t count) {
  return guard([&] { opt_of(opt).step(grads, count); });
}

fastoptim_status fastoptim_optimizer_step_sparse(fastoptim_optimizer* opt, const int64_t* const* indices,
                                                 const size_t* nnz, const void* const* values, size_t count) {
  return guard([&] { opt_of(opt).step_sparse(indices, nnz, values, count); });
}

fastoptim_status fastoptim_optimizer_step_closure(fastoptim_optimizer* opt, fastoptim_closure closure,
                                                  void* user_data, double* loss) {
  return guard([&] {
    const double first = opt_of(opt).step_closure(closure, user_data);
    if (loss) *loss = first;
  });
}

fastoptim_status fastoptim_optimizer_num_groups(const fastoptim_optimizer* opt, size_t* out) {
  return guard([&] {
    const AnyOptimizer& o = opt_of(opt);
    need(out, "out");
    *out = o.num_groups();
  });
}

fastoptim_status fastoptim_optimizer_num_params(const fastoptim_optimizer* opt, size_t* out) {
  return guard([&] {
    const AnyOptimizer& o = opt_of(opt);
    need(out, "out");
    *out = o.num_params();
  });
}

fastoptim_status fastoptim_optimizer_get_lr(const fastoptim_optimizer* opt, size_t group, double* out) {
  return guard([&] {
    const AnyOptimizer& o = opt_of(opt);
    need(out, "out");
    *out = o.lr(group);
  });
}

fastoptim_status fastoptim_optimizer_set_lr(fastoptim_optimizer* opt, size_t group, double lr) {
  return guard([&] { opt_of(opt).set_lr(group, lr); });
}

fastoptim_status fastoptim_optimizer_train(fastoptim_optimizer* opt, int train) {
  return guard([&] { opt_of(opt).set_train_mode(train != 0); });
}

fastoptim_status fastoptim_optimizer_set_options(fastoptim_optimizer* opt, size_t group, const char* options_json) {
  return guard([&] {
    AnyOptimizer& o = opt_of(opt);
    o.set_options(group, parse_object(options_json, "options_json"));
  });
}

fastoptim_status fastoptim_optimizer_get_options(const fastoptim_optimizer* opt, size_t group, char* buffer,
                                                 size_t size, size_t* needed) {
  return guard([&] {
    const std::string json = opt_of(opt).options_json(group);
    if (needed) *needed = json.size() + 1;
    if (size < json.size() + 1)
      throw Error(FASTOPTIM_ERROR_BUFFER_TOO_SMALL, "the options need a buffer of " + std::to_string(json.size() + 1) +
                                                        " bytes, got " + std::to_string(size));
    need(buffer, "buffer");
    std::memcpy(buffer, json.c_str(), json.size() + 1);
  });
}

void fastoptim_optimizer_destroy(fastoptim_optimizer* opt) {
  if (opt != nullptr && unregister_handle(opt, Kind::optimizer)) delete opt;
}

fastoptim_status fastoptim_save(const char* path, const fastoptim_optimizer* opt, const fastoptim_scheduler* sched) {
  return guard([&] {
    const AnyOptimizer& o = opt_of(opt);
    need(path, "path");
    fastoptim::SchedulerView view;
    if (sched != nullptr) {
      check_handle(sched, Kind::scheduler, "sched");
      if (sched->opt.get() != &o) throw invalid("sched does not drive opt");
      view = const_cast<fastoptim_scheduler*>(sched)->ref();
    }
    o.save(path, view);
  });
}

fastoptim_status fastoptim_load(const char* path, fastoptim_optimizer* opt, fastoptim_scheduler* sched) {
  return guard([&] {
    AnyOptimizer& o = opt_of(opt);
    need(path, "path");
    fastoptim::SchedulerRef ref;
    if (sched != nullptr) {
      check_handle(sched, Kind::scheduler, "sched");
      if (sched->opt.get() != &o) throw invalid("sched does not drive opt");
      ref = sched->ref();
    }
    o.load(path, ref);
  });
}

}  // extern "C"
