// grey::peer: the client computed once, an IPv4 client on a dual-stack socket un-mapped, and its
// names looked up once however many ask.
#include <doctest/doctest.h>

#include <grey/session/peer.hpp>

namespace {
asio::ip::tcp::endpoint at(const char* address, std::uint16_t port) { return {asio::ip::make_address(address), port}; }
} // namespace

TEST_CASE("An IPv4 client seen through a dual-stack socket is its IPv4 address, once, for everyone") {
    const grey::peer p = grey::peer::accepted(at("::ffff:192.0.2.7", 40312), at("::ffff:198.51.100.1", 25));
    CHECK(p.address.is_v4());
    CHECK(p.address.to_string() == "192.0.2.7");
    CHECK(p.port == 40312);
    CHECK(p.local_address.to_string() == "198.51.100.1");
    CHECK(p.local_port == 25);
    CHECK(p.endpoint() == at("192.0.2.7", 40312));
    CHECK_FALSE(p.proxied_by);
    CHECK(p.known());
}

TEST_CASE("An IPv6 client stays IPv6, and the load balancer that named it is kept") {
    const grey::peer p = grey::peer::accepted(at("2001:db8::5", 1234), at("2001:db8::1", 25), at("10.0.0.1", 5555));
    CHECK(p.address.to_string() == "2001:db8::5");
    REQUIRE(p.proxied_by);
    CHECK(*p.proxied_by == at("10.0.0.1", 5555));
}

TEST_CASE("A client with no address is not known, and its names are the keyword without a look-up") {
    grey::peer p = grey::peer::accepted({}, {});
    CHECK_FALSE(p.known());
    asio::io_context ioc;
    const grey::dns::client_names* names = nullptr;
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { names = co_await grey::look_up_names(p); }, asio::detached);
    ioc.run();
    REQUIRE(names);
    CHECK(names->name == grey::dns::unavailable);
    CHECK(names->verified().empty());
}

TEST_CASE("A client's names are looked up the first time they are asked for, then kept") {
    grey::peer p = grey::peer::accepted(at("127.0.0.1", 1), at("127.0.0.1", 25));
    asio::io_context ioc;
    const grey::dns::client_names* first = nullptr;
    const grey::dns::client_names* second = nullptr;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            first = co_await grey::look_up_names(p);
            second = co_await grey::look_up_names(p);
        },
        asio::detached);
    ioc.run();
    REQUIRE(first);
    CHECK(first == second);  // the same record: no second look-up
    // /etc/hosts names 127.0.0.1 on every Debian machine, and the name resolves back to it.
    CHECK(first->verified() == "localhost");
}
