// fastoptim._core: one call per optimizer step. Each call receives every (param, grad, state...) item of
// every param group, validates all of them (type, dtype, shape, contiguity, writeability, alignment,
// overlap) while holding the GIL, and only then releases the GIL and runs the kernels. A call that raises
// has modified nothing.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <cstdint>
#include <string>
#include <vector>

#include "fastoptim/version.hpp"
#include "fastoptim/core/overlap.hpp"
#include "fastoptim/core/parallel.hpp"
#if defined(_OPENMP)
#include <omp.h>
#endif
#include "kernels.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace {

using fastoptim_py::AdagradWork;
using fastoptim_py::AdamWork;
using fastoptim_py::DType;
using fastoptim_py::KernelSet;
using fastoptim_py::RMSpropWork;
using fastoptim_py::SGDWork;

const char* dtype_name(DType d) { return d == DType::f32 ? "float32" : "float64"; }

// One validated array: its data pointer and element count.
struct Ref {
  void* data = nullptr;
  std::size_t size = 0;
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

// Names what an array is, for messages built only when a check fails.
struct Who {
  const char* what;  // "parameter", "gradient", or a state key such as "exp_avg"
  std::size_t index;
  std::string str() const {
    const std::string i = std::to_string(index);
    if (std::string(what) == "parameter") return "parameter " + i;
    if (std::string(what) == "gradient") return "gradient of parameter " + i;
    return "state '" + std::string(what) + "' of parameter " + i;
  }
};

class Validator {
 public:
  Validator() : f32_(py::dtype::of<float>()), f64_(py::dtype::of<double>()) {}

  // The parameter fixes the dtype and shape that every other array of its item must have.
  Ref param(py::handle obj, std::size_t index, DType& dtype) {
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
    shape_ = a;
    return record(a, /*written=*/true, index);
  }

  // A gradient or state buffer: same dtype and shape as the parameter checked last.
  Ref like_param(py::handle obj, const char* what, std::size_t index, DType dtype, bool writeable) {
    const Who who{what, index};
    py::array a = as_array(obj, who);
    const py::dtype& want = dtype == DType::f32 ? f32_ : f64_;
    if (!a.dtype().is(want) && !a.dtype().equal(want))
      throw py::type_error(who.str() + " has dtype " + py::str(a.dtype()).cast<std::string>() + ", but parameter " +
                           std::to_string(index) + " is " + dtype_name(dtype) + " (no implicit conversion)");
    bool same = a.ndim() == shape_.ndim();
    for (py::ssize_t d = 0; same && d < a.ndim(); ++d) same = a.shape(d) == shape_.shape(d);
    if (!same)
      throw py::value_error(who.str() + " has shape " + shape_str(a) + ", but parameter " + std::to_string(index) +
                            " has shape " + shape_str(shape_));
    check_layout(a, who, writeable);
    return record(a, writeable, index);
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

  Ref record(const py::array& a, bool written, std::size_t index) {
    Ref r{const_cast<void*>(a.data()), static_cast<std::size_t>(a.size())};
    const auto b = reinterpret_cast<std::uintptr_t>(r.data);
    ranges_.push_back(fastoptim::detail::ByteRange{b, b + static_cast<std::size_t>(a.nbytes()), written, index});
    return r;
  }

  py::dtype f32_, f64_;
  py::array shape_;
  std::vector<fastoptim::detail::ByteRange> ranges_;
};

// ------------------------------------------------------------------------------------- dispatch

bool cpu_has(const char* feature) {
#if defined(FASTOPTIM_HAVE_X86_TIERS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (std::string(feature) == "avx2")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::string(feature) == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return std::string(feature) == "baseline";
}

std::vector<std::string> supported_capabilities() {
  std::vector<std::string> out{"baseline"};
  for (const char* c : {"avx2", "avx512"})
    if (cpu_has(c)) out.emplace_back(c);
  return out;
}

KernelSet kernels_for(const std::string& name) {
#if defined(FASTOPTIM_HAVE_X86_TIERS)
  if (name == "avx512") return fastoptim_py::kernels_avx512();
  if (name == "avx2") return fastoptim_py::kernels_avx2();
#endif
  (void)name;
  return fastoptim_py::kernels_baseline();
}

// The best tier the CPU supports, or FASTOPTIM_CPU_CAPABILITY=baseline|avx2|avx512 capped at it (as
// torch's ATEN_CPU_CAPABILITY). Every tier computes the same bits; only the speed differs.
KernelSet& active_kernels() {
  static KernelSet k = [] {
    const auto supported = supported_capabilities();
    std::string pick = supported.back();
    if (const char* env = std::getenv("FASTOPTIM_CPU_CAPABILITY")) {
      const std::string want = env;
      const std::vector<std::string> order{"baseline", "avx2", "avx512"};
      const auto it = std::find(order.begin(), order.end(), want);
      if (it == order.end())
        throw std::invalid_argument("FASTOPTIM_CPU_CAPABILITY must be baseline, avx2 or avx512, got '" + want + "'");
      if (std::find(supported.begin(), supported.end(), want) != supported.end()) pick = want;
    }
    return kernels_for(pick);
  }();
  return k;
}

// ---------------------------------------------------------------------------------------------- SGD

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

template <class Hyper>
std::vector<Hyper> hypers_of(const std::vector<py::tuple>& tuples, Hyper (*convert)(const py::tuple&)) {
  std::vector<Hyper> out;
  out.reserve(tuples.size());
  for (const auto& t : tuples) out.push_back(convert(t));
  return out;
}

std::size_t group_of(const py::tuple& t, std::size_t groups) {
  const auto g = t[1].cast<std::size_t>();
  if (g >= groups) throw py::value_error("internal: group index out of range");
  return g;
}

// items: (index, group, param, grad, momentum_buffer | None, init_buffer)
void sgd_step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &sgd_hyper);
  Validator v;
  std::vector<SGDWork> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    SGDWork w{};
    w.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.dtype);
    w.param = p.data;
    w.n = p.size;
    w.grad = v.like_param(t[3], "gradient", index, w.dtype, false).data;
    if (hypers[w.group].momentum != 0.0)
      w.momentum_buffer = v.like_param(t[4], "momentum_buffer", index, w.dtype, true).data;
    w.init_buffer = t[5].cast<bool>();
    work.push_back(w);
  }
  v.check_overlaps();
  const KernelSet& k = active_kernels();
  py::gil_scoped_release release;
  k.sgd(work, hypers);
}

