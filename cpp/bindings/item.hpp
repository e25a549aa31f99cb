#pragma once
// The plain data that crosses from an optimizer's binding (bind_<name>.cpp, compiled once) to its kernels
// (isa/<name>.cpp, compiled once per instruction set), and the registry that connects the two. Nothing
// here may be an inline function shared by both kinds of translation unit: the linker would keep one copy,
// possibly compiled for an instruction set the CPU lacks.

#include <cstddef>
#include <type_traits>

namespace fastoptim_py {

// f32/f64: the arithmetic (and, unless Item::lowp, the storage) type. f16/bf16: 16-bit storage only,
// computed in float32 (core/lowp.hpp).
enum class DType { f32, f64, f16, bf16 };

// One parameter's work: its dtype, group, element count, and pointers in an order each optimizer fixes
// (param, grad, then its state buffers; null when a buffer is unused). step and flag are per-parameter
// scalars some rules need (the step count after increment; "initialise the buffer").
struct Item {
  DType dtype;
  std::size_t group, n;
  void* ptr[8];
  double step;
  bool flag;
  // Low-precision storage (set by Validator::finish): when lowp, storage[k] is the dtype ptr[k] holds
  // (f32, f16 or bf16; the arithmetic is float32); mirror, when not null, is a 16-bit copy of the
  // parameter that receives the rounded float32 master weights ptr[0] after the update; a nonzero
  // rounding_key selects stochastic rounding for bfloat16 writes, with that key.
  bool lowp;
  DType storage[8];
  void* mirror;
  DType mirror_dtype;
  unsigned long long rounding_key;
};

// Tiers in increasing order. The registry functions are defined in _core.cpp (baseline code).
enum Tier : int { kBaseline = 0, kAvx2 = 1, kAvx512 = 2, kTiers = 3 };
using AnyKernel = void (*)();
void register_isa_kernel(const char* name, int tier, AnyKernel fn);
// The kernel registered under name for the active tier, or for the best lower tier that has one.
AnyKernel find_isa_kernel(const char* name);

}  // namespace fastoptim_py

// In an isa/<name>.cpp: registers fn under name for the tier this file is being compiled for.
#define FASTOPTIM_REGISTER_ISA_KERNEL(name, fn)                                                        \
  [[maybe_unused]] static const bool fastoptim_registered_##fn = (::fastoptim_py::register_isa_kernel(                  \
                                                     name, FASTOPTIM_ISA_TIER,                         \
                                                     reinterpret_cast<::fastoptim_py::AnyKernel>(&fn)), \
                                                 true)

// A pointer into a buffer at element offset b, staying null for unused buffers, and always null for T = void
// (a kernel's type for "no such buffer"; internal linkage: see above).
namespace fastoptim_py {
namespace {
template <class T>
T* at(void* p, std::size_t b) {
  if constexpr (std::is_void_v<T>)
    return nullptr;
  else
    return p ? static_cast<T*>(p) + b : nullptr;
}
}  // namespace
}  // namespace fastoptim_py
