// grey::deadline on sockets of any kind: a wait past its deadline is cancelled and says so; a
// stop ends an idle wait at once and caps any other at the drain deadline.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>

#include <grey/deadline.hpp>

using namespace std::chrono_literals;

namespace {
/// A connected pair of unix-domain sockets: one to wait on, one that never writes.
struct pair_of_sockets {
    explicit pair_of_sockets(asio::io_context& ioc) : a(ioc), b(ioc) { asio::local::connect_pair(a, b); }
    asio::local::stream_protocol::socket a, b;
};

/// Reads once from `s` under `d`; what the read ended with.
asio::awaitable<asio::error_code> read_once(asio::local::stream_protocol::socket& s) {
    char c;
    auto [ec, n] = co_await s.async_read_some(asio::buffer(&c, 1), grey::detail::use_nothrow);
    (void)n;
    co_return ec;
}
} // namespace

TEST_CASE("A wait past its deadline is cancelled, on a unix-domain socket too, and expired() says why") {
    asio::io_context ioc;
    pair_of_sockets sockets(ioc);
    auto d = std::make_shared<grey::deadline>(ioc.get_executor());
    d->guard(sockets.a);
    d->start(d);
    asio::error_code ended;
    const auto started = std::chrono::steady_clock::now();
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            d->expires_after(50ms);
            ended = co_await read_once(sockets.a);
            d->stop();
        },
        asio::detached);
    ioc.run_for(5s);
    CHECK(ended == asio::error::operation_aborted);
    CHECK(d->expired());
    CHECK(std::chrono::steady_clock::now() - started < 4s);
}

TEST_CASE("Moving the deadline later keeps the wait going") {
    asio::io_context ioc;
    pair_of_sockets sockets(ioc);
    auto d = std::make_shared<grey::deadline>(ioc.get_executor());
    d->guard(sockets.a);
    d->start(d);
    asio::error_code ended = asio::error::would_block;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            d->expires_after(10ms);
            d->expires_after(10s);
            ended = co_await read_once(sockets.a);
            d->stop();
        },
        asio::detached);
    ioc.run_for(200ms);
    CHECK(ended == asio::error::would_block);  // still reading
    CHECK_FALSE(d->expired());
    const char c = 'x';
    asio::write(sockets.b, asio::buffer(&c, 1));
    ioc.run_for(1s);
    CHECK_FALSE(ended);
}

TEST_CASE("A stop ends an idle wait at once, and a busy one by the drain deadline") {
    asio::io_context ioc;
    pair_of_sockets sockets(ioc);
    auto d = std::make_shared<grey::deadline>(ioc.get_executor());
    d->guard(sockets.a);
    d->start(d);
    bool idle = true;
    SUBCASE("idle") { idle = true; }
    SUBCASE("busy") { idle = false; }
    asio::error_code ended = asio::error::would_block;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            d->set_idle(idle);
            d->expires_after(1h);
            ended = co_await read_once(sockets.a);
            d->stop();
        },
        asio::detached);
    ioc.run_for(50ms);
    const auto stopped = std::chrono::steady_clock::now();
    d->shutdown(stopped + 300ms);
    CHECK(d->shutting_down());
    ioc.run_for(100ms);
    if (idle) {
        CHECK(ended == asio::error::operation_aborted);
    } else {
        CHECK(ended == asio::error::would_block);  // a busy session may finish until the drain deadline
        ioc.run_for(2s);
        CHECK(ended == asio::error::operation_aborted);
        CHECK(std::chrono::steady_clock::now() - stopped >= 300ms);
    }
}
