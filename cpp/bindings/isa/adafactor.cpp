// Adafactor kernels for one instruction set (compiled once per tier; see ../item.hpp). Each dtype's
// parameters run as one multi-tensor step (three parallel passes over all of them).

#include <vector>

#include "../adafactor_item.hpp"
#include "fastoptim/adafactor/adafactor_kernel.hpp"

namespace fastoptim_py {
namespace {

template <class T>
void run_dtype(const std::vector<AdafactorItem>& items, const std::vector<fastoptim::AdafactorHyper>& hypers,
               DType dtype) {
  std::vector<fastoptim::AdafactorTensor<T>> tensors;
  for (const AdafactorItem& w : items) {
    if (w.dtype != dtype) continue;
    tensors.push_back(fastoptim::AdafactorTensor<T>{
        static_cast<T*>(w.param), static_cast<const T*>(w.grad), static_cast<T*>(w.row_var),
        static_cast<T*>(w.col_var), static_cast<T*>(w.variance), w.shape,
        fastoptim::AdafactorScalars<T>(hypers[w.group], w.step, w.eps1)});
  }
  if (!tensors.empty()) fastoptim::adafactor_step(tensors.data(), tensors.size());
}

void run(const std::vector<AdafactorItem>& items, const std::vector<fastoptim::AdafactorHyper>& hypers) {
  run_dtype<float>(items, hypers, DType::f32);
  run_dtype<double>(items, hypers, DType::f64);
}

FASTOPTIM_REGISTER_ISA_KERNEL("adafactor", run);

}  // namespace
}  // namespace fastoptim_py
