#pragma once
// The worker threads behind parallel_for (parallel.hpp). A step is cut into chunks that the calling thread
// and the workers claim from a shared counter, and the caller returns as soon as every chunk is done: it
// never waits for a worker that has not started. An OpenMP team cannot do that (its closing barrier waits
// for every member), and on a machine shared with other work a member the scheduler has not run yet costs
// a whole time slice: a 40 us step took 8 ms with two threads while two compilers ran. Here the caller
// simply does the chunks itself. Which thread runs a chunk does not matter: every caller's chunks are
// elementwise or fixed blocks, so results do not depend on it.
//
// The thread count comes from parallel.hpp (OpenMP's, so OMP_NUM_THREADS and omp_set_num_threads apply).
// A program that compiles its kernels several times for different instruction sets (the Python extension)
// defines FASTOPTIM_POOL_EXTERN everywhere and FASTOPTIM_POOL_IMPLEMENTATION in one plain translation unit,
// so the pool (and the standard-library code it instantiates) is compiled once, for the baseline CPU.

#include <cstddef>

namespace fastoptim {
namespace detail {

// Runs chunk(ctx, c) for every c in [0, chunks), on the calling thread and up to threads - 1 workers.
using ChunkFn = void (*)(void* ctx, std::size_t chunk);

}  // namespace detail
}  // namespace fastoptim

#if defined(FASTOPTIM_POOL_EXTERN) && !defined(FASTOPTIM_POOL_IMPLEMENTATION)

namespace fastoptim {
namespace detail {
void run_chunks(std::size_t chunks, int threads, ChunkFn fn, void* ctx) noexcept;  // defined once by the program
}  // namespace detail
}  // namespace fastoptim

#else

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define FASTOPTIM_POOL_HAS_FORK 1
#endif
#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#endif

#if defined(FASTOPTIM_POOL_IMPLEMENTATION)
#define FASTOPTIM_POOL_LINKAGE
#else
#define FASTOPTIM_POOL_LINKAGE inline
#endif

namespace fastoptim {
namespace detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

inline void run_serially(std::size_t chunks, ChunkFn fn, void* ctx) noexcept {
  for (std::size_t c = 0; c < chunks; ++c) fn(ctx, c);
}

#if defined(_OPENMP)
class ThreadPool {
 public:
  // Limits of one job (run_chunks keeps within them).
  static constexpr std::size_t kMaxChunks = 0xffff;
  static constexpr int kMaxHelpers = 0xff;

  // The process's pool, made on first use. A forked child gets a new one (the parent's workers do not exist
  // there); the old one is left as it is.
  static ThreadPool& instance() {
    ThreadPool* p = current().load(std::memory_order_acquire);
    if (p) return *p;
    auto* fresh = new ThreadPool();  // never deleted: workers may sleep in it until the process ends
    if (current().compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) {
#if defined(FASTOPTIM_POOL_HAS_FORK)
      static const bool registered = (pthread_atfork(nullptr, nullptr, [] { current().store(nullptr); }), true);
      (void)registered;
#endif
      return *fresh;
    }
    delete fresh;  // another thread made it first (no worker started yet)
    return *p;
  }

