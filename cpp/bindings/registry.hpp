#pragma once
// Binding translation units register themselves here, so adding one needs no edit elsewhere:
//   static fastoptim_py::Register reg(/*order=*/10, [](pybind11::module_& m) { ... });
// _core's module init runs them by order (lower first: base classes before their subclasses).

#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

namespace fastoptim_py {

using Binder = void (*)(pybind11::module_&);

inline std::vector<std::pair<int, Binder>>& binders() {
  static std::vector<std::pair<int, Binder>> all;
  return all;
}

struct Register {
  Register(int order, Binder b) { binders().emplace_back(order, b); }
};

}  // namespace fastoptim_py
