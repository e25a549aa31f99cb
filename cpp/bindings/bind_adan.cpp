// _core.adan_step: validates every item of an Adan step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/adan/adan_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::AdanHyper hyper_of(const py::tuple& t) {
  fastoptim::AdanHyper h;
  h.lr = t[0].cast<double>();
  h.beta1 = t[1].cast<double>();
  h.beta2 = t[2].cast<double>();
  h.beta3 = t[3].cast<double>();
  h.eps = t[4].cast<double>();
  h.weight_decay = t[5].cast<double>();
  h.no_prox = t[6].cast<bool>();
  h.maximize = t[7].cast<bool>();
  return h;
}

// items: (index, group, param, grad, exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad, group step after
// increment, first step)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  auto work = collect_items(items, hypers, v, {"exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"}, nullptr, [](const py::tuple& t, Item& w) {
    w.step = t[8].cast<double>();
    w.flag = t[9].cast<bool>();
  });
  run_items(v, work, hypers, "adan");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::AdanHyper> kSpec{
    "adan", DriverStep::kGroup,
    {{"exp_avg", 2, DriverSlot::kZeros}, {"exp_avg_sq", 3, DriverSlot::kZeros},
     {"exp_avg_diff", 4, DriverSlot::kZeros},
     {"neg_pre_grad", 5, DriverSlot::kZeros, -1, true}},  // absent: the official reinitialisation from -g
    [](const fastoptim::AdanHyper&, int) { return true; }, 8, true};

const Register reg(0, [](py::module_& m) {
  m.def("adan_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "adan_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
