// SparseAdam kernels for one instruction set (compiled once per tier; see ../item.hpp). Each dtype's
// parameters run as one multi-tensor step.

#include <vector>

#include "../sparse_adam_item.hpp"
#include "fastoptim/sparse_adam/sparse_adam_kernel.hpp"

namespace fastoptim_py {
namespace {

template <class T>
void run_dtype(const std::vector<SparseAdamItem>& items, const std::vector<fastoptim::SparseAdamHyper>& hypers,
               DType dtype) {
  std::vector<fastoptim::SparseAdamTensor<T>> tensors;
  for (const SparseAdamItem& w : items) {
    if (w.dtype != dtype || w.nnz == 0) continue;  // torch skips an empty gradient (its step still counts)
    tensors.push_back(fastoptim::SparseAdamTensor<T>{
        static_cast<T*>(w.param), static_cast<T*>(w.exp_avg), static_cast<T*>(w.exp_avg_sq), w.row_size, w.indices,
        static_cast<const T*>(w.values), w.nnz, fastoptim::SparseAdamScalars<T>(hypers[w.group], w.step)});
  }
  if (!tensors.empty()) fastoptim::sparse_adam_step(tensors.data(), tensors.size());
}

void run(const std::vector<SparseAdamItem>& items, const std::vector<fastoptim::SparseAdamHyper>& hypers) {
  run_dtype<float>(items, hypers, DType::f32);
  run_dtype<double>(items, hypers, DType::f64);
}

FASTOPTIM_REGISTER_ISA_KERNEL("sparse_adam", run);

}  // namespace
}  // namespace fastoptim_py
