// grey/result.hpp — result<T>: a value or a std::error_code. A small stand-in for C++23's
// std::expected<T, std::error_code>, spelled with its member names so that it can become an
// alias when Grey moves to C++23.
#pragma once

#include <cassert>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "error.hpp"

namespace grey {
/// @addtogroup group_errors
/// @{

/// A T, or the error that stands in its place: what sans-IO code returns instead of
/// throwing. Member names are std::expected's, so that this becomes an alias of
/// `std::expected<T, std::error_code>` once Grey moves to C++23. Unlike std::expected, a
/// missing value is an assertion, never an exception.
template <class T>
class [[nodiscard]] result {
  public:
    using value_type = T;  ///< T, as std::expected names it

    /// A value-initialised T, for the types that have one.
    result() requires std::is_default_constructible_v<T> : state_(std::in_place_index<0>) {}
    /// Success: holds `value`.
    result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    /// Failure: `ec` must be an error (asserted), since an empty code would mean success.
    result(std::error_code ec) : state_(std::in_place_index<1>, ec) { assert(ec); }
    /// Failure with one of Grey's codes, so that a parser can `return errc::syntax_error;`.
    result(errc e) : result(make_error_code(e)) {}

    /// Whether a value is held rather than an error.
    bool has_value() const noexcept { return state_.index() == 0; }
    /// has_value(), for `if (auto r = parse(...))`.
    explicit operator bool() const noexcept { return has_value(); }

    /// The value; only when has_value() (asserted).
    T& value() & { assert(has_value()); return *std::get_if<0>(&state_); }
    /// The value, read-only; only when has_value() (asserted).
    const T& value() const& { assert(has_value()); return *std::get_if<0>(&state_); }
    /// The value, moved out of an expiring result; only when has_value() (asserted).
    T&& value() && { assert(has_value()); return std::move(*std::get_if<0>(&state_)); }
    /// value(), spelled as std::expected and std::optional spell it.
    T& operator*() & { return value(); }
    /// value(), read-only.
    const T& operator*() const& { return value(); }
    /// The value's members; only when has_value() (asserted).
    T* operator->() { return &value(); }
    /// The value's members, read-only; only when has_value() (asserted).
    const T* operator->() const { return &value(); }

    /// Why there is no value; an empty code when there is one.
    std::error_code error() const noexcept {
        return has_value() ? std::error_code{} : *std::get_if<1>(&state_);
    }

  private:
    std::variant<T, std::error_code> state_;
};

/// result<void>: success, or why not.
template <>
class [[nodiscard]] result<void> {
  public:
    /// Success.
    result() = default;
    /// Failure: `ec` must be an error (asserted).
    result(std::error_code ec) : ec_(ec) { assert(ec); }
    /// Failure with one of Grey's codes.
    result(errc e) : ec_(make_error_code(e)) {}
    /// Whether the operation succeeded.
    bool has_value() const noexcept { return !ec_; }
    /// has_value().
    explicit operator bool() const noexcept { return has_value(); }
    /// Why it failed; an empty code on success.
    std::error_code error() const noexcept { return ec_; }

  private:
    std::error_code ec_;
};

/// @}
} // namespace grey
