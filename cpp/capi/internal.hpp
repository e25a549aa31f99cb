// What the C API's translation units share: errors, the table of live handles, the type-erased optimizer
// and the handle structs. Nothing here is installed.
#pragma once

#include <fastoptim/c_api.h>

#include <fastoptim/checkpoint.hpp>
#include <fastoptim/fastoptim.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastoptim_capi {

namespace ls = fastoptim::lr_scheduler;
using fastoptim::ckpt::Json;

// An error with its status; every other exception is mapped by guard().
struct Error : std::runtime_error {
  fastoptim_status status;
  Error(fastoptim_status s, const std::string& what) : std::runtime_error(what), status(s) {}
};
inline Error invalid(const std::string& what) { return Error(FASTOPTIM_ERROR_INVALID_ARGUMENT, what); }
inline Error bad_state(const std::string& what) { return Error(FASTOPTIM_ERROR_INVALID_STATE, what); }

// Runs f, turning any exception into a status and the thread's last-error message.
fastoptim_status guard(const std::function<void()>& f) noexcept;

// Parses a JSON object argument; NULL and "" are {}.
Json parse_object(const char* json, const std::string& what);

// The table of live handles: a NULL, destroyed or wrong-kind handle is an error, not a crash.
enum class Kind { optimizer, scheduler };
void register_handle(const void* h, Kind kind);
bool unregister_handle(const void* h, Kind kind);
void check_handle(const void* h, Kind kind, const char* what);

template <class T>
void need(const T* p, const char* what) {
  if (p == nullptr) throw invalid(std::string(what) + " is NULL");
}

// An optimizer of any class and dtype, created empty; the first param group builds the C++ optimizer.
class AnyOptimizer {
 public:
  virtual ~AnyOptimizer() = default;
  virtual const char* name() const = 0;
  // shapes[i]: parameter i's dimensions (its element count is their product).
  virtual void add_group(void* const* params, const std::vector<std::vector<std::size_t>>& shapes,
                         const Json& options) = 0;
  virtual void step(const void* const* grads, std::size_t count) = 0;
  virtual void step_sparse(const std::int64_t* const* indices, const std::size_t* nnz, const void* const* values,
                           std::size_t count) = 0;
  // Returns the first closure call's loss.
  virtual double step_closure(fastoptim_closure closure, void* user_data) = 0;
  virtual std::size_t num_groups() const = 0;
  virtual std::size_t num_params() const = 0;
  virtual double lr(std::size_t group) const = 0;
  virtual void set_lr(std::size_t group, double lr) = 0;
  virtual void set_options(std::size_t group, const Json& options) = 0;
  virtual std::string options_json(std::size_t group) const = 0;
  // train() / eval() of an optimizer with modes (ScheduleFreeAdamW); others throw.
  virtual void set_train_mode(bool train) = 0;
  // The param groups as schedulers see them (one object for all, as composites require).
  virtual ls::GroupsAccess& groups() = 0;
  // Returns a function that puts every group's hyperparameters and initial_lr back as they are now.
  virtual std::function<void()> snapshot_groups() const = 0;
  virtual void save(const std::string& path, fastoptim::SchedulerView sched) const = 0;
  virtual void load(const std::string& path, fastoptim::SchedulerRef sched) = 0;

  int live_schedulers = 0;  // param groups are fixed while a scheduler drives them
};

std::unique_ptr<AnyOptimizer> make_optimizer(const std::string& name, fastoptim_dtype dtype, const Json& defaults);
#ifdef FASTOPTIM_C_HAS_MUON
std::unique_ptr<AnyOptimizer> make_muon(fastoptim_dtype dtype, const Json& defaults);  // muon/muon.cpp
#endif
const char* optimizer_name_at(std::size_t i);  // NULL past the last

}  // namespace fastoptim_capi

struct fastoptim_optimizer {
  std::shared_ptr<fastoptim_capi::AnyOptimizer> impl;
};

struct fastoptim_scheduler {
  // Keeps the optimizer's groups alive whatever order handles are destroyed in.
  std::shared_ptr<fastoptim_capi::AnyOptimizer> opt;
  std::string name;
  // Children of composites come first, so they are destroyed after the composite that points to them.
  std::vector<std::unique_ptr<fastoptim_capi::ls::LRScheduler>> children;
  std::unique_ptr<fastoptim_capi::ls::LRScheduler> lr;
  std::unique_ptr<fastoptim_capi::ls::ReduceLROnPlateau> plateau;

  explicit fastoptim_scheduler(std::shared_ptr<fastoptim_capi::AnyOptimizer> o) : opt(std::move(o)) {
    ++opt->live_schedulers;
  }
  ~fastoptim_scheduler() { --opt->live_schedulers; }
  fastoptim_scheduler(const fastoptim_scheduler&) = delete;
  fastoptim_scheduler& operator=(const fastoptim_scheduler&) = delete;

  fastoptim::SchedulerRef ref() {
    if (lr) return fastoptim::SchedulerRef(*lr);
    return fastoptim::SchedulerRef(*plateau);
  }
};
