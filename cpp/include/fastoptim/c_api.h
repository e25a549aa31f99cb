/* fastoptim's C API: torch.optim's optimizers and learning-rate schedulers for C and any language with a C
 * FFI (Rust, Go, Java, C#, ...). Link the shared library fastoptim_c (CMake: fastoptim::c).
 *
 *   fastoptim_optimizer* opt;
 *   fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"lr\": 1e-3, \"betas\": [0.9, 0.999]}", &opt);
 *   void* params[] = {w, b};  size_t sizes[] = {n_w, n_b};
 *   fastoptim_optimizer_add_param_group(opt, params, sizes, 2, NULL);
 *   fastoptim_scheduler* sched;
 *   fastoptim_scheduler_create(opt, "ReduceLROnPlateau", "{\"patience\": 2, \"factor\": 0.5}", &sched);
 *   for (...) {
 *     const void* grads[] = {gw, gb};                 (NULL: no gradient for that parameter this step)
 *     fastoptim_optimizer_step(opt, grads, 2);         (w and b are updated in place)
 *     ...
 *     fastoptim_scheduler_step_metric(sched, val_loss);
 *   }
 *   fastoptim_save("run.safetensors", opt, sched);    (the same file format as Python's fastoptim.save)
 *   (Adafactor and Muon take shaped parameters, SparseAdam sparse gradients and LBFGS a closure: see
 *   fastoptim_optimizer_add_param_group_shaped, _step_sparse and _step_closure; Muon is in the library
 *   when it was built with Eigen 3.4.)
 *   fastoptim_scheduler_destroy(sched);
 *   fastoptim_optimizer_destroy(opt);
 *
 * Conventions
 * - Every function that can fail returns a fastoptim_status; on failure fastoptim_last_error() tells why
 *   (a thread-local message, valid until the next failing call on the same thread) and nothing has been
 *   modified: outputs are written only on success. No C++ exception ever crosses this boundary.
 * - Names, hyperparameters and scheduler arguments are torch's (torch.optim 2.13): an optimizer takes a
 *   JSON object of its constructor's keyword arguments ("lr", "betas": [b1, b2], "amsgrad": true, ...), a
 *   scheduler a JSON object of its own. NULL or "" means {} (torch's defaults). Unknown keys, values of the
 *   wrong type and out-of-range values are errors (FASTOPTIM_ERROR_INVALID_ARGUMENT), with torch's messages.
 * - Parameters and gradients are the caller's memory, float or double as the optimizer's dtype, contiguous;
 *   parameters must stay valid (and must not move) for the optimizer's lifetime and must not overlap.
 * - Handles are opaque. A NULL, destroyed or wrong-kind handle gives FASTOPTIM_ERROR_INVALID_HANDLE (the
 *   library keeps a table of live handles, so this is detected, not undefined). A scheduler keeps its
 *   optimizer's state alive, so handles may be destroyed in any order (as garbage collectors do).
 * - One handle must not be used by two threads at once; distinct handles are independent.
 */
#ifndef FASTOPTIM_C_API_H
#define FASTOPTIM_C_API_H

#include <stddef.h>
#include <stdint.h>

/* Bumped on any incompatible change of this header; compare it with fastoptim_c_api_version(), the
 * version of the library actually loaded. */
#define FASTOPTIM_C_API_VERSION 1

