// What the DNS tests share: the loopback unbound that serves their zones (tests/dns-fixture.sh,
// started by ctest: GREY_TEST_DNS=HOST:PORT), and a server that never answers.
#pragma once

#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

#include <grey/dns/settings.hpp>
#include <grey/detail/asio.hpp>

namespace grey_test {

/// Resolver settings that forward every query to the test unbound.
inline grey::dns::resolver_settings dns_fixture() {
    const char* where = std::getenv("GREY_TEST_DNS");
    REQUIRE_MESSAGE(where, "GREY_TEST_DNS must name the test unbound (ctest sets it)");
    grey::dns::resolver_settings s;
    s.servers = {where};
    return s;
}

/// A UDP socket on loopback that reads queries and drops them: a server that never answers.
struct black_hole {
    explicit black_hole(asio::io_context& ioc) : socket(ioc, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
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

} // namespace grey_test
