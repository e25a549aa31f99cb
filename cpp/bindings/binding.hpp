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
  // see param_parts.
  Ref param(py::handle obj, std::size_t index, DType& dtype) {
    if (const auto* a = fast(obj.ptr(), kWritten)) {  // the usual case, without the checks' pybind11 objects
      const PyObject* d = a->descr;
      if (d == f32_.ptr() || d == f64_.ptr()) {
        dtype = d == f32_.ptr() ? DType::f32 : DType::f64;
        shape_ = obj.ptr();
        const Ref r = record_fast(a, dtype, /*written=*/true, index);
        if (low_precision_) add_item(r.data, dtype, dtype, nullptr, dtype, 0);
        return r;
      }
    }
    if (low_precision_ && py::isinstance<py::tuple>(obj)) {
      const auto t = py::reinterpret_borrow<py::tuple>(obj);
      if (t.size() != 4) throw py::value_error("internal: a low-precision parameter is (param, master, key, state dtype)");
      const DType state = t[3].is_none() ? kOther : state_dtype_named(t[3].cast<std::string>());
      return param_parts(t[0], t[1].is_none() ? py::handle() : t[1], t[2].cast<unsigned long long>(), state, index,
                         dtype);
    }
    return param_parts(obj, py::handle(), 0, kOther, index, dtype);
  }

  // param() for a low-precision parameter given in parts: param 16-bit or float32 (float64 too, with
  // nothing else), master (null: none) a float32 array shaped like it that the kernel updates (param then
  // receives it rounded), key nonzero for stochastic rounding of bfloat16 writes, state the dtype every
  // state buffer must have (kOther: the parameter's dtype).
  Ref param_parts(py::handle obj, py::handle master, unsigned long long key, DType state, std::size_t index,
                  DType& dtype) {
    if (!master && low_precision_) {
      if (const auto* a = fast(obj.ptr(), kWritten)) {  // a 16-bit or float32 array, without pybind11 objects
        const DType storage = known_descr(a->descr);
        if (storage == DType::f32 || storage == DType::f16 || storage == DType::bf16) {
          dtype = DType::f32;
          shape_ = obj.ptr();
          const Ref r = record_fast(a, storage, /*written=*/true, index);
          add_item(r.data, storage, state == kOther ? storage : state, nullptr, storage, key);
          return r;
        }
      }
    }
    const Who who{"parameter", index};
    py::array a = as_array(obj, who);
    const DType storage = kind(a.dtype());
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
    shape_ = obj.ptr();
    const DType state_storage = state == kOther || storage == DType::f64 ? storage : state;
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
      const std::size_t first = ranges_.size() - 1;
      const Ref r = record(m, /*written=*/true, index, DType::f32);
      if (low_precision_) add_item(r.data, storage, state_storage, mirror.data, storage, key, first);
      return r;
    }
    const Ref r = record(a, /*written=*/true, index, storage);
    if (low_precision_) add_item(r.data, storage, state_storage, nullptr, storage, key);
    return r;
  }

  // param_parts' state argument for "the parameter's own dtype".
  static constexpr DType kParamDType = static_cast<DType>(99);

  // "float32", "float16" or "bfloat16" (a state_dtype), as a DType.
  static DType state_dtype_named(const std::string& name) {
    if (name == "float32") return DType::f32;
    if (name == "float16") return DType::f16;
    if (name == "bfloat16") return DType::bf16;
    throw py::value_error("internal: unknown state dtype " + name);
  }

  // What obj holds if it is an array of a dtype this validator knows (f32, f64, f16, bf16); false otherwise
  // (not an array, or another dtype), for a caller that must decide before validating obj.
  bool storage_of(py::handle obj, DType& out) const {
    if (!py::detail::npy_api::get().PyArray_Check_(obj.ptr())) return false;
    DType d = known_descr(py::detail::array_proxy(obj.ptr())->descr);
    if (d == kOther) d = kind(py::reinterpret_borrow<py::array>(obj).dtype());
    if (d == kOther) return false;
    out = d;
    return true;
  }

  // The storage of the last parameter's state buffers (its own dtype unless a state dtype was given).
  DType last_state_storage(DType dtype) const {
    return low_precision_ && !items_.empty() ? items_.back().state_storage : dtype;
  }

  // A gradient or state buffer: same dtype and shape as the parameter checked last. With low precision
  // enabled, a gradient has the parameter's storage dtype and a state buffer (writeable) the state dtype.
  Ref like_param(py::handle obj, const char* what, std::size_t index, DType dtype, bool writeable) {
    const bool lowp = low_precision_ && !items_.empty();
    const DType param_storage = lowp ? items_.back().param_storage : dtype;
    const DType want = lowp && writeable ? items_.back().state_storage : param_storage;
    if (const PyObject* descr = descr_of(want)) {
      if (const auto* a = fast(obj.ptr(), writeable ? kWritten : kRead)) {
        const auto* s = py::detail::array_proxy(shape_);
        bool same = a->descr == descr && a->nd == s->nd;
        for (int d = 0; same && d < a->nd; ++d) same = a->dimensions[d] == s->dimensions[d];  // not a memcmp call
        if (same) return record_fast(a, want, writeable, index);
      }
    }
    const Who who{what, index};
    py::array a = as_array(obj, who);
    const DType got = kind(a.dtype());
    if (got != want) {
      if (want != param_storage)
        throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() +
                             ", but the state dtype is " + dtype_name(want) + " (no implicit conversion)");
      throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() + ", but parameter " +
                           std::to_string(index) + " is " + dtype_name(param_storage) + " (no implicit conversion)");
    }
    check_shape(a, who, index);
    check_layout(a, who, writeable);
    return record(a, writeable, index, got);
  }

  // A state buffer the caller has just created for the last parameter (nothing to check): with low precision
  // enabled, recorded so that finish() knows its storage.
  void fresh(const void* data, std::size_t bytes, DType storage, std::size_t index) {
    if (low_precision_) add_range(reinterpret_cast<std::uintptr_t>(data), bytes, /*written=*/true, index, storage);
  }

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

  // A 0-d state scalar the call writes in place (a step count): checked for overlaps like the arrays.
  void written_scalar(const void* data, std::size_t bytes, std::size_t index) {
    add_range(reinterpret_cast<std::uintptr_t>(data), bytes, /*written=*/true, index, DType::f32);
  }

  void reserve(std::size_t arrays) { ranges_.reserve(arrays); }

  // Marks the items that hold 16-bit arrays (or master weights) for lowp_run.hpp, then checks overlaps.
  // work: the items built from the param() calls, in the same order.
  void finish(std::vector<Item>& work, std::vector<fastoptim::detail::ByteRange>* checked = nullptr) {
    if (low_precision_ && lowp_seen_) {
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
            if (reinterpret_cast<void*>(ranges_[r].begin) == w.ptr[k]) {
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
    }
    check_overlaps(checked);
  }

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
    if (is_masked(obj)) return nullptr;  // as_array() refuses it
    const auto* a = py::detail::array_proxy(obj);
    int want = py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_ | py::detail::npy_api::NPY_ARRAY_ALIGNED_;
    if (need == kWritten) want |= py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return (a->flags & want) == want ? a : nullptr;
  }

  // storage: what the array holds (its element size).
  Ref record_fast(const py::detail::PyArray_Proxy* a, DType storage, bool written, std::size_t index) {
    std::size_t n = 1;
    for (int d = 0; d < a->nd; ++d) n *= static_cast<std::size_t>(a->dimensions[d]);
    const std::size_t size = storage == DType::f64 ? 8 : storage == DType::f32 ? 4 : 2;
    add_range(reinterpret_cast<std::uintptr_t>(a->data), n * size, written, index, storage);
    return Ref{a->data, n};
  }

  // The DType of a descriptor that is one of ours by address (kOther: not, or not yet known: see kind()).
  DType known_descr(const PyObject* descr) const {
    for (const DType d : {DType::f32, DType::f16, DType::bf16, DType::f64})
      if (descr == descr_of(d)) return d;
    return kOther;
  }

  // The numpy descriptor of d (null: bfloat16 before one was seen), for pointer comparisons.
  const PyObject* descr_of(DType d) const {
    switch (d) {
      case DType::f32: return f32_.ptr();
      case DType::f64: return f64_.ptr();
      case DType::f16: return f16_.ptr();
      default: return bf16_ ? bf16_.ptr() : nullptr;
    }
  }

  void check_shape(const py::array& a, const Who& who, std::size_t index) const {
    const auto shape = py::reinterpret_borrow<py::array>(shape_);
    bool same = a.ndim() == shape.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == shape.shape(d);
    if (!same)
      throw py::value_error(who.str() + " has shape " + shape_str(a) + ", but parameter " + std::to_string(index) +
                            " has shape " + shape_str(shape));
  }

  // What an array holds: f32, f64, f16, bf16 (ml_dtypes.bfloat16), or kOther (reported by its numpy name).
  // The first bfloat16 descriptor seen is kept (ml_dtypes has one), so the fast paths recognise it by address.
  DType kind(const py::dtype& d) const {
    if (d.is(f32_) || d.equal(f32_)) return DType::f32;
    if (d.is(f64_) || d.equal(f64_)) return DType::f64;
    if (d.itemsize() == 2) {
      if (d.is(f16_) || d.equal(f16_)) return DType::f16;  // numpy float16, native byte order
      if (bf16_ && d.is(bf16_)) return DType::bf16;
      if (d.kind() == 'V' && py::str(d.attr("name")).cast<std::string>() == "bfloat16") {
        if (!bf16_) bf16_ = d;
        return DType::bf16;
      }
    }
    return kOther;
  }
  static constexpr DType kOther = kParamDType;

  struct ItemInfo {
    std::size_t first_range = 0;
    void* param = nullptr;  // what the item's ptr[0] is (the master weights when there are some)
    DType param_storage = DType::f32;
    DType state_storage = DType::f32;
    void* mirror = nullptr;
    DType mirror_dtype = DType::f32;
    unsigned long long key = 0;
  };

  // first: the item's first range (its parameter's); by default the one just recorded.
  void add_item(void* param, DType param_storage, DType state_storage, void* mirror, DType mirror_dtype,
                unsigned long long key, std::size_t first = ~std::size_t{0}) {
    auto& i = items_.emplace_back();
    i.first_range = first == ~std::size_t{0} ? ranges_.size() - 1 : first;
    i.param = param;
    i.param_storage = param_storage;
    i.state_storage = state_storage;
    i.mirror = mirror;
    i.mirror_dtype = mirror_dtype;
    i.key = key;
    lowp_seen_ = lowp_seen_ || mirror != nullptr || param_storage == DType::f16 || param_storage == DType::bf16 ||
                 state_storage == DType::f16 || state_storage == DType::bf16;
  }

  static py::array as_array(py::handle obj, const Who& who) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error(who.str() + " must be a numpy.ndarray, got " +
                           py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
    if (is_masked(obj.ptr()))
      throw py::type_error(who.str() + " is a numpy masked array: the step would use the masked elements and "
                                       "ignore the mask; pass its .data (or .filled(...)) explicitly");
    return py::reinterpret_borrow<py::array>(obj);
  }

  // Whether obj is a numpy.ma.MaskedArray (imported on the first ndarray subclass seen; GIL held).
  static bool is_masked(PyObject* obj) {
    if (Py_TYPE(obj) == py::detail::npy_api::get().PyArray_Type_) return false;
    static PyObject* masked = py::object(py::module_::import("numpy.ma").attr("MaskedArray")).release().ptr();  // kept
    const int r = PyObject_IsInstance(obj, masked);
    if (r < 0) throw py::error_already_set();
    return r == 1;
  }

  static void check_layout(const py::array& a, const Who& who, bool writeable) {
    if (!(a.flags() & py::array::c_style))
      throw py::value_error(who.str() + " is not C-contiguous (a strided view?); pass a contiguous array, e.g. "
                                  "numpy.ascontiguousarray, and update that array");
    if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
      throw py::value_error(who.str() + " is not aligned to its dtype");
    if (writeable && !a.writeable()) throw py::value_error(who.str() + " is read-only");
  }

  Ref record(const py::array& a, bool written, std::size_t index, DType storage) {
    Ref r{const_cast<void*>(a.data()), static_cast<std::size_t>(a.size())};
    add_range(reinterpret_cast<std::uintptr_t>(r.data), static_cast<std::size_t>(a.nbytes()), written, index, storage);
    return r;
  }

  // Built in place: a temporary ByteRange copied in stalls on its partly written bytes (store forwarding),
  // a cost that showed at thousands of arrays per step.
  void add_range(std::uintptr_t begin, std::size_t bytes, bool written, std::size_t index, DType storage) {
    auto& r = ranges_.emplace_back();
    r.begin = begin;
    r.end = begin + bytes;
    r.written = written;
    r.index = index;
    if (low_precision_) storage_.push_back(storage);
  }

  py::dtype f32_, f64_, f16_;
  mutable py::object bf16_;  // see kind(); null until a bfloat16 array is seen
  bool low_precision_;
  bool lowp_seen_ = false;  // some item holds a 16-bit array or master weights
  std::vector<DType> storage_;  // parallel to ranges_ (low precision only)
  std::vector<ItemInfo> items_;
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

// The rest of a `<name>_step` binding: the low-precision marks and the overlap check (Validator::finish), then the kernel registered as `kernel`, without the GIL.
template <class Hyper>
void run_items(Validator& v, std::vector<Item>& work, const std::vector<Hyper>& hypers, const char* kernel) {
  v.finish(work);
  const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<Hyper>&)>(kernel);
  py::gil_scoped_release release;
  run(work, hypers);
}

}  // namespace fastoptim_py