#if defined(_WIN32) && !defined(FASTOPTIM_C_STATIC)
#ifdef FASTOPTIM_C_BUILDING
#define FASTOPTIM_C_EXPORT __declspec(dllexport)
#else
#define FASTOPTIM_C_EXPORT __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define FASTOPTIM_C_EXPORT __attribute__((visibility("default")))
#else
#define FASTOPTIM_C_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fastoptim_status {
  FASTOPTIM_OK = 0,
  FASTOPTIM_ERROR_INVALID_ARGUMENT = 1, /* a bad name, hyperparameter, JSON text, size or NULL pointer */
  FASTOPTIM_ERROR_INVALID_HANDLE = 2,   /* NULL, destroyed, or a handle of another kind */
  FASTOPTIM_ERROR_INVALID_STATE = 3,    /* not possible now: e.g. step() before any param group, step() on
                                           ReduceLROnPlateau (it takes a metric) */
  FASTOPTIM_ERROR_CHECKPOINT = 4,       /* a malformed, corrupted or mismatched checkpoint file */
  FASTOPTIM_ERROR_IO = 5,               /* a file that cannot be read or written */
  FASTOPTIM_ERROR_BUFFER_TOO_SMALL = 6, /* the output buffer is too small; *needed says how large */
  FASTOPTIM_ERROR_OUT_OF_MEMORY = 7,
  FASTOPTIM_ERROR_INTERNAL = 8,         /* a bug in fastoptim: please report it with the message */
  FASTOPTIM_ERROR_CALLBACK = 9,         /* a closure returned nonzero (fastoptim_optimizer_step_closure) */
  FASTOPTIM_STATUS_MAX_ENUM = 0x7fffffff /* makes every int a valid value of the type (C++ needs it) */
} fastoptim_status;

typedef enum fastoptim_dtype {
  FASTOPTIM_FLOAT32 = 0,
  FASTOPTIM_FLOAT64 = 1,
  FASTOPTIM_DTYPE_MAX_ENUM = 0x7fffffff /* any int a caller passes is a valid value (C++ needs it) */
} fastoptim_dtype;

typedef struct fastoptim_optimizer fastoptim_optimizer;
typedef struct fastoptim_scheduler fastoptim_scheduler;

/* ------------------------------------------------------------------------------------------ library */

FASTOPTIM_C_EXPORT int fastoptim_c_api_version(void);
FASTOPTIM_C_EXPORT const char* fastoptim_version(void); /* "0.1.0" */
/* The message of the last failing call on this thread ("" if none). */
FASTOPTIM_C_EXPORT const char* fastoptim_last_error(void);
FASTOPTIM_C_EXPORT const char* fastoptim_status_name(fastoptim_status status); /* "FASTOPTIM_ERROR_IO", ... */
/* The i-th optimizer / scheduler name ("SGD", "Adam", ...; "StepLR", ...), NULL past the last. */
FASTOPTIM_C_EXPORT const char* fastoptim_optimizer_name_at(size_t i);
FASTOPTIM_C_EXPORT const char* fastoptim_scheduler_name_at(size_t i);

/* ------------------------------------------------------------------------------------------ optimizers */

/* A new optimizer without parameters: `options_json` holds the defaults of its param groups. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_create(const char* name, fastoptim_dtype dtype,
                                                               const char* options_json, fastoptim_optimizer** out);
/* Adds a param group of `count` parameters (params[i]: sizes[i] elements of the optimizer's dtype), with the
 * defaults overridden by `options_json` (torch's add_param_group). Groups must be added before any
 * scheduler is created on the optimizer. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_add_param_group(fastoptim_optimizer* opt,
                                                                        void* const* params, const size_t* sizes,
                                                                        size_t count, const char* options_json);
/* One update: grads[i] is the gradient of the i-th parameter in group order (same size and dtype), or NULL
 * for "no gradient this step". `count` must be the number of parameters. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_step(fastoptim_optimizer* opt, const void* const* grads,
                                                             size_t count);
/* Adds a param group whose parameters have shapes (torch's tensor shapes, row-major): parameter i has
 * ndims[i] dimensions shapes[i][0..ndims[i]) and their product of elements. Adafactor keeps factored
 * moments for 2-D and larger parameters, Muon takes only 2-D (rows, cols) parameters, SparseAdam's rows are
 * the first dimension; checkpoints give state the parameters' shapes. fastoptim_optimizer_add_param_group
 * is this with 1-D shapes {sizes[i]}. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_add_param_group_shaped(fastoptim_optimizer* opt,
                                                                               void* const* params,
                                                                               const size_t* const* shapes,
                                                                               const size_t* ndims, size_t count,
                                                                               const char* options_json);
/* SparseAdam's update (fastoptim_optimizer_step fails for it): parameter i's gradient is nnz[i] rows of its
 * first dimension, indices[i][k] (in [0, rows)) with the values values[i][k * row .. (k + 1) * row), row the
 * parameter's elements per row; a row listed twice gets the sum of its values (torch's coalesce()).
 * indices[i] == NULL: no gradient for parameter i this step (nnz[i] and values[i] are not read); an empty
 * gradient (nnz[i] = 0, indices[i] not NULL) still advances its step count, as in torch. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_step_sparse(fastoptim_optimizer* opt,
                                                                    const int64_t* const* indices, const size_t* nnz,
                                                                    const void* const* values, size_t count);
/* LBFGS's closure: computes the loss at the parameters' current values (params[i], the caller's memory,
 * which LBFGS moves between calls), writes it to *loss and the gradient of parameter i into grads[i] (its
 * size and dtype, zeroed before each call; leave it zero for "no gradient"), and returns 0. Any other return
 * value stops the step: it fails with FASTOPTIM_ERROR_CALLBACK, parameters and state as they were. */
