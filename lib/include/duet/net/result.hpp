// Result<T>: a value or a std::error_code (C++20 has no std::expected).
#pragma once

#include <cassert>
#include <system_error>
#include <utility>
#include <variant>

namespace duet::net {

/// A value of type T, or the error that prevented it. Reading the value of an error is a
/// bug (it throws std::bad_variant_access); test ok() or the bool first.
template <typename T>
class [[nodiscard]] Result {
public:
  /// A success holding `value`.
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  /// A failure; `error` must be set (not the empty code).
  Result(std::error_code error) : v_(error) { assert(error); }  // NOLINT(google-explicit-constructor)

  /// True when a value is held.
  [[nodiscard]] bool ok() const { return v_.index() == 0; }
  /// ok().
  explicit operator bool() const { return ok(); }
  /// The error; the empty code on success.
  [[nodiscard]] std::error_code error() const { return ok() ? std::error_code{} : std::get<1>(v_); }
  /// The value (ok() only).
  T& value() & { return std::get<0>(v_); }
  /// The value (ok() only).
  const T& value() const& { return std::get<0>(v_); }
  /// The value, moved out (ok() only).
  T&& value() && { return std::get<0>(std::move(v_)); }
  /// Member access to the value (ok() only).
  T* operator->() { return &value(); }
  /// Member access to the value (ok() only).
  const T* operator->() const { return &value(); }
  /// The value (ok() only).
  T& operator*() & { return value(); }
  /// The value (ok() only).
  const T& operator*() const& { return value(); }
  /// The value, moved out (ok() only).
  T&& operator*() && { return std::move(*this).value(); }

private:
  std::variant<T, std::error_code> v_;
};

}  // namespace duet::net
