// LAMB kernels for one instruction set (compiled once per tier; see ../item.hpp): the three passes of
// fastoptim::lamb_passes over all items at once (moments and block sums, trust ratios, update).
// Item pointers: param, grad, exp_avg, exp_avg_sq; step after increment.

#include <type_traits>
#include <vector>

#include "../item.hpp"
#include "fastoptim/core/parallel.hpp"
#include "fastoptim/lamb/lamb_kernel.hpp"

namespace fastoptim_py {
namespace {

// One item's precomputed scalars, in its dtype.
struct Prepared {
  fastoptim::LAMBScalars<float> f;
  fastoptim::LAMBScalars<double> d;
  double neg_step = 0.0;
};

template <class T>
const fastoptim::LAMBScalars<T>& scalars(const Prepared& p) {
  if constexpr (std::is_same_v<T, float>)
    return p.f;
  else
    return p.d;
}

template <class T>
void moments(const Item& w, const Prepared& p, std::size_t b, std::size_t e, double* sums) {
  fastoptim::lamb_moments_ref<T>(at<T>(w.ptr[0], b), at<T>(w.ptr[1], b), at<T>(w.ptr[2], b), at<T>(w.ptr[3], b),
                                 e - b, scalars<T>(p), sums);
}

template <class T>
void apply(const Item& w, const Prepared& p, std::size_t b, std::size_t e) {
  fastoptim::lamb_apply_ref<T>(at<T>(w.ptr[0], b), at<T>(w.ptr[2], b), at<T>(w.ptr[3], b), e - b, scalars<T>(p),
                               static_cast<T>(p.neg_step));
}

void run(const std::vector<Item>& items, const std::vector<fastoptim::LAMBHyper>& hypers) {
  std::vector<Prepared> prepared;
  prepared.reserve(items.size());
  for (const Item& w : items) {
    const auto& h = hypers[w.group];
    prepared.push_back(Prepared{fastoptim::LAMBScalars<float>(h, w.step), fastoptim::LAMBScalars<double>(h, w.step)});
  }
  fastoptim::lamb_passes(
      items.size(), [&](std::size_t i) { return items[i].n; },
      [&](std::size_t i, std::size_t b, std::size_t e, double* sums) {
        (items[i].dtype == DType::f32 ? moments<float> : moments<double>)(items[i], prepared[i], b, e, sums);
      },
      [&](std::size_t i, double param_sq, double update_sq) {
        const auto& h = hypers[items[i].group];
        prepared[i].neg_step = -h.lr * fastoptim::lamb_trust_ratio(h, param_sq, update_sq);
      },
      [&](std::size_t i, std::size_t b, std::size_t e) {
        (items[i].dtype == DType::f32 ? apply<float> : apply<double>)(items[i], prepared[i], b, e);
      });
}

FASTOPTIM_REGISTER_ISA_KERNEL("lamb", run);

}  // namespace
}  // namespace fastoptim_py
