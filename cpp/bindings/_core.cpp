// fastoptim._core: one call per optimizer step. Each call receives every (param, grad, state...) item of
// every param group, validates all of them (type, dtype, shape, contiguity, writeability, alignment,
// overlap) while holding the GIL, and only then releases the GIL and runs the kernels. A call that raises
// has modified nothing.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fastoptim/fastoptim.hpp"

namespace py = pybind11;

namespace {

enum class DType { f32, f64 };

const char* dtype_name(DType d) { return d == DType::f32 ? "float32" : "float64"; }

// One validated array: raw pointer, element count, and the byte range for the overlap check.
struct Ref {
  void* data = nullptr;
  std::size_t size = 0;
  std::size_t itemsize = 0;
};

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (d) s += ", ";
    s += std::to_string(a.shape(d));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

class Validator {
 public:
  // The parameter fixes the dtype and shape that every other array of its item must have.
  Ref param(py::handle obj, std::size_t index, DType& dtype) {
    const std::string who = "parameter " + std::to_string(index);
    py::array a = as_array(obj, who);
    if (a.dtype().equal(py::dtype::of<float>())) {
      dtype = DType::f32;
    } else if (a.dtype().equal(py::dtype::of<double>())) {
      dtype = DType::f64;
    } else {
      throw py::type_error(who + " has dtype " + py::str(a.dtype()).cast<std::string>() +
                           "; fastoptim updates float32 or float64 arrays (native byte order)");
    }
    check_layout(a, who, /*writeable=*/true);
    shape_ = a;
    return record(a, /*written=*/true, index);
  }

  // A gradient or state buffer: same dtype and shape as the parameter checked last.
  Ref like_param(py::handle obj, const std::string& who, std::size_t index, DType dtype, bool writeable) {
    py::array a = as_array(obj, who);
    const py::dtype want = dtype == DType::f32 ? py::dtype::of<float>() : py::dtype::of<double>();
    if (!a.dtype().equal(want))
      throw py::type_error(who + " has dtype " + py::str(a.dtype()).cast<std::string>() + ", but parameter " +
                           std::to_string(index) + " is " + dtype_name(dtype) + " (no implicit conversion)");
    bool same = a.ndim() == shape_.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == shape_.shape(d);
    if (!same)
      throw py::value_error(who + " has shape " + shape_str(a) + ", but parameter " + std::to_string(index) +
                            " has shape " + shape_str(shape_));
    check_layout(a, who, writeable);
    return record(a, writeable, index);
  }

  // Rejects any written array that shares a byte with any other array of the call.
  void check_overlaps() const {
    std::vector<const Range*> order;
    order.reserve(ranges_.size());
    for (const auto& r : ranges_)
      if (r.begin != r.end) order.push_back(&r);
    std::sort(order.begin(), order.end(), [](const Range* a, const Range* b) { return a->begin < b->begin; });
    // Sweep keeping the open range that reaches furthest, and the furthest-reaching written one.
    const Range* reach = nullptr;
    const Range* reach_written = nullptr;
    for (const Range* r : order) {
      if (reach && r->begin < reach->end && (r->written || reach->written)) fail_overlap(*r, *reach);
      if (reach_written && r->begin < reach_written->end) fail_overlap(*r, *reach_written);
      if (!reach || r->end > reach->end) reach = r;
      if (r->written && (!reach_written || r->end > reach_written->end)) reach_written = r;
    }
  }

 private:
  struct Range {
    std::uintptr_t begin, end;
    bool written;
    std::size_t index;  // parameter index of the item, for the message
  };

  static py::array as_array(py::handle obj, const std::string& who) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error(who + " must be a numpy.ndarray, got " +
                           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    return py::reinterpret_borrow<py::array>(obj);
  }

  static void check_layout(const py::array& a, const std::string& who, bool writeable) {
    if (!(a.flags() & py::array::c_style))
      throw py::value_error(who + " is not C-contiguous (a strided view?); pass a contiguous array, e.g. "
                                  "numpy.ascontiguousarray, and update that array");
    if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
      throw py::value_error(who + " is not aligned to its dtype");
    if (writeable && !a.writeable()) throw py::value_error(who + " is read-only");
  }

