// _core.lion_step: validates every item of a Lion step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/lion/lion_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::LionHyper hyper_of(const py::tuple& t) {
  fastoptim::LionHyper h;
  h.lr = t[0].cast<double>();
  h.beta1 = t[1].cast<double>();
  h.beta2 = t[2].cast<double>();
  h.weight_decay = t[3].cast<double>();
  h.maximize = t[4].cast<bool>();
  return h;
}

// items: (index, group, param, grad, exp_avg)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  auto work = collect_items(items, hypers, v, {"exp_avg"}, nullptr, no_rest);
  run_items(v, work, hypers, "lion");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::LionHyper> kSpec{
    "lion", DriverStep::kNone,
    {{"exp_avg", 2, DriverSlot::kZeros}},
    [](const fastoptim::LionHyper&, int) { return true; }};

const Register reg(0, [](py::module_& m) {
  m.def("lion_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "lion_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
