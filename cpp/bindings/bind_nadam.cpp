// _core.nadam_step: validates every item of a NAdam step, advances each mu_product, then runs the kernels
// without the GIL.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "binding.hpp"
#include "driver.hpp"
#include "fastoptim/nadam/nadam_kernel.hpp"
#include "registry.hpp"

namespace fastoptim_py {
namespace {

fastoptim::NAdamHyper hyper_of(const py::tuple& t) {
  fastoptim::NAdamHyper h;
  h.lr = t[0].cast<double>();
  h.beta1 = t[1].cast<double>();
  h.beta2 = t[2].cast<double>();
  h.eps = t[3].cast<double>();
  h.weight_decay = t[4].cast<double>();
  h.momentum_decay = t[5].cast<double>();
  h.decoupled_weight_decay = t[6].cast<bool>();
  h.maximize = t[7].cast<bool>();
  return h;
}

// The state's mu_product: a 0-d float32 or float64 array (torch's 0-d tensor), updated in place.
struct MuProduct {
  void* data;
  bool float32;
  double value() const { return float32 ? *static_cast<const float*>(data) : *static_cast<const double*>(data); }
  void set(double v) const {
    if (float32)
      *static_cast<float*>(data) = static_cast<float>(v);  // exact: v was rounded to float32 already
    else
      *static_cast<double*>(data) = v;
  }
};

MuProduct mu_product_of(py::handle obj, std::size_t index, Validator& v) {
  const auto who = [&] { return "state 'mu_product' of parameter " + std::to_string(index); };
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(who() + " must be a numpy.ndarray, got " +
                         py::str(py::type::of(obj).attr("__name__")).cast<std::string>());
  const auto a = py::reinterpret_borrow<py::array>(obj);
  const bool f32 = a.dtype().equal(py::dtype::of<float>());
  if (!f32 && !a.dtype().equal(py::dtype::of<double>()))
    throw py::type_error(who() + " has dtype " + py::str(a.dtype()).cast<std::string>() +
                         "; it must be float32 or float64 (native byte order)");
  if (a.ndim() != 0) throw py::value_error(who() + " must be a 0-d array, got " + std::to_string(a.ndim()) + " dimensions");
  if (!a.writeable()) throw py::value_error(who() + " is read-only");
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_)) throw py::value_error(who() + " is not aligned to its dtype");
  v.track_written(a, index);  // a view may live anywhere (fastoptim.torch lends tensors' memory): no overlaps
  return {const_cast<void*>(a.data()), f32};
}

// Each parameter advances its own mu_product: one array shared by two would advance twice.
void check_distinct(const std::vector<MuProduct>& mus, const std::vector<std::size_t>& indices) {
  std::vector<std::pair<void*, std::size_t>> seen;
  for (std::size_t i = 0; i < mus.size(); ++i)
    if (mus[i].data) seen.emplace_back(mus[i].data, indices[i]);
  std::sort(seen.begin(), seen.end());
  for (std::size_t i = 1; i < seen.size(); ++i)
    if (seen[i].first == seen[i - 1].first)
      throw py::value_error("state 'mu_product' of parameter " + std::to_string(std::max(seen[i].second, seen[i - 1].second)) +
                            " is the same array as that of parameter " +
                            std::to_string(std::min(seen[i].second, seen[i - 1].second)));
}

using Kernel = void(const std::vector<Item>&, const std::vector<fastoptim::NAdamHyper>&, const std::vector<double>&);

// items: (index, group, param, grad, exp_avg, exp_avg_sq, mu_product, step after increment)
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  Validator v(/*low_precision=*/true);
  std::vector<MuProduct> mus;
  std::vector<std::size_t> indices;
  mus.reserve(items.size());
  indices.reserve(items.size());
  auto work = collect_items(items, hypers, v, {"exp_avg", "exp_avg_sq"}, nullptr, [&](const py::tuple& t, Item& w) {
    const auto index = t[0].cast<std::size_t>();
    mus.push_back(mu_product_of(t[6], index, v));
    w.step = t[7].cast<double>();
    indices.push_back(index);
  });
  check_distinct(mus, indices);
  v.finish(work);

  // Everything is valid: from here on nothing throws. torch's `mu_product *= mu` happens before the update.
  std::vector<double> mu_products(work.size());
  for (std::size_t i = 0; i < work.size(); ++i) {
    const auto& h = hypers[work[i].group];
    mu_products[i] = fastoptim::nadam_mu_product(mus[i].value(), fastoptim::nadam_mu(h, work[i].step), mus[i].float32);
    mus[i].set(mu_products[i]);
  }
  const auto run = isa_kernel<Kernel>("nadam");
  py::gil_scoped_release release;
  run(work, hypers, mu_products);
}

// The same step with the state bookkeeping in C++ too (driver.hpp); mu_product is the extension's.
const DriverSpec<fastoptim::NAdamHyper> kSpec{
    "nadam", DriverStep::kParam,
    {{"exp_avg", 2, DriverSlot::kZeros}, {"exp_avg_sq", 3, DriverSlot::kZeros}},
    [](const fastoptim::NAdamHyper&, int) { return true; }};

class MuProductExtra {
 public:
  static constexpr bool kAlwaysState = true;
  MuProductExtra(const DriverSpec<fastoptim::NAdamHyper>&, const std::vector<py::tuple>&)
      : key_(driver_detail::interned("mu_product")), run_(isa_kernel<Kernel>("nadam")) {}
  void collect(std::size_t, PyObject* entry, Item& w, const fastoptim::NAdamHyper& h, std::size_t index, Validator& v) {
    PyObject* obj = entry ? driver_detail::get(entry, key_) : nullptr;
    MuProduct mu{nullptr, true};  // none yet: torch's ones((), float32)
    if (obj && obj != Py_None) {
      mu = mu_product_of(obj, index, v);
      held_.push_back(py::reinterpret_borrow<py::object>(obj));
    }
    products_.push_back(fastoptim::nadam_mu_product(mu.data ? mu.value() : 1.0, fastoptim::nadam_mu(h, w.step), mu.float32));
    mus_.push_back(mu);
    indices_.push_back(index);
  }
  void check() { check_distinct(mus_, indices_); }
  void run(const std::vector<Item>& work, const std::vector<fastoptim::NAdamHyper>& hypers) { run_(work, hypers, products_); }
  void publish(std::size_t k, PyObject* entry) {
    if (mus_[k].data) {
      mus_[k].set(products_[k]);  // in place, as torch's `mu_product *= mu`
      return;
    }
    py::array_t<float> fresh(std::vector<py::ssize_t>{});
    *fresh.mutable_data() = static_cast<float>(products_[k]);
    if (PyDict_SetItem(entry, key_, fresh.ptr()) != 0) throw py::error_already_set();
  }

 private:
  PyObject* key_;
  Kernel* run_;
  std::vector<MuProduct> mus_;
  std::vector<std::size_t> indices_;
  std::vector<double> products_;
  std::vector<py::object> held_;
};

const Register reg(0, [](py::module_& m) {
  m.def("nadam_step", &step, py::arg("items"), py::arg("hypers"));
  def_drive<MuProductExtra>(m, "nadam_drive", kSpec, &hyper_of);
});

}  // namespace
}  // namespace fastoptim_py
