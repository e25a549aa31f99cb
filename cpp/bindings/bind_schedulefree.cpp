// _core.schedulefree_adamw_step and _core.schedulefree_lerp (the train()/eval() switch): validate every
// item, then run the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "fastoptim/schedulefree/schedulefree_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

// hypers: (scheduled lr, ckp1, bias_correction2, beta1, beta2, eps, weight_decay, maximize), per group.
void split_hyper(const py::tuple& t, fastoptim::ScheduleFreeAdamWHyper& h, fastoptim::ScheduleFreeStepScalars& s) {
  s.lr = t[0].cast<double>();
  s.ckp1 = t[1].cast<double>();
  s.bias_correction2 = t[2].cast<double>();
  h.lr = s.lr;
  h.beta1 = t[3].cast<double>();
  h.beta2 = t[4].cast<double>();
  h.eps = t[5].cast<double>();
  h.weight_decay = t[6].cast<double>();
  h.maximize = t[7].cast<bool>();
}

// items: (index, group, param (y), grad, z, exp_avg_sq)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  std::vector<fastoptim::ScheduleFreeAdamWHyper> hypers(hyper_tuples.size());
  std::vector<fastoptim::ScheduleFreeStepScalars> steps(hyper_tuples.size());
  for (std::size_t g = 0; g < hyper_tuples.size(); ++g) split_hyper(hyper_tuples[g], hypers[g], steps[g]);
  Validator v;
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
    w.ptr[2] = v.like_param(t[4], "z", index, w.dtype, true).data;
    w.ptr[3] = v.like_param(t[5], "exp_avg_sq", index, w.dtype, true).data;
    work.push_back(w);
  }
  v.check_overlaps();
  const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<fastoptim::ScheduleFreeAdamWHyper>&,
                                   const std::vector<fastoptim::ScheduleFreeStepScalars>&)>("schedulefree_adamw");
  py::gil_scoped_release release;
  run(work, hypers, steps);
}

// items: (index, param, z, weight): param <- lerp(param, z, weight).
void lerp(const py::list& items) {
  Validator v;
  std::vector<Item> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    Item w{};
    const Ref p = v.param(t[1], index, w.dtype);
    w.ptr[0] = p.data;
    w.n = p.size;
    w.ptr[1] = v.like_param(t[2], "z", index, w.dtype, false).data;
    w.step = t[3].cast<double>();
    work.push_back(w);
  }
  v.check_overlaps();
  const auto run = isa_kernel<void(const std::vector<Item>&)>("schedulefree_lerp");
  py::gil_scoped_release release;
  run(work);
}

const Register reg(0, [](py::module_& m) {
  m.def("schedulefree_adamw_step", &step, py::arg("items"), py::arg("hypers"));
  m.def("schedulefree_lerp", &lerp, py::arg("items"));
});

}  // namespace
}  // namespace fastoptim_py
