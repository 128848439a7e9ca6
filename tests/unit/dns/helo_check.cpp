// dns/helo_check.hpp against the tests' unbound (rep-test. in tests/dns-zones/reputation.conf),
// and against a server that never answers.
#include <doctest/doctest.h>

#include <string>

#include <grey/dns/helo_check.hpp>

#include "fixture.hpp"

using namespace grey::dns;
using grey_test::dns_fixture;
using grey_test::with_resolver;

namespace {
asio::ip::address ip(const char* text) { return asio::ip::make_address(text); }
} // namespace

TEST_CASE("A HELO name that resolves to the client is ok") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto v4 = co_await check_helo(r, "mail.rep-test", ip("198.19.7.1"));
        CHECK(v4.status == helo_status::ok);
        CHECK(v4.reason() == "helo=ok");
        const auto v6 = co_await check_helo(r, "mail6.rep-test", ip("3fff:0:0:7::1"));
        CHECK(v6.status == helo_status::ok);
        const auto mapped = co_await check_helo(r, "MAIL.Rep-Test.", ip("::ffff:198.19.7.1"));
        CHECK(mapped.status == helo_status::ok);
    });
}

TEST_CASE("A HELO name that resolves elsewhere is a mismatch, in either family") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto other = co_await check_helo(r, "mail.rep-test", ip("198.19.7.50"));
        CHECK(other.status == helo_status::mismatch);
        CHECK(other.reason() == "helo=mismatch");
        const auto v6_only = co_await check_helo(r, "v6only.rep-test", ip("198.19.7.50"));
        CHECK(v6_only.status == helo_status::mismatch);
    });
}

TEST_CASE("A HELO name with no address, or none at all, fails") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto missing = co_await check_helo(r, "nope.rep-test", ip("198.19.7.1"));
        CHECK(missing.status == helo_status::fail);
        CHECK(missing.reason() == "helo=fail:nxdomain");
        const auto no_address = co_await check_helo(r, "txtonly.rep-test", ip("198.19.7.1"));
        CHECK(no_address.status == helo_status::fail);
        CHECK(no_address.reason() == "helo=fail:no-address");
        const auto bare = co_await check_helo(r, "198.19.7.1", ip("198.19.7.1"));
        CHECK(bare.reason() == "helo=fail:not-a-name");
        const auto junk = co_await check_helo(r, "a b", ip("198.19.7.1"));
        CHECK(junk.reason() == "helo=fail:not-a-name");
        const auto empty = co_await check_helo(r, "", ip("198.19.7.1"));
        CHECK(empty.reason() == "helo=fail:not-a-name");
        CHECK(r.stats().queries == 3);  // no look-up for what is no name
    });
}

TEST_CASE("An address literal is compared with the client, with no look-up") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto same = co_await check_helo(r, "[198.19.7.1]", ip("198.19.7.1"));
        CHECK(same.status == helo_status::ok_literal);
        CHECK(same.reason() == "helo=ok-literal");
        const auto mapped = co_await check_helo(r, "[198.19.7.1]", ip("::ffff:198.19.7.1"));
        CHECK(mapped.status == helo_status::ok_literal);
        const auto v6 = co_await check_helo(r, "[IPv6:3fff:0:0:7::1]", ip("3fff:0:0:7::1"));
        CHECK(v6.status == helo_status::ok_literal);
        const auto other = co_await check_helo(r, "[198.19.7.2]", ip("198.19.7.1"));
        CHECK(other.reason() == "helo=mismatch:literal");
        for (const char* bad : {"[300.1.1.1]", "[3fff::1]", "[IPv6:198.19.7.1]", "[]", "[IPv6:]"}) {
            CAPTURE(bad);
            const auto got = co_await check_helo(r, bad, ip("198.19.7.1"));
            CHECK(got.reason() == "helo=fail:bad-literal");
        }
        CHECK(r.stats().queries == 0);
    });
}

TEST_CASE("A look-up that fails leaves the HELO check unknown") {
    grey_test::with_silent_resolver([](resolver& r) -> asio::awaitable<void> {
        const auto got = co_await check_helo(r, "mail.rep-test", ip("198.19.7.1"));
        CHECK(got.status == helo_status::unknown);
        CHECK(got.reason() == "helo=unknown:timeout");
    });
}
