// Bindings of CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR and OneCycleLR (used by
// python/fastoptim/lr_scheduler/_cyclic.py, which holds the argument checks and torch's signatures).

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fastoptim/lr_scheduler/cosine_annealing_lr.hpp"
#include "fastoptim/lr_scheduler/cosine_annealing_warm_restarts.hpp"
#include "fastoptim/lr_scheduler/cyclic_lr.hpp"
#include "fastoptim/lr_scheduler/lr_scheduler.hpp"
#include "fastoptim/lr_scheduler/one_cycle_lr.hpp"
#include "registry.hpp"

namespace py = pybind11;
namespace ls = fastoptim::lr_scheduler;

namespace {

void bind(py::module_& m) {
  auto s = m.attr("lr_scheduler").cast<py::module_>();

  using CA = ls::CosineAnnealingLR;
  py::class_<CA::Params>(s, "CosineAnnealingLRParams")
      .def_readwrite("T_max", &CA::Params::T_max)
      .def_readwrite("eta_min", &CA::Params::eta_min);
  py::class_<CA, ls::LRScheduler>(s, "CosineAnnealingLR")
      .def(py::init([](ls::GroupsAccess& g, std::int64_t T_max, double eta_min, std::int64_t last_epoch) {
             return new CA(g, T_max, eta_min, last_epoch);
           }),
           py::arg("groups"), py::arg("T_max"), py::arg("eta_min"), py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def_readwrite("params", &CA::params);

  using CW = ls::CosineAnnealingWarmRestarts;
  py::class_<CW::Params>(s, "CosineAnnealingWarmRestartsParams")
      .def_readwrite("T_0", &CW::Params::T_0)
      .def_readwrite("T_mult", &CW::Params::T_mult)
      .def_readwrite("eta_min", &CW::Params::eta_min)
      .def_readwrite("T_i", &CW::Params::T_i)
      .def_readwrite("T_cur", &CW::Params::T_cur);
  py::class_<CW, ls::LRScheduler>(s, "CosineAnnealingWarmRestarts")
      .def(py::init([](ls::GroupsAccess& g, std::int64_t T_0, std::int64_t T_mult, double eta_min,
                       std::int64_t last_epoch) { return new CW(g, T_0, T_mult, eta_min, last_epoch); }),
           py::arg("groups"), py::arg("T_0"), py::arg("T_mult"), py::arg("eta_min"), py::arg("last_epoch"),
           py::keep_alive<1, 2>())
      .def("step", py::overload_cast<>(&CW::step))
      .def("step_to", py::overload_cast<double>(&CW::step), py::arg("epoch"))
      .def_readwrite("params", &CW::params);

  using CL = ls::CyclicLR;
  py::class_<CL::Params>(s, "CyclicLRParams")
      .def_readwrite("max_lrs", &CL::Params::max_lrs)
      .def_readwrite("total_size", &CL::Params::total_size)
      .def_readwrite("step_ratio", &CL::Params::step_ratio)
      .def_readwrite("mode", &CL::Params::mode)
      .def_readwrite("gamma", &CL::Params::gamma)
      .def_readwrite("scale_mode", &CL::Params::scale_mode)
      .def_readwrite("cycle_momentum", &CL::Params::cycle_momentum)
      .def_readwrite("use_beta1", &CL::Params::use_beta1)
      .def_readwrite("base_momentums", &CL::Params::base_momentums)
      .def_readwrite("max_momentums", &CL::Params::max_momentums)
      .def_readwrite("scale_fn_custom", &CL::Params::scale_fn_custom);
  py::class_<CL, ls::LRScheduler>(s, "CyclicLR")
      .def(py::init([](ls::GroupsAccess& g, std::vector<double> base_lr, std::vector<double> max_lr,
                       double step_size_up, std::optional<double> step_size_down, std::string mode, double gamma,
                       CL::ScaleFn scale_fn, std::string scale_mode, bool cycle_momentum,
                       std::vector<double> base_momentum, std::vector<double> max_momentum, std::int64_t last_epoch) {
             CL::Options o;
             o.base_lr = std::move(base_lr);
             o.max_lr = std::move(max_lr);
             o.step_size_up = step_size_up;
             o.step_size_down = step_size_down;
             o.mode = std::move(mode);
             o.gamma = gamma;
             o.scale_fn = std::move(scale_fn);
             o.scale_mode = std::move(scale_mode);
             o.cycle_momentum = cycle_momentum;
             o.base_momentum = std::move(base_momentum);
             o.max_momentum = std::move(max_momentum);
             return new CL(g, std::move(o), last_epoch);
           }),
           py::arg("groups"), py::arg("base_lr"), py::arg("max_lr"), py::arg("step_size_up"),
           py::arg("step_size_down"), py::arg("mode"), py::arg("gamma"), py::arg("scale_fn").none(true),
           py::arg("scale_mode"), py::arg("cycle_momentum"), py::arg("base_momentum"), py::arg("max_momentum"),
           py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def("init_scale_fn", &CL::init_scale_fn)
      .def("scale_fn", &CL::scale_fn, py::arg("x"))
      .def_readwrite("params", &CL::params);

  using OC = ls::OneCycleLR;
  py::class_<OC::Phase>(s, "OneCycleLRPhase")
      .def(py::init([](double end_step, std::string a, std::string b, std::string c, std::string d) {
             return OC::Phase{end_step, std::move(a), std::move(b), std::move(c), std::move(d)};
           }),
           py::arg("end_step"), py::arg("start_lr"), py::arg("end_lr"), py::arg("start_momentum"),
           py::arg("end_momentum"))
      .def_readwrite("end_step", &OC::Phase::end_step)
      .def_readwrite("start_lr", &OC::Phase::start_lr)
      .def_readwrite("end_lr", &OC::Phase::end_lr)
      .def_readwrite("start_momentum", &OC::Phase::start_momentum)
      .def_readwrite("end_momentum", &OC::Phase::end_momentum);
  py::class_<OC::Params>(s, "OneCycleLRParams")
      .def_readwrite("total_steps", &OC::Params::total_steps)
      .def_readwrite("schedule_phases", &OC::Params::schedule_phases)
      .def_readwrite("anneal_func_type", &OC::Params::anneal_func_type)
      .def_readwrite("cycle_momentum", &OC::Params::cycle_momentum)
      .def_readwrite("use_beta1", &OC::Params::use_beta1)
      .def_readwrite("max_lrs", &OC::Params::max_lrs)
      .def_readwrite("min_lrs", &OC::Params::min_lrs)
      .def_readwrite("max_momentums", &OC::Params::max_momentums)
      .def_readwrite("base_momentums", &OC::Params::base_momentums);
  py::class_<OC, ls::LRScheduler>(s, "OneCycleLR")
      .def(py::init([](ls::GroupsAccess& g, std::vector<double> max_lr, std::optional<std::int64_t> total_steps,
                       std::optional<std::int64_t> epochs, std::optional<std::int64_t> steps_per_epoch,
                       double pct_start, std::string anneal_strategy, bool cycle_momentum,
                       std::vector<double> base_momentum, std::vector<double> max_momentum, double div_factor,
                       double final_div_factor, bool three_phase, std::int64_t last_epoch,
                       std::vector<double> min_lr) {
             OC::Options o;
             o.max_lr = std::move(max_lr);
             o.total_steps = total_steps;
             o.epochs = epochs;
             o.steps_per_epoch = steps_per_epoch;
             o.pct_start = pct_start;
             o.anneal_strategy = std::move(anneal_strategy);
             o.cycle_momentum = cycle_momentum;
             o.base_momentum = std::move(base_momentum);
             o.max_momentum = std::move(max_momentum);
             o.div_factor = div_factor;
             o.final_div_factor = final_div_factor;
             o.three_phase = three_phase;
             o.min_lr = std::move(min_lr);
             return new OC(g, o, last_epoch);
           }),
           py::arg("groups"), py::arg("max_lr"), py::arg("total_steps").none(true), py::arg("epochs").none(true),
           py::arg("steps_per_epoch").none(true), py::arg("pct_start"), py::arg("anneal_strategy"),
           py::arg("cycle_momentum"), py::arg("base_momentum"), py::arg("max_momentum"), py::arg("div_factor"),
           py::arg("final_div_factor"), py::arg("three_phase"), py::arg("last_epoch"),
           py::arg("min_lr") = std::vector<double>{}, py::keep_alive<1, 2>())
      .def_readwrite("params", &OC::params);
}

fastoptim_py::Register reg(10, &bind);

}  // namespace
