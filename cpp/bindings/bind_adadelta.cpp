// _core.adadelta_step: validates every item of an Adadelta step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
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
    w.ptr[2] = v.like_param(t[4], "square_avg", index, w.dtype, true).data;
    w.ptr[3] = v.like_param(t[5], "acc_delta", index, w.dtype, true).data;
    work.push_back(w);
  }
  v.finish(work);
  const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<fastoptim::AdadeltaHyper>&)>("adadelta");
  py::gil_scoped_release release;
  run(work, hypers);
}

const Register reg(0, [](py::module_& m) { m.def("adadelta_step", &step, py::arg("items"), py::arg("hypers")); });

}  // namespace
}  // namespace fastoptim_py
