// core/parallel.hpp over core/thread_pool.hpp: every element is visited exactly once for any size, item
// layout and thread count; jobs come back to back (no lost wake-up: ctest's timeout catches a hang), from
// several threads at once, nested, and in a forked child.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/wait.h>
#include <unistd.h>
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

#include <fastoptim/core/parallel.hpp>

namespace {

std::atomic<int> failures{0};

void check(bool ok, const char* what, long a = 0, long b = 0) {
  if (!ok && failures.fetch_add(1) < 20) std::printf("FAILED: %s (%ld, %ld)\n", what, a, b);
}

void set_threads(int n) {
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

// parallel_for over n elements with a small grain: each element once.
void covers(std::size_t n, std::size_t grain) {
  std::vector<std::atomic<int>> hits(n);
  fastoptim::parallel_for(n, grain, [&](std::size_t b, std::size_t e) {
    check(b < e && e <= n, "range inside [0, n)", static_cast<long>(b), static_cast<long>(e));
    for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
  });
  for (std::size_t i = 0; i < n; ++i) check(hits[i].load() == 1, "parallel_for visits once", static_cast<long>(n), static_cast<long>(i));
}

// parallel_for_items over items of the given sizes (zeros included): each element of each item once.
void covers_items(const std::vector<std::size_t>& sizes, std::size_t grain) {
  std::vector<std::vector<std::atomic<int>>> hits;
  for (std::size_t s : sizes) hits.emplace_back(s);
  fastoptim::parallel_for_items(
      sizes.size(), [&](std::size_t i) { return sizes[i]; }, grain,
      [&](std::size_t i, std::size_t b, std::size_t e) {
        check(i < sizes.size() && b < e && e <= sizes[i], "item range inside the item", static_cast<long>(i),
              static_cast<long>(e));
        for (std::size_t k = b; k < e; ++k) hits[i][k].fetch_add(1, std::memory_order_relaxed);
      });
  for (std::size_t i = 0; i < sizes.size(); ++i)
    for (std::size_t k = 0; k < sizes[i]; ++k) check(hits[i][k].load() == 1, "parallel_for_items visits once", static_cast<long>(i), static_cast<long>(k));
}

void suite() {
  for (std::size_t n : {1, 63, 64, 65, 1000, 8191, 8192, 100000, 1000003}) {
    covers(n, 1);
    covers(n, 4096);
  }
  covers_items({0, 5, 0, 0, 100000, 1, 0, 70001, 64, 0}, 1);
  covers_items({0, 0, 0}, 1);
  std::vector<std::size_t> many(1000, 1000);
  many[17] = 0;
  many[999] = 0;
  covers_items(many, 4096);
}

}  // namespace

int main() {
  for (int threads : {1, 2, 3, 5}) {
    set_threads(threads);
    suite();
  }
  set_threads(4);

  // Jobs back to back, tiny and small: a lost wake-up would hang here.
  std::atomic<long> sum{0};
  for (int k = 0; k < 20000; ++k)
    fastoptim::parallel_for(std::size_t{1} << 14, 1024, [&](std::size_t b, std::size_t e) {
      sum.fetch_add(static_cast<long>(e - b), std::memory_order_relaxed);
    });
  check(sum.load() == 20000L << 14, "back-to-back jobs", sum.load(), 20000L << 14);

  // The workers do take part: chunks that take a while end up on more than one thread. (A job that stalled
  // on a busy machine makes the next ones serial for up to 256 ms: a few tries, far enough apart.)
  const auto threads_of_a_job = [](int chunk_ms, bool slow_workers) {
    std::mutex m;
    std::vector<std::thread::id> ids;
    const std::thread::id caller = std::this_thread::get_id();
    fastoptim::parallel_for(std::size_t{1} << 20, 1024, [&](std::size_t, std::size_t) {
      const bool worker = std::this_thread::get_id() != caller;
      std::this_thread::sleep_for(std::chrono::milliseconds(worker && slow_workers ? 40 * chunk_ms : chunk_ms));
      std::lock_guard<std::mutex> lock(m);
      if (std::find(ids.begin(), ids.end(), std::this_thread::get_id()) == ids.end()) ids.push_back(std::this_thread::get_id());
    });
    return ids.size();
  };
  std::size_t seen = 0;
  for (int attempt = 0; attempt < 5 && seen < 2; ++attempt) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    seen = threads_of_a_job(2, false);
  }
#if defined(_OPENMP)
  check(seen >= 2, "workers take part", static_cast<long>(seen));

  // A job whose caller waits far longer for a worker's chunk than a chunk takes (as when the OS takes the
  // worker off its core) makes the next jobs run on the caller alone, and parallel ones come back later.
  set_threads(2);
  std::size_t stalled_job = 0, next_job = 0;
  for (int attempt = 0; attempt < 3 && stalled_job < 2; ++attempt) {  // a busy machine may keep the worker away
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stalled_job = threads_of_a_job(1, true);  // the caller does its 1 ms chunks, then waits ~40 ms
    next_job = threads_of_a_job(1, false);
  }
  check(stalled_job >= 2, "the stalling job used a worker", static_cast<long>(stalled_job));
  check(next_job == 1, "after a stall: the caller alone", static_cast<long>(next_job));
  seen = 0;
  for (int attempt = 0; attempt < 5 && seen < 2; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    seen = threads_of_a_job(1, false);
  }
  check(seen >= 2, "workers back after the stall", static_cast<long>(seen));
  set_threads(4);
#endif

  // Nested: a chunk that calls parallel_for runs it on its own thread.
  std::atomic<long> nested{0};
  fastoptim::parallel_for(std::size_t{1} << 16, 1024, [&](std::size_t b, std::size_t e) {
    fastoptim::parallel_for(e - b, 64, [&](std::size_t nb, std::size_t ne) {
      nested.fetch_add(static_cast<long>(ne - nb), std::memory_order_relaxed);
    });
  });
  check(nested.load() == 1L << 16, "nested parallel_for", nested.load(), 1L << 16);

  // Several threads of the program at once: one gets the pool, the others run their chunks themselves.
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([] {
      for (int k = 0; k < 50; ++k) covers(100000, 1024);
    });
  for (auto& c : callers) c.join();

#if defined(__unix__) || defined(__APPLE__)
  // A forked child has none of the parent's workers: it must get a pool of its own.
  const pid_t child = fork();
  if (child == 0) {
    suite();
    std::_Exit(failures.load() == 0 ? 0 : 1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "parallel_for in a forked child");
#endif

  if (failures.load()) {
    std::printf("%d failures\n", failures.load());
    return 1;
  }
  std::printf("thread pool: all elements visited once\n");
  return 0;
}
