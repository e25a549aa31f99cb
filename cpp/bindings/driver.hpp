#pragma once
// The whole per-step bookkeeping of an elementwise optimizer in C++: walks the param groups, looks up and
// lazily creates the state buffers, advances the step counts, validates every array, runs the kernels
// without the GIL, and only then publishes new buffers and step counts into the optimizer's state dict.
// This is what the Python loop in Optimizer.step() does, at a fraction of the per-tensor cost (a model with
// a thousand small tensors is dominated by it). A call that raises has modified nothing.
//
// An optimizer opts in by describing its state (DriverSpec) in its bind_<name>.cpp and binding it with
// def_drive(m, "<name>_drive", spec, &hyper_of) (optionally with an extension for state the spec cannot
// describe: see NoExtra); its Python class sets `_drive`.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "binding.hpp"
#include "fastoptim/core/lowp.hpp"

namespace fastoptim_py {

// One state buffer shaped like its parameter: its state_dict key, its slot in Item::ptr, how a missing one
// starts.
struct DriverSlot {
  const char* key;
  int ptr;
  enum Init {
    kZeros,     // zeros
    kFromGrad,  // left uninitialised with Item::flag set: the kernel fills it (torch clones SGD's first gradient)
    kHyper,     // filled with element `hyper` of the group's hyperparameter tuple (Adagrad, Rprop)
    kParam,     // a copy of the parameter (ScheduleFree's z)
  } init;
  int hyper = -1;
  bool flags = false;  // an absent one (not a None entry) also sets Item::flag (Adan's neg_pre_grad)
};

enum class DriverStep {
  kNone,   // no step count
  kParam,  // a float32 `step` entry per parameter, advanced before the kernel runs (torch)
  kGroup,  // the group's count, kept by Python: element `group_step` of the hyper tuple, after increment
};

template <class Hyper>
struct DriverSpec {
  const char* kernel;  // the isa/<name>.cpp registration name
  DriverStep step;
  std::vector<DriverSlot> slots;
  bool (*needed)(const Hyper&, int ptr);  // whether the slot at Item::ptr[ptr] is used under h
  int group_step = -1;                    // DriverStep::kGroup: see there
  bool flag_at_step_one = false;          // Item::flag also when the step after increment is 1 (Adan)
};

namespace driver_detail {

inline PyObject* interned(const char* s) {
  PyObject* o = PyUnicode_InternFromString(s);
  if (!o) throw py::error_already_set();
  return o;  // one reference kept for the process's lifetime, like a static string
}

// The int key of parameter i, made once per process (the state dict's keys).
inline PyObject* index_key(std::size_t i) {
  static std::vector<PyObject*> keys;  // only touched with the GIL held
  while (keys.size() <= i) {
    PyObject* k = PyLong_FromSize_t(keys.size());
    if (!k) throw py::error_already_set();
    keys.push_back(k);
  }
  return keys[i];
}

// A borrowed dict item or null; propagates a lookup error (an unhashable key cannot happen here).
inline PyObject* get(PyObject* dict, PyObject* key) {
  PyObject* v = PyDict_GetItemWithError(dict, key);
  if (!v && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

// Strong references held for the call: whatever other threads do to param_groups or state while the GIL is
// released, every array the kernels touch stays alive.
class Refs {
 public:
  Refs() = default;
  Refs(const Refs&) = delete;
  Refs& operator=(const Refs&) = delete;
  ~Refs() {
    for (PyObject* o : held_) Py_DECREF(o);
  }
  void reserve(std::size_t n) { held_.reserve(n); }
  PyObject* hold(PyObject* o) {
    held_.push_back(o);  // may throw: then o is not referenced yet
    Py_INCREF(o);
    return o;
  }

 private:
  std::vector<PyObject*> held_;
};

// An exact numpy 0-d float32 array (our `step`), in native byte order.
inline bool is_step_array(PyObject* o) {
  const auto& api = py::detail::npy_api::get();
  if (Py_TYPE(o) != reinterpret_cast<PyTypeObject*>(api.PyArray_Type_)) return false;
  const auto* a = py::detail::array_proxy(o);
  if (a->nd != 0) return false;
  const auto* d = py::detail::array_descriptor_proxy(a->descr);
  return d->type_num == py::detail::npy_api::NPY_FLOAT_ && d->byteorder != (PY_LITTLE_ENDIAN ? '>' : '<');
}

// A fresh C-contiguous array shaped like p, of dtype descr (p's own when null): every state array the driver
// creates comes from here.
inline py::array like(py::handle p, PyObject* descr = nullptr) {
  const auto* a = py::detail::array_proxy(p.ptr());
  std::vector<py::ssize_t> shape(a->dimensions, a->dimensions + a->nd);
  return py::array(py::reinterpret_borrow<py::dtype>(descr ? descr : a->descr), std::move(shape));
}

// n copies of value rounded to the 16-bit dtype descr as numpy rounds it (np.full, as optimizer.py does).
inline void fill_16bit(void* data, std::size_t n, double value, PyObject* descr) {
  const py::array one = py::module_::import("numpy").attr("full")(py::tuple(), value, py::handle(descr));
  std::uint16_t bits;
  std::memcpy(&bits, one.data(), sizeof bits);
  auto* d = static_cast<std::uint16_t*>(data);
  for (std::size_t i = 0; i < n; ++i) d[i] = bits;
}

// optimizer.py's low-precision settings for one step (None there: all off).
struct LowPrecision {
  bool on = false;
  PyObject* state_dtype = nullptr;  // state_dtype's numpy dtype (borrowed from the argument); null: the parameter's
  DType state = DType::f32;         // ... as a DType, when given
  bool master = false;              // float32 master weights for 16-bit parameters
  bool rounding = false;            // stochastic rounding, with keys from seed and counter
  std::uint64_t seed = 0, counter = 0;

  explicit LowPrecision(const py::object& arg) {
    if (arg.is_none()) return;
    const auto t = arg.cast<py::tuple>();
    if (t.size() != 4) throw py::value_error("internal: low precision is (state dtype, master, seed, counter)");
    on = true;
    if (!t[0].is_none()) {
      state_dtype = t[0].ptr();
      state = Validator::state_dtype_named(py::str(t[0].attr("name")).cast<std::string>());
    }
    master = t[1].cast<bool>();
    rounding = !t[2].is_none();
    if (rounding) seed = t[2].cast<std::uint64_t>();
    counter = t[3].cast<std::uint64_t>();
  }
};

template <class T>
void fill(void* data, std::size_t n, double value) {
  const T v = static_cast<T>(value);  // numpy's full(): the value rounded once to the dtype
  T* d = static_cast<T*>(data);
  for (std::size_t i = 0; i < n; ++i) d[i] = v;
}

// Whether an extension has the optional hook before(param, grad, index) (see NoExtra).
template <class E, class = void>
struct has_before : std::false_type {};
template <class E>
struct has_before<E, std::void_t<decltype(std::declval<E&>().before(std::declval<PyObject*>(), std::declval<PyObject*>(),
                                                                    std::size_t{}))>> : std::true_type {};

}  // namespace driver_detail

// What a spec cannot describe (0-d state scalars, kernels with more arguments): an extension is made once per
// call, sees every item while they are collected, and publishes its state after the kernel ran. This default
// has no such state and runs the kernel registered as spec.kernel.
template <class Hyper>
class NoExtra {
 public:
  static constexpr bool kAlwaysState = false;  // true: every stepped parameter gets a state dict
  NoExtra(const DriverSpec<Hyper>& spec, const std::vector<py::tuple>& /*hyper_tuples*/)
      : run_(isa_kernel<void(const std::vector<Item>&, const std::vector<Hyper>&)>(spec.kernel)) {}
  // Optional (an extension may define it): before(param, grad, index), called for each parameter with a
  // gradient before anything of it is validated (GIL held; may throw), e.g. for its own checks and messages.
  // The k-th item with a gradient (GIL held, nothing published yet; may throw). entry: its state dict or null.
  void collect(std::size_t /*k*/, PyObject* /*entry*/, Item& /*w*/, const Hyper& /*h*/, std::size_t /*index*/,
               Validator& /*v*/) {}
  // Checks across items, before the overlap check (may throw).
  void check() {}
  // Without the GIL; must not throw.
  void run(const std::vector<Item>& work, const std::vector<Hyper>& hypers) { run_(work, hypers); }
  // After the kernel ran: the k-th item's state dict (created if needed).
  void publish(std::size_t /*k*/, PyObject* /*entry*/) {}

 private:
  void (*run_)(const std::vector<Item>&, const std::vector<Hyper>&);
};

// param_lists: every group's "params" list; state: the optimizer's state dict (index -> dict);
// grads: a list or tuple with one array or None per parameter (the length is checked by the caller);
// hyper_tuples: one per group; step_value: Python's checked reader of a `step` entry, called only for entries
// that are not our 0-d float32 array (numbers or arrays loaded from a state_dict), so its messages stay the
// only ones; low_precision: None, or (state dtype | None, master weights, rounding seed | None, rounding
// counter) for an optimizer with low-precision storage on (optimizer.py), whose 16-bit arrays and master
// weights go to lowp_run.hpp as in its `<name>_step`.
template <class Extra, class Hyper>
void drive(const DriverSpec<Hyper>& spec, Hyper (*convert)(const py::tuple&), const py::list& param_lists,
           const py::dict& state, const py::sequence& grads, const std::vector<py::tuple>& hyper_tuples,
           const py::function& step_value, const py::object& low_precision) {
  using driver_detail::get;
  // Interned once per optimizer (one spec per Hyper type), not on every step.
  static PyObject* const step_key = driver_detail::interned("step");
  static PyObject* const master_key = driver_detail::interned("master_param");
  static const std::vector<PyObject*> slot_keys = [&] {
    std::vector<PyObject*> keys;
    for (const auto& s : spec.slots) keys.push_back(driver_detail::interned(s.key));
    return keys;
  }();
  // The byte ranges of the last call that passed the overlap check: a model stepping the same arrays again
  // (the usual case) skips the sort. Only used with the GIL held.
  static std::vector<fastoptim::detail::ByteRange> checked_ranges;

  const auto hypers = hypers_of(hyper_tuples, convert);
  const std::size_t groups = hypers.size();
  if (groups != static_cast<std::size_t>(py::len(param_lists)))
    throw py::value_error("internal: one hyperparameter tuple per param group expected");
  // Per group: the fill value of kHyper slots, the step of kGroup.
  std::vector<double> group_values(groups * (spec.slots.size() + 1), 0.0);
  for (std::size_t gi = 0; gi < groups; ++gi) {
    for (std::size_t k = 0; k < spec.slots.size(); ++k)
      if (spec.slots[k].init == DriverSlot::kHyper)
        group_values[gi * (spec.slots.size() + 1) + k] = hyper_tuples[gi][spec.slots[k].hyper].template cast<double>();
    if (spec.step == DriverStep::kGroup)
      group_values[gi * (spec.slots.size() + 1) + spec.slots.size()] =
          hyper_tuples[gi][spec.group_step].template cast<double>();
  }
  Extra extra(spec, hyper_tuples);

  // Tuples: references to every gradient and parameter for the call, whatever happens to the lists.
  const auto grad_tuple = py::reinterpret_steal<py::tuple>(PySequence_Tuple(grads.ptr()));
  if (!grad_tuple) throw py::error_already_set();
  const std::size_t total = static_cast<std::size_t>(PyTuple_GET_SIZE(grad_tuple.ptr()));
  std::vector<py::tuple> param_tuples;
  param_tuples.reserve(groups);
  for (py::handle l : param_lists) {
    auto t = py::reinterpret_steal<py::tuple>(PySequence_Tuple(l.ptr()));
    if (!t) throw py::error_already_set();
    param_tuples.push_back(std::move(t));
  }

  struct Pending {  // what the step publishes once the kernels have run
    std::size_t index = 0;
    PyObject* entry = nullptr;       // the parameter's state dict (held); null: it has none yet
    PyObject* step_array = nullptr;  // the 0-d float32 array updated in place (held); null: store a new one
    float step = 0.0f;
    std::size_t added_end = 0;  // its fresh buffers: added[previous item's added_end, added_end)
  };
  struct Added {
    PyObject* key;
    py::object array;
  };
  const driver_detail::LowPrecision lowp(low_precision);
  driver_detail::Refs refs;
  Validator v(lowp.on);
  std::vector<Item> work;
  std::vector<Pending> pending;
  std::vector<Added> added;
  // Sized up front, one memset each, and trimmed after the loop: value-initialising one 160-byte Item at a time
  // (emplace_back) compiled to a `rep stos` per item, a tenth of the bookkeeping at a thousand tensors.
  work.resize(total);
  pending.resize(total);
  std::size_t items = 0;
  refs.reserve(3 * total);
  v.reserve(total * (2 + spec.slots.size()));

  std::size_t index = 0;
  PyObject* const* grad_items = &PyTuple_GET_ITEM(grad_tuple.ptr(), 0);
  for (std::size_t gi = 0; gi < groups; ++gi) {
    const Hyper& h = hypers[gi];
    const double* values = &group_values[gi * (spec.slots.size() + 1)];
    PyObject* params = param_tuples[gi].ptr();
    const std::size_t count = static_cast<std::size_t>(PyTuple_GET_SIZE(params));
    for (std::size_t pi = 0; pi < count; ++pi, ++index) {
      if (index >= total) throw py::value_error("internal: more parameters than gradients");
      PyObject* g = grad_items[index];
      if (g == Py_None) continue;
      PyObject* p_obj = PyTuple_GET_ITEM(params, pi);
      if constexpr (driver_detail::has_before<Extra>::value) extra.before(p_obj, g, index);
      // Built in place: a copied-in struct stalls on its partly written bytes (store forwarding), a cost that
      // shows at thousands of tensors per step.
      const std::size_t k_item = items++;
      Item& w = work[k_item];
      Pending& out = pending[k_item];
      w.group = gi;
      out.index = index;
      PyObject* entry = get(state.ptr(), driver_detail::index_key(index));
      if (entry && !PyDict_Check(entry))
        throw py::type_error("state of parameter " + std::to_string(index) + " must be a dict, got " +
                             py::str(py::type::of(py::handle(entry)).attr("__name__")).cast<std::string>());
      if (entry) out.entry = refs.hold(entry);

      Ref p;
      PyObject* buffer_dtype = nullptr;  // fresh state buffers: the parameter's dtype
      py::object fresh_master;
      if (lowp.on) {  // optimizer.py's _wrap_param, then Validator::param
        DType storage = DType::f32;
        const bool known = v.storage_of(p_obj, storage);
        PyObject* master = nullptr;
        if (lowp.master && known && (storage == DType::f16 || storage == DType::bf16)) {
          master = entry ? get(entry, master_key) : nullptr;
          if (master && master != Py_None) {
            refs.hold(master);
          } else {  // the float32 copy starts from the parameter's value
            fresh_master = py::reinterpret_borrow<py::object>(p_obj).attr("astype")(v.dtype_of(DType::f32));
            master = fresh_master.ptr();
          }
        }
        if (lowp.state_dtype && !(known && storage == DType::f64)) buffer_dtype = lowp.state_dtype;
        const unsigned long long key = lowp.rounding ? fastoptim::rounding_key(lowp.seed, lowp.counter, index, 0) : 0;
        p = v.param_parts(p_obj, py::handle(master), key, lowp.state_dtype ? lowp.state : Validator::kParamDType,
                          index, w.dtype);
      } else {
        p = v.param(p_obj, index, w.dtype);
      }
      w.ptr[0] = p.data;
      w.n = p.size;
      w.ptr[1] = v.like_param(g, "gradient", index, w.dtype, false).data;

      if (spec.step == DriverStep::kParam) {
        PyObject* s = entry ? get(entry, step_key) : nullptr;
        double value = 0.0;
        if (s && driver_detail::is_step_array(s)) {
          value = static_cast<double>(*reinterpret_cast<const float*>(py::detail::array_proxy(s)->data));
          if (!(value >= 0.0 && value != HUGE_VAL))
            value = step_value(py::handle(s), index).cast<double>();  // raises with the message
          if (py::detail::array_proxy(s)->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_) {
            out.step_array = refs.hold(s);
            v.written_scalar(py::detail::array_proxy(s)->data, sizeof(float), index);  // a view of a parameter?
          }
        } else if (s) {
          value = step_value(py::handle(s), index).cast<double>();
        }
        out.step = static_cast<float>(value + 1.0);  // torch counts in a float32 tensor
        w.step = static_cast<double>(out.step);
      } else if (spec.step == DriverStep::kGroup) {
        w.step = values[spec.slots.size()];
        if (spec.flag_at_step_one && w.step == 1.0) w.flag = true;
      }

      for (std::size_t k = 0; k < spec.slots.size(); ++k) {
        const DriverSlot& slot = spec.slots[k];
        if (!spec.needed(h, slot.ptr)) continue;
        PyObject* buf = entry ? get(entry, slot_keys[k]) : nullptr;
        if (buf && buf != Py_None) {
          w.ptr[slot.ptr] = v.like_param(buf, slot.key, index, w.dtype, true).data;
          refs.hold(buf);
          continue;
        }
        py::array fresh = driver_detail::like(p_obj, buffer_dtype);
        void* data = fresh.mutable_data();
        const std::size_t bytes = static_cast<std::size_t>(fresh.nbytes());
        const DType storage = v.last_state_storage(w.dtype);
        switch (slot.init) {
          case DriverSlot::kZeros: std::memset(data, 0, bytes); break;
          case DriverSlot::kFromGrad: w.flag = true; break;
          case DriverSlot::kHyper:
            if (storage == DType::f16 || storage == DType::bf16)
              driver_detail::fill_16bit(data, p.size, values[k], fresh.dtype().ptr());
            else
              (storage == DType::f32 ? driver_detail::fill<float> : driver_detail::fill<double>)(data, p.size, values[k]);
            break;
          case DriverSlot::kParam:
            if (lowp.on) throw std::logic_error("internal: a kParam state slot with low-precision storage");
            std::memcpy(data, p.data, bytes);
            break;
        }
        if (slot.flags && !buf) w.flag = true;
        w.ptr[slot.ptr] = data;
        v.fresh(data, bytes, storage, index);
        added.push_back(Added{slot_keys[k], std::move(fresh)});
      }
      if (fresh_master) added.push_back(Added{master_key, std::move(fresh_master)});
      extra.collect(k_item, entry, w, h, index, v);
      out.added_end = added.size();
    }
  }
  if (index != total) throw py::value_error("internal: fewer parameters than gradients");
  work.resize(items);
  pending.resize(items);
  extra.check();
  v.finish(work, &checked_ranges);  // with low precision, also marks the items lowp_run.hpp converts

  if (!work.empty()) {
    py::gil_scoped_release release;
    extra.run(work, hypers);
  }

  // Publish: nothing below can fail on valid dicts except allocation, after the update has happened.
  std::size_t added_begin = 0;
  for (std::size_t k = 0; k < pending.size(); ++k) {
    const Pending& out = pending[k];
    const std::size_t added_end = out.added_end;
    if (!out.entry && added_begin == added_end && spec.step != DriverStep::kParam && !Extra::kAlwaysState)
      continue;  // SGD without momentum: no state
    PyObject* entry = out.entry;
    py::object fresh_entry;
    if (!entry) {
      fresh_entry = py::dict();
      entry = fresh_entry.ptr();
      if (PyDict_SetItem(state.ptr(), driver_detail::index_key(out.index), entry) != 0) throw py::error_already_set();
    }
    // torch's key order in a new entry: `step`, the extension's scalars, then the buffers.
    if (spec.step == DriverStep::kParam) {
      if (out.step_array) {
        *reinterpret_cast<float*>(py::detail::array_proxy(out.step_array)->data) = out.step;
      } else {
        py::array_t<float> s(std::vector<py::ssize_t>{});
        *s.mutable_data() = out.step;
        if (PyDict_SetItem(entry, step_key, s.ptr()) != 0) throw py::error_already_set();
      }
    }
    extra.publish(k, entry);
    for (; added_begin < added_end; ++added_begin)
      if (PyDict_SetItem(entry, added[added_begin].key, added[added_begin].array.ptr()) != 0)
        throw py::error_already_set();
  }
}

// Binds drive() as _core.<name>.
template <class Extra, class Hyper>
void def_drive(py::module_& m, const char* name, const DriverSpec<Hyper>& spec, Hyper (*convert)(const py::tuple&)) {
  m.def(
      name,
      [&spec, convert](const py::list& param_lists, const py::dict& state, const py::sequence& grads,
                       const std::vector<py::tuple>& hypers, const py::function& step_value,
                       const py::object& low_precision) {
        drive<Extra>(spec, convert, param_lists, state, grads, hypers, step_value, low_precision);
      },
      py::arg("param_lists"), py::arg("state"), py::arg("grads"), py::arg("hypers"), py::arg("step_value"),
      py::arg("low_precision") = py::none());
}
template <class Hyper>
void def_drive(py::module_& m, const char* name, const DriverSpec<Hyper>& spec, Hyper (*convert)(const py::tuple&)) {
  def_drive<NoExtra<Hyper>>(m, name, spec, convert);
}

}  // namespace fastoptim_py
