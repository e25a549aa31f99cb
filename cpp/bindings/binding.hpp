#pragma once
// What every optimizer's binding shares: the validator that checks all arrays of a step before anything
// is written, and typed access to the per-ISA kernel registry (item.hpp). An optimizer's binding is two
// files that need no edit elsewhere:
//   cpp/bindings/isa/<name>.cpp   its kernels, compiled once per instruction set (CMake globs isa/*.cpp),
//                                 registered with FASTOPTIM_REGISTER_ISA_KERNEL("name", run);
//   cpp/bindings/bind_<name>.cpp  validation and the _core.<name>_step function (registry.hpp).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastoptim/core/overlap.hpp"
#include "item.hpp"

namespace fastoptim_py {

namespace py = pybind11;

// The typed kernel registered under name (see item.hpp).
template <class Fn>
Fn* isa_kernel(const char* name) {
  return reinterpret_cast<Fn*>(find_isa_kernel(name));
}

// ------------------------------------------------------------------------------------ validation

inline const char* dtype_name(DType d) { return d == DType::f32 ? "float32" : "float64"; }

// One validated array: its data pointer and element count.
struct Ref {
  void* data = nullptr;
  std::size_t size = 0;
};

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (d) s += ", ";
    s += std::to_string(a.shape(d));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

// Names what an array is, for messages built only when a check fails.
struct Who {
  const char* what;  // "parameter", "gradient", or a state key such as "exp_avg"
  std::size_t index;
  std::string str() const {
    const std::string i = std::to_string(index);
    if (std::string(what) == "parameter") return "parameter " + i;
    if (std::string(what).rfind("gradient", 0) == 0) return std::string(what) + " of parameter " + i;  // "gradient values"
    return "state '" + std::string(what) + "' of parameter " + i;
  }
};

class Validator {
 public:
  Validator() : f32_(py::dtype::of<float>()), f64_(py::dtype::of<double>()) {}

  // The parameter fixes the dtype and shape that every other array of its item must have.
  Ref param(py::handle obj, std::size_t index, DType& dtype) {
    if (const auto* a = fast(obj.ptr(), kWritten)) {  // the usual case, without the checks' pybind11 objects
      const PyObject* d = a->descr;
      if (d == f32_.ptr() || d == f64_.ptr()) {
        dtype = d == f32_.ptr() ? DType::f32 : DType::f64;
        shape_ = obj.ptr();
        return record_fast(a, dtype, /*written=*/true, index);
      }
    }
    const Who who{"parameter", index};
    py::array a = as_array(obj, who);
    if (a.dtype().is(f32_) || a.dtype().equal(f32_)) {
      dtype = DType::f32;
    } else if (a.dtype().is(f64_) || a.dtype().equal(f64_)) {
      dtype = DType::f64;
    } else {
      throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() +
                           "; fastoptim updates float32 or float64 arrays (native byte order)");
    }
    check_layout(a, who, /*writeable=*/true);
    shape_ = obj.ptr();
    return record(a, /*written=*/true, index);
  }

