// _core.adafactor_step: validates every item of an Adafactor step, then runs the kernels without the GIL.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "adafactor_item.hpp"
#include "binding.hpp"
#include "driver.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::AdafactorHyper hyper_of(const py::tuple& t) {
  fastoptim::AdafactorHyper h;
  h.lr = t[0].cast<double>();
  h.beta2_decay = t[1].cast<double>();
  if (!t[2].is_none()) h.eps1 = t[2].cast<double>();
  h.eps2 = t[3].cast<double>();
  h.d = t[4].cast<double>();
  h.weight_decay = t[5].cast<double>();
  h.maximize = t[6].cast<bool>();
  return h;
}

// items: (index, group, param, grad, row_var | None, col_var | None, variance | None, step after increment),
// in parameter order; row_var and col_var for parameters of two or more dimensions, variance otherwise.
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  // torch's single-tensor loop sets eps1 = finfo(dtype).eps at the first parameter of a group with eps1 None,
  // and keeps it for the group's other parameters.
  std::vector<std::optional<double>> eps1(hypers.size());
  for (std::size_t g = 0; g < hypers.size(); ++g) eps1[g] = hypers[g].eps1;
  Validator v;
  std::vector<AdafactorItem> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    AdafactorItem w{};
    w.group = group_of(t, hypers.size());
    w.param = v.param(t[2], index, w.dtype).data;
    const auto p = py::reinterpret_borrow<py::array>(t[2]);
    std::vector<std::size_t> dims(static_cast<std::size_t>(p.ndim()));
    for (py::ssize_t d = 0; d < p.ndim(); ++d) dims[static_cast<std::size_t>(d)] = static_cast<std::size_t>(p.shape(d));
    w.shape = fastoptim::adafactor_shape(dims.data(), dims.size());
    w.grad = v.like_param(t[3], "gradient", index, w.dtype, false).data;
    if (w.shape.factored) {
      // torch's shapes: the parameter's with the last dimension 1 (row_var), the second last 1 (col_var).
      std::vector<py::ssize_t> row_shape(p.shape(), p.shape() + p.ndim()), col_shape = row_shape;
      row_shape.back() = 1;
      col_shape[col_shape.size() - 2] = 1;
      const auto& dt = v.dtype_of(w.dtype);
      w.row_var = v.other(t[4], "row_var", index, dt, dtype_name(w.dtype), row_shape, true).mutable_data();
      w.col_var = v.other(t[5], "col_var", index, dt, dtype_name(w.dtype), col_shape, true).mutable_data();
    } else {
      w.variance = v.like_param(t[6], "variance", index, w.dtype, true).data;
    }
    w.step = t[7].cast<double>();
    if (!eps1[w.group])
      eps1[w.group] = w.dtype == DType::f32 ? double(std::numeric_limits<float>::epsilon())
                                            : std::numeric_limits<double>::epsilon();
    w.eps1 = *eps1[w.group];
    work.push_back(w);
  }
  v.check_overlaps();
  const auto run =
      isa_kernel<void(const std::vector<AdafactorItem>&, const std::vector<fastoptim::AdafactorHyper>&)>("adafactor");
  py::gil_scoped_release release;
  run(work, hypers);
}

// The same step with the bookkeeping in C++ too (driver.hpp): the driver keeps `step`; the factored
// row_var / col_var or the variance, whose shapes are not the parameter's, are the extension's. It does
// what fastoptim/adafactor.py's _item and step() above do, check for check and buffer for buffer.
const DriverSpec<fastoptim::AdafactorHyper> kSpec{
    "adafactor", DriverStep::kParam, {}, [](const fastoptim::AdafactorHyper&, int) { return false; }};

class AdafactorExtra {
 public:
  static constexpr bool kAlwaysState = true;
  AdafactorExtra(const DriverSpec<fastoptim::AdafactorHyper>&, const std::vector<py::tuple>& hyper_tuples)
      : keys_{driver_detail::interned("row_var"), driver_detail::interned("col_var"), driver_detail::interned("variance")},
        run_(isa_kernel<Kernel>("adafactor")) {
    for (const py::tuple& t : hyper_tuples)
      eps1_.push_back(t[2].is_none() ? std::nullopt : std::optional<double>(t[2].cast<double>()));
  }

