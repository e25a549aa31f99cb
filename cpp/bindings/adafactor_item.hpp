#pragma once
// The plain data an Adafactor step hands from bind_adafactor.cpp to isa/adafactor.cpp (see item.hpp): a
// parameter's arrays, its shape and the scalars the binding resolved.

#include <cstddef>

#include "fastoptim/adafactor/adafactor_kernel.hpp"
#include "item.hpp"

namespace fastoptim_py {

struct AdafactorItem {
  DType dtype;
  std::size_t group;
  void* param;
  const void* grad;
  void* row_var;   // factored: batch * rows elements; else null
  void* col_var;   // factored: batch * cols elements; else null
  void* variance;  // at most one dimension: as many elements as the parameter; else null
  fastoptim::AdafactorShape shape;
  double step;  // after increment
  double eps1;  // eps[0], or the machine epsilon torch takes when it is None
};

}  // namespace fastoptim_py
