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

// float32 parameters and gradients with a 16-bit momentum buffer rounded to nearest: loaded and stored by
// the kernel itself (one fused pass instead of lowp_run.hpp's tiles). Same bits.
template <class S>
void range_16bit_state(const Item& w, const fastoptim::SGDHyper& h, std::size_t b, std::size_t e) {
  fastoptim::sgd_step<float, S>(at<float>(w.ptr[0], b), at<float>(w.ptr[1], b), at<S>(w.ptr[2], b), w.flag, e - b,
                                h, fastoptim::kSerial);
}

void run(const std::vector<Item>& items, const std::vector<fastoptim::SGDHyper>& hypers) {
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

FASTOPTIM_REGISTER_ISA_KERNEL("sgd", run);

}  // namespace
}  // namespace fastoptim_py
