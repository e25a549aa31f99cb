/* The C API (fastoptim/c_api.h) from C99: what works, and every kind of misuse -- bad handles, bad names,
 * bad hyperparameters and arguments, NULL pointers, wrong sizes, corrupted checkpoints -- gives an error
 * code and a message, changes nothing, and never crashes. CI also runs it under AddressSanitizer and
 * UndefinedBehaviorSanitizer. */

#include <fastoptim/c_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_passed = 0, g_failed = 0;

static void check(int ok, const char* what, int line) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    printf("FAIL line %d: %s (last error: %s)\n", line, what, fastoptim_last_error());
  }
}
#define CHECK(c) check((c) != 0, #c, __LINE__)

/* The call fails with `status`, and the message contains `text`. */
#define FAILS(call, status, text)                                                                   \
  do {                                                                                              \
    fastoptim_status s_ = (call);                                                                   \
    int ok_ = s_ == (status) && strstr(fastoptim_last_error(), (text)) != NULL;                    \
    if (!ok_)                                                                                       \
      printf("  got %s: \"%s\", expected %s with \"%s\"\n", fastoptim_status_name(s_),             \
             fastoptim_last_error(), fastoptim_status_name(status), (text));                        \
    check(ok_, #call, __LINE__);                                                                    \
  } while (0)
#define OK(call) check((call) == FASTOPTIM_OK, #call, __LINE__)

static const char* temp_path(const char* name) {
  static char buf[4][512];
  static int slot = 0;
  const char* dir = getenv("TMPDIR");
  char* out = buf[slot++ % 4];
  snprintf(out, sizeof buf[0], "%s/fastoptim_c_%s", dir && *dir ? dir : "/tmp", name);
  return out;
}

/* One Adam optimizer over w (4 floats) and b (2 floats), in two groups. */
typedef struct {
  float w[4], b[2], gw[4], gb[2];
  fastoptim_optimizer* opt;
} Model;

static void model_init(Model* m, const char* name, const char* options) {
  int i;
  for (i = 0; i < 4; ++i) {
    m->w[i] = 0.25f * (float)i - 0.5f;
    m->gw[i] = 0.125f * (float)(i + 1);
  }
  m->b[0] = 1.0f;
  m->b[1] = -1.0f;
  m->gb[0] = 0.5f;
  m->gb[1] = -0.25f;
  m->opt = NULL;
  OK(fastoptim_optimizer_create(name, FASTOPTIM_FLOAT32, options, &m->opt));
  {
    void* pw[1];
    void* pb[1];
    size_t nw = 4, nb = 2;
    pw[0] = m->w;
    pb[0] = m->b;
    OK(fastoptim_optimizer_add_param_group(m->opt, pw, &nw, 1, NULL));
    OK(fastoptim_optimizer_add_param_group(m->opt, pb, &nb, 1, "{\"lr\": 0.05}"));
  }
}

static fastoptim_status model_step(Model* m) {
  const void* grads[2];
  grads[0] = m->gw;
  grads[1] = m->gb;
  return fastoptim_optimizer_step(m->opt, grads, 2);
}

static void library(void) {
  size_t i, n = 0;
  CHECK(fastoptim_c_api_version() == FASTOPTIM_C_API_VERSION);
  CHECK(strlen(fastoptim_version()) > 0);
  for (i = 0; fastoptim_optimizer_name_at(i); ++i) ++n;
  CHECK(n >= 5);
  n = 0;
  for (i = 0; fastoptim_scheduler_name_at(i); ++i) ++n;
  CHECK(n == 16);
  CHECK(strcmp(fastoptim_status_name(FASTOPTIM_ERROR_CHECKPOINT), "FASTOPTIM_ERROR_CHECKPOINT") == 0);
  CHECK(strcmp(fastoptim_plateau_kind_name(FASTOPTIM_PLATEAU_REDUCED), "reduced") == 0);
}

static void creation_errors(void) {
  fastoptim_optimizer* opt = NULL;
  FAILS(fastoptim_optimizer_create("Adamm", FASTOPTIM_FLOAT32, NULL, &opt), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "unknown optimizer 'Adamm'");
  FAILS(fastoptim_optimizer_create(NULL, FASTOPTIM_FLOAT32, NULL, &opt), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "name is NULL");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, NULL, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "out is NULL");
  FAILS(fastoptim_optimizer_create("Adam", (fastoptim_dtype)7, NULL, &opt), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "dtype");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"lr\": -1}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "Invalid learning rate");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"betas\": [0.9, 1.5]}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "Invalid beta parameter at index 1");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"lrr\": 0.1}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "Adam has no hyperparameter 'lrr'");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"amsgrad\": 1}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "must be a bool");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"betas\": 0.9}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "pair of numbers");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{lr: 0.1}", &opt), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "not valid JSON");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "[0.1]", &opt), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "must be a JSON object");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"lr\": 0.1, \"lr\": 0.2}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "duplicate key");
  FAILS(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"capturable\": true}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "not supported");
  FAILS(fastoptim_optimizer_create("AdamW", FASTOPTIM_FLOAT32, "{\"decoupled_weight_decay\": false}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "always true");
  FAILS(fastoptim_optimizer_create("SGD", FASTOPTIM_FLOAT64, "{\"nesterov\": true}", &opt),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "Nesterov momentum requires a momentum");
  CHECK(opt == NULL); /* outputs are written only on success */
  OK(fastoptim_optimizer_create("SGD", FASTOPTIM_FLOAT64, "{\"lr\": 0.1, \"foreach\": null, \"fused\": true}", &opt));
  fastoptim_optimizer_destroy(opt);
}

static void handle_errors(void) {
  fastoptim_optimizer* opt = NULL;
  fastoptim_scheduler* sched = NULL;
  size_t n = 0;
  int not_a_handle = 42;
  Model m;
  FAILS(fastoptim_optimizer_num_params(NULL, &n), FASTOPTIM_ERROR_INVALID_HANDLE, "opt is NULL");
  FAILS(fastoptim_optimizer_num_params((const fastoptim_optimizer*)&not_a_handle, &n), FASTOPTIM_ERROR_INVALID_HANDLE,
        "not a live fastoptim_optimizer");
  OK(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, NULL, &opt));
  fastoptim_optimizer_destroy(opt);
  FAILS(fastoptim_optimizer_num_params(opt, &n), FASTOPTIM_ERROR_INVALID_HANDLE, "destroyed");
  fastoptim_optimizer_destroy(opt); /* twice: a no-op */
  fastoptim_optimizer_destroy(NULL);
  fastoptim_scheduler_destroy(NULL);

  model_init(&m, "Adam", NULL);
  OK(fastoptim_scheduler_create(m.opt, "StepLR", "{\"step_size\": 2}", &sched));
  FAILS(fastoptim_optimizer_num_params((const fastoptim_optimizer*)sched, &n), FASTOPTIM_ERROR_INVALID_HANDLE,
        "is a fastoptim_scheduler, not a fastoptim_optimizer");
  FAILS(fastoptim_scheduler_step((fastoptim_scheduler*)m.opt), FASTOPTIM_ERROR_INVALID_HANDLE,
        "is a fastoptim_optimizer, not a fastoptim_scheduler");
  /* Handles may go in any order: the scheduler keeps the optimizer's groups alive. */
  fastoptim_optimizer_destroy(m.opt);
  OK(fastoptim_scheduler_step(sched));
  OK(fastoptim_scheduler_step(sched));
  {
    double lrs[2];
    OK(fastoptim_scheduler_get_last_lr(sched, lrs, 2));
    CHECK(fabs(lrs[0] - 1e-4) < 1e-12 && fabs(lrs[1] - 5e-3) < 1e-12);
  }
  fastoptim_scheduler_destroy(sched);
  FAILS(fastoptim_scheduler_step(sched), FASTOPTIM_ERROR_INVALID_HANDLE, "destroyed");
}

static void param_group_and_step_errors(void) {
  fastoptim_optimizer* opt = NULL;
  float p[8] = {0};
  float g[8] = {0};
  char raw[64];
  void* params[2];
  const void* grads[2];
  size_t sizes[2] = {4, 4};
  size_t n = 0;
  OK(fastoptim_optimizer_create("SGD", FASTOPTIM_FLOAT32, "{\"lr\": 0.5, \"momentum\": 0.9}", &opt));
  grads[0] = g;
  FAILS(fastoptim_optimizer_step(opt, grads, 1), FASTOPTIM_ERROR_INVALID_STATE, "add a param group first");
  FAILS(fastoptim_optimizer_add_param_group(opt, NULL, sizes, 1, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "params is NULL");
  params[0] = p;
  params[1] = p + 4;
  FAILS(fastoptim_optimizer_add_param_group(opt, params, NULL, 1, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "sizes is NULL");
  FAILS(fastoptim_optimizer_add_param_group(opt, params, sizes, 0, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "at least one parameter");
  params[1] = NULL;
  FAILS(fastoptim_optimizer_add_param_group(opt, params, sizes, 2, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "parameter 1 is NULL");
  params[1] = p + 2;
  FAILS(fastoptim_optimizer_add_param_group(opt, params, sizes, 2, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "overlaps");
  params[1] = raw + 1;
  FAILS(fastoptim_optimizer_add_param_group(opt, params, sizes, 2, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "not aligned");
  FAILS(fastoptim_optimizer_add_param_group(opt, params, sizes, 1, "{\"momentum\": -1}"),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "Invalid momentum value");
  OK(fastoptim_optimizer_num_params(opt, &n));
  CHECK(n == 0); /* every failed call added nothing */
  params[1] = p + 4;
  OK(fastoptim_optimizer_add_param_group(opt, params, sizes, 2, NULL));
  OK(fastoptim_optimizer_num_params(opt, &n));
  CHECK(n == 2);
  OK(fastoptim_optimizer_num_groups(opt, &n));
  CHECK(n == 1);

  /* Steps that fail change nothing. */
  {
    int i;
    for (i = 0; i < 8; ++i) g[i] = 1.0f;
  }
  grads[0] = g;
  grads[1] = g + 4;
  FAILS(fastoptim_optimizer_step(opt, grads, 1), FASTOPTIM_ERROR_INVALID_ARGUMENT, "expected 2 gradients");
  FAILS(fastoptim_optimizer_step(opt, NULL, 2), FASTOPTIM_ERROR_INVALID_ARGUMENT, "grads is NULL");
  grads[1] = p + 1;
  FAILS(fastoptim_optimizer_step(opt, grads, 2), FASTOPTIM_ERROR_INVALID_ARGUMENT, "overlaps");
  grads[1] = raw + 2;
  FAILS(fastoptim_optimizer_step(opt, grads, 2), FASTOPTIM_ERROR_INVALID_ARGUMENT, "not aligned");
  CHECK(p[0] == 0.0f && p[4] == 0.0f);
  /* NULL: no gradient for that parameter this step. */
  grads[1] = NULL;
  OK(fastoptim_optimizer_step(opt, grads, 2));
  CHECK(p[0] == -0.5f && p[4] == 0.0f);

  /* Learning rates and options. */
  {
    double lr = 0;
    char small[8], json[512];
    size_t needed = 0;
    FAILS(fastoptim_optimizer_get_lr(opt, 1, &lr), FASTOPTIM_ERROR_INVALID_ARGUMENT, "param group 1 does not exist");
    FAILS(fastoptim_optimizer_get_lr(opt, 0, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT, "out is NULL");
    FAILS(fastoptim_optimizer_set_lr(opt, 0, -0.1), FASTOPTIM_ERROR_INVALID_ARGUMENT, "Invalid learning rate");
    FAILS(fastoptim_optimizer_set_lr(opt, 0, NAN), FASTOPTIM_ERROR_INVALID_ARGUMENT, "Invalid learning rate");
    OK(fastoptim_optimizer_set_lr(opt, 0, 0.25));
    OK(fastoptim_optimizer_get_lr(opt, 0, &lr));
    CHECK(lr == 0.25);
    FAILS(fastoptim_optimizer_set_options(opt, 0, "{\"nesterov\": true, \"dampening\": 0.5}"),
          FASTOPTIM_ERROR_INVALID_ARGUMENT, "Nesterov");
    OK(fastoptim_optimizer_set_options(opt, 0, "{\"nesterov\": true}"));
    FAILS(fastoptim_optimizer_get_options(opt, 0, small, sizeof small, &needed), FASTOPTIM_ERROR_BUFFER_TOO_SMALL,
          "bytes");
    CHECK(needed > sizeof small && needed < sizeof json);
    OK(fastoptim_optimizer_get_options(opt, 0, json, sizeof json, &needed));
    CHECK(strlen(json) + 1 == needed);
    CHECK(strstr(json, "\"lr\":0.25") != NULL && strstr(json, "\"nesterov\":true") != NULL);
  }
  fastoptim_optimizer_destroy(opt);
}

static double halve(int64_t epoch, size_t group, void* user_data) {
  (void)group;
  ++*(int*)user_data;
  return pow(0.5, (double)epoch);
}

static void scheduler_errors(void) {
  Model m;
  fastoptim_scheduler* s = NULL;
  fastoptim_scheduler* t = NULL;
  double lr0 = 0, lr1 = 0, lrs[2];
  int calls = 0;
  model_init(&m, "SGD", "{\"lr\": 0.1, \"momentum\": 0.9}");
  FAILS(fastoptim_scheduler_create(m.opt, "StepLRR", NULL, &s), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "unknown scheduler 'StepLRR'");
  FAILS(fastoptim_scheduler_create(m.opt, "StepLR", NULL, &s), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "StepLR needs the argument 'step_size'");
  FAILS(fastoptim_scheduler_create(m.opt, "StepLR", "{\"step_size\": 2, \"gama\": 0.5}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "unexpected argument 'gama'");
  FAILS(fastoptim_scheduler_create(m.opt, "StepLR", "{\"step_size\": 2.5}", &s), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "must be an integer");
  FAILS(fastoptim_scheduler_create(m.opt, "StepLR", "{\"step_size\": 0}", &s), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "step_size must be a positive integer");
  FAILS(fastoptim_scheduler_create(m.opt, "LambdaLR", NULL, &s), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "fastoptim_scheduler_create_lambda");
  FAILS(fastoptim_scheduler_create_lambda(m.opt, "LambdaLR", NULL, NULL, NULL, &s), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "lr_lambda is NULL");
  FAILS(fastoptim_scheduler_create_lambda(m.opt, "StepLR", halve, &calls, NULL, &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "LambdaLR or MultiplicativeLR");
  FAILS(fastoptim_scheduler_create(m.opt, "CyclicLR", "{\"base_lr\": [0.1, 0.2, 0.3], \"max_lr\": 1}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "base_lr must have the same length as optimizer.param_groups");
  FAILS(fastoptim_scheduler_create(m.opt, "ReduceLROnPlateau", "{\"mode\": \"sideways\"}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "mode sideways is unknown");
  FAILS(fastoptim_scheduler_create(m.opt, "SequentialLR",
                                   "{\"schedulers\": [{\"class\": \"ReduceLROnPlateau\"}], \"milestones\": []}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "does not support `ReduceLROnPlateau`");
  /* A failed construction leaves the groups as they were, though the first child had already run. */
  FAILS(fastoptim_scheduler_create(m.opt, "SequentialLR",
                                   "{\"schedulers\": [{\"class\": \"ConstantLR\", \"factor\": 0.5}, "
                                   "{\"class\": \"StepLR\"}], \"milestones\": [3]}",
                                   &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "StepLR needs the argument 'step_size'");
  OK(fastoptim_optimizer_get_lr(m.opt, 0, &lr0));
  CHECK(lr0 == 0.1);
  CHECK(s == NULL);

  /* Kinds of step. */
  OK(fastoptim_scheduler_create(m.opt, "ReduceLROnPlateau", "{\"patience\": 0, \"factor\": 0.5}", &s));
  FAILS(fastoptim_scheduler_step(s), FASTOPTIM_ERROR_INVALID_STATE, "fastoptim_scheduler_step_metric");
  FAILS(fastoptim_scheduler_step_epoch(s, 1.0), FASTOPTIM_ERROR_INVALID_STATE, "CosineAnnealingWarmRestarts");
  FAILS(fastoptim_scheduler_get_last_lr(s, lrs, 3), FASTOPTIM_ERROR_INVALID_ARGUMENT, "one per param group");
  {
    fastoptim_plateau_event e;
    OK(fastoptim_plateau_get_event(s, &e));
    CHECK(e.kind == FASTOPTIM_PLATEAU_NONE && isinf(e.best));
    OK(fastoptim_scheduler_step_metric(s, 1.0));
    OK(fastoptim_plateau_get_event(s, &e));
    CHECK(e.kind == FASTOPTIM_PLATEAU_IMPROVED && e.best == 1.0 && e.epoch == 1);
    OK(fastoptim_scheduler_step_metric(s, 2.0));
    OK(fastoptim_plateau_get_event(s, &e));
    CHECK(e.kind == FASTOPTIM_PLATEAU_REDUCED && e.metric == 2.0);
    OK(fastoptim_scheduler_get_last_lr(s, lrs, 2));
    CHECK(lrs[0] == 0.05 && lrs[1] == 0.025);
  }
  {
    void* extra[1];
    size_t one = 1;
    float x[1] = {0};
    extra[0] = x;
    FAILS(fastoptim_optimizer_add_param_group(m.opt, extra, &one, 1, NULL), FASTOPTIM_ERROR_INVALID_STATE,
          "add all groups first");
  }
  fastoptim_scheduler_destroy(s);

  OK(fastoptim_scheduler_create(m.opt, "StepLR", "{\"step_size\": 1}", &s));
  FAILS(fastoptim_scheduler_step_metric(s, 1.0), FASTOPTIM_ERROR_INVALID_STATE, "fastoptim_scheduler_step");
  FAILS(fastoptim_plateau_get_event(s, NULL), FASTOPTIM_ERROR_INVALID_STATE, "is not ReduceLROnPlateau");
  {
    const char* name = NULL;
    int64_t epoch = -7;
    OK(fastoptim_scheduler_name(s, &name));
    CHECK(name && strcmp(name, "StepLR") == 0);
    OK(fastoptim_scheduler_last_epoch(s, &epoch));
    CHECK(epoch == 0);
  }
  fastoptim_scheduler_destroy(s);

  /* A step that throws (OneCycleLR past total_steps) changes nothing. */
  OK(fastoptim_scheduler_create(m.opt, "OneCycleLR", "{\"max_lr\": 1.0, \"total_steps\": 2}", &s));
  OK(fastoptim_scheduler_step(s));
  OK(fastoptim_scheduler_step(s));
  OK(fastoptim_optimizer_get_lr(m.opt, 0, &lr0));
  FAILS(fastoptim_scheduler_step(s), FASTOPTIM_ERROR_INVALID_ARGUMENT, "Tried to step 3 times");
  OK(fastoptim_optimizer_get_lr(m.opt, 0, &lr1));
  CHECK(lr0 == lr1);
  {
    int64_t epoch = 0;
    OK(fastoptim_scheduler_last_epoch(s, &epoch));
    CHECK(epoch == 2);
  }
  fastoptim_scheduler_destroy(s);

  fastoptim_optimizer_destroy(m.opt);

  /* Lambdas and composition. */
  model_init(&m, "SGD", "{\"lr\": 0.1, \"momentum\": 0.9}");
  OK(fastoptim_scheduler_create_lambda(m.opt, "LambdaLR", halve, &calls, NULL, &s));
  CHECK(calls == 2); /* the initial step, once per group */
  OK(fastoptim_scheduler_create(m.opt, "ExponentialLR", "{\"gamma\": 0.5}", &t));
  {
    fastoptim_scheduler* kids[2];
    fastoptim_scheduler* chain = NULL;
    fastoptim_scheduler* plateau = NULL;
    kids[0] = s;
    kids[1] = s;
    FAILS(fastoptim_scheduler_compose(m.opt, "ChainedScheduler", kids, 2, NULL, &chain),
          FASTOPTIM_ERROR_INVALID_ARGUMENT, "is also children[0]");
    OK(fastoptim_scheduler_create(m.opt, "ReduceLROnPlateau", NULL, &plateau));
    kids[1] = plateau;
    FAILS(fastoptim_scheduler_compose(m.opt, "ChainedScheduler", kids, 2, NULL, &chain),
          FASTOPTIM_ERROR_INVALID_ARGUMENT, "does not support `ReduceLROnPlateau`");
    fastoptim_scheduler_destroy(plateau);
    kids[1] = t;
    FAILS(fastoptim_scheduler_compose(m.opt, "SequentialLR", kids, 2, NULL, &chain), FASTOPTIM_ERROR_INVALID_ARGUMENT,
          "needs the argument 'milestones'");
    OK(fastoptim_scheduler_compose(m.opt, "ChainedScheduler", kids, 2, NULL, &chain));
    /* The composite owns the children now: their handles are gone. */
    FAILS(fastoptim_scheduler_step(s), FASTOPTIM_ERROR_INVALID_HANDLE, "destroyed");
    fastoptim_scheduler_destroy(t); /* a no-op */
    OK(fastoptim_scheduler_step(chain));
    OK(fastoptim_scheduler_get_last_lr(chain, lrs, 2));
    CHECK(fabs(lrs[0] - 0.1 * 0.5 * 0.5) < 1e-15);
    fastoptim_scheduler_destroy(chain);
  }
  /* Fuzzed arguments that overflowed int64 (or cast an out-of-range double to it) are errors now. */
  s = NULL;
  FAILS(fastoptim_scheduler_create(m.opt, "StepLR", "{\"step_size\": 2, \"last_epoch\": 9223372036854775807}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "last_epoch must be at most 2^53");
  FAILS(fastoptim_scheduler_create(m.opt, "CosineAnnealingLR", "{\"T_max\": 9223372036854775807}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "T_max must be at most 2^53");
  FAILS(fastoptim_scheduler_create(m.opt, "CosineAnnealingLR", "{\"T_max\": -9223372036854775808}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "T_max must be at most 2^53");
  FAILS(fastoptim_scheduler_create(m.opt, "OneCycleLR",
                                   "{\"max_lr\": 0.1, \"epochs\": 4611686018427387904, \"steps_per_epoch\": 4}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "epochs * steps_per_epoch must be at most 2^53");
  FAILS(fastoptim_scheduler_create(m.opt, "CosineAnnealingWarmRestarts",
                                   "{\"T_0\": 9223372036854775807, \"T_mult\": 9223372036854775807}", &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "T_0 * T_mult must be at most 2^53");
  CHECK(s == NULL);
  OK(fastoptim_scheduler_create(m.opt, "CosineAnnealingWarmRestarts", "{\"T_0\": 3, \"T_mult\": 2}", &s));
  OK(fastoptim_scheduler_step_epoch(s, 4.5));
  FAILS(fastoptim_scheduler_step_epoch(s, NAN), FASTOPTIM_ERROR_INVALID_ARGUMENT, "cannot convert float NaN to integer");
  FAILS(fastoptim_scheduler_step_epoch(s, INFINITY), FASTOPTIM_ERROR_INVALID_ARGUMENT, "finite epoch below 2^53");
  FAILS(fastoptim_scheduler_step_epoch(s, 1e300), FASTOPTIM_ERROR_INVALID_ARGUMENT, "finite epoch below 2^53");
  FAILS(fastoptim_scheduler_step_epoch(s, 1e30), FASTOPTIM_ERROR_INVALID_ARGUMENT, "finite epoch below 2^53");
  FAILS(fastoptim_scheduler_step_epoch(s, 9007199254740990.0), FASTOPTIM_ERROR_INVALID_ARGUMENT, "would pass 2^53");
  {
    int64_t epoch = -7;
    OK(fastoptim_scheduler_last_epoch(s, &epoch));
    CHECK(epoch == 4);
  }
  fastoptim_scheduler_destroy(s);
  s = NULL;
  /* A cycle of 2e-310 steps: the first step's cycle number is infinite. */
  OK(fastoptim_scheduler_create(m.opt, "CyclicLR",
                                "{\"base_lr\": 0.01, \"max_lr\": 0.1, \"step_size_up\": 1e-310, "
                                "\"step_size_down\": 1e-310}",
                                &s));
  FAILS(fastoptim_scheduler_step(s), FASTOPTIM_ERROR_INVALID_ARGUMENT, "is not finite or beyond 2^53");
  fastoptim_scheduler_destroy(s);
  s = NULL;
  FAILS(fastoptim_scheduler_create(m.opt, "CyclicLR",
                                   "{\"base_lr\": 0.01, \"max_lr\": 0.1, \"step_size_up\": -3, \"step_size_down\": 1}",
                                   &s),
        FASTOPTIM_ERROR_INVALID_ARGUMENT, "step_size_up and step_size_down must be >= 0");
  fastoptim_optimizer_destroy(m.opt);
}

static int write_bytes(const char* path, const unsigned char* data, size_t n) {
  FILE* f;
  remove(path); /* a new file, not a truncated one: ext4 flushes truncated-and-rewritten files on close */
  f = fopen(path, "wb");
  if (!f) return 0;
  fwrite(data, 1, n, f);
  fclose(f);
  return 1;
}

static unsigned char* read_bytes(const char* path, size_t* n) {
  FILE* f = fopen(path, "rb");
  unsigned char* data;
  long size;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = (unsigned char*)malloc((size_t)size);
  *n = fread(data, 1, (size_t)size, f);
  fclose(f);
  return data;
}

static void checkpoints(void) {
  Model a, b, c;
  fastoptim_scheduler* sa = NULL;
  fastoptim_scheduler* sb = NULL;
  fastoptim_scheduler* other = NULL;
  const char* good = temp_path("good.safetensors");
  const char* bad = temp_path("bad.safetensors");
  unsigned char* bytes;
  size_t n = 0, i;
  int k, rejected = 0, changed = 0, crashed_status = 0;
  double lr = 0;

  model_init(&a, "Adam", "{\"lr\": 0.1, \"amsgrad\": true}");
  OK(fastoptim_scheduler_create(a.opt, "StepLR", "{\"step_size\": 2, \"gamma\": 0.5}", &sa));
  for (k = 0; k < 3; ++k) {
    OK(model_step(&a));
    OK(fastoptim_scheduler_step(sa));
  }
  FAILS(fastoptim_save(NULL, a.opt, sa), FASTOPTIM_ERROR_INVALID_ARGUMENT, "path is NULL");
  FAILS(fastoptim_save("/nonexistent-dir/x.safetensors", a.opt, sa), FASTOPTIM_ERROR_IO, "cannot create");
  OK(fastoptim_save(good, a.opt, sa));

  /* A fresh copy resumes bit-identically. */
  model_init(&b, "Adam", "{\"lr\": 0.7}");
  memcpy(b.w, a.w, sizeof a.w);
  memcpy(b.b, a.b, sizeof a.b);
  OK(fastoptim_scheduler_create(b.opt, "StepLR", "{\"step_size\": 2, \"gamma\": 0.5}", &sb));
  OK(fastoptim_save(bad, a.opt, NULL));
  FAILS(fastoptim_load(bad, b.opt, sb), FASTOPTIM_ERROR_CHECKPOINT, "holds no scheduler state");
  OK(fastoptim_load(good, b.opt, sb));
  for (k = 0; k < 4; ++k) {
    OK(model_step(&a));
    OK(fastoptim_scheduler_step(sa));
    OK(model_step(&b));
    OK(fastoptim_scheduler_step(sb));
  }
  CHECK(memcmp(a.w, b.w, sizeof a.w) == 0 && memcmp(a.b, b.b, sizeof a.b) == 0);

  /* Mismatches. */
  model_init(&c, "SGD", NULL);
  FAILS(fastoptim_load(good, c.opt, NULL), FASTOPTIM_ERROR_CHECKPOINT, "holds a Adam optimizer, not SGD");
  OK(fastoptim_scheduler_create(c.opt, "ExponentialLR", "{\"gamma\": 0.5}", &other));
  FAILS(fastoptim_load(good, b.opt, other), FASTOPTIM_ERROR_INVALID_ARGUMENT, "sched does not drive opt");
  FAILS(fastoptim_save(good, b.opt, other), FASTOPTIM_ERROR_INVALID_ARGUMENT, "sched does not drive opt");
  FAILS(fastoptim_load(temp_path("missing.safetensors"), b.opt, sb), FASTOPTIM_ERROR_IO, "cannot open");
  fastoptim_scheduler_destroy(other);
  fastoptim_optimizer_destroy(c.opt);

  /* Corrupted files: every truncation, and bytes overwritten, fail with a message and change nothing. */
  bytes = read_bytes(good, &n);
  CHECK(bytes != NULL && n > 100);
  OK(fastoptim_optimizer_get_lr(b.opt, 0, &lr));
  for (i = 0; bytes && i < n; ++i) {
    fastoptim_status s;
    double after = 0;
    write_bytes(bad, bytes, i);
    s = fastoptim_load(bad, b.opt, sb);
    rejected += s == FASTOPTIM_ERROR_CHECKPOINT;
    fastoptim_optimizer_get_lr(b.opt, 0, &after);
    changed += after != lr;
  }
  CHECK(rejected == (int)n);
  CHECK(changed == 0);
  for (i = 0; bytes && i < n; i += 3) {
    fastoptim_status s;
    unsigned char saved = bytes[i];
    bytes[i] = (unsigned char)(saved ^ 0x5a);
    write_bytes(bad, bytes, n);
    s = fastoptim_load(bad, b.opt, sb);
    /* a flipped digit of a value may still be a valid file; anything else must be a checkpoint error */
    crashed_status += s != FASTOPTIM_OK && s != FASTOPTIM_ERROR_CHECKPOINT;
    if (s == FASTOPTIM_ERROR_CHECKPOINT) CHECK(strncmp(fastoptim_last_error(), "checkpoint ", 11) == 0);
    bytes[i] = saved;
  }
  CHECK(crashed_status == 0);
  free(bytes);
  remove(good);
  remove(bad);
  fastoptim_scheduler_destroy(sa);
  fastoptim_scheduler_destroy(sb);
  fastoptim_optimizer_destroy(a.opt);
  fastoptim_optimizer_destroy(b.opt);
}

/* train() / eval(): only ScheduleFreeAdamW has modes; its train_mode is no option, and eval() undoes train(). */
static void train_modes(void) {
  Model m, sf;
  float w0[4], b0[2];
  model_init(&m, "Adam", NULL);
  FAILS(fastoptim_optimizer_train(m.opt, 1), FASTOPTIM_ERROR_INVALID_ARGUMENT, "has no train and eval modes");
  FAILS(fastoptim_optimizer_train(NULL, 1), FASTOPTIM_ERROR_INVALID_HANDLE, "NULL");
  fastoptim_optimizer_destroy(m.opt);

  model_init(&sf, "ScheduleFreeAdamW", "{\"lr\": 0.01}");
  FAILS(model_step(&sf), FASTOPTIM_ERROR_INVALID_STATE, "not in train mode");
  FAILS(fastoptim_optimizer_set_options(sf.opt, 0, "{\"train_mode\": true}"), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "train_mode cannot be set");
  OK(fastoptim_optimizer_train(sf.opt, 1));
  OK(model_step(&sf));
  OK(model_step(&sf));
  memcpy(w0, sf.w, sizeof w0);
  memcpy(b0, sf.b, sizeof b0);
  OK(fastoptim_optimizer_train(sf.opt, 0));  /* the parameters move from y to x */
  CHECK(memcmp(w0, sf.w, sizeof w0) != 0 && memcmp(b0, sf.b, sizeof b0) != 0);
  FAILS(model_step(&sf), FASTOPTIM_ERROR_INVALID_STATE, "not in train mode");
  fastoptim_optimizer_destroy(sf.opt);
}

/* LBFGS's closure: the loss sum((x - 3)^2) over one parameter of 3 doubles; user_data counts the calls and,
 * when it starts negative, makes the call fail with that code. */
static int quadratic(void* user_data, const void* const* params, void* const* grads, size_t count, double* loss) {
  int* calls = (int*)user_data;
  const double* x = (const double*)params[0];
  double* g = (double*)grads[0];
  size_t i;
  if (*calls < 0) return -*calls;
  ++*calls;
  if (count != 1) return 99;
  *loss = 0.0;
  for (i = 0; i < 3; ++i) {
    *loss += (x[i] - 3.0) * (x[i] - 3.0);
    g[i] = 2.0 * (x[i] - 3.0);
  }
  return 0;
}

static void closures_sparse_and_shapes(void) {
  fastoptim_optimizer *lb, *lb2, *sa, *adam, *af, *mu;
  double x[3] = {1.5, -0.5, 2.0}, x2[3], before[3], loss = 0.0;
  void* px[1];
  void* px2[1];
  size_t n3 = 3, i, shape23[2] = {2, 3}, shape42[2] = {4, 2}, ndim2 = 2, big = 65;
  const size_t* s23[1];
  const size_t* s42[1];
  int calls = 0, fail = -7, has_muon = 0;
  float table[8] = {0}, table0[8], vals[4] = {1, -1, 2, 2}, w[6] = {0.5f, -1, 2, 0.25f, 1, -0.5f}, gw[6] = {1, 1, 1, 1, 1, 1};
  void* pt[1];
  void* pw[1];
  const void* gws[1];
  int64_t rows[2] = {1, 3}, bad_rows[1] = {4};
  const int64_t* idx[1];
  const void* vp[1];
  size_t nnz[1] = {2};
  px[0] = x;
  px2[0] = x2;
  pt[0] = table;
  pw[0] = w;
  gws[0] = gw;
  s23[0] = shape23;
  s42[0] = shape42;

  CHECK(strcmp(fastoptim_status_name(FASTOPTIM_ERROR_CALLBACK), "FASTOPTIM_ERROR_CALLBACK") == 0);
  /* LBFGS: steps with a closure, one group */
  OK(fastoptim_optimizer_create("LBFGS", FASTOPTIM_FLOAT64, "{\"line_search_fn\": \"strong_wolfe\"}", &lb));
  OK(fastoptim_optimizer_add_param_group(lb, px, &n3, 1, NULL));
  FAILS(fastoptim_optimizer_add_param_group(lb, px2, &n3, 1, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "parameter groups");
  FAILS(fastoptim_optimizer_step(lb, NULL, 1), FASTOPTIM_ERROR_INVALID_ARGUMENT, "fastoptim_optimizer_step_closure");
  FAILS(fastoptim_optimizer_step_closure(lb, NULL, NULL, &loss), FASTOPTIM_ERROR_INVALID_ARGUMENT, "closure is NULL");
  memcpy(before, x, sizeof x);
  FAILS(fastoptim_optimizer_step_closure(lb, quadratic, &fail, &loss), FASTOPTIM_ERROR_CALLBACK, "returned 7");
  CHECK(memcmp(before, x, sizeof x) == 0 && loss == 0.0);
  OK(fastoptim_optimizer_step_closure(lb, quadratic, &calls, &loss));
  CHECK(loss == 15.5 && calls > 1);
  for (i = 0; i < 3; ++i) CHECK(fabs(x[i] - 3.0) < 1e-6);
  /* a checkpoint with its history resumes bit-identically */
  x[0] = 0.0;
  OK(fastoptim_optimizer_step_closure(lb, quadratic, &calls, NULL));
  OK(fastoptim_save(temp_path("lbfgs.safetensors"), lb, NULL));
  memcpy(x2, x, sizeof x);
  OK(fastoptim_optimizer_create("LBFGS", FASTOPTIM_FLOAT64, "{\"line_search_fn\": \"strong_wolfe\"}", &lb2));
  OK(fastoptim_optimizer_add_param_group(lb2, px2, &n3, 1, NULL));
  OK(fastoptim_load(temp_path("lbfgs.safetensors"), lb2, NULL));
  x[1] = x2[1] = -4.0;
  OK(fastoptim_optimizer_step_closure(lb, quadratic, &calls, NULL));
  px[0] = x2; /* the closure reads params[0]: the second optimizer's parameter */
  OK(fastoptim_optimizer_step_closure(lb2, quadratic, &calls, NULL));
  CHECK(memcmp(x, x2, sizeof x) == 0);
  fastoptim_optimizer_destroy(lb);
  fastoptim_optimizer_destroy(lb2);

  /* SparseAdam: sparse gradients over rows of the first dimension */
  OK(fastoptim_optimizer_create("SparseAdam", FASTOPTIM_FLOAT32, "{\"lr\": 0.1}", &sa));
  OK(fastoptim_optimizer_add_param_group_shaped(sa, pt, s42, &ndim2, 1, NULL));
  FAILS(fastoptim_optimizer_step(sa, gws, 1), FASTOPTIM_ERROR_INVALID_ARGUMENT, "fastoptim_optimizer_step_sparse");
  idx[0] = bad_rows;
  vp[0] = vals;
  nnz[0] = 1;
  FAILS(fastoptim_optimizer_step_sparse(sa, idx, nnz, vp, 1), FASTOPTIM_ERROR_INVALID_ARGUMENT, "out of range");
  FAILS(fastoptim_optimizer_step_sparse(sa, idx, nnz, vp, 2), FASTOPTIM_ERROR_INVALID_ARGUMENT, "expected 1");
  idx[0] = rows;
  nnz[0] = 2;
  OK(fastoptim_optimizer_step_sparse(sa, idx, nnz, vp, 1));
  CHECK(table[0] == 0 && table[1] == 0 && table[4] == 0 && table[5] == 0);  /* rows 0 and 2 untouched */
  CHECK(fabsf(table[2] + 0.1f) < 1e-6f && fabsf(table[3] - 0.1f) < 1e-6f && fabsf(table[7] + 0.1f) < 1e-6f);
  memcpy(table0, table, sizeof table);
  idx[0] = NULL; /* no gradient this step */
  OK(fastoptim_optimizer_step_sparse(sa, idx, nnz, vp, 1));
  CHECK(memcmp(table0, table, sizeof table) == 0);
  fastoptim_optimizer_destroy(sa);

  OK(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, NULL, &adam));
  OK(fastoptim_optimizer_add_param_group_shaped(adam, pw, s23, &ndim2, 1, NULL));
  FAILS(fastoptim_optimizer_step_sparse(adam, idx, nnz, vp, 1), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "does not take sparse gradients");
  FAILS(fastoptim_optimizer_step_closure(adam, quadratic, &calls, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "does not step with a closure");
  FAILS(fastoptim_optimizer_add_param_group_shaped(adam, pw, s23, &big, 1, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "64 dimensions");
  FAILS(fastoptim_optimizer_add_param_group_shaped(adam, pw, NULL, &ndim2, 1, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT,
        "shapes is NULL");
  fastoptim_optimizer_destroy(adam);

  /* Adafactor factors a (2, 3) parameter; Muon (when built with Eigen) takes only matrices */
  OK(fastoptim_optimizer_create("Adafactor", FASTOPTIM_FLOAT32, "{\"eps\": [null, 0.001]}", &af));
  OK(fastoptim_optimizer_add_param_group_shaped(af, pw, s23, &ndim2, 1, NULL));
  OK(fastoptim_optimizer_step(af, gws, 1));
  OK(fastoptim_save(temp_path("adafactor.safetensors"), af, NULL));
  OK(fastoptim_load(temp_path("adafactor.safetensors"), af, NULL));
  fastoptim_optimizer_destroy(af);
  for (i = 0; fastoptim_optimizer_name_at(i); ++i) has_muon |= strcmp(fastoptim_optimizer_name_at(i), "Muon") == 0;
  if (has_muon) {
    OK(fastoptim_optimizer_create("Muon", FASTOPTIM_FLOAT32, NULL, &mu));
    FAILS(fastoptim_optimizer_add_param_group(mu, pw, &n3, 1, NULL), FASTOPTIM_ERROR_INVALID_ARGUMENT, "2-D");
    OK(fastoptim_optimizer_add_param_group_shaped(mu, pw, s23, &ndim2, 1, NULL));
    OK(fastoptim_optimizer_step(mu, gws, 1));
    fastoptim_optimizer_destroy(mu);
  }
}

int main(void) {
  library();
  closures_sparse_and_shapes();
  train_modes();
  creation_errors();
  handle_errors();
  param_group_and_step_errors();
  scheduler_errors();
  checkpoints();
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
