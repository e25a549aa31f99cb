#pragma once
// What crosses from _core.muon_step (bind_muon.cpp: validation, compiled once, baseline) to the Muon
// kernels, which are compiled once per instruction set, each into its own extension module
// fastoptim._muon_<tier> (muon_module.cpp). A module is its own shared object with hidden symbols, so the
// inline functions it instantiates (the GEMM, the standard library's templates) stay private to it: the
// linker can never hand AVX-512 code to baseline code (see item.hpp). Only plain data and one function
// pointer, in a capsule, cross the boundary. _core imports just the module of its tier
// (FASTOPTIM_CPU_CAPABILITY included): importing one for an instruction set the CPU lacks may crash.

#include <cstddef>

#include "fastoptim/core/thread_pool.hpp"  // fastoptim::detail::ChunkFn
#include "fastoptim/muon/muon_kernel.hpp"  // fastoptim::MuonHyper (plain data, shared)

namespace fastoptim_py {

// Bumped whenever MuonTask, MuonKernel or the meaning of run changes.
constexpr int kMuonAbiVersion = 2;
#define FASTOPTIM_MUON_CAPSULE "fastoptim._muon.kernel"

// One validated parameter: row-major (rows, cols) param, grad and momentum buffer of one dtype.
struct MuonTask {
  bool f64;
  std::size_t group;
  void* param;
  const void* grad;
  void* buf;
  std::size_t rows, cols;
};

// _core's fastoptim::detail::run_chunks: the module's threaded loops run on _core's thread pool, so that a
// process has one set of worker threads (a second pool's idle workers would spin on the cores the first
// one's need).
using MuonChunkRunner = void (*)(std::size_t chunks, int threads, fastoptim::detail::ChunkFn fn, void* ctx) noexcept;

// Updates every task (hypers[task.group]) on the pool behind `runner`; called without the GIL. Returns 0, or
// 1 when memory ran out, in which case nothing was modified (all scratch memory is allocated before the
// first update).
using MuonRun = int (*)(const MuonTask* tasks, std::size_t count, const fastoptim::MuonHyper* hypers,
                        MuonChunkRunner runner) noexcept;

struct MuonKernel {
  int abi_version;
  int tier;  // fastoptim_py::Tier
  MuonRun run;
};

}  // namespace fastoptim_py