  Ref record(const py::array& a, bool written, std::size_t index) {
    Ref r{const_cast<void*>(a.data()), static_cast<std::size_t>(a.size()), static_cast<std::size_t>(a.itemsize())};
    const auto b = reinterpret_cast<std::uintptr_t>(r.data);
    ranges_.push_back(Range{b, b + r.size * r.itemsize, written, index});
    return r;
  }

  [[noreturn]] static void fail_overlap(const Range& a, const Range& b) {
    throw py::value_error("arrays of parameter " + std::to_string(std::min(a.index, b.index)) + " and parameter " +
                          std::to_string(std::max(a.index, b.index)) +
                          " overlap in memory (a gradient or state buffer that is, or views, a parameter or "
                          "another buffer that gets written); pass separate arrays");
  }

  py::array shape_;
  std::vector<Range> ranges_;
};

template <class T>
T* ptr(const Ref& r) {
  return static_cast<T*>(r.data);
}

// ---------------------------------------------------------------------------------------------- SGD

struct SGDItem {
  DType dtype;
  std::size_t group;
  Ref param, grad, buf;
  bool init_buffer;
};

fastoptim::SGDHyper sgd_hyper(const py::tuple& t) {
  fastoptim::SGDHyper h;
  h.lr = t[0].cast<double>();
  h.momentum = t[1].cast<double>();
  h.dampening = t[2].cast<double>();
  h.weight_decay = t[3].cast<double>();
  h.nesterov = t[4].cast<bool>();
  h.maximize = t[5].cast<bool>();
  return h;
}

// items: (index, group, param, grad, momentum_buffer | None, init_buffer)
void sgd_step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  std::vector<fastoptim::SGDHyper> hypers;
  for (const auto& t : hyper_tuples) hypers.push_back(sgd_hyper(t));
  Validator v;
  std::vector<SGDItem> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    const auto group = t[1].cast<std::size_t>();
    if (group >= hypers.size()) throw py::value_error("internal: group index out of range");
    SGDItem w{};
    w.group = group;
    w.param = v.param(t[2], index, w.dtype);
    w.grad = v.like_param(t[3], "gradient of parameter " + std::to_string(index), index, w.dtype, false);
    const bool use_momentum = hypers[group].momentum != 0.0;
    if (use_momentum) {
      w.buf = v.like_param(t[4], "state 'momentum_buffer' of parameter " + std::to_string(index), index, w.dtype,
                           true);
    }
    w.init_buffer = t[5].cast<bool>();
    work.push_back(w);
  }
  v.check_overlaps();
  py::gil_scoped_release release;
  for (const auto& w : work) {
    const auto& h = hypers[w.group];
    if (w.dtype == DType::f32)
      fastoptim::sgd_step<float>(ptr<float>(w.param), ptr<float>(w.grad), ptr<float>(w.buf), w.init_buffer,
                                 w.param.size, h);
    else
      fastoptim::sgd_step<double>(ptr<double>(w.param), ptr<double>(w.grad), ptr<double>(w.buf), w.init_buffer,
                                  w.param.size, h);
  }
}

// --------------------------------------------------------------------------------------------- Adam

struct AdamItem {
  DType dtype;
  std::size_t group;
  Ref param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq;
  double step;
};

fastoptim::AdamHyper adam_hyper(const py::tuple& t) {
  fastoptim::AdamHyper h;
  h.lr = t[0].cast<double>();
  h.beta1 = t[1].cast<double>();
  h.beta2 = t[2].cast<double>();
  h.eps = t[3].cast<double>();
  h.weight_decay = t[4].cast<double>();
  h.amsgrad = t[5].cast<bool>();
  h.maximize = t[6].cast<bool>();
  h.decoupled_weight_decay = t[7].cast<bool>();
  return h;
}

