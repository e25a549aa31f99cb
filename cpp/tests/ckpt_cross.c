/* The C side of the cross-language checkpoint tests (tests/test_checkpoint.py): runs a fixed problem with
 * any optimizer and scheduler through the C API, saving or resuming a checkpoint.
 *
 *   ckpt_cross names
 *       one line per optimizer ("optimizer SGD") and scheduler ("scheduler StepLR")
 *   ckpt_cross write  OPT DTYPE SHAPES OPTIONS GROUP1 SCHED ARGS CKPT PARAMS_OUT NSTEPS
 *       runs NSTEPS steps from the start, saves CKPT, writes the parameters to PARAMS_OUT
 *   ckpt_cross resume OPT DTYPE SHAPES OPTIONS GROUP1 SCHED ARGS CKPT PARAMS_IN PARAMS_OUT K0 NSTEPS
 *       builds the same objects over PARAMS_IN, loads CKPT, runs steps K0 .. K0+NSTEPS-1, writes PARAMS_OUT
 *
 * OPT: an optimizer name; DTYPE: float32 or float64; SHAPES: the two parameters' shapes, "2x3,4" (at most
 * 64 elements each); OPTIONS: its JSON options; GROUP1: the JSON options of the second param group, or "-":
 * both parameters in one group (LBFGS); SCHED: a scheduler name or "-"; ARGS: its JSON arguments. Both
 * commands print the final learning rates as "lr <hex float> ..." (one per group).
 *
 * The problem (the Python test runs the same): group 0 holds p0 (values (i - 2) / 4), group 1 holds p1
 * (values 1/2 - i/4), i the flat index; at step k the gradient of p_j is p_j / 2 + c(i, k, j) with
 * c = ((7i + 3k + 5j) mod 11 - 5) / 8, exact in binary. LBFGS's closure computes it with the loss
 * sum(p^2 / 4 + c p), summed in double in flat order, p0 then p1; SparseAdam's gradient holds rows
 * k mod R, (2k + 1) mod R and k mod R again, row m of the values being the dense gradient's row + m / 16.
 * ReduceLROnPlateau steps with the metric 1 / (1 + floor(k / 4)); LambdaLR uses 1/2 + (1/2 or 1/4 for group 1) / (1 + epoch), MultiplicativeLR
 * 0.8 at every third epoch and 0.9 otherwise. Parameters are files of raw native-endian values, p0 then p1. */

#include <fastoptim/c_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXN 64

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
  size_t ndim[2], shape[2][8], n[2];
  float p32[2][MAXN], g32[2][MAXN];
  double p64[2][MAXN], g64[2][MAXN];
  fastoptim_optimizer* opt;
  fastoptim_scheduler* sched;
  int plateau, sparse, closure;
  long k; /* the step the closure computes */
} Run;

static double c_value(size_t i, long k, int j) { return (double)(((long)i * 7 + k * 3 + j * 5) % 11 - 5) * 0.125; }

static void parse_shapes(Run* r, const char* text) {
  int j = 0;
  const char* p = text;
  for (j = 0; j < 2; ++j) {
    r->ndim[j] = 0;
    r->n[j] = 1;
    for (;;) {
      char* end;
      const unsigned long d = strtoul(p, &end, 10);
      if (end == p || r->ndim[j] == 8) {
        fprintf(stderr, "ckpt_cross: bad SHAPES %s\n", text);
        exit(2);
      }
      r->shape[j][r->ndim[j]++] = d;
      r->n[j] *= d;
      p = end;
      if (*p == 'x') {
        ++p;
        continue;
      }
      break;
    }
    if (r->n[j] > MAXN || (j == 0 && *p != ',') || (j == 1 && *p != '\0')) {
      fprintf(stderr, "ckpt_cross: bad SHAPES %s\n", text);
      exit(2);
    }
    ++p;
  }
}

