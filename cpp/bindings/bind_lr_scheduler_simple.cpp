// Bindings of MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, LambdaLR and MultiplicativeLR
// (into the lr_scheduler submodule that bind_lr_scheduler_base.cpp creates).

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fastoptim/lr_scheduler/constant_lr.hpp"
#include "fastoptim/lr_scheduler/exponential_lr.hpp"
#include "fastoptim/lr_scheduler/lambda_lr.hpp"
#include "fastoptim/lr_scheduler/linear_lr.hpp"
#include "fastoptim/lr_scheduler/lr_scheduler.hpp"
#include "fastoptim/lr_scheduler/multistep_lr.hpp"
#include "fastoptim/lr_scheduler/polynomial_lr.hpp"
#include "registry.hpp"

namespace py = pybind11;
namespace ls = fastoptim::lr_scheduler;

namespace {

void bind(py::module_& m) {
  auto s = m.attr("lr_scheduler").cast<py::module_>();

  using MS = ls::MultiStepLR;
  py::class_<MS::Params>(s, "MultiStepLRParams")
      .def_readwrite("milestones", &MS::Params::milestones)
      .def_readwrite("gamma", &MS::Params::gamma);
  py::class_<MS, ls::LRScheduler>(s, "MultiStepLR")
      .def(py::init([](ls::GroupsAccess& g, std::vector<std::int64_t> milestones, double gamma,
                       std::int64_t last_epoch) { return new MS(g, std::move(milestones), gamma, last_epoch); }),
           py::arg("groups"), py::arg("milestones"), py::arg("gamma"), py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def_readwrite("params", &MS::params);

  using CL = ls::ConstantLR;
  py::class_<CL::Params>(s, "ConstantLRParams")
      .def_readwrite("factor", &CL::Params::factor)
      .def_readwrite("total_iters", &CL::Params::total_iters);
  py::class_<CL, ls::LRScheduler>(s, "ConstantLR")
      .def(py::init([](ls::GroupsAccess& g, double factor, std::int64_t total_iters, std::int64_t last_epoch) {
             return new CL(g, factor, total_iters, last_epoch);
           }),
           py::arg("groups"), py::arg("factor"), py::arg("total_iters"), py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def_readwrite("params", &CL::params);

  using LL = ls::LinearLR;
  py::class_<LL::Params>(s, "LinearLRParams")
      .def_readwrite("start_factor", &LL::Params::start_factor)
      .def_readwrite("end_factor", &LL::Params::end_factor)
      .def_readwrite("total_iters", &LL::Params::total_iters);
  py::class_<LL, ls::LRScheduler>(s, "LinearLR")
      .def(py::init([](ls::GroupsAccess& g, double start_factor, double end_factor, std::int64_t total_iters,
                       std::int64_t last_epoch) { return new LL(g, start_factor, end_factor, total_iters, last_epoch); }),
           py::arg("groups"), py::arg("start_factor"), py::arg("end_factor"), py::arg("total_iters"),
           py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def_readwrite("params", &LL::params);

  using EL = ls::ExponentialLR;
  py::class_<EL::Params>(s, "ExponentialLRParams").def_readwrite("gamma", &EL::Params::gamma);
  py::class_<EL, ls::LRScheduler>(s, "ExponentialLR")
      .def(py::init([](ls::GroupsAccess& g, double gamma, std::int64_t last_epoch) {
             return new EL(g, gamma, last_epoch);
           }),
           py::arg("groups"), py::arg("gamma"), py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def_readwrite("params", &EL::params);

  using PL = ls::PolynomialLR;
  py::class_<PL::Params>(s, "PolynomialLRParams")
      .def_readwrite("total_iters", &PL::Params::total_iters)
      .def_readwrite("power", &PL::Params::power);
  py::class_<PL, ls::LRScheduler>(s, "PolynomialLR")
      .def(py::init([](ls::GroupsAccess& g, std::int64_t total_iters, double power, std::int64_t last_epoch) {
             return new PL(g, total_iters, power, last_epoch);
           }),
           py::arg("groups"), py::arg("total_iters"), py::arg("power"), py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def_readwrite("params", &PL::params);

  // Python callables, one per group (the Python class broadcasts a single one).
  py::class_<ls::LambdaLR, ls::LRScheduler>(s, "LambdaLR")
      .def(py::init([](ls::GroupsAccess& g, std::vector<ls::LrLambda> fns, std::int64_t last_epoch) {
             return new ls::LambdaLR(g, std::move(fns), last_epoch);
           }),
           py::arg("groups"), py::arg("lr_lambdas"), py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def("set_lr_lambdas", [](ls::LambdaLR& s, std::vector<ls::LrLambda> fns) {
        s.params.lr_lambdas = ls::detail::lr_lambdas_for(s.groups(), std::move(fns));
      });
  py::class_<ls::MultiplicativeLR, ls::LRScheduler>(s, "MultiplicativeLR")
      .def(py::init([](ls::GroupsAccess& g, std::vector<ls::LrLambda> fns, std::int64_t last_epoch) {
             return new ls::MultiplicativeLR(g, std::move(fns), last_epoch);
           }),
           py::arg("groups"), py::arg("lr_lambdas"), py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def("set_lr_lambdas", [](ls::MultiplicativeLR& s, std::vector<ls::LrLambda> fns) {
        s.params.lr_lambdas = ls::detail::lr_lambdas_for(s.groups(), std::move(fns));
      });
}

fastoptim_py::Register reg(10, &bind);

}  // namespace
