// Adan kernels for one instruction set (compiled once per tier; see ../item.hpp).
// Item pointers: param, grad, exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad; step: the group's step count
// after increment; flag: first step (neg_pre_grad starts at -grad).

#include <vector>

#include "../item.hpp"
#include "../lowp_run.hpp"
#include "fastoptim/adan/adan_kernel.hpp"
#include "fastoptim/core/parallel.hpp"

namespace fastoptim_py {
namespace {

template <class T>
void range(const Item& w, const fastoptim::AdanHyper& h, std::size_t b, std::size_t e) {
  fastoptim::adan_step<T>(at<T>(w.ptr[0], b), at<T>(w.ptr[1], b), at<T>(w.ptr[2], b), at<T>(w.ptr[3], b),
                          at<T>(w.ptr[4], b), at<T>(w.ptr[5], b), e - b, h, w.step, w.flag, fastoptim::kSerial);
}

void run(const std::vector<Item>& items, const std::vector<fastoptim::AdanHyper>& hypers) {
  fastoptim::parallel_for_items(
      items.size(), [&](std::size_t i) { return items[i].n; }, fastoptim::kDefaultGrain,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        const Item& w = items[i];
        // 16-bit arrays the kernel loads and stores itself (one pass instead of lowp_run.hpp's tiles). Same bits.
        // Not with master weights: this kernel's many flag combinations would cost too much build time.
        const bool fused = run_fused</*kWithMaster=*/false>(w, [&](auto p, auto g, auto s, auto* m) {
          using P = decltype(p);
          using G = decltype(g);
          using S = decltype(s);
          using M = std::remove_pointer_t<decltype(m)>;
          fastoptim::adan_step_stored<float, P, G, S, M>(at<P>(w.ptr[0], b), at<G>(w.ptr[1], b), at<S>(w.ptr[2], b),
                                                         at<S>(w.ptr[3], b), at<S>(w.ptr[4], b), at<S>(w.ptr[5], b),
                                                         at<M>(w.mirror, b), e - b, hypers[w.group], w.step, w.flag,
                                                         fastoptim::kSerial);
        });
        if (fused) return;
        run_range(w, b, e, [&](const Item& x, std::size_t xb, std::size_t xe, auto t) {
          range<decltype(t)>(x, hypers[w.group], xb, xe);
        });
      });
}

FASTOPTIM_REGISTER_ISA_KERNEL("adan", run);

}  // namespace
}  // namespace fastoptim_py
