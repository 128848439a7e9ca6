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

template <class T>
class [[nodiscard]] result {
  public:
    using value_type = T;

    result() requires std::is_default_constructible_v<T> : state_(std::in_place_index<0>) {}
    result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    result(std::error_code ec) : state_(std::in_place_index<1>, ec) { assert(ec); }
    result(errc e) : result(make_error_code(e)) {}

    bool has_value() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { assert(has_value()); return *std::get_if<0>(&state_); }
    const T& value() const& { assert(has_value()); return *std::get_if<0>(&state_); }
    T&& value() && { assert(has_value()); return std::move(*std::get_if<0>(&state_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

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
    result() = default;
    result(std::error_code ec) : ec_(ec) { assert(ec); }
    result(errc e) : ec_(make_error_code(e)) {}
    bool has_value() const noexcept { return !ec_; }
    explicit operator bool() const noexcept { return has_value(); }
    std::error_code error() const noexcept { return ec_; }

  private:
    std::error_code ec_;
};

} // namespace grey