  // chunks <= kMaxChunks, threads - 1 <= kMaxHelpers.
  void run(std::size_t chunks, int threads, ChunkFn fn, void* ctx) noexcept {
    // One job at a time; a second caller (another thread of the program), or a chunk that itself calls
    // parallel_for, runs its chunks on its own thread.
    std::unique_lock<std::mutex> submit(submit_, std::try_to_lock);
    if (!submit.owns_lock() || inside()) return run_serially(chunks, fn, ctx);
    const Clock::time_point start = Clock::now();
    if (start < serial_until_) return run_serially(chunks, fn, ctx);  // see stalled()
    helpers_asked_.store(threads - 1, std::memory_order_relaxed);
    const int helpers = grow(threads - 1);
    if (helpers <= 0) return run_serially(chunks, fn, ctx);
    fn_ = fn;  // read by workers only after claiming a chunk of this job, which the release below publishes
    ctx_ = ctx;
    done_.store(0, std::memory_order_relaxed);
    generation_ = (generation_ + 1) & kGenerationMask;
    const std::uint64_t job = (std::uint64_t{generation_} << kGenerationShift) |
                              (static_cast<std::uint64_t>(helpers) << kHelpersShift) |
                              (static_cast<std::uint64_t>(chunks) << kChunksShift);
    {
      std::lock_guard<std::mutex> lock(mutex_);  // a worker about to sleep sees the job or is woken
      ticket_.store(job, std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
    inside() = true;
    const std::size_t mine = work(generation_);
    inside() = false;
    // Wait for the chunks other threads claimed (never for a worker that claimed none).
    const Clock::time_point mine_done = Clock::now();
    std::size_t spins = 0;
    while (done_.load(std::memory_order_acquire) + mine < chunks) {
      if (++spins < 4096 && threads <= cpus_)
        cpu_relax();
      else
        std::this_thread::yield();  // a claimed chunk's thread may be waiting for this core
    }
    if (spins == 0) {
      backoff_ = Clock::duration::zero();
    } else {
      const Clock::time_point end = Clock::now();
      if (stalled(mine, mine_done - start, end - mine_done)) {
        backoff_ = std::min(std::max(2 * backoff_, Clock::duration(kFirstBackoff)), Clock::duration(kMaxBackoff));
        serial_until_ = end + backoff_;
      } else {
        backoff_ = Clock::duration::zero();
      }
    }
  }

 private:
  // The ticket: the whole state of the current job in one atomic word, so that a worker decides from one
  // load whether there is work for it: generation (24 bits) | helpers (8) | chunks (16) | next chunk (16).
  static constexpr int kGenerationShift = 40, kHelpersShift = 32, kChunksShift = 16;
  static constexpr std::uint32_t kGenerationMask = 0xffffff;
  static constexpr int kSpinMicroseconds = 1000;
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kFirstBackoff{4}, kMaxBackoff{256};

  // Whether the caller waited for a chunk far longer than a chunk takes: the worker running it was taken
  // off its core mid-chunk, as happens when other processes want the CPUs, and the caller can only wait
  // for the scheduler to bring it back (a time slice, milliseconds; a claimed chunk cannot be redone:
  // updates are in place). Then the next jobs run on the calling thread alone for a while (4 ms, doubling
  // to 256 ms while it keeps happening; a job that runs clean resets it): on a busy machine one thread
  // beats two that keep waiting for each other. Results do not depend on it (nor on any thread count).
  // Waits under kStallSlack are not counted: a virtual machine's CPU is also paused for tens to hundreds of
  // microseconds now and then, once, which an OpenMP team pays as well; backing off for it made a 2-thread
  // SGD step of 1e6 in the side-by-side benchmark ~10% slower, while a scheduler's time slice (the case
  // above) is milliseconds and is still caught.
  static constexpr std::chrono::microseconds kStallSlack{500};
  static bool stalled(std::size_t mine, Clock::duration own, Clock::duration waited) noexcept {
    if (mine == 0) return false;  // the caller started late itself: nothing to compare with
    return waited > 4 * (own / static_cast<Clock::rep>(mine)) + kStallSlack;
  }

  ThreadPool() : cpus_(usable_cpus()) {}

  static int usable_cpus() noexcept {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    const unsigned n = std::thread::hardware_concurrency();
    return n ? static_cast<int>(n) : 1;
  }

  static std::atomic<ThreadPool*>& current() {
    static std::atomic<ThreadPool*> pool{nullptr};
    return pool;
  }
  static bool& inside() {
    static thread_local bool flag = false;
    return flag;
  }
  static std::uint32_t generation_of(std::uint64_t t) { return static_cast<std::uint32_t>(t >> kGenerationShift); }

  // Claims and runs chunks of job `generation` until none is left; returns how many.
  std::size_t work(std::uint32_t generation) noexcept {
    std::size_t count = 0;
    std::uint64_t t = ticket_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint64_t next = t & 0xffff, chunks = (t >> kChunksShift) & 0xffff;
      if (generation_of(t) != generation || next >= chunks) return count;
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      // The job cannot end before this chunk is done, so fn_ and ctx_ are this job's.
      fn_(ctx_, static_cast<std::size_t>(next));
      ++count;
      t = ticket_.load(std::memory_order_acquire);
    }
  }

  // Makes sure `want` workers exist (fewer if threads cannot be created); returns how many may help.
  int grow(int want) noexcept {
    if (want <= 0) return 0;
    try {
      while (static_cast<int>(workers_.size()) < want) {
        const int index = static_cast<int>(workers_.size());
        workers_.emplace_back([this, index] { worker(index); });
      }
    } catch (...) {  // no more threads: use the ones there are
    }
    return static_cast<int>(workers_.size()) < want ? static_cast<int>(workers_.size()) : want;
  }

  // Worker `index` helps with the jobs that ask for more than `index` helpers.
  void worker(int index) noexcept {
    inside() = true;  // a chunk that calls parallel_for runs it serially
    std::uint32_t seen = generation_of(ticket_.load(std::memory_order_acquire));
    for (;;) {
      // Wait for the next job: spin for a while, then sleep. Steps come back to back or nearly (a thousand
      // tensors' bookkeeping takes ~0.3 ms between two parallel sections), and a worker woken from sleep
      // arrives tens of microseconds late; OpenMP's workers spin for about as long by default.
      std::uint64_t t = ticket_.load(std::memory_order_acquire);
      // More threads than CPUs: a spinning worker would take the CPU from the threads doing the work.
      const int spin_us = helpers_asked_.load(std::memory_order_relaxed) + 1 <= cpus_ ? kSpinMicroseconds : 0;
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
      for (unsigned spin = 1; generation_of(t) == seen; ++spin) {
        cpu_relax();
        t = ticket_.load(std::memory_order_acquire);
        if (spin % 256 == 0 && std::chrono::steady_clock::now() > spin_until) break;
      }
      if (generation_of(t) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        wake_.wait(lock, [&] {
          t = ticket_.load(std::memory_order_acquire);
          return generation_of(t) != seen;
        });
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      }
      seen = generation_of(t);
      if (static_cast<int>((t >> kHelpersShift) & 0xff) <= index) continue;
      const std::size_t n = work(seen);
      if (n) done_.fetch_add(n, std::memory_order_acq_rel);
    }
  }

  std::mutex submit_;  // held by the thread whose job is running
  std::mutex mutex_;   // pairs the ticket's publication with workers going to sleep
  std::condition_variable wake_;
  std::atomic<std::uint64_t> ticket_{0};
  std::atomic<std::size_t> done_{0};  // chunks of this job finished by workers
  std::atomic<int> sleepers_{0};
  std::atomic<int> helpers_asked_{0};  // by the latest job
  const int cpus_;                     // this process may run on
  std::uint32_t generation_ = 0;      // the submitting thread's copy
  Clock::time_point serial_until_{};  // see stalled(); only touched by the submitting thread
  Clock::duration backoff_{};
  ChunkFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::vector<std::thread> workers_;
};
#endif

FASTOPTIM_POOL_LINKAGE void run_chunks(std::size_t chunks, int threads, ChunkFn fn, void* ctx) noexcept {
#if defined(_OPENMP)  // the thread count comes from OpenMP; without it (and its threads library) run serially
  if (threads > ThreadPool::kMaxHelpers + 1) threads = ThreadPool::kMaxHelpers + 1;
  if (threads > 1 && chunks > 1 && chunks <= ThreadPool::kMaxChunks)
    return ThreadPool::instance().run(chunks, threads, fn, ctx);
#else
  (void)threads;
#endif
  run_serially(chunks, fn, ctx);
}

}  // namespace detail
}  // namespace fastoptim

#undef FASTOPTIM_POOL_LINKAGE

#endif
