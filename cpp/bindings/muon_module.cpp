// fastoptim._muon_<tier>: Muon's kernels for one instruction set, as an extension module of their own
// (muon_abi.hpp explains why). CMake compiles this file once per tier with that tier's flags and defines
// FASTOPTIM_MUON_MODULE (the module name), FASTOPTIM_MUON_TIER_NAME and FASTOPTIM_ISA_TIER.

// The pool is _core's (muon_abi.hpp): run_chunks below forwards to it.
#define FASTOPTIM_POOL_EXTERN 1

#include <pybind11/pybind11.h>

#include <atomic>
#include <new>

#include "fastoptim/muon/muon_kernel.hpp"
#include "muon_abi.hpp"

namespace {
// _core's run_chunks, as the last run() received it (always the same function).
std::atomic<fastoptim_py::MuonChunkRunner> core_runner{nullptr};
}  // namespace

namespace fastoptim {
namespace detail {
void run_chunks(std::size_t chunks, int threads, ChunkFn fn, void* ctx) noexcept {
  if (const auto runner = core_runner.load(std::memory_order_relaxed)) return runner(chunks, threads, fn, ctx);
  for (std::size_t c = 0; c < chunks; ++c) fn(ctx, c);
}
}  // namespace detail
}  // namespace fastoptim

namespace {

int run(const fastoptim_py::MuonTask* tasks, std::size_t count, const fastoptim::MuonHyper* hypers,
        fastoptim_py::MuonChunkRunner runner) noexcept {
  core_runner.store(runner, std::memory_order_relaxed);
  fastoptim::MuonWorkspace ws;
  try {
    const int threads = fastoptim::max_threads();
    for (std::size_t i = 0; i < count; ++i) ws.reserve(tasks[i].rows, tasks[i].cols, threads);
  } catch (const std::bad_alloc&) {
    return 1;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const auto& t = tasks[i];
    if (t.f64)
      fastoptim::muon_update<double>(static_cast<double*>(t.param), static_cast<const double*>(t.grad),
                                     static_cast<double*>(t.buf), t.rows, t.cols, hypers[t.group], ws);
    else
      fastoptim::muon_update<float>(static_cast<float*>(t.param), static_cast<const float*>(t.grad),
                                    static_cast<float*>(t.buf), t.rows, t.cols, hypers[t.group], ws);
  }
  return 0;
}

const fastoptim_py::MuonKernel kKernel{fastoptim_py::kMuonAbiVersion, FASTOPTIM_ISA_TIER, &run};

}  // namespace

PYBIND11_MODULE(FASTOPTIM_MUON_MODULE, m) {
  m.doc() = "Muon's kernels for one instruction set (private: fastoptim._core imports the one for its tier).";
  m.attr("tier") = FASTOPTIM_MUON_TIER_NAME;
  m.attr("gemm_lanes") = fastoptim::impl::kGemmLanes;
  m.attr("kernel") = pybind11::capsule(static_cast<const void*>(&kKernel), FASTOPTIM_MUON_CAPSULE);
  // The bfloat16 dot-product kernel (AVX512-BF16): whether this module has it and uses it; tests switch it
  // off to compare it with the FMA kernel (the same bits).
  m.def(
      "gemm_dot", [](pybind11::object on) {
#if FASTOPTIM_MUON_DOT
        auto& enabled = fastoptim::impl::gemm_dot_enabled();
        if (!on.is_none()) enabled.store(on.cast<bool>() && __builtin_cpu_supports("avx512bf16"));
        return enabled.load();
#else
        (void)on;
        return false;
#endif
      },
      pybind11::arg("on") = pybind11::none(),
      "Whether products use the bfloat16 dot-product kernel; on=True/False switches it (on only where the CPU has "
      "AVX512-BF16).");
}
