// _core.sgd_step: validates every item of a SGD step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/sgd/sgd_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::SGDHyper hyper_of(const py::tuple& t) {
  fastoptim::SGDHyper h;
  h.lr = t[0].cast<double>();
  h.momentum = t[1].cast<double>();
  h.dampening = t[2].cast<double>();
  h.weight_decay = t[3].cast<double>();
  h.nesterov = t[4].cast<bool>();
  h.maximize = t[5].cast<bool>();
  return h;
}

// Whether the buffer at Item::ptr[ptr] is used by a group.
bool needed(const fastoptim::SGDHyper& h, int ptr) { return h.momentum != 0.0 && ptr == 2; }

// items: (index, group, param, grad, momentum_buffer | None, init_buffer)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  auto work = collect_items(items, hypers, v, {"momentum_buffer"}, &needed, [](const py::tuple& t, Item& w) {
    w.flag = t[5].cast<bool>();
  });
  run_items(v, work, hypers, "sgd");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::SGDHyper> kSpec{
    "sgd", DriverStep::kNone,
    {{"momentum_buffer", 2, DriverSlot::kFromGrad}},
    &needed};

const Register reg(0, [](py::module_& m) {
  m.def("sgd_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "sgd_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
