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
        run_range(w, b, e, [&](const Item& x, std::size_t xb, std::size_t xe, auto t) {
          range<decltype(t)>(x, hypers[w.group], xb, xe);
        });
      });
}

FASTOPTIM_REGISTER_ISA_KERNEL("adan", run);

}  // namespace
}  // namespace fastoptim_py
