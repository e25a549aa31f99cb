// The C API's Muon, compiled only when Eigen 3.4 is found (CMake defines FASTOPTIM_C_HAS_MUON then).

#include <fastoptim/registry_muon.hpp>

#include "../optimizer_impl.hpp"

namespace fastoptim_capi {

std::unique_ptr<AnyOptimizer> make_muon(fastoptim_dtype dtype, const Json& defaults) {
  if (dtype == FASTOPTIM_FLOAT32) return std::make_unique<OptimizerImpl<fastoptim::Muon<float>>>(defaults);
  return std::make_unique<OptimizerImpl<fastoptim::Muon<double>>>(defaults);
}

}  // namespace fastoptim_capi
