// Adam and AdamW kernels for one instruction set (compiled once per tier; see ../item.hpp).
// Item pointers: param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq (null unless amsgrad); step after increment.

#include <vector>

#include "../item.hpp"
#include "../lowp_run.hpp"
#include "fastoptim/core/parallel.hpp"
#include "fastoptim/adam/adam_kernel.hpp"

namespace fastoptim_py {
namespace {

template <class T>
void range(const Item& w, const fastoptim::AdamHyper& h, std::size_t b, std::size_t e) {
  fastoptim::adam_step<T>(at<T>(w.ptr[0], b), at<T>(w.ptr[1], b), at<T>(w.ptr[2], b), at<T>(w.ptr[3], b),
                          at<T>(w.ptr[4], b), e - b, h, w.step, fastoptim::kSerial);
}

// float32 parameters and gradients with 16-bit state rounded to nearest: loaded and stored by the kernel
// itself (one fused pass; lowp_run.hpp's tiles would read the arrays one after the other). Same bits.
template <class S>
void range_16bit_state(const Item& w, const fastoptim::AdamHyper& h, std::size_t b, std::size_t e) {
  fastoptim::adam_step<float, S>(at<float>(w.ptr[0], b), at<float>(w.ptr[1], b), at<S>(w.ptr[2], b),
                                 at<S>(w.ptr[3], b), at<S>(w.ptr[4], b), e - b, h, w.step, fastoptim::kSerial);
}

void run(const std::vector<Item>& items, const std::vector<fastoptim::AdamHyper>& hypers) {
  fastoptim::parallel_for_items(
      items.size(), [&](std::size_t i) { return items[i].n; }, fastoptim::kDefaultGrain,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        const Item& w = items[i];
        const DType fused = fusable_16bit_state(w);
        if (fused == DType::bf16) return range_16bit_state<fastoptim::bfloat16_bits>(w, hypers[w.group], b, e);
        if (fused == DType::f16) return range_16bit_state<fastoptim::float16_bits>(w, hypers[w.group], b, e);
        run_range(w, b, e, [&](const Item& x, std::size_t xb, std::size_t xe, auto t) {
          range<decltype(t)>(x, hypers[w.group], xb, xe);
        });
      });
}

FASTOPTIM_REGISTER_ISA_KERNEL("adam", run);

}  // namespace
}  // namespace fastoptim_py
