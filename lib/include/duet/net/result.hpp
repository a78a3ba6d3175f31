// Result<T>: a value or a std::error_code (C++20 has no std::expected).
#pragma once

#include <cassert>
#include <system_error>
#include <utility>
#include <variant>

namespace duet::net {

template <typename T>
class [[nodiscard]] Result {
public:
  Result(T value) : v_(std::move(value)) {}                     // NOLINT(google-explicit-constructor)
  Result(std::error_code error) : v_(error) { assert(error); }  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  [[nodiscard]] std::error_code error() const { return ok() ? std::error_code{} : std::get<1>(v_); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

private:
  std::variant<T, std::error_code> v_;
};

}  // namespace duet::net
