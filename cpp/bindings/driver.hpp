#pragma once
// The whole per-step bookkeeping of an elementwise optimizer in C++: walks the param groups, looks up and
// lazily creates the state buffers, advances the step counts, validates every array, runs the kernels
// without the GIL, and only then publishes new buffers and step counts into the optimizer's state dict.
// This is what the Python loop in Optimizer.step() does, at a fraction of the per-tensor cost (a model with
// a thousand small tensors is dominated by it). A call that raises has modified nothing.
//
// An optimizer opts in by describing its state (DriverSpec) in its bind_<name>.cpp and binding
// drive<Hyper>(spec) as _core.<name>_drive; its Python class sets `_drive`.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "binding.hpp"

namespace fastoptim_py {

// One state buffer: its state_dict key, its slot in Item::ptr, and how a missing one starts.
struct DriverSlot {
  const char* key;
  int ptr;
  // zeros, or "take the gradient" (torch clones the first gradient into SGD's momentum buffer): the buffer
  // is created uninitialised and Item::flag tells the kernel to fill it.
  enum Init { kZeros, kFromGrad } init;
};

template <class Hyper>
struct DriverSpec {
  const char* kernel;               // the isa/<name>.cpp registration name
  bool has_step;                    // keeps a float32 `step` count, advanced before the kernel runs
  std::vector<DriverSlot> slots;
  bool (*needed)(const Hyper&, int ptr);  // whether the slot at Item::ptr[ptr] is used under h
};

namespace driver_detail {

inline PyObject* interned(const char* s) {
  PyObject* o = PyUnicode_InternFromString(s);
  if (!o) throw py::error_already_set();
  return o;  // one reference kept for the process's lifetime, like a static string
}

// A borrowed dict item or null; propagates a lookup error (an unhashable key cannot happen here).
inline PyObject* get(PyObject* dict, PyObject* key) {
  PyObject* v = PyDict_GetItemWithError(dict, key);
  if (!v && PyErr_Occurred()) throw py::error_already_set();
  return v;
}

inline bool is_f32_scalar_array(PyObject* o) {
  if (!py::isinstance<py::array>(o)) return false;
  auto a = py::reinterpret_borrow<py::array>(o);
  return a.ndim() == 0 && a.dtype().equal(py::dtype::of<float>());
}

// A fresh C-contiguous array shaped like p.
inline py::array like(const py::array& p) {
  std::vector<py::ssize_t> shape(p.shape(), p.shape() + p.ndim());
  return py::array(p.dtype(), shape);
}

}  // namespace driver_detail

// param_lists: every group's "params" list; state: the optimizer's state dict (index -> dict);
// grads: one array or None per parameter (the length is checked by the caller); hyper_tuples: one per group;
// step_value: Python's checked reader of a `step` entry, called only for entries that are not our 0-d
// float32 array (numbers or arrays loaded from a state_dict), so its messages stay the only ones.
template <class Hyper>
void drive(const DriverSpec<Hyper>& spec, Hyper (*convert)(const py::tuple&), const py::list& param_lists,
           const py::dict& state, const py::sequence& grads, const std::vector<py::tuple>& hyper_tuples,
           const py::function& step_value) {
  using driver_detail::get;
  // Interned once per optimizer (one spec per Hyper type), not on every step.
  static PyObject* const step_key = driver_detail::interned("step");
  static const std::vector<PyObject*> slot_keys = [&] {
    std::vector<PyObject*> keys;
    for (const auto& s : spec.slots) keys.push_back(driver_detail::interned(s.key));
    return keys;
  }();

  const auto hypers = hypers_of(hyper_tuples, convert);
  if (hypers.size() != static_cast<std::size_t>(py::len(param_lists)))
    throw py::value_error("internal: one hyperparameter tuple per param group expected");

  struct Pending {  // what the step publishes once the kernels have run
    std::size_t index;
    py::object entry;  // the parameter's state dict; None: it has none yet
    std::vector<std::pair<PyObject*, py::array>> added;
    float step;
    py::object step_array;  // the 0-d float32 array updated in place; None: store a new one
  };
  // Every array the kernels touch stays referenced while the GIL is released, whatever other threads do
  // to param_groups or state meanwhile.
  std::vector<py::object> keep_alive;
  Validator v;
  std::vector<Item> work;
  std::vector<Pending> pending;
  const std::size_t total = static_cast<std::size_t>(py::len(grads));
  work.reserve(total);
  pending.reserve(total);
  keep_alive.reserve(4 * total);

  std::size_t index = 0;
  for (std::size_t gi = 0; gi < hypers.size(); ++gi) {
    const Hyper& h = hypers[gi];
    const py::list params = param_lists[gi];
    for (py::handle p_obj : params) {
      if (index >= total) throw py::value_error("internal: more parameters than gradients");
      const py::object g = grads[index];
      if (g.is_none()) {
        ++index;
        continue;
      }
      Item w{};
      w.group = gi;
      const Ref p = v.param(p_obj, index, w.dtype);
      w.ptr[0] = p.data;
      w.n = p.size;
      w.ptr[1] = v.like_param(g, "gradient", index, w.dtype, false).data;

      keep_alive.push_back(py::reinterpret_borrow<py::object>(p_obj));
      keep_alive.push_back(g);
      Pending out{index, py::none(), {}, 0.0f, py::none()};
      const py::int_ key(index);
      PyObject* entry = get(state.ptr(), key.ptr());
      if (entry && !PyDict_Check(entry))
        throw py::type_error("state of parameter " + std::to_string(index) + " must be a dict, got " +
                             py::str(py::type::of(py::handle(entry)).attr("__name__")).cast<std::string>());
      if (entry) out.entry = py::reinterpret_borrow<py::object>(entry);

      if (spec.has_step) {
        PyObject* s = entry ? get(entry, step_key) : nullptr;
        double value = 0.0;
        if (s && driver_detail::is_f32_scalar_array(s)) {
          value = static_cast<double>(*static_cast<const float*>(py::reinterpret_borrow<py::array>(s).data()));
          if (!(value >= 0.0 && value != HUGE_VAL))
            value = step_value(py::handle(s), index).cast<double>();  // raises with the message
          if (py::reinterpret_borrow<py::array>(s).writeable()) out.step_array = py::reinterpret_borrow<py::object>(s);
        } else if (s) {
          value = step_value(py::handle(s), index).cast<double>();
        }
        out.step = static_cast<float>(value + 1.0);  // torch counts in a float32 tensor
        w.step = static_cast<double>(out.step);
      }

      const py::array p_arr = py::reinterpret_borrow<py::array>(p_obj);
      for (std::size_t k = 0; k < spec.slots.size(); ++k) {
        const DriverSlot& slot = spec.slots[k];
        if (!spec.needed(h, slot.ptr)) continue;
        PyObject* buf = entry ? get(entry, slot_keys[k]) : nullptr;
        if (buf && buf != Py_None) {
          w.ptr[slot.ptr] = v.like_param(py::handle(buf), slot.key, index, w.dtype, true).data;
          keep_alive.push_back(py::reinterpret_borrow<py::object>(buf));
        } else {
          py::array fresh = driver_detail::like(p_arr);
          if (slot.init == DriverSlot::kZeros)
            std::memset(fresh.mutable_data(), 0, static_cast<std::size_t>(fresh.nbytes()));
          else
            w.flag = true;
          w.ptr[slot.ptr] = fresh.mutable_data();
          out.added.emplace_back(slot_keys[k], std::move(fresh));
        }
      }
      work.push_back(w);
      pending.push_back(std::move(out));
      ++index;
    }
  }
  if (index != total) throw py::value_error("internal: fewer parameters than gradients");
  v.check_overlaps();

  if (!work.empty()) {
    const auto run = isa_kernel<void(const std::vector<Item>&, const std::vector<Hyper>&)>(spec.kernel);
    py::gil_scoped_release release;
    run(work, hypers);
  }

  // Publish: nothing below can fail on valid dicts except allocation, after the update has happened.
  for (auto& out : pending) {
    if (out.entry.is_none() && out.added.empty() && !spec.has_step) continue;  // SGD without momentum: no state
    if (out.entry.is_none()) {
      out.entry = py::dict();
      if (PyDict_SetItem(state.ptr(), py::int_(out.index).ptr(), out.entry.ptr()) != 0) throw py::error_already_set();
    }
    PyObject* entry = out.entry.ptr();
    for (auto& [k, arr] : out.added)
      if (PyDict_SetItem(entry, k, arr.ptr()) != 0) throw py::error_already_set();
    if (spec.has_step) {
      if (!out.step_array.is_none()) {
        *static_cast<float*>(py::reinterpret_borrow<py::array>(out.step_array).mutable_data()) = out.step;
      } else {
        py::array_t<float> s(std::vector<py::ssize_t>{});
        *s.mutable_data() = out.step;
        if (PyDict_SetItem(entry, step_key, s.ptr()) != 0) throw py::error_already_set();
      }
    }
  }
}

}  // namespace fastoptim_py
