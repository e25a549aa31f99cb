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

// items: (index, group, param, grad, momentum_buffer | None, init_buffer)
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
    if (hypers[w.group].momentum != 0.0)
      w.ptr[2] = v.like_param(t[4], "momentum_buffer", index, w.dtype, true).data;
    w.flag = t[5].cast<bool>();
    work.push_back(w);
  }
  v.finish(work);
  const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<fastoptim::SGDHyper>&)>("sgd");
  py::gil_scoped_release release;
  run(work, hypers);
}

// The same step with the state bookkeeping in C++ too (driver.hpp).
const DriverSpec<fastoptim::SGDHyper> kSpec{
    "sgd", false,
    {{"momentum_buffer", 2, DriverSlot::kFromGrad}},
    [](const fastoptim::SGDHyper& h, int ptr) { return h.momentum != 0.0 && ptr == 2; }};

void drive_step(const py::list& param_lists, const py::dict& state, const py::sequence& grads,
                const std::vector<py::tuple>& hypers, const py::function& step_value) {
  drive(kSpec, &hyper_of, param_lists, state, grads, hypers, step_value);
}

const Register reg(0, [](py::module_& m) {
  m.def("sgd_step", &step, py::arg("items"), py::arg("hypers"));
  m.def("sgd_drive", &drive_step, py::arg("param_lists"), py::arg("state"), py::arg("grads"), py::arg("hypers"),
        py::arg("step_value"));
});

}  // namespace
}  // namespace fastoptim_py
