// The C API's optimizers: one type-erased class over every optimizer of fastoptim/registry.hpp and both
// dtypes, built by torch's class name from JSON hyperparameters.

#include "optimizer_impl.hpp"

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

namespace fastoptim_capi {

namespace {

using Factory = std::unique_ptr<AnyOptimizer> (*)(fastoptim_dtype, const Json&);
struct OptimizerEntry {
  const char* name;
  Factory make;
};

template <template <class> class Opt>
std::unique_ptr<AnyOptimizer> make_one(fastoptim_dtype dtype, const Json& defaults) {
  if (dtype == FASTOPTIM_FLOAT32) return std::make_unique<OptimizerImpl<Opt<float>>>(defaults);
  return std::make_unique<OptimizerImpl<Opt<double>>>(defaults);
}

template <template <class> class... Opt>
std::vector<OptimizerEntry> entries(fastoptim::OptimizerList<Opt...>) {
  return {OptimizerEntry{fastoptim::InfoOf<Opt<float>>::name, &make_one<Opt>}...};
}

// Every optimizer of registry.hpp's list, then those that construct or step differently, then Muon (when
// the library was built with Eigen).
const std::vector<OptimizerEntry>& optimizer_table() {
  static const std::vector<OptimizerEntry> t = [] {
    std::vector<OptimizerEntry> all = entries(fastoptim::Optimizers{});
    for (const auto& e : entries(fastoptim::OptimizerList<fastoptim::Adafactor, fastoptim::SparseAdam, fastoptim::LBFGS>{}))
      all.push_back(e);
#ifdef FASTOPTIM_C_HAS_MUON
    all.push_back(OptimizerEntry{"Muon", &make_muon});
#endif
    return all;
  }();
  return t;
}

}  // namespace

std::unique_ptr<AnyOptimizer> make_optimizer(const std::string& name, fastoptim_dtype dtype, const Json& defaults) {
  if (dtype != FASTOPTIM_FLOAT32 && dtype != FASTOPTIM_FLOAT64)
    throw invalid("dtype must be FASTOPTIM_FLOAT32 or FASTOPTIM_FLOAT64, got " + std::to_string(static_cast<int>(dtype)));
  std::string known;
  for (const auto& e : optimizer_table()) {
    if (name == e.name) return e.make(dtype, defaults);
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  throw invalid("unknown optimizer '" + name + "' (fastoptim has " + known + ")");
}

const char* optimizer_name_at(std::size_t i) {
  return i < optimizer_table().size() ? optimizer_table()[i].name : nullptr;
}

}  // namespace fastoptim_capi
