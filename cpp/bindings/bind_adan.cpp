// _core.adan_step: validates every item of an Adan step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
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
    w.ptr[4] = v.like_param(t[6], "exp_avg_diff", index, w.dtype, true).data;
    w.ptr[5] = v.like_param(t[7], "neg_pre_grad", index, w.dtype, true).data;
    w.step = t[8].cast<double>();
    w.flag = t[9].cast<bool>();
    work.push_back(w);
  }
  v.finish(work);
  const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<fastoptim::AdanHyper>&)>("adan");
  py::gil_scoped_release release;
  run(work, hypers);
}

const Register reg(0, [](py::module_& m) { m.def("adan_step", &step, py::arg("items"), py::arg("hypers")); });

}  // namespace
}  // namespace fastoptim_py
