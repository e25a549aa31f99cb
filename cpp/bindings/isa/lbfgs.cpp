// LBFGS for one instruction set (compiled once per tier; see ../item.hpp): fastoptim::lbfgs_step per dtype.
// Its work is dot products and axpys over the flat vectors; below AVX2 every fused multiply-add of torch's
// (add_ with alpha, the rounded products) is a libm call per element, above it a vector instruction. The
// tiers compute the same bits: every operation is a correctly rounded IEEE one, the reductions sum fixed
// blocks in a fixed order (lbfgs_kernel.hpp), and our targets build with -ffp-contract=off.

#include <vector>

#include "../item.hpp"
#include "fastoptim/lbfgs/lbfgs.hpp"

namespace fastoptim_py {
namespace {

double lbfgs_f32(const std::vector<fastoptim::Span<float>>& params, fastoptim::LBFGSState<float>& state,
                 const fastoptim::LBFGSHyper& h, const fastoptim::LBFGSClosure<float>& closure, bool zeroed_grads) {
  return fastoptim::lbfgs_step<float>(params, state, h, closure, zeroed_grads);
}

double lbfgs_f64(const std::vector<fastoptim::Span<double>>& params, fastoptim::LBFGSState<double>& state,
                 const fastoptim::LBFGSHyper& h, const fastoptim::LBFGSClosure<double>& closure, bool zeroed_grads) {
  return fastoptim::lbfgs_step<double>(params, state, h, closure, zeroed_grads);
}

FASTOPTIM_REGISTER_ISA_KERNEL("lbfgs_float32", lbfgs_f32);
FASTOPTIM_REGISTER_ISA_KERNEL("lbfgs_float64", lbfgs_f64);

}  // namespace
}  // namespace fastoptim_py
