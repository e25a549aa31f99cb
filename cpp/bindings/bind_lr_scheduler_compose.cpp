// Bindings of SequentialLR, ChainedScheduler (composites over other C++ schedulers) and SWALR.
//
// The composites hold non-owning pointers to their children. The Python constructors take the children as
// a tuple (immutable) and keep it, and with it every child, alive as long as the composite
// (py::keep_alive<1, 3> / <1, 2>); the children keep their GroupValues alive in turn.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fastoptim/lr_scheduler/chained_scheduler.hpp"
#include "fastoptim/lr_scheduler/lr_scheduler.hpp"
#include "fastoptim/lr_scheduler/sequential_lr.hpp"
#include "fastoptim/lr_scheduler/swalr.hpp"
#include "registry.hpp"

namespace py = pybind11;
namespace ls = fastoptim::lr_scheduler;

namespace {

std::vector<ls::LRScheduler*> children(const py::tuple& t) {
  std::vector<ls::LRScheduler*> out;
  out.reserve(t.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    py::handle h = t[i];
    if (!py::isinstance<ls::LRScheduler>(h))
      throw py::type_error("scheduler at index " + std::to_string(i) + " is not a C++ LRScheduler");
    out.push_back(h.cast<ls::LRScheduler*>());
  }
  return out;
}

void bind(py::module_& m) {
  auto s = m.attr("lr_scheduler").cast<py::module_>();

  py::class_<ls::CompositeLRScheduler, ls::LRScheduler>(s, "CompositeLRScheduler")
      .def_property_readonly("schedulers", [](const ls::CompositeLRScheduler& c) { return c.schedulers().size(); });

  py::class_<ls::SequentialLR, ls::CompositeLRScheduler>(s, "SequentialLR")
      .def(py::init([](ls::GroupsAccess& g, py::tuple schedulers, std::vector<std::int64_t> milestones,
                       std::int64_t last_epoch) {
             return new ls::SequentialLR(g, children(schedulers), std::move(milestones), last_epoch);
           }),
           py::arg("groups"), py::arg("schedulers"), py::arg("milestones"), py::arg("last_epoch"),
           py::keep_alive<1, 2>(), py::keep_alive<1, 3>())
      .def_property("milestones", &ls::SequentialLR::milestones, &ls::SequentialLR::set_milestones);

  py::class_<ls::ChainedScheduler, ls::CompositeLRScheduler>(s, "ChainedScheduler")
      .def(py::init([](py::tuple schedulers) { return new ls::ChainedScheduler(children(schedulers)); }),
           py::arg("schedulers"), py::keep_alive<1, 2>());

  using SW = ls::SWALR;
  py::class_<SW::Params>(s, "SWALRParams")
      .def_readwrite("swa_lrs", &SW::Params::swa_lrs)
      .def_readwrite("anneal_epochs", &SW::Params::anneal_epochs)
      .def_property(
          "anneal_strategy", [](const SW::Params& p) { return std::string(SW::strategy_name(p.anneal_strategy)); },
          [](SW::Params& p, const std::string& v) { p.anneal_strategy = SW::parse_strategy(v); });
  py::class_<SW, ls::LRScheduler>(s, "SWALR")
      .def(py::init([](ls::GroupsAccess& g, std::vector<double> swa_lrs, std::int64_t anneal_epochs,
                       const std::string& strategy, std::int64_t last_epoch) {
             return new SW(g, swa_lrs, anneal_epochs, SW::parse_strategy(strategy), last_epoch);
           }),
           py::arg("groups"), py::arg("swa_lrs"), py::arg("anneal_epochs"), py::arg("anneal_strategy"),
           py::arg("last_epoch"), py::keep_alive<1, 2>())
      .def_readwrite("params", &SW::params);
}

fastoptim_py::Register reg(20, &bind);

}  // namespace
