// A bandwidth probe for the benchmark (python/fastoptim/_bench.py): one pass that reads R arrays and writes
// W arrays of n elements each (2, 4 or 8 bytes per element), with almost no arithmetic, split across threads
// like the kernels and compiled per instruction set like them (isa/stream.cpp). Given an optimizer's mix
// (Adam, float32: reads param, grad, exp_avg, exp_avg_sq and writes param, exp_avg, exp_avg_sq: 28 bytes per
// element) its time per element is the roofline a step with that traffic can approach.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <string>
#include <vector>

#include "binding.hpp"
#include "fastoptim/core/parallel.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace {

using StreamKernel = void(std::size_t, const void* const*, const int*, int, void* const*, const int*, int);

struct Arrays {
  std::vector<py::array> keep;  // holds the arrays while the GIL is released
  std::vector<void*> ptr;
  std::vector<int> itemsize;
};

Arrays collect(const py::sequence& seq, const char* what, bool writable, std::size_t& n, bool& have_n) {
  Arrays out;
  for (std::size_t i = 0; i < seq.size(); ++i) {
    py::object o = seq[i];
    if (!py::isinstance<py::array>(o))
      throw py::type_error(std::string("_stream: ") + what + "[" + std::to_string(i) + "] is not a numpy array");
    auto a = py::reinterpret_borrow<py::array>(o);
    const auto item = static_cast<int>(a.itemsize());
    if (item != 2 && item != 4 && item != 8)
      throw py::type_error(std::string("_stream: ") + what + "[" + std::to_string(i) +
                           "] must have 2, 4 or 8 bytes per element, got " + std::to_string(item));
    if (!(a.flags() & py::array::c_style))
      throw py::value_error(std::string("_stream: ") + what + "[" + std::to_string(i) + "] is not C-contiguous");
    if (writable && !a.writeable())
      throw py::value_error(std::string("_stream: ") + what + "[" + std::to_string(i) + "] is read-only");
    const auto size = static_cast<std::size_t>(a.size());
    if (have_n && size != n) throw py::value_error("_stream: arrays of different sizes");
    n = size;
    have_n = true;
    out.ptr.push_back(writable ? a.mutable_data() : const_cast<void*>(a.data()));
    out.itemsize.push_back(item);
    out.keep.push_back(std::move(a));
  }
  return out;
}

void stream(const py::sequence& reads, const py::sequence& writes) {
  std::size_t n = 0;
  bool have_n = false;
  const Arrays r = collect(reads, "reads", false, n, have_n);
  const Arrays w = collect(writes, "writes", true, n, have_n);
  if (!have_n) throw py::value_error("_stream: no arrays");
  std::vector<const void*> rp(r.ptr.begin(), r.ptr.end());
  auto* kernel = fastoptim_py::isa_kernel<StreamKernel>("stream");
  py::gil_scoped_release release;
  kernel(n, rp.data(), r.itemsize.data(), static_cast<int>(rp.size()), w.ptr.data(), w.itemsize.data(),
         static_cast<int>(w.ptr.size()));
}

void bind(py::module_& m) {
  m.def("_stream", &stream, py::arg("reads"), py::arg("writes"),
        "Bandwidth probe (benchmarks only): one pass reading every array of reads and overwriting every array "
        "of writes (same element count, 2/4/8-byte elements) with integer sums of the reads.");
}

fastoptim_py::Register reg(5, &bind);

}  // namespace