static void build(Run* r, char** a) {
  void* ps[2];
  const size_t* shapes[2];
  size_t i;
  int j;
  r->f64 = strcmp(a[1], "float64") == 0;
  if (!r->f64 && strcmp(a[1], "float32") != 0) {
    fprintf(stderr, "ckpt_cross: dtype must be float32 or float64\n");
    exit(2);
  }
  parse_shapes(r, a[2]);
  for (i = 0; i < r->n[0]; ++i) {
    r->p64[0][i] = ((double)i - 2.0) * 0.25;
    r->p32[0][i] = (float)r->p64[0][i];
  }
  for (i = 0; i < r->n[1]; ++i) {
    r->p64[1][i] = 0.5 - 0.25 * (double)i;
    r->p32[1][i] = (float)r->p64[1][i];
  }
  TRY(fastoptim_optimizer_create(a[0], r->f64 ? FASTOPTIM_FLOAT64 : FASTOPTIM_FLOAT32, a[3], &r->opt));
  for (j = 0; j < 2; ++j) {
    ps[j] = r->f64 ? (void*)r->p64[j] : (void*)r->p32[j];
    shapes[j] = r->shape[j];
  }
  if (strcmp(a[4], "-") == 0) { /* one group of both parameters */
    TRY(fastoptim_optimizer_add_param_group_shaped(r->opt, ps, shapes, r->ndim, 2, NULL));
  } else {
    TRY(fastoptim_optimizer_add_param_group_shaped(r->opt, ps, shapes, r->ndim, 1, NULL));
    TRY(fastoptim_optimizer_add_param_group_shaped(r->opt, ps + 1, shapes + 1, r->ndim + 1, 1, a[4]));
  }
  if (strcmp(a[0], "ScheduleFreeAdamW") == 0) TRY(fastoptim_optimizer_train(r->opt, 1)); /* steps in train mode */
  r->sparse = strcmp(a[0], "SparseAdam") == 0;
  r->closure = strcmp(a[0], "LBFGS") == 0;
  r->sched = NULL;
  r->plateau = strcmp(a[5], "ReduceLROnPlateau") == 0;
  if (strcmp(a[5], "LambdaLR") == 0)
    TRY(fastoptim_scheduler_create_lambda(r->opt, a[5], lambda_lr, NULL, a[6], &r->sched));
  else if (strcmp(a[5], "MultiplicativeLR") == 0)
    TRY(fastoptim_scheduler_create_lambda(r->opt, a[5], multiplicative_lr, NULL, a[6], &r->sched));
  else if (strcmp(a[5], "-") != 0)
    TRY(fastoptim_scheduler_create(r->opt, a[5], a[6], &r->sched));
}

/* The dense gradient of parameter j at step k: p * 0.5 + c (of the loss sum(0.25 p^2 + c p)). */
static void gradient(Run* r, int j, long k) {
  size_t i;
  for (i = 0; i < r->n[j]; ++i) {
    r->g64[j][i] = r->p64[j][i] * 0.5 + c_value(i, k, j);
    r->g32[j][i] = r->p32[j][i] * 0.5f + (float)c_value(i, k, j);
  }
}

static int closure(void* user_data, const void* const* params, void* const* grads, size_t count, double* loss) {
  Run* r = (Run*)user_data;
  double sum = 0.0;
  size_t i;
  int j;
  if (count != 2 || params[0] != (r->f64 ? (const void*)r->p64[0] : (const void*)r->p32[0])) return 1;
  for (j = 0; j < 2; ++j) {
    gradient(r, j, r->k);
    memcpy(grads[j], r->f64 ? (const void*)r->g64[j] : (const void*)r->g32[j],
           r->n[j] * (r->f64 ? sizeof(double) : sizeof(float)));
    for (i = 0; i < r->n[j]; ++i) {
      const double x = r->f64 ? r->p64[j][i] : (double)r->p32[j][i];
      const double c = c_value(i, r->k, j);
      sum += 0.25 * x * x + c * x;
    }
  }
  *loss = sum;
  return 0;
}

/* SparseAdam's gradient of parameter j at step k: rows k % R, (2k + 1) % R and k % R again (summed), row m
 * of the values being the dense gradient's row plus m / 16. */
static void sparse_step(Run* r, long k) {
  int64_t idx[2][3];
  size_t nnz[2] = {3, 3};
  float v32[2][3 * MAXN];
  double v64[2][3 * MAXN];
  const int64_t* indices[2];
  const void* values[2];
  int j, m;
  size_t e;
  for (j = 0; j < 2; ++j) {
    const long rows = (long)r->shape[j][0];
    const size_t row = r->n[j] / (size_t)rows;
    gradient(r, j, k);
    idx[j][0] = k % rows;
    idx[j][1] = (2 * k + 1) % rows;
    idx[j][2] = k % rows;
    for (m = 0; m < 3; ++m)
      for (e = 0; e < row; ++e) {
        const size_t at = (size_t)idx[j][m] * row + e;
        v64[j][(size_t)m * row + e] = r->g64[j][at] + m / 16.0;
        v32[j][(size_t)m * row + e] = r->g32[j][at] + (float)(m / 16.0);
      }
    indices[j] = idx[j];
    values[j] = r->f64 ? (const void*)v64[j] : (const void*)v32[j];
  }
  TRY(fastoptim_optimizer_step_sparse(r->opt, indices, nnz, values, 2));
}

