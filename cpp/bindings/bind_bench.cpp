// A bandwidth probe for the benchmark: Adam's memory traffic (read param, grad and two state arrays,
// write param and both states: 28 bytes per float32 element) with almost no arithmetic, split across
// threads like the kernels. Its time per element is the roofline an Adam step can approach.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>

#include "fastoptim/core/parallel.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace {

void stream_adam_like(py::array_t<float, 0> p, py::array_t<float, 0> g, py::array_t<float, 0> m,
                      py::array_t<float, 0> v) {
  const auto n = static_cast<std::size_t>(p.size());
  if (static_cast<std::size_t>(g.size()) != n || static_cast<std::size_t>(m.size()) != n ||
      static_cast<std::size_t>(v.size()) != n)
    throw py::value_error("stream_adam_like: arrays of different sizes");
  float* pp = p.mutable_data();
  const float* gp = g.data();
  float* mp = m.mutable_data();
  float* vp = v.mutable_data();
  py::gil_scoped_release release;
  fastoptim::parallel_for(n, fastoptim::kDefaultGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      const float gi = gp[i];
      mp[i] = mp[i] + gi;
      vp[i] = vp[i] + gi;
      pp[i] = pp[i] - gi;
    }
  });
}

void bind(py::module_& m) {
  m.def("_stream_adam_like", &stream_adam_like, py::arg("param"), py::arg("grad"), py::arg("exp_avg"),
        py::arg("exp_avg_sq"), "Bandwidth probe with Adam's access pattern (benchmarks only).");
}

fastoptim_py::Register reg(5, &bind);

}  // namespace
