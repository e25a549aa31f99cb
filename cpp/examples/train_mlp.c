/* Trains a 2-16-1 MLP (hand-written backward pass) to tell points inside a circle from points outside,
 * through fastoptim's C API: Adam stepping per batch, ReduceLROnPlateau stepping per epoch on the
 * validation loss, the epoch table printed as it goes. The C++ twin is cpp/examples/train_mlp.cpp.
 *
 *   ./train_mlp_c [checkpoint.safetensors]   exits with status 1 if the validation accuracy stays below 85%;
 *                                            with a path, saves the optimizer and scheduler there at the end
 * Plain C99; link with -lfastoptim_c -lm. */

#include <fastoptim/c_api.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIDDEN 16
#define TRAIN 1024
#define VAL 256
#define BATCH 32
#define EPOCHS 30

/* Stops with fastoptim's message when a call fails. */
#define CALL(call)                                                                                     \
  do {                                                                                                 \
    fastoptim_status status_ = (call);                                                                 \
    if (status_ != FASTOPTIM_OK) {                                                                     \
      fprintf(stderr, "%s failed: %s: %s\n", #call, fastoptim_status_name(status_), fastoptim_last_error()); \
      exit(2);                                                                                         \
    }                                                                                                  \
  } while (0)

/* A small deterministic generator, so every platform sees the same data. */
static uint64_t g_state = 2024;
static double uniform(void) {
  g_state = g_state * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(g_state >> 11) * (1.0 / 9007199254740992.0);
}

/* Points uniform in [-1, 1]^2, labelled 1 inside the circle x^2 + y^2 < 0.45; 5% of the labels flipped. */
static void make_data(int n, float* x, float* y) {
  int i;
  for (i = 0; i < n; ++i) {
    int inside;
    x[2 * i] = (float)(2 * uniform() - 1);
    x[2 * i + 1] = (float)(2 * uniform() - 1);
    inside = x[2 * i] * x[2 * i] + x[2 * i + 1] * x[2 * i + 1] < 0.45f;
    y[i] = (uniform() < 0.05) != inside ? 1.0f : 0.0f;
  }
}

/* Parameters and their gradients. */
static float w1[2 * HIDDEN], b1[HIDDEN], w2[HIDDEN], b2[1];
static float gw1[2 * HIDDEN], gb1[HIDDEN], gw2[HIDDEN], gb2[1];

static float forward(const float* x, float* h) {
  float logit = b2[0];
  int j;
  for (j = 0; j < HIDDEN; ++j) {
    h[j] = tanhf(x[0] * w1[j] + x[1] * w1[HIDDEN + j] + b1[j]);
    logit += h[j] * w2[j];
  }
  return logit;
}

/* Binary cross-entropy with logits, stable for any logit. */
static float bce(float logit, float y) { return fmaxf(logit, 0.0f) - logit * y + log1pf(expf(-fabsf(logit))); }

static void evaluate(const float* x, const float* y, int n, double* loss, double* acc) {
  float h[HIDDEN];
  int i;
  *loss = *acc = 0;
  for (i = 0; i < n; ++i) {
    const float logit = forward(&x[2 * i], h);
    *loss += bce(logit, y[i]);
    *acc += (logit > 0) == (y[i] > 0.5f);
  }
  *loss /= n;
  *acc /= n;
}

static float x_train[2 * TRAIN], y_train[TRAIN], x_val[2 * VAL], y_val[VAL];

int main(int argc, char** argv) {
  fastoptim_optimizer* opt = NULL;
  fastoptim_scheduler* plateau = NULL;
  int order[TRAIN];
  int i, j, epoch;
  double val_loss = 0, val_acc = 0;

  if (fastoptim_c_api_version() != FASTOPTIM_C_API_VERSION) {
    fprintf(stderr, "libfastoptim_c has C API version %d, this program was built for %d\n", fastoptim_c_api_version(),
            FASTOPTIM_C_API_VERSION);
    return 2;
  }
  make_data(TRAIN, x_train, y_train);
  make_data(VAL, x_val, y_val);
  for (i = 0; i < 2 * HIDDEN; ++i) w1[i] = (float)(2 * uniform() - 1);
  for (i = 0; i < HIDDEN; ++i) w2[i] = (float)((2 * uniform() - 1) / sqrt((double)HIDDEN));

  /* Two param groups: weights with a little weight decay, biases without. The optimizer updates our
   * arrays in place. */
  CALL(fastoptim_optimizer_create("Adam", FASTOPTIM_FLOAT32, "{\"lr\": 0.02, \"weight_decay\": 1e-4}", &opt));
  {
    void* weights[2];
    void* biases[2];
    size_t weight_sizes[2] = {2 * HIDDEN, HIDDEN}, bias_sizes[2] = {HIDDEN, 1};
    weights[0] = w1;
    weights[1] = w2;
    biases[0] = b1;
    biases[1] = b2;
    CALL(fastoptim_optimizer_add_param_group(opt, weights, weight_sizes, 2, NULL));
    CALL(fastoptim_optimizer_add_param_group(opt, biases, bias_sizes, 2, "{\"weight_decay\": 0}"));
  }
  CALL(fastoptim_scheduler_create(opt, "ReduceLROnPlateau",
                                  "{\"mode\": \"min\", \"patience\": 2, \"factor\": 0.5, \"threshold\": 0.01}",
                                  &plateau));

  printf("Adam per batch + ReduceLROnPlateau(patience=2, factor=0.5) per epoch; MLP 2-%d-1, %d train / %d val, "
         "batch %d (C API %d, fastoptim %s)\n",
         HIDDEN, TRAIN, VAL, BATCH, fastoptim_c_api_version(), fastoptim_version());
  printf("%5s %8s %8s %8s %10s  %s\n", "epoch", "train", "val", "val acc", "lr", "scheduler");
  for (i = 0; i < TRAIN; ++i) order[i] = i;
  for (epoch = 1; epoch <= EPOCHS; ++epoch) {
    double train_loss = 0, lr_before = 0, lr = 0;
    int start;
    fastoptim_plateau_event e;
    char what[96];
    for (i = TRAIN - 1; i > 0; --i) {
      const int k = (int)(uniform() * (i + 1)), t = order[i];
      order[i] = order[k];
      order[k] = t;
    }
    for (start = 0; start < TRAIN; start += BATCH) {
      const void* grads[4];
      int b;
      memset(gw1, 0, sizeof gw1);
      memset(gb1, 0, sizeof gb1);
      memset(gw2, 0, sizeof gw2);
      memset(gb2, 0, sizeof gb2);
      for (b = start; b < start + BATCH; ++b) {
        const float* xi = &x_train[2 * order[b]];
        const float yi = y_train[order[b]];
        float h[HIDDEN];
        const float logit = forward(xi, h);
        /* d loss / d logit = sigmoid(logit) - y, averaged over the batch */
        const float dlogit = (1.0f / (1.0f + expf(-logit)) - yi) / BATCH;
        train_loss += bce(logit, yi);
        gb2[0] += dlogit;
        for (j = 0; j < HIDDEN; ++j) {
          const float dz = dlogit * w2[j] * (1.0f - h[j] * h[j]);
          gw2[j] += dlogit * h[j];
          gw1[j] += dz * xi[0];
          gw1[HIDDEN + j] += dz * xi[1];
          gb1[j] += dz;
        }
      }
      grads[0] = gw1; /* one gradient per parameter, in group order */
      grads[1] = gw2;
      grads[2] = gb1;
      grads[3] = gb2;
      CALL(fastoptim_optimizer_step(opt, grads, 4));
    }
    evaluate(x_val, y_val, VAL, &val_loss, &val_acc);
    CALL(fastoptim_optimizer_get_lr(opt, 0, &lr_before));
    CALL(fastoptim_scheduler_step_metric(plateau, val_loss));
    CALL(fastoptim_optimizer_get_lr(opt, 0, &lr));
    CALL(fastoptim_plateau_get_event(plateau, &e));
    switch (e.kind) {
      case FASTOPTIM_PLATEAU_IMPROVED: sprintf(what, "improved (best %.4f)", e.best); break;
      case FASTOPTIM_PLATEAU_NO_IMPROVEMENT:
        sprintf(what, "no improvement (%d of patience %d)", (int)e.num_bad_epochs, (int)e.patience);
        break;
      case FASTOPTIM_PLATEAU_REDUCED: sprintf(what, "LR reduced %.3g -> %.3g", lr_before, lr); break;
      case FASTOPTIM_PLATEAU_COOLDOWN: sprintf(what, "cooldown (%d left)", (int)e.cooldown_counter); break;
      default: sprintf(what, "%s", fastoptim_plateau_kind_name(e.kind)); break;
    }
    printf("%5d %8.4f %8.4f %7.1f%% %10.3g  %s\n", epoch, train_loss / TRAIN, val_loss, 100 * val_acc, lr, what);
  }
  if (argc > 1) {
    CALL(fastoptim_save(argv[1], opt, plateau)); /* Python resumes it with fastoptim.load */
    printf("saved %s\n", argv[1]);
  }
  fastoptim_scheduler_destroy(plateau);
  fastoptim_optimizer_destroy(opt);
  printf("%s: validation accuracy %.1f%%\n", val_acc >= 0.85 ? "converged" : "FAILED to converge", 100 * val_acc);
  return val_acc >= 0.85 ? 0 : 1;
}
