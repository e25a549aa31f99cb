// _core.adagrad_step: validates every item of a Adagrad step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/adagrad/adagrad_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::AdagradHyper hyper_of(const py::tuple& t) {
  fastoptim::AdagradHyper h;
  h.lr = t[0].cast<double>();
  h.lr_decay = t[1].cast<double>();
  h.weight_decay = t[2].cast<double>();
  h.eps = t[3].cast<double>();
  h.maximize = t[4].cast<bool>();
  return h;
}

// items: (index, group, param, grad, sum, step after increment)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  auto work = collect_items(items, hypers, v, {"sum"}, nullptr, [](const py::tuple& t, Item& w) {
    w.step = t[5].cast<double>();
  });
  run_items(v, work, hypers, "adagrad");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::AdagradHyper> kSpec{
    "adagrad", DriverStep::kParam,
    {{"sum", 2, DriverSlot::kHyper, 5}},  // initial_accumulator_value: element 5 of the tuple,
    [](const fastoptim::AdagradHyper&, int) { return true; }};

const Register reg(0, [](py::module_& m) {
  m.def("adagrad_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "adagrad_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
