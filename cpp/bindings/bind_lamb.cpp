// _core.lamb_step: validates every item of a LAMB step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/lamb/lamb_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::LAMBHyper hyper_of(const py::tuple& t) {
  fastoptim::LAMBHyper h;
  h.lr = t[0].cast<double>();
  h.beta1 = t[1].cast<double>();
  h.beta2 = t[2].cast<double>();
  h.eps = t[3].cast<double>();
  h.weight_decay = t[4].cast<double>();
  h.bias_correction = t[5].cast<bool>();
  h.clamp_value = t[6].cast<double>();
  h.trust_clip = t[7].cast<bool>();
  h.exclude_from_layer_adaptation = t[8].cast<bool>();
  h.maximize = t[9].cast<bool>();
  return h;
}

// items: (index, group, param, grad, exp_avg, exp_avg_sq, step after increment)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v;
  auto work = collect_items(items, hypers, v, {"exp_avg", "exp_avg_sq"}, nullptr, [](const py::tuple& t, Item& w) {
    w.step = t[6].cast<double>();
  });
  run_items(v, work, hypers, "lamb");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::LAMBHyper> kSpec{
    "lamb", DriverStep::kParam,
    {{"exp_avg", 2, DriverSlot::kZeros}, {"exp_avg_sq", 3, DriverSlot::kZeros}},
    [](const fastoptim::LAMBHyper&, int) { return true; }};

const Register reg(0, [](py::module_& m) {
  m.def("lamb_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "lamb_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
