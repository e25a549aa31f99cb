#pragma once
// Overlap detection for the arrays of one step: any array that gets written must not share a byte with
// another array of the step. Sorting by start address makes it O(n log n) for thousands of tensors.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace fastoptim {
namespace detail {

struct ByteRange {
  std::uintptr_t begin = 0, end = 0;
  bool written = false;
  std::size_t index = 0;  // caller's label (the parameter index), for messages
};

template <class T>
ByteRange byte_range(const T* data, std::size_t n, bool written, std::size_t index) {
  const auto b = reinterpret_cast<std::uintptr_t>(data);
  return ByteRange{b, b + n * sizeof(T), written, index};
}

// Returns a pair of overlapping ranges at least one of which is written, or {nullptr, nullptr}.
// Empty ranges never overlap. Reorders `ranges`.
inline std::pair<const ByteRange*, const ByteRange*> find_write_overlap(std::vector<ByteRange>& ranges) {
  ranges.erase(std::remove_if(ranges.begin(), ranges.end(), [](const ByteRange& r) { return r.begin == r.end; }),
               ranges.end());
  std::sort(ranges.begin(), ranges.end(), [](const ByteRange& a, const ByteRange& b) { return a.begin < b.begin; });
  // Sweep, keeping the range seen so far that reaches furthest and the written one that does.
  const ByteRange* reach = nullptr;
  const ByteRange* reach_written = nullptr;
  for (const ByteRange& r : ranges) {
    if (reach && r.begin < reach->end && (r.written || reach->written)) return {reach, &r};
    if (reach_written && r.begin < reach_written->end) return {reach_written, &r};
    if (!reach || r.end > reach->end) reach = &r;
    if (r.written && (!reach_written || r.end > reach_written->end)) reach_written = &r;
  }
  return {nullptr, nullptr};
}

}  // namespace detail
}  // namespace fastoptim
