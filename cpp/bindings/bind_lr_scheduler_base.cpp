// Bindings of the scheduler framework (GroupValues, LRScheduler), StepLR and ReduceLROnPlateau. Other
// schedulers bind themselves in bind_lr_scheduler_*.cpp with order > 0.

#include <pybind11/functional.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "fastoptim/lr_scheduler/lr_scheduler.hpp"
#include "fastoptim/lr_scheduler/reduce_lr_on_plateau.hpp"
#include "fastoptim/lr_scheduler/step_lr.hpp"
#include "registry.hpp"

namespace py = pybind11;
namespace ls = fastoptim::lr_scheduler;

namespace {

void bind(py::module_& m) {
  auto s = m.def_submodule("lr_scheduler", "Scheduler state machines; use fastoptim.lr_scheduler.");
  // torch's KeyError(key) where a param group lacks a value the schedule reads (pybind11 alone would make
  // this std::out_of_range an IndexError).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ls::MissingGroupValue& e) {
      PyErr_SetObject(PyExc_KeyError, py::str(e.key()).ptr());
    }
  });

  py::class_<ls::GroupsAccess>(s, "GroupsAccess");
  py::class_<ls::GroupValues, ls::GroupsAccess>(s, "GroupValues")
      .def(py::init<>())
      // One call each way per step: (lrs, initial_lrs, momenta, uses_betas) lists.
      .def("set_all",
           [](ls::GroupValues& g, std::vector<double> lrs, std::vector<std::optional<double>> initial,
              std::vector<std::optional<double>> momenta, std::vector<bool> betas) {
             const auto n = lrs.size();
             if (initial.size() != n || momenta.size() != n || betas.size() != n)
               throw py::value_error("GroupValues.set_all: lists of different lengths");
             g.lrs = std::move(lrs);
             g.initial_lrs = std::move(initial);
             g.momenta = std::move(momenta);
             g.betas = std::move(betas);
           })
      .def("get_all", [](const ls::GroupValues& g) { return py::make_tuple(g.lrs, g.initial_lrs, g.momenta); })
      .def("__len__", &ls::GroupValues::size);

  py::class_<ls::LRScheduler>(s, "LRScheduler")
      .def("step", &ls::LRScheduler::step)
      .def("get_lr", &ls::LRScheduler::get_lr)
      .def("closed_form_lr", &ls::LRScheduler::closed_form_lr)
      .def("update_lr", &ls::LRScheduler::update_lr, py::arg("epoch"))
      .def("step_epoch", &ls::LRScheduler::step_epoch, py::arg("epoch"))
      .def("initial_step", &ls::LRScheduler::initial_step)
      .def("get_last_lr", &ls::LRScheduler::get_last_lr)
      .def_property("last_epoch", &ls::LRScheduler::last_epoch, &ls::LRScheduler::set_last_epoch)
      .def_property_readonly("base_lrs", &ls::LRScheduler::base_lrs)
      .def_property_readonly("step_count", &ls::LRScheduler::step_count)
      .def("load_base_state", &ls::LRScheduler::load_base_state, py::arg("base_lrs"), py::arg("last_epoch"),
           py::arg("step_count"), py::arg("last_lr"));

  py::class_<ls::StepLR::Params>(s, "StepLRParams")
      .def_readwrite("step_size", &ls::StepLR::Params::step_size)
      .def_readwrite("gamma", &ls::StepLR::Params::gamma);
  py::class_<ls::StepLR, ls::LRScheduler>(s, "StepLR")
      .def(py::init([](ls::GroupsAccess& g, std::int64_t step_size, double gamma, std::int64_t last_epoch) {
             return new ls::StepLR(g, step_size, gamma, last_epoch);
           }),
           py::arg("groups"), py::arg("step_size"), py::arg("gamma"), py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def_readwrite("params", &ls::StepLR::params);

  using RP = ls::ReduceLROnPlateau;
  py::class_<ls::PlateauEvent>(s, "PlateauEvent")
      .def_property_readonly("kind", [](const ls::PlateauEvent& e) { return ls::PlateauEvent::kind_name(e.kind); })
      .def_readonly("epoch", &ls::PlateauEvent::epoch)
      .def_readonly("metric", &ls::PlateauEvent::metric)
      .def_readonly("best", &ls::PlateauEvent::best)
      .def_readonly("num_bad_epochs", &ls::PlateauEvent::num_bad_epochs)
      .def_readonly("patience", &ls::PlateauEvent::patience)
      .def_readonly("cooldown_counter", &ls::PlateauEvent::cooldown_counter)
      .def_readonly("old_lrs", &ls::PlateauEvent::old_lrs)
      .def_readonly("new_lrs", &ls::PlateauEvent::new_lrs);
  py::class_<RP>(s, "ReduceLROnPlateau")
      .def(py::init([](ls::GroupsAccess& g, const std::string& mode, double factor, std::int64_t patience,
                       double threshold, const std::string& threshold_mode, std::int64_t cooldown,
                       std::optional<double> min_lr, std::vector<double> min_lrs, double eps) {
             RP::Options o;
             o.mode = mode == "max" ? RP::Mode::max : RP::Mode::min;
             o.factor = factor;
             o.patience = patience;
             o.threshold = threshold;
             o.threshold_mode = threshold_mode == "abs" ? RP::ThresholdMode::abs : RP::ThresholdMode::rel;
             o.cooldown = cooldown;
             if (min_lr) o.min_lr = *min_lr;  // None: per group, from min_lrs
             else o.min_lrs = std::move(min_lrs);
             o.eps = eps;
             return new RP(g, o);
           }),
           py::arg("groups"), py::arg("mode"), py::arg("factor"), py::arg("patience"), py::arg("threshold"),
           py::arg("threshold_mode"), py::arg("cooldown"), py::arg("min_lr"), py::arg("min_lrs"), py::arg("eps"),
           py::keep_alive<1, 2>())
      .def("step", py::overload_cast<double>(&RP::step), py::arg("metric"))
      .def("step", py::overload_cast<double, std::int64_t>(&RP::step), py::arg("metric"), py::arg("epoch"))
      .def_property_readonly("best", &RP::best)
      .def_property_readonly("num_bad_epochs", &RP::num_bad_epochs)
      .def_property_readonly("cooldown_counter", &RP::cooldown_counter)
      .def_property_readonly("last_epoch", &RP::last_epoch)
      .def_property_readonly("min_lrs", &RP::min_lrs)
      .def("get_last_lr", &RP::get_last_lr)
      .def_property_readonly("last_event", &RP::last_event)
      .def("load_state", &RP::load_state, py::arg("best"), py::arg("num_bad_epochs"), py::arg("cooldown_counter"),
           py::arg("last_epoch"), py::arg("min_lrs"), py::arg("last_lr"));
}

fastoptim_py::Register reg(0, &bind);

}  // namespace