  // A gradient or state buffer: same dtype and shape as the parameter checked last.
  Ref like_param(py::handle obj, const char* what, std::size_t index, DType dtype, bool writeable) {
    if (const auto* a = fast(obj.ptr(), writeable ? kWritten : kRead)) {
      const auto* s = py::detail::array_proxy(shape_);
      bool same = a->descr == dtype_of(dtype).ptr() && a->nd == s->nd;
      for (int d = 0; same && d < a->nd; ++d) same = a->dimensions[d] == s->dimensions[d];  // not a memcmp call
      if (same) return record_fast(a, dtype, writeable, index);
    }
    const Who who{what, index};
    py::array a = as_array(obj, who);
    const py::dtype& want = dtype == DType::f32 ? f32_ : f64_;
    if (!a.dtype().is(want) && !a.dtype().equal(want))
      throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() + ", but parameter " +
                           std::to_string(index) + " is " + dtype_name(dtype) + " (no implicit conversion)");
    const auto shape = py::reinterpret_borrow<py::array>(shape_);
    bool same = a.ndim() == shape.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == shape.shape(d);
    if (!same)
      throw py::value_error(who.str() + " has shape " + shape_str(a) + ", but parameter " + std::to_string(index) +
                            " has shape " + shape_str(shape));
    check_layout(a, who, writeable);
    return record(a, writeable, index);
  }

  // Includes an array checked elsewhere (e.g. a 0-d state scalar) in the overlap check, as written.
  void track_written(const py::array& a, std::size_t index) { record(a, /*written=*/true, index); }
  // An array not shaped like the parameter (Adafactor's factored moments, SparseAdam's gradient rows and
  // indices): dtype `want` (named `want_name`), shape `shape` (-1: any length), C-contiguous and aligned
  // (and writeable if written). Returned for the caller's further checks.
  py::array other(py::handle obj, const char* what, std::size_t index, const py::dtype& want, const char* want_name,
                  const std::vector<py::ssize_t>& shape, bool writeable) {
    const Who who{what, index};
    py::array a = as_array(obj, who);
    if (!a.dtype().is(want) && !a.dtype().equal(want))
      throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() + ", expected " +
                           want_name + " (no implicit conversion)");
    bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = shape[d] < 0 || a.shape(d) == shape[d];
    if (!same) {
      std::string s = "(";
      for (std::size_t d = 0; d < shape.size(); ++d)
        s += (d ? ", " : "") + (shape[d] < 0 ? std::string("*") : std::to_string(shape[d]));
      throw py::value_error(who.str() + " has shape " + shape_str(a) + ", expected " + s + (shape.size() == 1 ? ",)" : ")"));
    }
    check_layout(a, who, writeable);
    record(a, writeable, index);
    return a;
  }

  const py::dtype& dtype_of(DType d) const { return d == DType::f32 ? f32_ : f64_; }

  void reserve(std::size_t arrays) { ranges_.reserve(arrays); }

  // Rejects any written array that shares a byte with any other array of the call. checked: the ranges of
  // a call that passed (updated here); the same ranges again (the same arrays) pass without a sort.
  void check_overlaps(std::vector<fastoptim::detail::ByteRange>* checked = nullptr) {
    using fastoptim::detail::ByteRange;
    if (checked) {
      if (std::equal(ranges_.begin(), ranges_.end(), checked->begin(), checked->end(),
                     [](const ByteRange& x, const ByteRange& y) {
                       return x.begin == y.begin && x.end == y.end && x.written == y.written && x.index == y.index;
                     }))
        return;
      checked->clear();
      *checked = ranges_;  // recorded before the sort reorders them; cleared below if the check fails
    }
    const auto [a, b] = fastoptim::detail::find_write_overlap(ranges_);
    if (a && checked) checked->clear();
    if (a)
      throw py::value_error("arrays of parameter " + std::to_string(std::min(a->index, b->index)) + " and parameter " +
                            std::to_string(std::max(a->index, b->index)) +
                            " overlap in memory (a gradient or state buffer that is, or views, a parameter or "
                            "another buffer that gets written); pass separate arrays");
  }

 private:
  enum Need { kRead, kWritten };
  // obj as an exact-or-subclass ndarray that is C-contiguous, aligned (and writeable if written), or null:
  // then the checks below run, with their messages.
  static const py::detail::PyArray_Proxy* fast(PyObject* obj, Need need) {
    const auto& api = py::detail::npy_api::get();
    if (!api.PyArray_Check_(obj)) return nullptr;
    const auto* a = py::detail::array_proxy(obj);
    int want = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if (need == kWritten) want |= py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return (a->flags & want) == want ? a : nullptr;
  }

  Ref record_fast(const py::detail::PyArray_Proxy* a, DType dtype, bool written, std::size_t index) {
    std::size_t n = 1;
    for (int d = 0; d < a->nd; ++d) n *= static_cast<std::size_t>(a->dimensions[d]);
    add_range(reinterpret_cast<std::uintptr_t>(a->data), n * (dtype == DType::f32 ? 4 : 8), written, index);
    return Ref{a->data, n};
  }

  static py::array as_array(py::handle obj, const Who& who) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error(who.str() + " must be a numpy.ndarray, got " +
                           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    return py::reinterpret_borrow<py::array>(obj);
  }

  static void check_layout(const py::array& a, const Who& who, bool writeable) {
    if (!(a.flags() & py::array::c_style))
      throw py::value_error(who.str() + " is not C-contiguous (a strided view?); pass a contiguous array, e.g. "
                                  "numpy.ascontiguousarray, and update that array");
    if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
      throw py::value_error(who.str() + " is not aligned to its dtype");
    if (writeable && !a.writeable()) throw py::value_error(who.str() + " is read-only");
  }

  Ref record(const py::array& a, bool written, std::size_t index) {
    Ref r{const_cast<void*>(a.data()), static_cast<std::size_t>(a.size())};
    add_range(reinterpret_cast<std::uintptr_t>(r.data), static_cast<std::size_t>(a.nbytes()), written, index);
    return r;
  }

  // Built in place: a temporary ByteRange copied in stalls on its partly written bytes (store forwarding),
  // a cost that showed at thousands of arrays per step.
  void add_range(std::uintptr_t begin, std::size_t bytes, bool written, std::size_t index) {
    auto& r = ranges_.emplace_back();
    r.begin = begin;
    r.end = begin + bytes;
    r.written = written;
    r.index = index;
  }

  py::dtype f32_, f64_;
  PyObject* shape_ = nullptr;  // the parameter checked last (borrowed: the caller holds it)
  std::vector<fastoptim::detail::ByteRange> ranges_;
};

