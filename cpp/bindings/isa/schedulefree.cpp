// Schedule-Free AdamW kernels for one instruction set (compiled once per tier; see ../item.hpp).
// Step items: param (y), grad, z, exp_avg_sq. Mode-switch items: param, z; step holds the lerp weight.

#include <vector>

#include "../item.hpp"
#include "../lowp_run.hpp"
#include "fastoptim/core/parallel.hpp"
#include "fastoptim/schedulefree/schedulefree_kernel.hpp"

namespace fastoptim_py {
namespace {

template <class T>
void range(const Item& w, const fastoptim::ScheduleFreeAdamWHyper& h, const fastoptim::ScheduleFreeStepScalars& s,
           std::size_t b, std::size_t e) {
  fastoptim::schedulefree_adamw_step<T>(at<T>(w.ptr[0], b), at<T>(w.ptr[1], b), at<T>(w.ptr[2], b),
                                        at<T>(w.ptr[3], b), e - b, h, s, fastoptim::kSerial);
}

void run(const std::vector<Item>& items, const std::vector<fastoptim::ScheduleFreeAdamWHyper>& hypers,
         const std::vector<fastoptim::ScheduleFreeStepScalars>& steps) {
  fastoptim::parallel_for_items(
      items.size(), [&](std::size_t i) { return items[i].n; }, fastoptim::kDefaultGrain,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        const Item& w = items[i];
        run_range(w, b, e, [&](const Item& x, std::size_t xb, std::size_t xe, auto t) {
          range<decltype(t)>(x, hypers[w.group], steps[w.group], xb, xe);
        });
      });
}

template <class T>
void lerp_range(const Item& w, std::size_t b, std::size_t e) {
  fastoptim::schedulefree_lerp_ref<T>(at<T>(w.ptr[0], b), at<T>(w.ptr[1], b), e - b, static_cast<T>(w.step));
}

void run_lerp(const std::vector<Item>& items) {
  fastoptim::parallel_for_items(
      items.size(), [&](std::size_t i) { return items[i].n; }, fastoptim::kDefaultGrain,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        (items[i].dtype == DType::f32 ? lerp_range<float> : lerp_range<double>)(items[i], b, e);
      });
}

FASTOPTIM_REGISTER_ISA_KERNEL("schedulefree_adamw", run);
FASTOPTIM_REGISTER_ISA_KERNEL("schedulefree_lerp", run_lerp);

}  // namespace
}  // namespace fastoptim_py
