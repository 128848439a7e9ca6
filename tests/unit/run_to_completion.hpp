// The unit tests' way to await one coroutine: run it to its end on an io_context of its own,
// and hand back what it returned (an exception it ends by is thrown again here).
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include <doctest/doctest.h>

#include <grey/detail/asio.hpp>

namespace grey_test {

/// Runs `op` to completion on a private io_context.
template <class T>
T run(asio::awaitable<T> op) {
    asio::io_context ioc;
    std::optional<T> out;
    asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T value) {
        if (e) std::rethrow_exception(e);
        out.emplace(std::move(value));
    });
    ioc.run();
    REQUIRE(out.has_value());
    return std::move(*out);
}

} // namespace grey_test
