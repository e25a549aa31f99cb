/* The C side of the cross-language checkpoint tests (tests/test_checkpoint.py): runs a fixed problem with
 * any optimizer and scheduler through the C API, saving or resuming a checkpoint.
 *
 *   ckpt_cross names
 *       one line per optimizer ("optimizer SGD") and scheduler ("scheduler StepLR")
 *   ckpt_cross write  OPT DTYPE OPTIONS GROUP1 SCHED ARGS CKPT PARAMS_OUT NSTEPS
 *       runs NSTEPS steps from the start, saves CKPT, writes the parameters to PARAMS_OUT
 *   ckpt_cross resume OPT DTYPE OPTIONS GROUP1 SCHED ARGS CKPT PARAMS_IN PARAMS_OUT K0 NSTEPS
 *       builds the same objects over PARAMS_IN, loads CKPT, runs steps K0 .. K0+NSTEPS-1, writes PARAMS_OUT
 *
 * OPT: an optimizer name; DTYPE: float32 or float64; OPTIONS: its JSON options; GROUP1: the JSON options of
 * the second param group; SCHED: a scheduler name or "-"; ARGS: its JSON arguments. Both commands print
 * the final learning rates as "lr <hex float> <hex float>".
 *
 * The problem (the Python test runs the same): group 0 holds p0 (5 values, (i - 2) / 4), group 1 holds p1
 * (3 values, 1/2 - i/4); at step k the gradient of p_j is p_j / 2 + c(i, k, j) with
 * c = ((7i + 3k + 5j) mod 11 - 5) / 8, exact in binary. ReduceLROnPlateau steps with the metric
 * 1 / (1 + floor(k / 4)); LambdaLR uses 1/2 + (1/2 or 1/4 for group 1) / (1 + epoch), MultiplicativeLR
 * 0.8 at every third epoch and 0.9 otherwise. Parameters are files of raw native-endian values, p0 then p1. */

#include <fastoptim/c_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N0 5
#define N1 3

static double lambda_lr(int64_t epoch, size_t group, void* user_data) {
  (void)user_data;
  return 0.5 + (group ? 0.25 : 0.5) / (1.0 + (double)epoch);
}

static double multiplicative_lr(int64_t epoch, size_t group, void* user_data) {
  (void)group;
  (void)user_data;
  return epoch % 3 ? 0.9 : 0.8;
}

