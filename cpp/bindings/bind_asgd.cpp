// _core.asgd_step: validates every item of an ASGD step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "fastoptim/asgd/asgd_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::ASGDHyper hyper_of(const py::tuple& t) {
  fastoptim::ASGDHyper h;
  h.lr = t[0].cast<double>();
  h.lambd = t[1].cast<double>();
  h.alpha = t[2].cast<double>();
  h.t0 = t[3].cast<double>();
  h.weight_decay = t[4].cast<double>();
  h.maximize = t[5].cast<bool>();
  return h;
}

// items: (index, group, param, grad, ax, eta, mu), with the parameter's eta and mu before this step as
// floats (the Python class keeps them, as torch, and moves them on once the step has run).
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  std::vector<Item> work;
  std::vector<double> eta, mu;
  work.reserve(items.size());
  eta.reserve(items.size());
  mu.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    Item w{};
    w.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.dtype);
    w.ptr[0] = p.data;
    w.n = p.size;
    w.ptr[1] = v.like_param(t[3], "gradient", index, w.dtype, false).data;
    w.ptr[2] = v.like_param(t[4], "ax", index, w.dtype, true).data;
    eta.push_back(t[5].cast<double>());
    mu.push_back(t[6].cast<double>());
    work.push_back(w);
  }
  v.finish(work);
  const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<fastoptim::ASGDHyper>&,
                                   const std::vector<double>&, const std::vector<double>&)>("asgd");
  py::gil_scoped_release release;
  run(work, hypers, eta, mu);
}

const Register reg(0, [](py::module_& m) { m.def("asgd_step", &step, py::arg("items"), py::arg("hypers")); });

}  // namespace
}  // namespace fastoptim_py
