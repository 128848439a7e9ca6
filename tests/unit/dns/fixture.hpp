// What the tests of the DNS evidence share: a resolver that asks the tests' unbound
// (tests/dns-fixture.sh, its zones in tests/dns-zones/; ctest sets GREY_TEST_DNS=HOST:PORT),
// run to its end on an io_context of its own, and a server that never answers.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <exception>
#include <string>

#include <grey/dns/resolver.hpp>

namespace grey_test {

/// Settings that forward every query to the tests' unbound.
inline grey::dns::resolver_settings dns_fixture() {
    const char* where = std::getenv("GREY_TEST_DNS");
    REQUIRE_MESSAGE(where, "GREY_TEST_DNS must name the test unbound (ctest sets it)");
    grey::dns::resolver_settings s;
    s.servers = {where};
    return s;
}

/// Runs `body(resolver&)` to its end on an io_context of its own, the resolver on it too.
template <class Body>
void with_resolver(const grey::dns::resolver_settings& s, Body body) {
    asio::io_context ioc;
    grey::dns::resolver r(ioc.get_executor(), s);
    bool done = false;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        co_await body(r);
        done = true;
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    ioc.run();
    CHECK(done);
}

/// A UDP socket on loopback that reads queries and drops them: a server that never answers.
/// Closed when the body is done, so that the io_context runs out of work.
struct silent_server {
    explicit silent_server(asio::io_context& ioc)
        : socket(ioc, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        drop();
    }
    void drop() {
        socket.async_receive(asio::buffer(buffer), [this](asio::error_code ec, std::size_t) {
            if (!ec) drop();
        });
    }
    std::string where() const { return "127.0.0.1:" + std::to_string(socket.local_endpoint().port()); }
    asio::ip::udp::socket socket;
    char buffer[512];
};

/// Runs `body(resolver&)` against a server that never answers, each query's timeout short.
template <class Body>
void with_silent_resolver(Body body) {
    asio::io_context ioc;
    silent_server silent(ioc);
    grey::dns::resolver_settings s;
    s.servers = {silent.where()};
    s.query_timeout = std::chrono::milliseconds(200);
    grey::dns::resolver r(ioc.get_executor(), s);
    bool done = false;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        co_await body(r);
        done = true;
        silent.socket.close();
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    ioc.run();
    CHECK(done);
}

} // namespace grey_test
