// _core.rmsprop_step: validates every item of a RMSprop step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/rmsprop/rmsprop_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::RMSpropHyper hyper_of(const py::tuple& t) {
  fastoptim::RMSpropHyper h;
  h.lr = t[0].cast<double>();
  h.alpha = t[1].cast<double>();
  h.eps = t[2].cast<double>();
  h.weight_decay = t[3].cast<double>();
  h.momentum = t[4].cast<double>();
  h.centered = t[5].cast<bool>();
  h.maximize = t[6].cast<bool>();
  return h;
}

// Whether the buffer at Item::ptr[ptr] is used by a group.
bool needed(const fastoptim::RMSpropHyper& h, int ptr) { return ptr == 2 || (ptr == 3 && h.centered) || (ptr == 4 && h.momentum > 0.0); }

// items: (index, group, param, grad, square_avg, grad_avg | None, momentum_buffer | None)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  auto work = collect_items(items, hypers, v, {"square_avg", "grad_avg", "momentum_buffer"}, &needed, no_rest);
  run_items(v, work, hypers, "rmsprop");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::RMSpropHyper> kSpec{
    "rmsprop", DriverStep::kParam,
    {{"square_avg", 2, DriverSlot::kZeros}, {"momentum_buffer", 4, DriverSlot::kZeros},  // torch's key order
     {"grad_avg", 3, DriverSlot::kZeros}},
    &needed};

const Register reg(0, [](py::module_& m) {
  m.def("rmsprop_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "rmsprop_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
