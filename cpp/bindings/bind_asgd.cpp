// _core.asgd_step: validates every item of an ASGD step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <utility>
#include <vector>

#include "binding.hpp"
#include "driver.hpp"
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

using Kernel = void(const std::vector<Item>&, const std::vector<fastoptim::ASGDHyper>&, const std::vector<double>&,
                    const std::vector<double>&);

// items: (index, group, param, grad, ax, eta, mu), with the parameter's eta and mu before this step as
// floats (the Python class keeps them, as torch, and moves them on once the step has run).
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  std::vector<double> eta, mu;
  eta.reserve(items.size());
  mu.reserve(items.size());
  auto work = collect_items(items, hypers, v, {"ax"}, nullptr, [&](const py::tuple& t, Item&) {
    eta.push_back(t[5].cast<double>());
    mu.push_back(t[6].cast<double>());
  });
  v.finish(work);
  const auto run = isa_kernel<Kernel>("asgd");
  py::gil_scoped_release release;
  run(work, hypers, eta, mu);
}

// The same step with the state bookkeeping in C++ too (driver.hpp); eta and mu are the extension's.
const DriverSpec<fastoptim::ASGDHyper> kSpec{
    "asgd", DriverStep::kParam, {{"ax", 2, DriverSlot::kZeros}}, [](const fastoptim::ASGDHyper&, int) { return true; }};

// The 0-d scalars eta and mu: read before the step (for the kernel), moved on after it, exactly as
// fastoptim/asgd.py's _item and step (whose helpers give every message and the rare cases).
class EtaMuExtra {
 public:
  static constexpr bool kAlwaysState = true;
  EtaMuExtra(const DriverSpec<fastoptim::ASGDHyper>&, const std::vector<py::tuple>&)
      : keys_{driver_detail::interned("eta"), driver_detail::interned("mu")}, run_(isa_kernel<Kernel>("asgd")) {}

  void collect(std::size_t, PyObject* entry, Item& w, const fastoptim::ASGDHyper& h, std::size_t index, Validator&) {
    PyObject* eta = entry ? driver_detail::get(entry, keys_[0]) : nullptr;
    Scalars s;
    if (!eta) {  // torch's lazy initialisation: eta = lr, mu = 1 (as float32 0-d tensors), ax = 0
      s.before[0] = static_cast<double>(static_cast<float>(h.lr));
      s.before[1] = 1.0;
    } else {
      PyObject* mu = driver_detail::get(entry, keys_[1]);
      s.before[0] = read(eta, 0, index);
      s.before[1] = read(mu ? mu : Py_None, 1, index);
      s.current[0] = py::reinterpret_borrow<py::object>(eta);
      if (mu) s.current[1] = py::reinterpret_borrow<py::object>(mu);
    }
    next(h, w.step, index, s.after);
    scalars_.push_back(std::move(s));
  }
  void check() {}
  void run(const std::vector<Item>& work, const std::vector<fastoptim::ASGDHyper>& hypers) {
    std::vector<double> eta(scalars_.size()), mu(scalars_.size());
    for (std::size_t i = 0; i < scalars_.size(); ++i) eta[i] = scalars_[i].before[0], mu[i] = scalars_[i].before[1];
    run_(work, hypers, eta, mu);
  }
  void publish(std::size_t k, PyObject* entry) {
    Scalars& s = scalars_[k];
    for (int i = 0; i < 2; ++i) {
      PyObject* cur = s.current[i] ? s.current[i].ptr() : nullptr;
      // asgd._set_scalar: in place into a 0-d float array of its own, else a new float32 one.
      if (cur && Py_TYPE(cur) == reinterpret_cast<PyTypeObject*>(py::detail::npy_api::get().PyArray_Type_)) {
        const auto* a = py::detail::array_proxy(cur);
        const int own = py::detail::npy_api::NPY_ARRAY_OWNDATA_ | py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
        const int type = py::detail::array_descriptor_proxy(a->descr)->type_num;
        if (a->nd == 0 && (a->flags & own) == own && (type == py::detail::npy_api::NPY_FLOAT_ || type == py::detail::npy_api::NPY_DOUBLE_) &&
            py::detail::array_descriptor_proxy(a->descr)->byteorder != (PY_LITTLE_ENDIAN ? '>' : '<')) {
          if (type == py::detail::npy_api::NPY_FLOAT_)
            *reinterpret_cast<float*>(a->data) = static_cast<float>(s.after[i]);
          else
            *reinterpret_cast<double*>(a->data) = s.after[i];
          continue;
        }
      }
      if (cur) {  // anything else (a number, another dtype, a view): Python's own rule
        py::module_::import("fastoptim.asgd").attr("_set_scalar")(py::handle(entry), py::handle(keys_[i]), s.after[i]);
        continue;
      }
      py::array_t<float> fresh(std::vector<py::ssize_t>{});
      *fresh.mutable_data() = static_cast<float>(s.after[i]);
      if (PyDict_SetItem(entry, keys_[i], fresh.ptr()) != 0) throw py::error_already_set();
    }
  }

 private:
  struct Scalars {
    double before[2] = {0.0, 0.0}, after[2] = {0.0, 0.0};
    py::object current[2];  // the entries' eta and mu; null: none yet
  };

  // asgd._scalar_state: a 0-d float32/float64 array is read here; anything else by Python (messages).
  double read(PyObject* obj, int i, std::size_t index) const {
    if (py::detail::npy_api::get().PyArray_Check_(obj)) {
      const auto* a = py::detail::array_proxy(obj);
      const auto* d = py::detail::array_descriptor_proxy(a->descr);
      if (a->nd == 0 && d->byteorder != (PY_LITTLE_ENDIAN ? '>' : '<')) {
        double value = NAN;
        if (d->type_num == py::detail::npy_api::NPY_FLOAT_) value = *reinterpret_cast<const float*>(a->data);
        if (d->type_num == py::detail::npy_api::NPY_DOUBLE_) value = *reinterpret_cast<const double*>(a->data);
        if (std::isfinite(value)) return value;
      }
    }
    return py::module_::import("fastoptim.asgd")
        .attr("_scalar_state")(py::handle(obj), py::handle(keys_[i]), index)
        .cast<double>();
  }

  // asgd._next_eta_mu: the same operations in the same order; the cases Python treats specially (an
  // overflow, a zero or complex power) go to it, for its values or its message.
  static void next(const fastoptim::ASGDHyper& h, double step, std::size_t index, double* out) {
    const double power = std::pow(1 + h.lambd * h.lr * step, h.alpha);
    if (std::isfinite(power) && power != 0.0) {
      const double d = step - h.t0;
      out[0] = static_cast<double>(static_cast<float>(h.lr / power));
      out[1] = static_cast<double>(static_cast<float>(d > 1 ? 1 / d : 1.0));
      return;
    }
    const auto r = py::module_::import("fastoptim.asgd")
                       .attr("_next_eta_mu")(h.lr, h.lambd, h.alpha, h.t0, step, index)
                       .cast<std::pair<double, double>>();
    out[0] = r.first;
    out[1] = r.second;
  }

  PyObject* keys_[2];
  Kernel* run_;
  std::vector<Scalars> scalars_;
};

const Register reg(0, [](py::module_& m) {
  m.def("asgd_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive<EtaMuExtra>(m, "asgd_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
