#pragma once
// The boundary between the Python binding and the kernels. The kernels are compiled once per instruction
// set (kernels_isa.cpp, one object library per ISA, each in its own inline namespace) and one set is
// chosen at run time from the CPU; only raw pointers, sizes and plain hyperparameters cross here.

#include <cstddef>
#include <vector>

#include "fastoptim/adagrad/adagrad_kernel.hpp"
#include "fastoptim/adam/adam_kernel.hpp"
#include "fastoptim/rmsprop/rmsprop_kernel.hpp"
#include "fastoptim/sgd/sgd_kernel.hpp"

namespace fastoptim_py {

enum class DType { f32, f64 };

struct SGDWork {
  DType dtype;
  std::size_t group, n;
  void* param;
  const void* grad;
  void* momentum_buffer;  // null when momentum == 0
  bool init_buffer;
};

struct AdamWork {
  DType dtype;
  std::size_t group, n;
  void* param;
  const void* grad;
  void *exp_avg, *exp_avg_sq, *max_exp_avg_sq;  // max_exp_avg_sq null unless amsgrad
  double step;
};

struct RMSpropWork {
  DType dtype;
  std::size_t group, n;
  void* param;
  const void* grad;
  void *square_avg, *grad_avg, *momentum_buffer;  // null when unused
};

struct AdagradWork {
  DType dtype;
  std::size_t group, n;
  void* param;
  const void* grad;
  void* sum;
  double step;
};

struct KernelSet {
  const char* name;
  void (*sgd)(const std::vector<SGDWork>&, const std::vector<fastoptim::SGDHyper>&);
  void (*adam)(const std::vector<AdamWork>&, const std::vector<fastoptim::AdamHyper>&);
  void (*rmsprop)(const std::vector<RMSpropWork>&, const std::vector<fastoptim::RMSpropHyper>&);
  void (*adagrad)(const std::vector<AdagradWork>&, const std::vector<fastoptim::AdagradHyper>&);
};

KernelSet kernels_baseline();
#if defined(FASTOPTIM_HAVE_X86_TIERS)
KernelSet kernels_avx2();
KernelSet kernels_avx512();
#endif

}  // namespace fastoptim_py