  // _item's own checks, in its order (a parameter that is not an array is left to the validator's message).
  void before(PyObject* p, PyObject* g, std::size_t index) {
    const auto& api = py::detail::npy_api::get();
    if (!api.PyArray_Check_(p)) return;
    if (PyTuple_Check(g)) throw std::runtime_error("Adafactor does not support sparse gradients");
    const auto* a = py::detail::array_proxy(p);
    dims_.assign(a->dimensions, a->dimensions + a->nd);
    py::ssize_t size = 1;
    for (py::ssize_t d : dims_) size *= d;
    if (size == 0) {
      PyErr_SetString(PyExc_ZeroDivisionError,
                      ("parameter " + std::to_string(index) +
                       " has no elements: Adafactor divides by the element count (torch raises ZeroDivisionError "
                       "too); pass None as its gradient")
                          .c_str());
      throw py::error_already_set();
    }
  }

  void collect(std::size_t, PyObject* entry, Item& w, const fastoptim::AdafactorHyper&, std::size_t index, Validator& v) {
    AdafactorItem a{};
    a.dtype = w.dtype;
    a.group = w.group;
    a.param = w.ptr[0];
    a.grad = w.ptr[1];
    a.step = w.step;
    std::vector<std::size_t> dims(dims_.begin(), dims_.end());
    a.shape = fastoptim::adafactor_shape(dims.data(), dims.size());
    const py::dtype& dt = v.dtype_of(w.dtype);
    const auto buffer = [&](int key, const std::vector<py::ssize_t>& shape) -> void* {
      PyObject* buf = entry ? driver_detail::get(entry, keys_[key]) : nullptr;
      if (buf && buf != Py_None) {
        if (key == 2) return v.like_param(buf, "variance", index, w.dtype, true).data;
        return v.other(buf, key == 0 ? "row_var" : "col_var", index, dt, dtype_name(w.dtype), shape, true).mutable_data();
      }
      py::array fresh(dt, shape);
      std::memset(fresh.mutable_data(), 0, static_cast<std::size_t>(fresh.nbytes()));
      void* data = fresh.mutable_data();
      added_.push_back(Added{items_.size(), keys_[key], std::move(fresh)});
      return data;
    };
    if (a.shape.factored) {
      // torch's shapes: the parameter's with the last dimension 1 (row_var), the second last 1 (col_var).
      std::vector<py::ssize_t> row_shape(dims_), col_shape(dims_);
      row_shape.back() = 1;
      col_shape[col_shape.size() - 2] = 1;
      a.row_var = buffer(0, row_shape);
      a.col_var = buffer(1, col_shape);
    } else {
      a.variance = buffer(2, dims_);
    }
    // torch's single-tensor loop sets eps1 = finfo(dtype).eps at the first parameter of a group with eps1
    // None, and keeps it for the group's other parameters.
    auto& eps1 = eps1_[w.group];
    if (!eps1)
      eps1 = w.dtype == DType::f32 ? double(std::numeric_limits<float>::epsilon()) : std::numeric_limits<double>::epsilon();
    a.eps1 = *eps1;
    items_.push_back(a);
  }
  void check() {}
  void run(const std::vector<Item>&, const std::vector<fastoptim::AdafactorHyper>& hypers) { run_(items_, hypers); }
  void publish(std::size_t k, PyObject* entry) {
    for (; next_added_ < added_.size() && added_[next_added_].item == k; ++next_added_)
      if (PyDict_SetItem(entry, added_[next_added_].key, added_[next_added_].array.ptr()) != 0)
        throw py::error_already_set();
  }

 private:
  using Kernel = void(const std::vector<AdafactorItem>&, const std::vector<fastoptim::AdafactorHyper>&);
  struct Added {
    std::size_t item;
    PyObject* key;
    py::array array;
  };
  PyObject* keys_[3];
  Kernel* run_;
  std::vector<std::optional<double>> eps1_;
  std::vector<py::ssize_t> dims_;  // the shape of the parameter before() saw last
  std::vector<AdafactorItem> items_;
  std::vector<Added> added_;
  std::size_t next_added_ = 0;
};

const Register reg(0, [](py::module_& m) {
  m.def("adafactor_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive<AdafactorExtra>(m, "adafactor_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
