// SGD kernels for one instruction set (compiled once per tier; see ../item.hpp).
// Item pointers: param, grad, momentum_buffer (null when momentum == 0); flag: initialise the buffer from the gradient.

#include <vector>

#include "../item.hpp"
#include "../lowp_run.hpp"
#include "fastoptim/core/parallel.hpp"
#include "fastoptim/sgd/sgd_kernel.hpp"

namespace fastoptim_py {
namespace {

template <class T>
void range(const Item& w, const fastoptim::SGDHyper& h, std::size_t b, std::size_t e) {
  fastoptim::sgd_step<T>(at<T>(w.ptr[0], b), at<T>(w.ptr[1], b), at<T>(w.ptr[2], b), w.flag, e - b, h, fastoptim::kSerial);
}

void run(const std::vector<Item>& items, const std::vector<fastoptim::SGDHyper>& hypers) {
  fastoptim::parallel_for_items(
      items.size(), [&](std::size_t i) { return items[i].n; }, fastoptim::kDefaultGrain,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        const Item& w = items[i];
        // 16-bit arrays the kernel loads and stores itself (one pass instead of lowp_run.hpp's tiles). Same bits.
        const bool fused = run_fused(w, [&](auto p, auto g, auto s, auto* m) {
          using P = decltype(p);
          using G = decltype(g);
          using S = decltype(s);
          using M = std::remove_pointer_t<decltype(m)>;
          fastoptim::sgd_step_stored<float, P, G, S, M>(at<P>(w.ptr[0], b), at<G>(w.ptr[1], b), at<S>(w.ptr[2], b),
                                                        at<M>(w.mirror, b), w.flag, e - b, hypers[w.group],
                                                        fastoptim::kSerial);
        });
        if (fused) return;
        run_range(w, b, e, [&](const Item& x, std::size_t xb, std::size_t xe, auto t) {
          range<decltype(t)>(x, hypers[w.group], xb, xe);
        });
      });
}

FASTOPTIM_REGISTER_ISA_KERNEL("sgd", run);

}  // namespace
}  // namespace fastoptim_py
