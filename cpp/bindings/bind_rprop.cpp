// _core.rprop_step: validates every item of an Rprop step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/rprop/rprop_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::RpropHyper hyper_of(const py::tuple& t) {
  fastoptim::RpropHyper h;
  h.lr = t[0].cast<double>();
  h.etaminus = t[1].cast<double>();
  h.etaplus = t[2].cast<double>();
  h.step_size_min = t[3].cast<double>();
  h.step_size_max = t[4].cast<double>();
  h.maximize = t[5].cast<bool>();
  return h;
}

// items: (index, group, param, grad, prev, step_size)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  auto work = collect_items(items, hypers, v, {"prev", "step_size"}, nullptr, no_rest);
  run_items(v, work, hypers, "rprop");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::RpropHyper> kSpec{
    "rprop", DriverStep::kParam,
    {{"prev", 2, DriverSlot::kZeros}, {"step_size", 3, DriverSlot::kHyper, 0}},  // torch: full_like(grad, lr),
    [](const fastoptim::RpropHyper&, int) { return true; }};

const Register reg(0, [](py::module_& m) {
  m.def("rprop_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "rprop_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