typedef int (*fastoptim_closure)(void* user_data, const void* const* params, void* const* grads, size_t count,
                                 double* loss);
/* One LBFGS step (torch's step(closure): up to max_iter iterations and max_eval closure calls). *loss (if
 * not NULL) receives the first call's loss. Other optimizers fail with FASTOPTIM_ERROR_INVALID_ARGUMENT, and
 * fastoptim_optimizer_step fails for LBFGS. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_step_closure(fastoptim_optimizer* opt,
                                                                     fastoptim_closure closure, void* user_data,
                                                                     double* loss);
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_num_groups(const fastoptim_optimizer* opt, size_t* out);
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_num_params(const fastoptim_optimizer* opt, size_t* out);
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_get_lr(const fastoptim_optimizer* opt, size_t group,
                                                               double* out);
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_set_lr(fastoptim_optimizer* opt, size_t group, double lr);
/* Changes some hyperparameters of a group (a JSON object as for create; validated as a whole). */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_set_options(fastoptim_optimizer* opt, size_t group,
                                                                    const char* options_json);
/* A group's hyperparameters as a JSON object, NUL-terminated in buffer[0..size). *needed (if not NULL)
 * receives the size required, NUL included; a small buffer gives FASTOPTIM_ERROR_BUFFER_TOO_SMALL. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_get_options(const fastoptim_optimizer* opt, size_t group,
                                                                    char* buffer, size_t size, size_t* needed);
/* train() (train != 0) or eval() of an optimizer with modes (ScheduleFreeAdamW: it starts in eval mode and
 * steps only in train mode; switching moves the parameters between y and x). Others fail with
 * FASTOPTIM_ERROR_INVALID_ARGUMENT. Its group option "train_mode" changes only through this call. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_optimizer_train(fastoptim_optimizer* opt, int train);
/* NULL is a no-op. */
FASTOPTIM_C_EXPORT void fastoptim_optimizer_destroy(fastoptim_optimizer* opt);

/* ------------------------------------------------------------------------------------------ schedulers */

/* A scheduler driving `opt` (which needs its param groups already), by torch's class name and its
 * arguments as JSON: e.g. "StepLR" {"step_size": 30, "gamma": 0.1}, "OneCycleLR" {"max_lr": 0.1,
 * "total_steps": 1000}, "ReduceLROnPlateau" {"mode": "min", "patience": 2}, "SequentialLR"
 * {"schedulers": [{"class": "LinearLR", "start_factor": 0.1, "total_iters": 5},
 * {"class": "CosineAnnealingLR", "T_max": 95}], "milestones": [5]}. Per-group arguments (base_lr, max_lr,
 * swa_lr, min_lr, momenta) take a number or a list with one per group. LambdaLR and MultiplicativeLR take a
 * function: see fastoptim_scheduler_create_lambda. CyclicLR's scale_fn is not available (use "mode"). */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_create(fastoptim_optimizer* opt, const char* name,
                                                               const char* args_json, fastoptim_scheduler** out);

/* lr_lambda(epoch) for param group `group` (LambdaLR: the factor of the initial lr; MultiplicativeLR: the
 * factor of the current lr). Checkpoints save no function (torch saves None for one): give the same
 * function when loading. */
