// The step kernels for one instruction set. CMake compiles this file once per ISA with that ISA's flags,
// FASTOPTIM_ISA_NAMESPACE set to a distinct name, FASTOPTIM_KERNELS_FN naming the entry point and
// FASTOPTIM_KERNELS_NAME the tier ("baseline", "avx2", "avx512").

#include "kernels.hpp"

#ifndef FASTOPTIM_KERNELS_FN
#error "FASTOPTIM_KERNELS_FN must name this ISA's entry point"
#endif

namespace fastoptim_py {
namespace {

template <class T>
T* as(void* p) {
  return static_cast<T*>(p);
}
template <class T>
const T* as(const void* p) {
  return static_cast<const T*>(p);
}

template <class T>
void sgd_one(const SGDWork& w, const fastoptim::SGDHyper& h) {
  fastoptim::sgd_step<T>(as<T>(w.param), as<T>(w.grad), as<T>(w.momentum_buffer), w.init_buffer, w.n, h);
}

void run_sgd(const std::vector<SGDWork>& work, const std::vector<fastoptim::SGDHyper>& hypers) {
  for (const auto& w : work) (w.dtype == DType::f32 ? sgd_one<float> : sgd_one<double>)(w, hypers[w.group]);
}

template <class T>
void adam_one(const AdamWork& w, const fastoptim::AdamHyper& h) {
  fastoptim::adam_step<T>(as<T>(w.param), as<T>(w.grad), as<T>(w.exp_avg), as<T>(w.exp_avg_sq),
                          as<T>(w.max_exp_avg_sq), w.n, h, w.step);
}

void run_adam(const std::vector<AdamWork>& work, const std::vector<fastoptim::AdamHyper>& hypers) {
  for (const auto& w : work) (w.dtype == DType::f32 ? adam_one<float> : adam_one<double>)(w, hypers[w.group]);
}

template <class T>
void rmsprop_one(const RMSpropWork& w, const fastoptim::RMSpropHyper& h) {
  fastoptim::rmsprop_step<T>(as<T>(w.param), as<T>(w.grad), as<T>(w.square_avg), as<T>(w.grad_avg),
                             as<T>(w.momentum_buffer), w.n, h);
}

void run_rmsprop(const std::vector<RMSpropWork>& work, const std::vector<fastoptim::RMSpropHyper>& hypers) {
  for (const auto& w : work)
    (w.dtype == DType::f32 ? rmsprop_one<float> : rmsprop_one<double>)(w, hypers[w.group]);
}

template <class T>
void adagrad_one(const AdagradWork& w, const fastoptim::AdagradHyper& h) {
  fastoptim::adagrad_step<T>(as<T>(w.param), as<T>(w.grad), as<T>(w.sum), w.n, h, w.step);
}

void run_adagrad(const std::vector<AdagradWork>& work, const std::vector<fastoptim::AdagradHyper>& hypers) {
  for (const auto& w : work)
    (w.dtype == DType::f32 ? adagrad_one<float> : adagrad_one<double>)(w, hypers[w.group]);
}

}  // namespace

KernelSet FASTOPTIM_KERNELS_FN() {
  return KernelSet{FASTOPTIM_KERNELS_NAME, &run_sgd, &run_adam, &run_rmsprop, &run_adagrad};
}

}  // namespace fastoptim_py