template <class Hyper>
std::vector<Hyper> hypers_of(const std::vector<py::tuple>& tuples, Hyper (*convert)(const py::tuple&)) {
  std::vector<Hyper> out;
  out.reserve(tuples.size());
  for (const auto& t : tuples) out.push_back(convert(t));
  return out;
}

inline std::size_t group_of(const py::tuple& t, std::size_t groups) {
  const auto g = t[1].cast<std::size_t>();
  if (g >= groups) throw py::value_error("internal: group index out of range");
  return g;
}

// The body shared by the `<name>_step` bindings of elementwise optimizers. items: (index, group, param, grad,
// buffer..., rest...): the buffers, named in tuple order, go to Item::ptr[2], [3], ... (checked like the
// parameter, written), skipped where needed(h, ptr) says the item's group does not use that one (null: all
// used); rest(t, w) reads the item's other fields, from t[4 + number of buffers] on.
template <class Hyper, class Rest>
std::vector<Item> collect_items(const py::list& items, const std::vector<Hyper>& hypers, Validator& v,
                                std::initializer_list<const char*> buffers,
                                bool (*needed)(const typename std::vector<Hyper>::value_type&, int), Rest rest) {
  std::vector<Item> work;
  work.reserve(items.size());
  for (py::handle obj : items) {
    const auto t = obj.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    Item w{};
    w.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.dtype);
    w.ptr[0] = p.data;
    w.n = p.size;
    w.ptr[1] = v.like_param(t[3], "gradient", index, w.dtype, false).data;
    int k = 2;
    for (const char* name : buffers) {
      if (!needed || needed(hypers[w.group], k)) w.ptr[k] = v.like_param(t[2 + k], name, index, w.dtype, true).data;
      ++k;
    }
    rest(t, w);
    work.push_back(w);
  }
  return work;
}

// items read by collect_items with nothing after the buffers.
inline void no_rest(const py::tuple&, Item&) {}

// The rest of a `<name>_step` binding: the overlap check, then the kernel registered as `kernel`, without the GIL.
template <class Hyper>
void run_items(Validator& v, const std::vector<Item>& work, const std::vector<Hyper>& hypers, const char* kernel) {
  v.check_overlaps();
  const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<Hyper>&)>(kernel);
  py::gil_scoped_release release;
  run(work, hypers);
}

}  // namespace fastoptim_py
