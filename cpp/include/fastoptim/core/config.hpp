#pragma once
// Build configuration shared by every header.
//
// Code whose machine instructions depend on compiler flags (kernels, parallel_for, element helpers) lives
// in an inline namespace named by FASTOPTIM_ISA_NAMESPACE. A program that compiles the kernels several
// times with different instruction sets (as the Python extension does, one translation unit per ISA,
// chosen at run time) gives each its own namespace, so the linker never merges an AVX-512 instantiation
// with a baseline one. Users never name it: fastoptim::adam_step finds it either way. Plain data types
// (options, hyperparameters, state) stay outside it and are shared.
//
// Rounding does not depend on -ffp-contract: the kernels spell out every FMA torch performs and keep the
// compiler from fusing the products torch rounds (core/math.hpp). Our own targets still build with
// -ffp-contract=off, and the C++ tests also run built with -ffp-contract=fast.

#ifndef FASTOPTIM_ISA_NAMESPACE
#define FASTOPTIM_ISA_NAMESPACE isa_default
#endif

#define FASTOPTIM_ISA_BEGIN inline namespace FASTOPTIM_ISA_NAMESPACE {
#define FASTOPTIM_ISA_END }

// The kernels never see overlapping arrays (both front ends reject overlap), so they may promise it.
#if defined(__GNUC__) || defined(__clang__)
#define FASTOPTIM_RESTRICT __restrict__
#elif defined(_MSC_VER)
#define FASTOPTIM_RESTRICT __restrict
#else
#define FASTOPTIM_RESTRICT
#endif

// Element helpers that a kernel's loop must inline to vectorize. GCC's inliner gave up on the float16
// conversions (a few dozen instructions each) inside the larger update loops and called them per element:
// float16 state and parameters then ran scalar, ~50x slower than bfloat16's.
#if defined(__GNUC__) || defined(__clang__)
#define FASTOPTIM_INLINE inline __attribute__((always_inline))
#elif defined(_MSC_VER)
#define FASTOPTIM_INLINE __forceinline
#else
#define FASTOPTIM_INLINE inline
#endif

#include <type_traits>
#include <utility>

namespace fastoptim {
FASTOPTIM_ISA_BEGIN
namespace impl {

// Internals of the ISA-specific code (fastoptim::detail holds the ISA-independent ones).

// Calls f(std::integral_constant<bool, b>): turns run-time flags into template arguments, so each update
// loop is instantiated branch-free for its flags and the compiler can vectorize it.
template <class F>
inline void with_flag(bool b, F&& f) {
  if (b)
    f(std::true_type{});
  else
    f(std::false_type{});
}

}  // namespace impl
FASTOPTIM_ISA_END
}  // namespace fastoptim
