#pragma once
// Non-owning views over contiguous memory: the only thing that crosses the kernel boundary besides
// scalars. C++17 has no std::span, so this is the small subset we need.

#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

namespace fastoptim {

template <class T>
class Span {
 public:
  using element_type = T;

  constexpr Span() noexcept = default;
  constexpr Span(std::nullptr_t) noexcept {}  // "no gradient this step"
  constexpr Span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}

  template <class U, class A, class = std::enable_if_t<std::is_convertible_v<U*, T*>>>
  Span(std::vector<U, A>& v) noexcept : data_(v.data()), size_(v.size()) {}

  template <class U, class A,
            class = std::enable_if_t<std::is_const_v<T> && std::is_convertible_v<const U*, T*>>>
  Span(const std::vector<U, A>& v) noexcept : data_(v.data()), size_(v.size()) {}

  template <class U, std::size_t N, class = std::enable_if_t<std::is_convertible_v<U*, T*>>>
  constexpr Span(std::array<U, N>& a) noexcept : data_(a.data()), size_(N) {}

  // A mutable view converts to a read-only one.
  template <class U, class = std::enable_if_t<std::is_const_v<T> && std::is_same_v<const U, T>>>
  constexpr Span(Span<U> other) noexcept : data_(other.data()), size_(other.size()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr T* begin() const noexcept { return data_; }
  constexpr T* end() const noexcept { return data_ + size_; }
  constexpr T& operator[](std::size_t i) const noexcept { return data_[i]; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace fastoptim
