// _core.adabelief_step: validates every item of an AdaBelief step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/adabelief/adabelief_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::AdaBeliefHyper hyper_of(const py::tuple& t) {
  fastoptim::AdaBeliefHyper h;
  h.lr = t[0].cast<double>();
  h.beta1 = t[1].cast<double>();
  h.beta2 = t[2].cast<double>();
  h.eps = t[3].cast<double>();
  h.weight_decay = t[4].cast<double>();
  h.amsgrad = t[5].cast<bool>();
  h.weight_decouple = t[6].cast<bool>();
  h.fixed_decay = t[7].cast<bool>();
  h.rectify = t[8].cast<bool>();
  h.degenerated_to_sgd = t[9].cast<bool>();
  h.maximize = t[10].cast<bool>();
  return h;
}

bool needed(const fastoptim::AdaBeliefHyper& h, int ptr) { return ptr != 4 || h.amsgrad; }

// items: (index, group, param, grad, exp_avg, exp_avg_var, max_exp_avg_var | None, step after increment)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  auto work = collect_items(items, hypers, v, {"exp_avg", "exp_avg_var", "max_exp_avg_var"}, &needed, [](const py::tuple& t, Item& w) {
    w.step = t[7].cast<double>();
  });
  run_items(v, work, hypers, "adabelief");
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::AdaBeliefHyper> kSpec{
    "adabelief", DriverStep::kParam,
    {{"exp_avg", 2, DriverSlot::kZeros}, {"exp_avg_var", 3, DriverSlot::kZeros},
     {"max_exp_avg_var", 4, DriverSlot::kZeros}},
    &needed};

const Register reg(0, [](py::module_& m) {
  m.def("adabelief_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive(m, "adabelief_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
