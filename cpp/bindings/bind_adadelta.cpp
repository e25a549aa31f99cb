// _core.adadelta_step: validates every item of an Adadelta step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/adadelta/adadelta_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::AdadeltaHyper hyper_of(const py::tuple& t) {
  fastoptim::AdadeltaHyper h;
  h.lr = t[0].cast<double>();
  h.rho = t[1].cast<double>();
  h.eps = t[2].cast<double>();
  h.weight_decay = t[3].cast<double>();
  h.maximize = t[4].cast<bool>();
  return h;
}

// items: (index, group, param, grad, square_avg, acc_delta)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  auto work = collect_items(items, hypers, v, {"square_avg", "acc_delta"}, nullptr, no_rest);
  run_items(v, work, hypers, "adadelta");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::AdadeltaHyper> kSpec{
    "adadelta", DriverStep::kParam,
    {{"square_avg", 2, DriverSlot::kZeros}, {"acc_delta", 3, DriverSlot::kZeros}},
    [](const fastoptim::AdadeltaHyper&, int) { return true; }};

const Register reg(0, [](py::module_& m) {
  m.def("adadelta_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "adadelta_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