// items: (index, group, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq | None, step after increment)
void adam_step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  std::vector<fastoptim::AdamHyper> hypers;
  for (const auto& t : hyper_tuples) hypers.push_back(adam_hyper(t));
  Validator v;
  std::vector<AdamItem> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    const auto group = t[1].cast<std::size_t>();
    if (group >= hypers.size()) throw py::value_error("internal: group index out of range");
    const std::string of = " of parameter " + std::to_string(index);
    AdamItem w{};
    w.group = group;
    w.param = v.param(t[2], index, w.dtype);
    w.grad = v.like_param(t[3], "gradient" + of, index, w.dtype, false);
    w.exp_avg = v.like_param(t[4], "state 'exp_avg'" + of, index, w.dtype, true);
    w.exp_avg_sq = v.like_param(t[5], "state 'exp_avg_sq'" + of, index, w.dtype, true);
    if (hypers[group].amsgrad)
      w.max_exp_avg_sq = v.like_param(t[6], "state 'max_exp_avg_sq'" + of, index, w.dtype, true);
    w.step = t[7].cast<double>();
    work.push_back(w);
  }
  v.check_overlaps();
  py::gil_scoped_release release;
  for (const auto& w : work) {
    const auto& h = hypers[w.group];
    if (w.dtype == DType::f32)
      fastoptim::adam_step<float>(ptr<float>(w.param), ptr<float>(w.grad), ptr<float>(w.exp_avg),
                                  ptr<float>(w.exp_avg_sq), ptr<float>(w.max_exp_avg_sq), w.param.size, h, w.step);
    else
      fastoptim::adam_step<double>(ptr<double>(w.param), ptr<double>(w.grad), ptr<double>(w.exp_avg),
                                   ptr<double>(w.exp_avg_sq), ptr<double>(w.max_exp_avg_sq), w.param.size, h,
                                   w.step);
  }
}

// ------------------------------------------------------------------------------------------ RMSprop

struct RMSpropItem {
  DType dtype;
  std::size_t group;
  Ref param, grad, square_avg, grad_avg, momentum_buffer;
};

fastoptim::RMSpropHyper rmsprop_hyper(const py::tuple& t) {
  fastoptim::RMSpropHyper h;
  h.lr = t[0].cast<double>();
  h.alpha = t[1].cast<double>();
  h.eps = t[2].cast<double>();
  h.weight_decay = t[3].cast<double>();
  h.momentum = t[4].cast<double>();
  h.centered = t[5].cast<bool>();
  h.maximize = t[6].cast<bool>();
  return h;
}

// items: (index, group, param, grad, square_avg, grad_avg | None, momentum_buffer | None)
void rmsprop_step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  std::vector<fastoptim::RMSpropHyper> hypers;
  for (const auto& t : hyper_tuples) hypers.push_back(rmsprop_hyper(t));
  Validator v;
  std::vector<RMSpropItem> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    const auto group = t[1].cast<std::size_t>();
    if (group >= hypers.size()) throw py::value_error("internal: group index out of range");
    const std::string of = " of parameter " + std::to_string(index);
    RMSpropItem w{};
    w.group = group;
    w.param = v.param(t[2], index, w.dtype);
    w.grad = v.like_param(t[3], "gradient" + of, index, w.dtype, false);
    w.square_avg = v.like_param(t[4], "state 'square_avg'" + of, index, w.dtype, true);
    if (hypers[group].centered) w.grad_avg = v.like_param(t[5], "state 'grad_avg'" + of, index, w.dtype, true);
    if (hypers[group].momentum > 0.0)
      w.momentum_buffer = v.like_param(t[6], "state 'momentum_buffer'" + of, index, w.dtype, true);
    work.push_back(w);
  }
  v.check_overlaps();
  py::gil_scoped_release release;
  for (const auto& w : work) {
    const auto& h = hypers[w.group];
    if (w.dtype == DType::f32)
      fastoptim::rmsprop_step<float>(ptr<float>(w.param), ptr<float>(w.grad), ptr<float>(w.square_avg),
                                     ptr<float>(w.grad_avg), ptr<float>(w.momentum_buffer), w.param.size, h);
    else
      fastoptim::rmsprop_step<double>(ptr<double>(w.param), ptr<double>(w.grad), ptr<double>(w.square_avg),
                                      ptr<double>(w.grad_avg), ptr<double>(w.momentum_buffer), w.param.size, h);
  }
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastoptim's compiled kernels; use the classes in the fastoptim package.";
  m.attr("__version__") = FASTOPTIM_VERSION_STRING;
  m.def("max_threads", &fastoptim::max_threads, "Threads an OpenMP parallel region may use (1 without OpenMP).");
#if defined(_OPENMP)
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
  m.def("sgd_step", &sgd_step, py::arg("items"), py::arg("hypers"));
  m.def("adam_step", &adam_step, py::arg("items"), py::arg("hypers"));
  m.def("rmsprop_step", &rmsprop_step, py::arg("items"), py::arg("hypers"));
}
