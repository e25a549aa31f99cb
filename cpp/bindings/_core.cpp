// fastoptim._core: the module, the CPU dispatch and the per-ISA kernel registry. Each optimizer's
// _core.<name>_step lives in its own bind_<name>.cpp (one call per optimizer step: every item of every
// param group is validated while holding the GIL, and only then is the GIL released and the kernels run,
// so a call that raises has modified nothing); its kernels live in isa/<name>.cpp, compiled once per ISA.

// The thread pool's one definition in the module (every other file declares it: FASTOPTIM_POOL_EXTERN);
// first, before anything else includes core/parallel.hpp. This file is compiled for the baseline CPU.
#define FASTOPTIM_POOL_IMPLEMENTATION
#include "fastoptim/core/thread_pool.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastoptim/core/parallel.hpp"
#include "fastoptim/version.hpp"
#if defined(_OPENMP)
#include <omp.h>
#endif
#include "item.hpp"
#include "fastoptim/core/lowp.hpp"
#include "registry.hpp"

namespace py = pybind11;

namespace {

// float32 -> float16/bfloat16 (stochastic when key != 0, elements numbered from `first`) or back.
void lowp_convert(const py::array& src, py::array dst, unsigned long long key, std::size_t first) {
  const auto kind = [](const py::dtype& d) -> int {
    if (d.equal(py::dtype::of<float>())) return 0;
    if (d.equal(py::dtype("float16"))) return 1;
    if (d.itemsize() == 2 && d.kind() == 'V' && py::str(d.attr("name")).cast<std::string>() == "bfloat16") return 2;
    throw py::type_error("float32, float16 or bfloat16 arrays expected");
  };
  const int s = kind(src.dtype()), d = kind(dst.dtype());
  if ((s == 0) == (d == 0)) throw py::type_error("one array must be float32, the other float16 or bfloat16");
  if (src.ndim() != 1 || dst.ndim() != 1 || src.size() != dst.size()) throw py::value_error("1-d arrays of one size expected");
  if (!(src.flags() & py::array::c_style) || !(dst.flags() & py::array::c_style) || !dst.writeable())
    throw py::value_error("contiguous arrays expected, dst writeable");
  const auto n = static_cast<std::size_t>(src.size());
  if (s == 0) {
    const auto* in = static_cast<const float*>(src.data());
    auto* out = static_cast<std::uint16_t*>(dst.mutable_data());
    if (d == 1)
      fastoptim::f32_to_f16(in, out, n);
    else if (key == 0)
      fastoptim::f32_to_bf16(in, out, n);
    else
      fastoptim::f32_to_bf16_stochastic(in, out, n, key, first);
  } else {
    const auto* in = static_cast<const std::uint16_t*>(src.data());
    auto* out = static_cast<float*>(dst.mutable_data());
    if (s == 1)
      fastoptim::f16_to_f32(in, out, n);
    else
      fastoptim::bf16_to_f32(in, out, n);
  }
}


// ------------------------------------------------------------------------------------- dispatch

bool cpu_has(const char* feature) {
#if defined(FASTOPTIM_HAVE_X86_TIERS) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (std::string(feature) == "avx2")
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (std::string(feature) == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
  return std::string(feature) == "baseline";
}

std::vector<std::string> supported_capabilities() {
  std::vector<std::string> out{"baseline"};
  for (const char* c : {"avx2", "avx512"})
    if (cpu_has(c)) out.emplace_back(c);
  return out;
}

const std::vector<std::string> kTierNames{"baseline", "avx2", "avx512"};  // index = fastoptim_py::Tier

// The best tier the CPU supports, or FASTOPTIM_CPU_CAPABILITY=baseline|avx2|avx512 capped at it (as
// torch's ATEN_CPU_CAPABILITY). Every tier computes the same bits; only the speed differs.

int pick_tier() {
  static const int tier = [] {
    const auto supported = supported_capabilities();
    std::string pick = supported.back();
    if (const char* env = std::getenv("FASTOPTIM_CPU_CAPABILITY")) {
      const std::string want = env;
      if (std::find(kTierNames.begin(), kTierNames.end(), want) == kTierNames.end())
        throw std::invalid_argument("FASTOPTIM_CPU_CAPABILITY must be baseline, avx2 or avx512, got '" + want + "'");
      if (std::find(supported.begin(), supported.end(), want) != supported.end()) pick = want;
    }
    return static_cast<int>(std::find(kTierNames.begin(), kTierNames.end(), pick) - kTierNames.begin());
  }();
  return tier;
}

std::map<std::string, std::array<fastoptim_py::AnyKernel, fastoptim_py::kTiers>>& kernel_registry() {
  static std::map<std::string, std::array<fastoptim_py::AnyKernel, fastoptim_py::kTiers>> all;
  return all;
}

}  // namespace

namespace fastoptim_py {

int active_tier() { return pick_tier(); }

void register_isa_kernel(const char* name, int tier, AnyKernel fn) { kernel_registry()[name][static_cast<std::size_t>(tier)] = fn; }

AnyKernel find_isa_kernel(const char* name) {
  const auto it = kernel_registry().find(name);
  if (it != kernel_registry().end())
    for (int t = active_tier(); t >= 0; --t)
      if (const AnyKernel fn = it->second[static_cast<std::size_t>(t)]) return fn;
  throw std::logic_error(std::string("internal: no kernel registered as '") + name + "'");
}

}  // namespace fastoptim_py

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
  m.def("cpu_capability", [] { return kTierNames[pick_tier()]; },
        "The kernel tier in use: baseline, avx2 or avx512 (FASTOPTIM_CPU_CAPABILITY can lower it).");
  m.def("supported_cpu_capabilities", &supported_capabilities, "Kernel tiers this CPU can run.");

  m.def(
      "rounding_key",
      [](unsigned long long seed, unsigned long long counter, unsigned long long index) {
        return static_cast<unsigned long long>(fastoptim::rounding_key(seed, counter, index, 0));
      },
      py::arg("seed"), py::arg("counter"), py::arg("index"),
      "The stochastic-rounding key of parameter `index` at step `counter` (never 0).");
  m.def("_lowp_convert", &lowp_convert, py::arg("src"), py::arg("dst"), py::arg("key") = 0, py::arg("first") = 0,
        "Test hook: float32 <-> float16/bfloat16 conversion of whole 1-d arrays as the kernels do it.");

  auto binders = fastoptim_py::binders();
  std::stable_sort(binders.begin(), binders.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [order, bind] : binders) bind(m);
}
