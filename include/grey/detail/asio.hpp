// grey/detail/asio.hpp — the Asio pieces Grey uses, in one place. Asio 1.22 (Debian 12) keeps
// as_tuple in asio::experimental; later versions promote it.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <functional>
#include <span>
#include <type_traits>
#include <utility>

namespace grey::detail {

using tcp = asio::ip::tcp;

/// Completion token for expected failures: `auto [ec, n] = co_await op(use_nothrow);`.
inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

inline asio::mutable_buffer buffer(std::span<char> s) noexcept { return {s.data(), s.size()}; }

template <class T>
struct is_awaitable : std::false_type {};
template <class T, class Executor>
struct is_awaitable<asio::awaitable<T, Executor>> : std::true_type {};

template <class T>
struct awaited {
    using type = T;
};
template <class T, class Executor>
struct awaited<asio::awaitable<T, Executor>> {
    using type = T;
};

/// A hook may return a value, an awaitable of it, or nothing: await_hook(f) awaits f()'s
/// result in every case. f is a lambda so that a void hook can be called too.
template <class F>
asio::awaitable<typename awaited<std::invoke_result_t<F&>>::type> await_hook(F f) {
    using R = std::invoke_result_t<F&>;
    // `co_return co_await` of a void awaitable, and co_await inside conditions, miscompile
    // with GCC 12: results are awaited into a variable first, here and throughout.
    if constexpr (is_awaitable<R>::value && std::is_void_v<typename awaited<R>::type>)
        co_await f();
    else if constexpr (is_awaitable<R>::value)
        co_return co_await f();
    else if constexpr (std::is_void_v<R>)
        f();
    else
        co_return f();
}

} // namespace grey::detail
