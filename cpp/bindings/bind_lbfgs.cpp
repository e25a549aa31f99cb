// _core.lbfgs_step and the LBFGS state holders. The state lives in C++ (the history is history_size pairs
// of flat vectors, which step() must not convert on every call); fastoptim.LBFGS reads and writes it in
// torch's state_dict layout through lbfgs_state_get / lbfgs_state_set.
//
// The step itself runs in the kernel of the active tier (isa/lbfgs.cpp): every tier computes the same bits.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <optional>
#include <string>
#include <vector>

#include "binding.hpp"
#include "fastoptim/lbfgs/lbfgs.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

template <class T>
struct LBFGSHolder {
  fastoptim::LBFGSState<T> state;
};

template <class T>
constexpr DType dtype_of() {
  return std::is_same_v<T, float> ? DType::f32 : DType::f64;
}

template <class T>
py::array vector_array(const std::vector<T>& v) {
  return py::array_t<T>(static_cast<py::ssize_t>(v.size()), v.data());
}

template <class T>
py::array scalar_array(T value) {  // a 0-d array: torch's 0-d tensor after .numpy()
  return py::array(py::dtype::of<T>(), std::vector<py::ssize_t>{}, std::vector<py::ssize_t>{}, &value);
}

template <class T>
py::object scalar_object(const fastoptim::LBFGSScalar& s) {
  if (s.tensor) return scalar_array<T>(static_cast<T>(s.value));
  // torch's H_diag starts as the Python int 1
  if (s.value == 1.0) return py::int_(1);
  return py::float_(s.value);
}

// torch's state layout: {"func_evals", "n_iter", ["al"], "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
// "prev_flat_grad", "prev_loss"}, tensors as numpy arrays (copies).
template <class T>
py::dict state_get(const LBFGSHolder<T>& h) {
  const auto& s = h.state;
  py::dict out;
  out["func_evals"] = s.func_evals;
  out["n_iter"] = s.n_iter;
  if (!s.al.empty()) {
    py::list al;
    for (const auto& a : s.al) al.append(a ? py::object(scalar_array<T>(*a)) : py::none());
    out["al"] = al;
  }
  if (s.n_iter > 0) {
    out["d"] = vector_array(s.d);
    out["t"] = s.t.tensor ? py::object(scalar_array<T>(static_cast<T>(s.t.value))) : py::object(py::float_(s.t.value));
    py::list dirs, stps, ro;
    for (std::size_t i = 0; i < s.old_dirs.size(); ++i) {
      dirs.append(vector_array(s.old_dirs[i]));
      stps.append(vector_array(s.old_stps[i]));
      ro.append(scalar_array<T>(s.ro[i]));
    }
    out["old_dirs"] = dirs;
    out["old_stps"] = stps;
    out["ro"] = ro;
    out["H_diag"] = scalar_object<T>(s.H_diag);
    out["prev_flat_grad"] = vector_array(s.prev_flat_grad);
    out["prev_loss"] = s.prev_loss;
  }
  return out;
}

template <class T>
std::vector<T> vector_of(py::handle obj, const char* key) {
  auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a || a.ndim() != 1) throw py::value_error(std::string("LBFGS state '") + key + "' must be a 1-d array");
  return std::vector<T>(a.data(), a.data() + a.size());
}

fastoptim::LBFGSScalar scalar_of(py::handle obj) {
  auto t = obj.cast<py::tuple>();
  return fastoptim::LBFGSScalar{t[0].cast<double>(), t[1].cast<bool>()};
}

