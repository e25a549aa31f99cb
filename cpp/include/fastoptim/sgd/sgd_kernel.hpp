#pragma once
// SGD update rule (torch.optim.SGD, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   buf <- g (first step) | momentum * buf + (1 - dampening) * g
//   g <- nesterov ? g + momentum * buf : buf
//   p <- p - lr * g
// Scalars are formed in double and rounded to T once; each operation rounds in T, in torch's order, with
// torch's fused multiply-adds (see core/math.hpp).

#include <cstddef>

#include "../core/math.hpp"
#include "../core/parallel.hpp"

namespace fastoptim {

struct SGDHyper {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

template <class T>
struct SGDScalars {
  T neg_lr, momentum, one_minus_dampening, weight_decay;
  bool use_momentum, nesterov, maximize, use_weight_decay;

  explicit SGDScalars(const SGDHyper& h)
      : neg_lr(static_cast<T>(-h.lr)),
        momentum(static_cast<T>(h.momentum)),
        one_minus_dampening(static_cast<T>(1.0 - h.dampening)),
        weight_decay(static_cast<T>(h.weight_decay)),
        use_momentum(h.momentum != 0.0),
        nesterov(h.nesterov),
        maximize(h.maximize),
        use_weight_decay(h.weight_decay != 0.0) {}
};

// Scalar reference kernel over [0, n). `momentum_buffer` may be null when momentum == 0;
// `init_buffer` is true on the first step with momentum (torch clones the gradient into the buffer).
template <class T>
inline void sgd_update_ref(T* param, const T* grad, T* momentum_buffer, bool init_buffer, std::size_t n,
                           const SGDScalars<T>& s) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    T g = s.maximize ? -grad[i] : grad[i];
    if (s.use_weight_decay) g = fmadd(param[i], s.weight_decay, g);
    if (s.use_momentum) {
      T buf;
      if (init_buffer) {
        buf = g;
      } else {
        buf = fmadd(g, s.one_minus_dampening, momentum_buffer[i] * s.momentum);
      }
      momentum_buffer[i] = buf;
      g = s.nesterov ? fmadd(buf, s.momentum, g) : buf;
    }
    param[i] = fmadd(g, s.neg_lr, param[i]);
  }
}

// One SGD step on one tensor, split across threads when large.
template <class T>
void sgd_step(T* param, const T* grad, T* momentum_buffer, bool init_buffer, std::size_t n, const SGDHyper& h,
              std::size_t grain = kDefaultGrain) {
  const SGDScalars<T> s(h);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    sgd_update_ref(param + b, grad + b, momentum_buffer ? momentum_buffer + b : nullptr, init_buffer, e - b, s);
  });
}

}  // namespace fastoptim
