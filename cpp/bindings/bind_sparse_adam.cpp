// _core.sparse_adam_step: validates every item of a SparseAdam step (every row index included), then runs
// the kernels without the GIL.

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "binding.hpp"
#include "fastoptim/sparse_adam/sparse_adam_kernel.hpp"
#include "registry.hpp"
#include "sparse_adam_item.hpp"

namespace fastoptim_py {
namespace {

fastoptim::SparseAdamHyper hyper_of(const py::tuple& t) {
  fastoptim::SparseAdamHyper h;
  h.lr = t[0].cast<double>();
  h.beta1 = t[1].cast<double>();
  h.beta2 = t[2].cast<double>();
  h.eps = t[3].cast<double>();
  h.maximize = t[4].cast<bool>();
  return h;
}

// items: (index, group, param, indices, values, exp_avg, exp_avg_sq, step after increment). indices: 1-D
// int64 rows of the leading dimension; values: one row of the parameter per index.
void step(const py::list& items, const std::vector<py::tuple>& hyper_tuples) {
  const auto hypers = hypers_of(hyper_tuples, &hyper_of);
  const py::dtype int64 = py::dtype::of<std::int64_t>();
  Validator v;
  std::vector<SparseAdamItem> work;
  work.reserve(items.size());
  for (py::handle h : items) {
    auto t = h.cast<py::tuple>();
    const auto index = t[0].cast<std::size_t>();
    SparseAdamItem w{};
    w.group = group_of(t, hypers.size());
    const Ref p = v.param(t[2], index, w.dtype);
    w.param = p.data;
    const auto pa = py::reinterpret_borrow<py::array>(t[2]);
    if (pa.ndim() == 0)
      throw py::value_error("parameter " + std::to_string(index) +
                            " is 0-d; SparseAdam's gradients are rows of a parameter's first dimension");
    const auto rows = static_cast<std::size_t>(pa.shape(0));
    w.row_size = rows == 0 ? 0 : p.size / rows;
    const py::array idx = v.other(t[3], "gradient indices", index, int64, "int64", {-1}, false);
    w.nnz = static_cast<std::size_t>(idx.shape(0));
    w.indices = static_cast<const std::int64_t*>(idx.data());
    std::vector<py::ssize_t> value_shape(pa.shape(), pa.shape() + pa.ndim());
    value_shape[0] = static_cast<py::ssize_t>(w.nnz);
    w.values = v.other(t[4], "gradient values", index, v.dtype_of(w.dtype), dtype_name(w.dtype), value_shape, false).data();
    for (std::size_t k = 0; k < w.nnz; ++k) {
      const std::int64_t row = w.indices[k];
      if (row < 0 || static_cast<std::uint64_t>(row) >= rows)
        throw py::value_error("gradient indices of parameter " + std::to_string(index) + ": index " +
                              std::to_string(row) + " (at position " + std::to_string(k) +
                              ") is out of range for dimension 0 of size " + std::to_string(rows));
    }
    w.exp_avg = v.like_param(t[5], "exp_avg", index, w.dtype, true).data;
    w.exp_avg_sq = v.like_param(t[6], "exp_avg_sq", index, w.dtype, true).data;
    w.step = t[7].cast<double>();
    work.push_back(w);
  }
  v.check_overlaps();
  const auto run =
      isa_kernel<void(const std::vector<SparseAdamItem>&, const std::vector<fastoptim::SparseAdamHyper>&)>("sparse_adam");
  py::gil_scoped_release release;
  run(work, hypers);
}

const Register reg(0, [](py::module_& m) { m.def("sparse_adam_step", &step, py::arg("items"), py::arg("hypers")); });

}  // namespace
}  // namespace fastoptim_py