typedef double (*fastoptim_lr_lambda)(int64_t epoch, size_t group, void* user_data);
/* name: "LambdaLR" or "MultiplicativeLR"; args_json: {"last_epoch": ...} or NULL. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_create_lambda(fastoptim_optimizer* opt, const char* name,
                                                                      fastoptim_lr_lambda lr_lambda, void* user_data,
                                                                      const char* args_json,
                                                                      fastoptim_scheduler** out);
/* "SequentialLR" ({"milestones": [...]}) or "ChainedScheduler" ({}) over existing schedulers of `opt`. On
 * success the composite owns the children: their handles become invalid (do not destroy them). */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_compose(fastoptim_optimizer* opt, const char* name,
                                                                fastoptim_scheduler* const* children, size_t count,
                                                                const char* args_json, fastoptim_scheduler** out);

/* One step, after fastoptim_optimizer_step (not for ReduceLROnPlateau). */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_step(fastoptim_scheduler* sched);
/* ReduceLROnPlateau's step with this epoch's metric (e.g. the validation loss). */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_step_metric(fastoptim_scheduler* sched, double metric);
/* CosineAnnealingWarmRestarts' step(epoch): jump to a possibly fractional epoch. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_step_epoch(fastoptim_scheduler* sched, double epoch);
/* The learning rates of the last step, one per param group: `count` must be the number of groups. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_get_last_lr(const fastoptim_scheduler* sched, double* out,
                                                                    size_t count);
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_last_epoch(const fastoptim_scheduler* sched, int64_t* out);
/* torch's class name of the scheduler ("StepLR", ...), valid as long as the handle. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_scheduler_name(const fastoptim_scheduler* sched, const char** out);
/* NULL is a no-op. */
FASTOPTIM_C_EXPORT void fastoptim_scheduler_destroy(fastoptim_scheduler* sched);

/* What ReduceLROnPlateau's last step did, and its state after it. */
typedef enum fastoptim_plateau_kind {
  FASTOPTIM_PLATEAU_NONE = 0,           /* not stepped yet (the other fields are the current state) */
  FASTOPTIM_PLATEAU_IMPROVED = 1,       /* the metric improved on the best */
  FASTOPTIM_PLATEAU_NO_IMPROVEMENT = 2, /* num_bad_epochs of patience */
  FASTOPTIM_PLATEAU_REDUCED = 3,        /* the learning rates were cut */
  FASTOPTIM_PLATEAU_COOLDOWN = 4,       /* cooldown_counter steps left */
  FASTOPTIM_PLATEAU_AT_MIN_LR = 5,      /* a cut was due, but every group is at its min_lr */
  FASTOPTIM_PLATEAU_KIND_MAX_ENUM = 0x7fffffff
} fastoptim_plateau_kind;
typedef struct fastoptim_plateau_event {
  fastoptim_plateau_kind kind;
  int64_t epoch;
  double metric;
  double best;
  int64_t num_bad_epochs;
  int64_t patience;
  int64_t cooldown_counter;
} fastoptim_plateau_event;
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_plateau_get_event(const fastoptim_scheduler* sched,
                                                                fastoptim_plateau_event* out);
FASTOPTIM_C_EXPORT const char* fastoptim_plateau_kind_name(fastoptim_plateau_kind kind); /* "improved", ... */

/* ------------------------------------------------------------------------------------------ checkpoints */

/* Writes the optimizer's state and param groups (and the scheduler's state, if `sched` is not NULL; it must
 * drive `opt`) to `path` atomically, as Python's fastoptim.save. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_save(const char* path, const fastoptim_optimizer* opt,
                                                   const fastoptim_scheduler* sched);
/* Loads a checkpoint written by fastoptim_save, fastoptim::save_checkpoint or Python's fastoptim.save into
 * objects built like the saved ones. Everything is checked first: on failure nothing has changed. */
FASTOPTIM_C_EXPORT fastoptim_status fastoptim_load(const char* path, fastoptim_optimizer* opt,
                                                   fastoptim_scheduler* sched);

#ifdef __cplusplus
}
#endif

#endif /* FASTOPTIM_C_API_H */
