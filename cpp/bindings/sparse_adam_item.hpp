#pragma once
// The plain data a SparseAdam step hands from bind_sparse_adam.cpp to isa/sparse_adam.cpp (see item.hpp).

#include <cstddef>
#include <cstdint>

#include "item.hpp"

namespace fastoptim_py {

struct SparseAdamItem {
  DType dtype;
  std::size_t group;
  void* param;
  void* exp_avg;
  void* exp_avg_sq;
  std::size_t row_size;         // elements per row of the leading dimension
  const std::int64_t* indices;  // nnz rows, checked in range
  const void* values;           // nnz * row_size elements
  std::size_t nnz;
  double step;  // after increment
};

}  // namespace fastoptim_py
