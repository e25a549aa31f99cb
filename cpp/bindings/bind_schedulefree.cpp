// _core.schedulefree_adamw_step and _core.schedulefree_lerp (the train()/eval() switch): validate every
// item, then run the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "driver.hpp"
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

using Kernel = void(const std::vector<Item>&, const std::vector<fastoptim::ScheduleFreeAdamWHyper>&,
                    const std::vector<fastoptim::ScheduleFreeStepScalars>&);

fastoptim::ScheduleFreeAdamWHyper hyper_of(const py::tuple& t) {
  fastoptim::ScheduleFreeAdamWHyper h;
  fastoptim::ScheduleFreeStepScalars s;
  split_hyper(t, h, s);
  return h;
}

std::vector<fastoptim::ScheduleFreeStepScalars> steps_of(const std::vector<py::tuple>& hyper_tuples) {
  std::vector<fastoptim::ScheduleFreeStepScalars> steps(hyper_tuples.size());
  fastoptim::ScheduleFreeAdamWHyper h;
  for (std::size_t g = 0; g < hyper_tuples.size(); ++g) split_hyper(hyper_tuples[g], h, steps[g]);
  return steps;
}

// items: (index, group, param (y), grad, z, exp_avg_sq)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  const auto steps = steps_of(hyper_tuples);
  Validator v;
  auto work = collect_items(items, hypers, v, {"z", "exp_avg_sq"}, nullptr, no_rest);
  v.check_overlaps();
  const auto run = isa_kernel<Kernel>("schedulefree_adamw");
  py::gil_scoped_release release;
  run(work, hypers, steps);
}

// The same step with the state bookkeeping in C++ too (driver.hpp). z starts at the parameter, as the
// reference's clone.
const DriverSpec<fastoptim::ScheduleFreeAdamWHyper> kSpec{
    "schedulefree_adamw", DriverStep::kNone,
    {{"z", 2, DriverSlot::kParam}, {"exp_avg_sq", 3, DriverSlot::kZeros}},
    [](const fastoptim::ScheduleFreeAdamWHyper&, int) { return true; }};

// The kernel's per-group schedule scalars.
class ScheduleExtra : public NoExtra<fastoptim::ScheduleFreeAdamWHyper> {
 public:
  ScheduleExtra(const DriverSpec<fastoptim::ScheduleFreeAdamWHyper>& spec, const std::vector<py::tuple>& hyper_tuples)
      : NoExtra(spec, hyper_tuples), steps_(steps_of(hyper_tuples)), run_(isa_kernel<Kernel>("schedulefree_adamw")) {}
  void run(const std::vector<Item>& work, const std::vector<fastoptim::ScheduleFreeAdamWHyper>& hypers) {
    run_(work, hypers, steps_);
  }

 private:
  std::vector<fastoptim::ScheduleFreeStepScalars> steps_;
  Kernel* run_;
};

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
  def_drive<ScheduleExtra>(m, "schedulefree_adamw_drive", kSpec, &hyper_of);
  m.def("schedulefree_lerp", &lerp, py::arg("items"));
});

}  // namespace
}  // namespace fastoptim_py
