// _core.adafactor_step: validates every item of an Adafactor step, then runs the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <optional>
#include <vector>

#include "adafactor_item.hpp"
#include "binding.hpp"
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

const Register reg(0, [](py::module_& m) { m.def("adafactor_step", &step, py::arg("items"), py::arg("hypers")); });

}  // namespace
}  // namespace fastoptim_py
