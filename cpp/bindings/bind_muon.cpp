// _core.muon_step: validates every item of a Muon step, then runs the updates without the GIL.
//
// Muon is compiled once, here, not per instruction set (cpp/bindings/isa/): its work is Eigen's GEMM,
// whose inline functions live outside fastoptim's per-ISA namespaces (one copy per program, so they must
// not be built with several instruction sets) and whose rounding depends on the instruction set (one build
// keeps every tier's results identical).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <vector>

#include "binding.hpp"
#include "fastoptim/muon/muon_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::MuonHyper hyper_of(const py::tuple& t) {
  fastoptim::MuonHyper h;
  h.lr = t[0].cast<double>();
  h.weight_decay = t[1].cast<double>();
  h.momentum = t[2].cast<double>();
  h.nesterov = t[3].cast<bool>();
  h.ns_coefficients = {t[4].cast<double>(), t[5].cast<double>(), t[6].cast<double>()};
  h.eps = t[7].cast<double>();
  h.ns_steps = t[8].cast<std::int64_t>();
  h.adjust_lr_fn = t[9].cast<bool>() ? fastoptim::MuonAdjustLR::match_rms_adamw : fastoptim::MuonAdjustLR::original;
  return h;
}

struct MuonItem {
  Item item;
  std::size_t rows, cols;
};

template <class T>
void update(const MuonItem& w, const fastoptim::MuonHyper& h, fastoptim::MuonWorkspace& ws) {
  fastoptim::muon_update<T>(static_cast<T*>(w.item.ptr[0]), static_cast<const T*>(w.item.ptr[1]),
                            static_cast<T*>(w.item.ptr[2]), w.rows, w.cols, h, ws);
}

// items: (index, group, param, grad, momentum_buffer)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v;
  std::vector<MuonItem> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    MuonItem w{};
    w.item.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.item.dtype);
    const auto arr = py::reinterpret_borrow<py::array>(t[2]);
    if (arr.ndim() != 2)
      throw py::value_error("Muon only supports 2D parameters whereas we found a parameter with size: " + shape_str(arr));
    w.rows = static_cast<std::size_t>(arr.shape(0));
    w.cols = static_cast<std::size_t>(arr.shape(1));
    w.item.ptr[0] = p.data;
    w.item.n = p.size;
    w.item.ptr[1] = v.like_param(t[3], "gradient", index, w.item.dtype, false).data;
    w.item.ptr[2] = v.like_param(t[4], "momentum_buffer", index, w.item.dtype, true).data;
    work.push_back(w);
  }
  v.check_overlaps();
  py::gil_scoped_release release;
  fastoptim::MuonWorkspace ws;
  for (const auto& w : work)
    (w.item.dtype == DType::f32 ? update<float> : update<double>)(w, hypers[w.item.group], ws);
}

const Register reg(0, [](py::module_& m) { m.def("muon_step", &step, py::arg("items"), py::arg("hypers")); });

}  // namespace
}  // namespace fastoptim_py