// --------------------------------------------------------------------------------------------- Adam

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
  const auto hypers = hypers_of(hyper_tuples, &adam_hyper);
  Validator v;
  std::vector<AdamWork> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    AdamWork w{};
    w.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.dtype);
    w.param = p.data;
    w.n = p.size;
    w.grad = v.like_param(t[3], "gradient", index, w.dtype, false).data;
    w.exp_avg = v.like_param(t[4], "exp_avg", index, w.dtype, true).data;
    w.exp_avg_sq = v.like_param(t[5], "exp_avg_sq", index, w.dtype, true).data;
    if (hypers[w.group].amsgrad) w.max_exp_avg_sq = v.like_param(t[6], "max_exp_avg_sq", index, w.dtype, true).data;
    w.step = t[7].cast<double>();
    work.push_back(w);
  }
  v.check_overlaps();
  const KernelSet& k = active_kernels();
  py::gil_scoped_release release;
  k.adam(work, hypers);
}

// ------------------------------------------------------------------------------------------ RMSprop

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
  const auto hypers = hypers_of(hyper_tuples, &rmsprop_hyper);
  Validator v;
  std::vector<RMSpropWork> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    RMSpropWork w{};
    w.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.dtype);
    w.param = p.data;
    w.n = p.size;
    w.grad = v.like_param(t[3], "gradient", index, w.dtype, false).data;
    w.square_avg = v.like_param(t[4], "square_avg", index, w.dtype, true).data;
    if (hypers[w.group].centered) w.grad_avg = v.like_param(t[5], "grad_avg", index, w.dtype, true).data;
    if (hypers[w.group].momentum > 0.0)
      w.momentum_buffer = v.like_param(t[6], "momentum_buffer", index, w.dtype, true).data;
    work.push_back(w);
  }
  v.check_overlaps();
  const KernelSet& k = active_kernels();
  py::gil_scoped_release release;
  k.rmsprop(work, hypers);
}

// ------------------------------------------------------------------------------------------ Adagrad

fastoptim::AdagradHyper adagrad_hyper(const py::tuple& t) {
  fastoptim::AdagradHyper h;
  h.lr = t[0].cast<double>();
  h.lr_decay = t[1].cast<double>();
  h.weight_decay = t[2].cast<double>();
  h.eps = t[3].cast<double>();
  h.maximize = t[4].cast<bool>();
  return h;
}

// items: (index, group, param, grad, sum, step after increment)
void adagrad_step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &adagrad_hyper);
  Validator v;
  std::vector<AdagradWork> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    AdagradWork w{};
    w.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.dtype);
    w.param = p.data;
    w.n = p.size;
    w.grad = v.like_param(t[3], "gradient", index, w.dtype, false).data;
    w.sum = v.like_param(t[4], "sum", index, w.dtype, true).data;
    w.step = t[5].cast<double>();
    work.push_back(w);
  }
  v.check_overlaps();
  const KernelSet& k = active_kernels();
  py::gil_scoped_release release;
  k.adagrad(work, hypers);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastoptim's compiled kernels; use the classes in the fastoptim package.";
  m.attr("__version__") = FASTOPTIM_VERSION_STRING;
  m.def("max_threads", &fastoptim::max_threads, "Threads an OpenMP parallel region may use (1 without OpenMP).");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error("number of threads must be >= 1, got " + std::to_string(n));
#if defined(_OPENMP)
        omp_set_num_threads(n);
#endif
      },
      py::arg("n"), "Threads for large arrays (OpenMP); results do not depend on it.");
#if defined(_OPENMP)
  m.attr("has_openmp") = true;
#else
  m.attr("has_openmp") = false;
#endif
  m.def("cpu_capability", [] { return std::string(active_kernels().name); },
        "The kernel tier in use: baseline, avx2 or avx512 (FASTOPTIM_CPU_CAPABILITY can lower it).");
  m.def("supported_cpu_capabilities", &supported_capabilities, "Kernel tiers this CPU can run.");
  m.def("sgd_step", &sgd_step, py::arg("items"), py::arg("hypers"));
  m.def("adam_step", &adam_step, py::arg("items"), py::arg("hypers"));
  m.def("rmsprop_step", &rmsprop_step, py::arg("items"), py::arg("hypers"));
  m.def("adagrad_step", &adagrad_step, py::arg("items"), py::arg("hypers"));

  auto binders = fastoptim_py::binders();
  std::stable_sort(binders.begin(), binders.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, bind] : binders) bind(m);
}
