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
#include <cstdint>
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

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::f16: return "float16";
    default: return "bfloat16";
  }
}

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
  // low_precision: the optimizer's kernels run through lowp_run.hpp, so parameters may be float16 or
  // bfloat16 (optionally with float32 master weights) and state buffers float32, float16 or bfloat16.
  explicit Validator(bool low_precision = false)
      : f32_(py::dtype::of<float>()), f64_(py::dtype::of<double>()), f16_("float16"), low_precision_(low_precision) {}

  // The parameter fixes the dtype and shape that every other array of its item must have. With low
  // precision enabled, obj may also be a tuple (param, master | None, rounding key, state dtype | None):
  // param 16-bit or float32, master a float32 array shaped like it that the kernel updates (param then
  // receives it rounded), key nonzero for stochastic rounding of bfloat16 writes, state dtype the name
  // ("float32", "float16", "bfloat16") every state buffer must have (None: the parameter's dtype).
  Ref param(py::handle obj, std::size_t index, DType& dtype) {
    const Who who{"parameter", index};
    ItemInfo info;
    info.first_range = ranges_.size();
    py::handle master;
    DType state = kOther;  // kOther: the parameter's storage dtype
    if (low_precision_ && py::isinstance<py::tuple>(obj)) {
      const auto t = py::reinterpret_borrow<py::tuple>(obj);
      if (t.size() != 4) throw py::value_error("internal: a low-precision parameter is (param, master, key, state dtype)");
      obj = t[0];
      if (!t[1].is_none()) master = t[1];
      info.key = t[2].cast<unsigned long long>();
      if (!t[3].is_none()) {
        const auto name = t[3].cast<std::string>();
        if (name == "float32") state = DType::f32;
        else if (name == "float16") state = DType::f16;
        else if (name == "bfloat16") state = DType::bf16;
        else throw py::value_error("internal: unknown state dtype " + name);
      }
    }
    py::array a = as_array(obj, who);
    DType storage = kind(a.dtype());
    const bool narrow = storage == DType::f16 || storage == DType::bf16;
    if (storage == DType::f32 || storage == DType::f64 || (narrow && low_precision_)) {
      dtype = storage == DType::f64 ? DType::f64 : DType::f32;
    } else {
      throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() +
                           (low_precision_ ? "; this optimizer updates float32, float64, float16 or bfloat16 arrays"
                                           : "; this optimizer updates float32 or float64 arrays") +
                           " (native byte order)");
    }
    check_layout(a, who, /*writeable=*/true);
    shape_ = a;
    info.param_storage = storage;
    info.state_storage = state == kOther || storage == DType::f64 ? storage : state;
    if (master) {
      if (!narrow)
        throw py::value_error(who.str() + " is " + dtype_name(storage) +
                              ": float32 master weights are for float16 or bfloat16 parameters");
      const Who mwho{"master_param", index};
      py::array m = as_array(master, mwho);
      if (kind(m.dtype()) != DType::f32)
        throw py::type_error(mwho.str() + " has dtype " + py::str(m.dtype()).cast<std::string>() +
                             ", expected float32 (no implicit conversion)");
      check_shape(m, mwho, index);
      check_layout(m, mwho, true);
      const Ref mirror = record(a, /*written=*/true, index, storage);
      info.mirror = mirror.data;
      info.mirror_dtype = storage;
      const Ref r = record(m, /*written=*/true, index, DType::f32);
      info.param = r.data;
      items_.push_back(info);
      return r;
    }
    const Ref r = record(a, /*written=*/true, index, storage);
    info.param = r.data;
    items_.push_back(info);
    return r;
  }

  // A gradient or state buffer: same dtype and shape as the parameter checked last. With low precision
  // enabled, a gradient has the parameter's storage dtype and a state buffer (writeable) the state dtype.
  Ref like_param(py::handle obj, const char* what, std::size_t index, DType dtype, bool writeable) {
    const Who who{what, index};
    py::array a = as_array(obj, who);
    const DType got = kind(a.dtype());
    const bool lowp = low_precision_ && !items_.empty();
    const DType param_storage = lowp ? items_.back().param_storage : dtype;
    const DType want = lowp && writeable ? items_.back().state_storage : param_storage;
    if (got != want) {
      if (want != param_storage)
        throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() + ", but the state dtype is " +
                             dtype_name(want) + " (no implicit conversion)");
      throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() + ", but parameter " +
                           std::to_string(index) + " is " + dtype_name(param_storage) + " (no implicit conversion)");
    }
    check_shape(a, who, index);
    check_layout(a, who, writeable);
    return record(a, writeable, index, got);
  }

 private:
  void check_shape(const py::array& a, const Who& who, std::size_t index) const {
    bool same = a.ndim() == shape_.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == shape_.shape(d);
    if (!same)
      throw py::value_error(who.str() + " has shape " + shape_str(a) + ", but parameter " + std::to_string(index) +
                            " has shape " + shape_str(shape_));
  }

 public:

  // Includes an array checked elsewhere (e.g. a 0-d state scalar) in the overlap check, as written.
  void track_written(const py::array& a, std::size_t index) { record(a, /*written=*/true, index, kind(a.dtype())); }
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
    record(a, writeable, index, kind(a.dtype()));
    return a;
  }

  const py::dtype& dtype_of(DType d) const { return d == DType::f32 ? f32_ : f64_; }

  // Marks the items that hold 16-bit arrays (or master weights) for lowp_run.hpp, then checks overlaps.
  // work: the items built from the param() calls, in the same order.
  void finish(std::vector<Item>& work) {
    std::size_t next = 0;
    for (Item& w : work) {
      while (next < items_.size() && items_[next].param != w.ptr[0]) ++next;
      if (next == items_.size()) throw std::logic_error("internal: an item without its parameter");
      const ItemInfo& info = items_[next];
      const std::size_t end = next + 1 < items_.size() ? items_[next + 1].first_range : ranges_.size();
      bool narrow = info.mirror != nullptr;
      for (int k = 0; k < 8; ++k) {
        w.storage[k] = w.dtype;
        if (!w.ptr[k]) continue;
        for (std::size_t r = info.first_range; r < end; ++r)
          if (reinterpret_cast<void*>(ranges_[r].begin) == w.ptr[k] && storage_[r] != DType::f64) {
            w.storage[k] = storage_[r];
            break;
          }
        narrow = narrow || w.storage[k] == DType::f16 || w.storage[k] == DType::bf16;
      }
      w.lowp = narrow;
      w.mirror = info.mirror;
      w.mirror_dtype = info.mirror_dtype;
      w.rounding_key = info.key;
      ++next;
    }
    check_overlaps();
  }

  // Rejects any written array that shares a byte with any other array of the call.
  void check_overlaps() {
    const auto [a, b] = fastoptim::detail::find_write_overlap(ranges_);
    if (a)
      throw py::value_error("arrays of parameter " + std::to_string(std::min(a->index, b->index)) + " and parameter " +
                            std::to_string(std::max(a->index, b->index)) +
                            " overlap in memory (a gradient or state buffer that is, or views, a parameter or "
                            "another buffer that gets written); pass separate arrays");
  }

 private:
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

  // What an array holds: f32, f64, f16, bf16 (ml_dtypes.bfloat16), or (anything else) a value no check
  // accepts, reported by its numpy name.
  DType kind(const py::dtype& d) const {
    if (d.is(f32_) || d.equal(f32_)) return DType::f32;
    if (d.is(f64_) || d.equal(f64_)) return DType::f64;
    if (d.itemsize() == 2) {
      if (d.is(f16_) || d.equal(f16_)) return DType::f16;  // numpy float16, native byte order
      if (d.kind() == 'V' && py::str(d.attr("name")).cast<std::string>() == "bfloat16") return DType::bf16;
    }
    return kOther;
  }
  static constexpr DType kOther = static_cast<DType>(99);

  Ref record(const py::array& a, bool written, std::size_t index, DType storage) {
    Ref r{const_cast<void*>(a.data()), static_cast<std::size_t>(a.size())};
    const auto b = reinterpret_cast<std::uintptr_t>(r.data);
    ranges_.push_back(fastoptim::detail::ByteRange{b, b + static_cast<std::size_t>(a.nbytes()), written, index});
    storage_.push_back(storage);
    return r;
  }

  struct ItemInfo {
    std::size_t first_range = 0;
    void* param = nullptr;  // what the item's ptr[0] is (the master weights when there are some)
    DType param_storage = DType::f32;
    DType state_storage = DType::f32;
    void* mirror = nullptr;
    DType mirror_dtype = DType::f32;
    unsigned long long key = 0;
  };

  py::dtype f32_, f64_, f16_;
  bool low_precision_;
  py::array shape_;
  std::vector<fastoptim::detail::ByteRange> ranges_;
  std::vector<DType> storage_;  // parallel to ranges_
  std::vector<ItemInfo> items_;
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

}  // namespace fastoptim_py
