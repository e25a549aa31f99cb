// _core.adam_step: validates every item of a Adam and AdamW step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/adam/adam_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::AdamHyper hyper_of(const py::tuple& t) {
  fastoptim::AdamHyper h;
  h.lr = t[0].cast<double>();
  h.beta1 = t[1].cast<double>();
  h.beta2 = t[2].cast<double>();
  h.eps = t[3].cast<double>();
  h.weight_decay = t[4].cast<double>();
  h.amsgrad = t[5].cast<bool>();
  h.maximize = t[6].cast<bool>();
  h.decoupled_weight_decay = t[7].cast<bool>();
  return h;
}

// items: (index, group, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq | None, step after increment)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  std::vector<Item> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    Item w{};
    w.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.dtype);
    w.ptr[0] = p.data;
    w.n = p.size;
    w.ptr[1] = v.like_param(t[3], "gradient", index, w.dtype, false).data;
    w.ptr[2] = v.like_param(t[4], "exp_avg", index, w.dtype, true).data;
    w.ptr[3] = v.like_param(t[5], "exp_avg_sq", index, w.dtype, true).data;
    if (hypers[w.group].amsgrad) w.ptr[4] = v.like_param(t[6], "max_exp_avg_sq", index, w.dtype, true).data;
    w.step = t[7].cast<double>();
    work.push_back(w);
  }
  v.finish(work);
  const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<fastoptim::AdamHyper>&)>("adam");
  py::gil_scoped_release release;
  run(work, hypers);
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::AdamHyper> kSpec{
    "adam", true,
    {{"exp_avg", 2, DriverSlot::kZeros}, {"exp_avg_sq", 3, DriverSlot::kZeros},
     {"max_exp_avg_sq", 4, DriverSlot::kZeros}},
    [](const fastoptim::AdamHyper& h, int ptr) { return ptr != 4 || h.amsgrad; }};

void drive_step(const py::list& param_lists, const py::dict& state, const py::sequence& grads,
                const std::vector<py::tuple>& hypers, const py::function& step_value) {
  drive(kSpec, &hyper_of, param_lists, state, grads, hypers, step_value);
}

const Register reg(0, [](py::module_& m) {
  m.def("adam_step", &step, py::arg("items"), py::arg("hypers"));
  m.def("adam_drive", &drive_step, py::arg("param_lists"), py::arg("state"), py::arg("grads"), py::arg("hypers"),
        py::arg("step_value"));
});

}  // namespace
}  // namespace fastoptim_py
