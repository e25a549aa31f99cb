#pragma once
// Muon's entry of registry.hpp, apart because Muon needs Eigen 3.4 (CMake: fastoptim::muon). Include it
// (with checkpoint.hpp) to save and load Muon checkpoints.

#include <cstdint>
#include <string>
#include <vector>

#include "muon/muon.hpp"
#include "registry.hpp"

namespace fastoptim {

// torch's adjust_lr_fn None means "original"; files hold null for it.
template <>
struct OptimizerInfo<MuonOptions> {
  static constexpr const char* name = "Muon";
  template <class O, class V>
  static void hyperparameters(O& o, V& v) {
    v.real("lr", o.lr);
    v.real("weight_decay", o.weight_decay);
    v.real("momentum", o.momentum);
    v.flag("nesterov", o.nesterov);
    v.triple("ns_coefficients", o.ns_coefficients[0], o.ns_coefficients[1], o.ns_coefficients[2]);
    v.real("eps", o.eps);
    v.integer("ns_steps", o.ns_steps);
    v.choice("adjust_lr_fn", o.adjust_lr_fn,
             Choices<MuonAdjustLR>{{nullptr, MuonAdjustLR::original},
                                   {"original", MuonAdjustLR::original},
                                   {"match_rms_adamw", MuonAdjustLR::match_rms_adamw}});
  }
  template <class S, class V>
  static void state(S& s, V& v) {
    v.buffer("momentum_buffer", s.momentum_buffer);
  }
  // A parameter is a (rows, cols) matrix.
  template <class T>
  static std::vector<std::uint64_t> state_shape(const Muon<T>& opt, std::size_t i, const std::string&) {
    std::size_t k = 0;
    for (const auto& g : opt.param_groups())
      for (const auto& p : g.params)
        if (k++ == i) return {p.rows, p.cols};
    return {};
  }
};

}  // namespace fastoptim
