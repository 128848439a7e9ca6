// dns/fcrdns.hpp against the tests' unbound (rep-test. in tests/dns-zones/reputation.conf), and
// against a server that never answers.
#include <doctest/doctest.h>

#include <string>

#include <grey/dns/fcrdns.hpp>

#include "fixture.hpp"

using namespace grey::dns;
using grey_test::dns_fixture;
using grey_test::with_resolver;

namespace {
asio::ip::address ip(const char* text) { return asio::ip::make_address(text); }
} // namespace

TEST_CASE("A name that resolves back to the address is confirmed") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto v4 = co_await check_fcrdns(r, ip("198.19.7.1"));
        CHECK(v4.status == fcrdns_status::ok);
        CHECK(v4.name == "mail.rep-test");
        CHECK(v4.reason() == "fcrdns=ok:mail.rep-test");

        const auto v6 = co_await check_fcrdns(r, ip("3fff:0:0:7::1"));
        CHECK(v6.status == fcrdns_status::ok);
        CHECK(v6.reason() == "fcrdns=ok:mail6.rep-test");

        const auto mapped = co_await check_fcrdns(r, ip("::ffff:198.19.7.1"));
        CHECK(mapped.status == fcrdns_status::ok);
        CHECK(mapped.name == "mail.rep-test");
    });
}

TEST_CASE("Of several names, the one that resolves back is confirmed") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto got = co_await check_fcrdns(r, ip("198.19.7.4"));
        CHECK(got.status == fcrdns_status::ok);
        CHECK(got.name == "good.rep-test");
        CHECK(got.names.size() == 2);
    });
}

TEST_CASE("No name, or no name that resolves back, fails, and says which") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto none = co_await check_fcrdns(r, ip("198.19.7.3"));
        CHECK(none.status == fcrdns_status::fail);
        CHECK(none.reason() == "fcrdns=fail:no-ptr");

        const auto elsewhere = co_await check_fcrdns(r, ip("198.19.7.2"));
        CHECK(elsewhere.status == fcrdns_status::fail);
        CHECK(elsewhere.names == std::vector<std::string>{"liar.rep-test"});
        CHECK(elsewhere.reason() == "fcrdns=fail:not-confirmed");

        const auto missing = co_await check_fcrdns(r, ip("198.19.7.5"));
        CHECK(missing.status == fcrdns_status::fail);
        CHECK(missing.why == "not-confirmed");
    });
}

TEST_CASE("At most ten names are tried") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto got = co_await check_fcrdns(r, ip("198.19.7.6"));
        CHECK(got.status == fcrdns_status::fail);
        CHECK(got.names.size() == max_fcrdns_names);
        // One PTR query, then one A query per name tried.
        CHECK(r.stats().queries == 1 + max_fcrdns_names);
    });
}

TEST_CASE("A look-up that fails leaves the evidence unknown, never a pass") {
    grey_test::with_silent_resolver([](resolver& r) -> asio::awaitable<void> {
        const auto got = co_await check_fcrdns(r, ip("198.19.7.1"));
        CHECK(got.status == fcrdns_status::unknown);
        CHECK(got.reason() == "fcrdns=unknown:ptr:timeout");
    });
    // The PTR known (cached), the forward look-up out of budget.
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto ptr = co_await r.lookup_ptr(ip("198.19.7.7"));
        REQUIRE(ptr.found());
        const auto got = co_await check_fcrdns(r, ip("198.19.7.7"), budget::after(std::chrono::seconds(0)));
        CHECK(got.status == fcrdns_status::unknown);
        CHECK(got.names == std::vector<std::string>{"slow.rep-test"});
        CHECK(got.reason() == "fcrdns=unknown:forward:timeout");
    });
}