static void die(const char* what, fastoptim_status s) {
  fprintf(stderr, "ckpt_cross: %s: %s: %s\n", what, fastoptim_status_name(s), fastoptim_last_error());
  exit(1);
}
#define TRY(call)                                      \
  do {                                                 \
    fastoptim_status s_ = (call);                      \
    if (s_ != FASTOPTIM_OK) die(#call, s_);            \
  } while (0)

typedef struct {
  int f64;
  float p32[N0 + N1], g32[N0 + N1];
  double p64[N0 + N1], g64[N0 + N1];
  fastoptim_optimizer* opt;
  fastoptim_scheduler* sched;
  int plateau;
} Run;

static double c_value(int i, long k, int j) { return (double)((i * 7 + k * 3 + j * 5) % 11 - 5) * 0.125; }

static void build(Run* r, char** a) {
  void* p0[1];
  void* p1[1];
  size_t n0 = N0, n1 = N1;
  int i;
  r->f64 = strcmp(a[1], "float64") == 0;
  if (!r->f64 && strcmp(a[1], "float32") != 0) {
    fprintf(stderr, "ckpt_cross: dtype must be float32 or float64\n");
    exit(2);
  }
  for (i = 0; i < N0; ++i) {
    r->p64[i] = (i - 2.0) * 0.25;
    r->p32[i] = (float)r->p64[i];
  }
  for (i = 0; i < N1; ++i) {
    r->p64[N0 + i] = 0.5 - 0.25 * i;
    r->p32[N0 + i] = (float)r->p64[N0 + i];
  }
  TRY(fastoptim_optimizer_create(a[0], r->f64 ? FASTOPTIM_FLOAT64 : FASTOPTIM_FLOAT32, a[2], &r->opt));
  p0[0] = r->f64 ? (void*)r->p64 : (void*)r->p32;
  p1[0] = r->f64 ? (void*)(r->p64 + N0) : (void*)(r->p32 + N0);
  TRY(fastoptim_optimizer_add_param_group(r->opt, p0, &n0, 1, NULL));
  TRY(fastoptim_optimizer_add_param_group(r->opt, p1, &n1, 1, a[3]));
  if (strcmp(a[0], "ScheduleFreeAdamW") == 0) TRY(fastoptim_optimizer_train(r->opt, 1)); /* steps in train mode */
  r->sched = NULL;
  r->plateau = strcmp(a[4], "ReduceLROnPlateau") == 0;
  if (strcmp(a[4], "LambdaLR") == 0)
    TRY(fastoptim_scheduler_create_lambda(r->opt, a[4], lambda_lr, NULL, a[5], &r->sched));
  else if (strcmp(a[4], "MultiplicativeLR") == 0)
    TRY(fastoptim_scheduler_create_lambda(r->opt, a[4], multiplicative_lr, NULL, a[5], &r->sched));
  else if (strcmp(a[4], "-") != 0)
    TRY(fastoptim_scheduler_create(r->opt, a[4], a[5], &r->sched));
}

static void run(Run* r, long k0, long n) {
  long k;
  int i, j;
  for (k = k0; k < k0 + n; ++k) {
    const void* grads[2];
    for (j = 0; j < 2; ++j) {
      const int off = j ? N0 : 0, len = j ? N1 : N0;
      for (i = 0; i < len; ++i) {
        r->g64[off + i] = r->p64[off + i] * 0.5 + c_value(i, k, j);
        r->g32[off + i] = r->p32[off + i] * 0.5f + (float)c_value(i, k, j);
      }
    }
    grads[0] = r->f64 ? (const void*)r->g64 : (const void*)r->g32;
    grads[1] = r->f64 ? (const void*)(r->g64 + N0) : (const void*)(r->g32 + N0);
    TRY(fastoptim_optimizer_step(r->opt, grads, 2));
    if (r->sched && r->plateau) TRY(fastoptim_scheduler_step_metric(r->sched, 1.0 / (1.0 + (double)(k / 4))));
    else if (r->sched) TRY(fastoptim_scheduler_step(r->sched));
  }
}

static void write_params(const Run* r, const char* path) {
  FILE* f = fopen(path, "wb");
  const size_t size = r->f64 ? sizeof r->p64 : sizeof r->p32;
  if (!f || fwrite(r->f64 ? (const void*)r->p64 : (const void*)r->p32, 1, size, f) != size) {
    fprintf(stderr, "ckpt_cross: cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

static void read_params(Run* r, const char* path) {
  FILE* f = fopen(path, "rb");
  const size_t size = r->f64 ? sizeof r->p64 : sizeof r->p32;
  if (!f || fread(r->f64 ? (void*)r->p64 : (void*)r->p32, 1, size, f) != size) {
    fprintf(stderr, "ckpt_cross: cannot read %s values from %s\n", r->f64 ? "float64" : "float32", path);
    exit(1);
  }
  fclose(f);
}

static void print_lrs(const Run* r) {
  double lr0, lr1;
  TRY(fastoptim_optimizer_get_lr(r->opt, 0, &lr0));
  TRY(fastoptim_optimizer_get_lr(r->opt, 1, &lr1));
  printf("lr %a %a\n", lr0, lr1);
}

int main(int argc, char** argv) {
  Run r;
  if (argc == 2 && strcmp(argv[1], "names") == 0) {
    size_t i;
    for (i = 0; fastoptim_optimizer_name_at(i); ++i) printf("optimizer %s\n", fastoptim_optimizer_name_at(i));
    for (i = 0; fastoptim_scheduler_name_at(i); ++i) printf("scheduler %s\n", fastoptim_scheduler_name_at(i));
    return 0;
  }
  if (argc == 11 && strcmp(argv[1], "write") == 0) {
    build(&r, argv + 2);
    run(&r, 0, atol(argv[10]));
    TRY(fastoptim_save(argv[8], r.opt, r.sched));
    write_params(&r, argv[9]);
  } else if (argc == 13 && strcmp(argv[1], "resume") == 0) {
    build(&r, argv + 2);
    read_params(&r, argv[9]);
    TRY(fastoptim_load(argv[8], r.opt, r.sched));
    run(&r, atol(argv[11]), atol(argv[12]));
    write_params(&r, argv[10]);
  } else {
    fprintf(stderr, "usage: ckpt_cross names | write OPT DTYPE OPTIONS GROUP1 SCHED ARGS CKPT PARAMS_OUT NSTEPS |\n"
                    "       resume OPT DTYPE OPTIONS GROUP1 SCHED ARGS CKPT PARAMS_IN PARAMS_OUT K0 NSTEPS\n");
    return 2;
  }
  print_lrs(&r);
  fastoptim_scheduler_destroy(r.sched);
  fastoptim_optimizer_destroy(r.opt);
  return 0;
}