static void run(Run* r, long k0, long n) {
  long k;
  int j;
  for (k = k0; k < k0 + n; ++k) {
    if (r->sparse) {
      sparse_step(r, k);
    } else if (r->closure) {
      double loss;
      r->k = k;
      TRY(fastoptim_optimizer_step_closure(r->opt, closure, r, &loss));
    } else {
      const void* grads[2];
      for (j = 0; j < 2; ++j) {
        gradient(r, j, k);
        grads[j] = r->f64 ? (const void*)r->g64[j] : (const void*)r->g32[j];
      }
      TRY(fastoptim_optimizer_step(r->opt, grads, 2));
    }
    if (r->sched && r->plateau) TRY(fastoptim_scheduler_step_metric(r->sched, 1.0 / (1.0 + (double)(k / 4))));
    else if (r->sched) TRY(fastoptim_scheduler_step(r->sched));
  }
}

static void write_params(const Run* r, const char* path) {
  FILE* f = fopen(path, "wb");
  int j, ok = f != NULL;
  for (j = 0; ok && j < 2; ++j) {
    const size_t size = r->n[j] * (r->f64 ? sizeof(double) : sizeof(float));
    ok = fwrite(r->f64 ? (const void*)r->p64[j] : (const void*)r->p32[j], 1, size, f) == size;
  }
  if (!ok) {
    fprintf(stderr, "ckpt_cross: cannot write %s\n", path);
    exit(1);
  }
  fclose(f);
}

static void read_params(Run* r, const char* path) {
  FILE* f = fopen(path, "rb");
  int j, ok = f != NULL;
  for (j = 0; ok && j < 2; ++j) {
    const size_t size = r->n[j] * (r->f64 ? sizeof(double) : sizeof(float));
    ok = fread(r->f64 ? (void*)r->p64[j] : (void*)r->p32[j], 1, size, f) == size;
  }
  if (!ok) {
    fprintf(stderr, "ckpt_cross: cannot read %s values from %s\n", r->f64 ? "float64" : "float32", path);
    exit(1);
  }
  fclose(f);
}

static void print_lrs(const Run* r) {
  size_t g, groups;
  TRY(fastoptim_optimizer_num_groups(r->opt, &groups));
  printf("lr");
  for (g = 0; g < groups; ++g) {
    double lr;
    TRY(fastoptim_optimizer_get_lr(r->opt, g, &lr));
    printf(" %a", lr);
  }
  printf("\n");
}

int main(int argc, char** argv) {
  Run r;
  memset(&r, 0, sizeof r);
  if (argc == 2 && strcmp(argv[1], "names") == 0) {
    size_t i;
    for (i = 0; fastoptim_optimizer_name_at(i); ++i) printf("optimizer %s\n", fastoptim_optimizer_name_at(i));
    for (i = 0; fastoptim_scheduler_name_at(i); ++i) printf("scheduler %s\n", fastoptim_scheduler_name_at(i));
    return 0;
  }
  if (argc == 12 && strcmp(argv[1], "write") == 0) {
    build(&r, argv + 2);
    run(&r, 0, atol(argv[11]));
    TRY(fastoptim_save(argv[9], r.opt, r.sched));
    write_params(&r, argv[10]);
  } else if (argc == 14 && strcmp(argv[1], "resume") == 0) {
    build(&r, argv + 2);
    read_params(&r, argv[10]);
    TRY(fastoptim_load(argv[9], r.opt, r.sched));
    run(&r, atol(argv[12]), atol(argv[13]));
    write_params(&r, argv[11]);
  } else {
    fprintf(stderr, "usage: ckpt_cross names |\n"
                    "       write OPT DTYPE SHAPES OPTIONS GROUP1 SCHED ARGS CKPT PARAMS_OUT NSTEPS |\n"
                    "       resume OPT DTYPE SHAPES OPTIONS GROUP1 SCHED ARGS CKPT PARAMS_IN PARAMS_OUT K0 NSTEPS\n");
    return 2;
  }
  print_lrs(&r);
  fastoptim_scheduler_destroy(r.sched);
  fastoptim_optimizer_destroy(r.opt);
  return 0;
}
