#pragma once
// SGD update rule (torch.optim.SGD, single-tensor path of torch 2.13):
//   g <- maximize ? -g : g;  g <- g + wd * p
//   buf <- g (first step) | momentum * buf + (1 - dampening) * g
//   g <- nesterov ? g + momentum * buf : buf
//   p <- p - lr * g
// Scalars are formed in double and rounded to T once; each operation rounds in T, in torch's order, with
// torch's fused multiply-adds (see core/math.hpp).

#include <cstddef>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/lowp.hpp"
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

FASTOPTIM_ISA_BEGIN

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

namespace impl {

// Storage types, each T or (T = float) a 16-bit type of core/lowp.hpp: P the parameter's, G the gradient's,
// S the buffer's; M the type of a copy of the parameter to write as well (a 16-bit parameter whose float32
// master weights `param` holds), void for none. Every stored value is rounded to nearest even once computed;
// the update uses the unrounded new buffer, as if everything were T and rounded after the step.
template <class T, class P, class G, class S, class M, bool kMaximize, bool kDecay, bool kMomentum, bool kInit,
          bool kNesterov>
inline void sgd_loop(P* FASTOPTIM_RESTRICT param, const G* FASTOPTIM_RESTRICT grad,
                     S* FASTOPTIM_RESTRICT momentum_buffer, M* FASTOPTIM_RESTRICT mirror, std::size_t n,
                     const SGDScalars<T>& s) noexcept {
  const T neg_lr = s.neg_lr, momentum = s.momentum, damp = s.one_minus_dampening, wd = s.weight_decay;
  for (std::size_t i = 0; i < n; ++i) {
    const T grad_i = static_cast<T>(widen(grad[i]));
    const T p = static_cast<T>(widen(param[i]));
    T g = kMaximize ? -grad_i : grad_i;
    if (kDecay) g = fmadd(p, wd, g);
    if (kMomentum) {
      const T buf = kInit ? g : fmadd(g, damp, static_cast<T>(widen(momentum_buffer[i])) * momentum);
      momentum_buffer[i] = narrow_as<S>(buf);
      g = kNesterov ? fmadd(buf, momentum, g) : buf;
    }
    const T updated = fmadd(g, neg_lr, p);
    param[i] = narrow_as<P>(updated);
    if constexpr (!std::is_void_v<M>) mirror[i] = narrow_as<M>(updated);
  }
}

}  // namespace impl

// Scalar reference kernel over [0, n) with the storage types above (all explicit but M, which is void, no
// copy, unless given). `momentum_buffer` may be null when momentum == 0; `init_buffer`
// is true on the first step with momentum (torch clones the gradient into the buffer).
template <class T, class P, class G, class S, class M = void>
inline void sgd_update_stored(P* param, const G* grad, S* momentum_buffer, typename non_deduced<M>::type* mirror,
                              bool init_buffer, std::size_t n, const SGDScalars<T>& s) noexcept {
  using impl::with_flag;
  with_flag(s.maximize, [&](auto mx) {
    with_flag(s.use_weight_decay, [&](auto wd) {
      with_flag(s.use_momentum, [&](auto mom) {
        with_flag(init_buffer && s.use_momentum, [&](auto init) {
          with_flag(s.nesterov && s.use_momentum, [&](auto nes) {
            impl::sgd_loop<T, P, G, S, M, decltype(mx)::value, decltype(wd)::value, decltype(mom)::value,
                           decltype(init)::value, decltype(nes)::value>(param, grad, momentum_buffer, mirror, n, s);
          });
        });
      });
    });
  });
}

// Scalar reference kernel over [0, n). `momentum_buffer` may be null when momentum == 0;
// `init_buffer` is true on the first step with momentum (torch clones the gradient into the buffer).
template <class T, class S = T>
inline void sgd_update_ref(T* param, const T* grad, typename non_deduced<S>::type* momentum_buffer, bool init_buffer,
                           std::size_t n, const SGDScalars<T>& s) noexcept {
  sgd_update_stored<T, T, T, S, void>(param, grad, momentum_buffer, nullptr, init_buffer, n, s);
}

// One step over [0, n) with the storage types of sgd_update_stored, threaded as parallel_for.
template <class T, class P, class G, class S, class M = void>
void sgd_step_stored(P* param, const G* grad, S* momentum_buffer, typename non_deduced<M>::type* mirror,
                     bool init_buffer, std::size_t n, const SGDHyper& h, std::size_t grain = kDefaultGrain) {
  const SGDScalars<T> s(h);
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    M* const mirror_b = offset_or_null(mirror, b);
    sgd_update_stored<T, P, G, S, M>(param + b, grad + b, offset_or_null(momentum_buffer, b), mirror_b, init_buffer,
                                     e - b, s);
  });
}

// One SGD step on one tensor, split across threads when large.
template <class T, class S = T>
void sgd_step(T* param, const T* grad, typename non_deduced<S>::type* momentum_buffer, bool init_buffer, std::size_t n,
              const SGDHyper& h, std::size_t grain = kDefaultGrain) {
  sgd_step_stored<T, T, T, S, void>(param, grad, momentum_buffer, nullptr, init_buffer, n, h, grain);
}

FASTOPTIM_ISA_END
}  // namespace fastoptim
