// _core.muon_step: validates every item of a Muon step, then runs the updates without the GIL.
//
// The updates run in fastoptim._muon_<tier>, the extension module holding Muon's kernels for the active
// tier (muon_abi.hpp: one module per instruction set, so their GEMM's inline functions stay private to
// each). Every tier computes the same bits (fastoptim/muon/muon_kernel.hpp).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <new>
#include <string>
#include <vector>

#include "binding.hpp"
#include "muon_abi.hpp"
#include "registry.hpp"

namespace fastoptim_py {

int active_tier();  // _core.cpp

namespace {

// The kernels of the active tier, imported on first use (with the GIL held).
const MuonKernel& muon_kernel() {
  static const MuonKernel* kernel = nullptr;
  if (kernel) return *kernel;
  static const char* const modules[kTiers] = {"fastoptim._muon_baseline", "fastoptim._muon_avx2", "fastoptim._muon_avx512"};
  const int tier = active_tier();
  const py::object capsule = py::module_::import(modules[tier]).attr("kernel");
  if (!py::isinstance<py::capsule>(capsule) || capsule.cast<py::capsule>().name() != std::string(FASTOPTIM_MUON_CAPSULE))
    throw py::import_error(std::string(modules[tier]) + " holds no Muon kernel: reinstall fastoptim");
  const auto* k = capsule.cast<py::capsule>().get_pointer<const MuonKernel>();
  if (k->abi_version != kMuonAbiVersion || k->tier != tier)
    throw py::import_error(std::string(modules[tier]) + " does not match fastoptim._core: reinstall fastoptim");
  kernel = k;
  return *kernel;
}

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

// items: (index, group, param, grad, momentum_buffer)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const MuonKernel& kernel = muon_kernel();
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v;
  std::vector<MuonTask> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    Item item{};
    const std::size_t group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, item.dtype);
    const auto arr = py::reinterpret_borrow<py::array>(t[2]);
    if (arr.ndim() != 2)
      throw py::value_error("Muon only supports 2D parameters whereas we found a parameter with size: " + shape_str(arr));
    MuonTask w{};
    w.f64 = item.dtype == DType::f64;
    w.group = group;
    w.param = p.data;
    w.rows = static_cast<std::size_t>(arr.shape(0));
    w.cols = static_cast<std::size_t>(arr.shape(1));
    w.grad = v.like_param(t[3], "gradient", index, item.dtype, false).data;
    w.buf = v.like_param(t[4], "momentum_buffer", index, item.dtype, true).data;
    work.push_back(w);
  }
  v.check_overlaps();
  int rc;
  {
    py::gil_scoped_release release;
    rc = kernel.run(work.data(), work.size(), hypers.data(), &fastoptim::detail::run_chunks);
  }
  if (rc != 0) throw std::bad_alloc();
}

const Register reg(0, [](py::module_& m) { m.def("muon_step", &step, py::arg("items"), py::arg("hypers")); });

}  // namespace
}  // namespace fastoptim_py