// Installs a state that fastoptim.LBFGS has normalised (arrays of the parameters' dtype; t and H_diag as
// (value, is_tensor); ro and al as floats / None), after checking it against n elements.
template <class T>
void state_set(LBFGSHolder<T>& h, const py::dict& d, std::size_t n) {
  fastoptim::LBFGSState<T> s;
  s.func_evals = d["func_evals"].cast<std::int64_t>();
  s.n_iter = d["n_iter"].cast<std::int64_t>();
  if (d.contains("al"))
    for (py::handle a : d["al"].cast<py::list>())
      s.al.push_back(a.is_none() ? std::nullopt : std::optional<T>(static_cast<T>(a.cast<double>())));
  if (d.contains("d")) {
    s.d = vector_of<T>(d["d"], "d");
    s.t = scalar_of(d["t"]);
    for (py::handle v : d["old_dirs"].cast<py::list>()) s.old_dirs.push_back(vector_of<T>(v, "old_dirs"));
    for (py::handle v : d["old_stps"].cast<py::list>()) s.old_stps.push_back(vector_of<T>(v, "old_stps"));
    for (py::handle v : d["ro"].cast<py::list>()) s.ro.push_back(static_cast<T>(v.cast<double>()));
    s.H_diag = scalar_of(d["H_diag"]);
    s.prev_flat_grad = vector_of<T>(d["prev_flat_grad"], "prev_flat_grad");
    s.prev_loss = d["prev_loss"].cast<double>();
  }
  try {
    s.check(n);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
  h.state = std::move(s);
}

fastoptim::LBFGSHyper hyper_of(const py::tuple& t) {
  fastoptim::LBFGSHyper h;
  h.lr = t[0].cast<double>();
  h.max_iter = t[1].cast<std::int64_t>();
  h.max_eval = t[2].cast<std::int64_t>();
  h.tolerance_grad = t[3].cast<double>();
  h.tolerance_change = t[4].cast<double>();
  h.history_size = t[5].cast<std::int64_t>();
  h.line_search_fn = t[6].cast<bool>() ? fastoptim::LineSearch::strong_wolfe : fastoptim::LineSearch::none;
  return h;
}

// evaluate() returns (loss as a float, gradients): a list or tuple with one array (or None) per parameter.
// Each gradient is checked like step()'s of the other optimizers, then copied into the flat gradient.
template <class T>
double step(const py::list& params, LBFGSHolder<T>& holder, const py::tuple& hyper, const py::function& evaluate) {
  const fastoptim::LBFGSHyper h = hyper_of(hyper);
  std::vector<fastoptim::Span<T>> spans;
  {
    Validator v;
    std::size_t index = 0;
    for (py::handle p : params) {
      DType dt;
      const Ref r = v.param(p, index, dt);
      if (dt != dtype_of<T>())
        throw py::type_error("parameter " + std::to_string(index) + " is " + dtype_name(dt) + ", but LBFGS was set up for " +
                             dtype_name(dtype_of<T>()) + " parameters");
      spans.emplace_back(static_cast<T*>(r.data), r.size);
      ++index;
    }
    v.check_overlaps();
  }
  std::size_t n = 0;
  for (const auto& s : spans) n += s.size();
  try {
    holder.state.check(n);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }

  const fastoptim::LBFGSClosure<T> closure = [&](const std::vector<fastoptim::Span<T>>& grads) -> double {
    py::gil_scoped_acquire gil;
    const py::tuple out = evaluate();
    const double loss = out[0].cast<double>();
    const py::object list = out[1];
    if (!py::isinstance<py::list>(list) && !py::isinstance<py::tuple>(list))
      throw py::type_error("the closure must return (loss, grads) with grads a list or tuple of one array (or None) per "
                           "parameter, got grads of type " +
                           py::str(py::type::of(list).attr("__name__")).cast<std::string>());
    const py::sequence seq = list;
    if (seq.size() != grads.size())
      throw py::value_error("the closure returned " + std::to_string(seq.size()) + " gradients, expected " +
                            std::to_string(grads.size()) + " (one per parameter, in param-group order)");
    Validator v;
    std::vector<const void*> sources(grads.size());
    for (std::size_t i = 0; i < grads.size(); ++i) {
      DType dt;
      v.param(params[i], i, dt);
      const py::object g = seq[i];
      if (g.is_none()) continue;  // as torch's p.grad None: a zero gradient
      sources[i] = v.like_param(g, "gradient", i, dt, false).data;
    }
    // Only once every gradient has passed (the views arrive unzeroed: each is written whole here).
    for (std::size_t i = 0; i < grads.size(); ++i) {
      if (sources[i])
        std::memcpy(grads[i].data(), sources[i], grads[i].size() * sizeof(T));
      else
        std::fill(grads[i].data(), grads[i].data() + grads[i].size(), T(0));
    }
    return loss;
  };
  using Kernel = double(const std::vector<fastoptim::Span<T>>&, fastoptim::LBFGSState<T>&, const fastoptim::LBFGSHyper&,
                        const fastoptim::LBFGSClosure<T>&, bool);
  const auto run = isa_kernel<Kernel>(std::is_same_v<T, float> ? "lbfgs_float32" : "lbfgs_float64");
  py::gil_scoped_release release;
  return run(spans, holder.state, h, closure, /*zeroed_grads=*/false);
}

template <class T>
void bind_dtype(py::module_& m, const char* holder_name) {
  py::class_<LBFGSHolder<T>>(m, holder_name).def(py::init<>());
  m.def("lbfgs_step", &step<T>, py::arg("params"), py::arg("state"), py::arg("hyper"), py::arg("evaluate"));
  m.def("lbfgs_state_get", &state_get<T>, py::arg("state"));
  m.def("lbfgs_state_set", &state_set<T>, py::arg("state"), py::arg("values"), py::arg("n"));
}

const Register reg(0, [](py::module_& m) {
  bind_dtype<float>(m, "LBFGSState_float32");
  bind_dtype<double>(m, "LBFGSState_float64");
});

}  // namespace
}  // namespace fastoptim_py
