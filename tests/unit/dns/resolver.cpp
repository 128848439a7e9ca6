// The resolver against a real unbound on loopback serving the zone grey-test. (tests/dns-fixture.sh,
// started by ctest: GREY_TEST_DNS=HOST:PORT), and against a server that never answers.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include <grey/dns/resolver.hpp>

#include "fixture.hpp"

using namespace grey::dns;
using namespace std::chrono_literals;

using grey_test::silent_server;
using grey_test::with_resolver;

namespace {
resolver_settings fixture() { return grey_test::dns_fixture(); }
} // namespace

TEST_CASE("Addresses, names, texts and exchangers are read from the server's answers") {
    with_resolver(fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto a = co_await r.lookup_a("host.grey-test");
        REQUIRE(a.found());
        REQUIRE(a.values.size() == 2);
        CHECK((a.values[0] == asio::ip::make_address("192.0.2.10") || a.values[1] == asio::ip::make_address("192.0.2.10")));
        CHECK((a.values[0] == asio::ip::make_address("192.0.2.11") || a.values[1] == asio::ip::make_address("192.0.2.11")));

        const auto aaaa = co_await r.lookup_aaaa("HOST.grey-test.");
        REQUIRE(aaaa.found());
        REQUIRE(aaaa.values.size() == 1);
        CHECK(aaaa.values[0] == asio::ip::make_address("2001:db8::10"));

        const auto ptr4 = co_await r.lookup_ptr(asio::ip::make_address("198.18.0.10"));
        REQUIRE(ptr4.found());
        REQUIRE(ptr4.values.size() == 1);
        CHECK(ptr4.values[0] == "host.grey-test");
        const auto ptr6 = co_await r.lookup_ptr(asio::ip::make_address("3fff::10"));
        REQUIRE(ptr6.found());
        CHECK(ptr6.values.at(0) == "host.grey-test");

        const auto mx = co_await r.lookup_mx("grey-test");
        REQUIRE(mx.found());
        REQUIRE(mx.values.size() == 2);
        CHECK((mx.values[0] == grey::dns::mx{10, "mail.grey-test"} || mx.values[1] == grey::dns::mx{10, "mail.grey-test"}));
        CHECK((mx.values[0] == grey::dns::mx{20, "backup.mail.grey-test"} || mx.values[1] == grey::dns::mx{20, "backup.mail.grey-test"}));

        const auto alias = co_await r.lookup_a("alias.grey-test");
        REQUIRE(alias.found());
        CHECK(alias.values.size() == 2);
    });
}

TEST_CASE("A TXT record of several strings is their concatenation; two records stay two") {
    with_resolver(fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto spf = co_await r.lookup_txt("spf.grey-test");
        REQUIRE(spf.found());
        REQUIRE(spf.values.size() == 1);
        CHECK(spf.values[0] == "v=spf1 ip4:192.0.2.0/24 -all");

        const auto long_txt = co_await r.lookup_txt("long.grey-test");
        REQUIRE(long_txt.found());
        CHECK(long_txt.values.at(0) == std::string(255, 'a') + "b");

        const auto two = co_await r.lookup_txt("two.grey-test");
        REQUIRE(two.found());
        CHECK(two.values.size() == 2);
    });
}

TEST_CASE("NXDOMAIN and NODATA are told apart, and from failures") {
    with_resolver(fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto missing = co_await r.lookup_a("missing.grey-test");
        CHECK(missing.status == outcome::nxdomain);
        CHECK(missing.values.empty());
        const auto nodata = co_await r.lookup_aaaa("nodata.grey-test");
        CHECK(nodata.status == outcome::nodata);
        const auto no_mx = co_await r.lookup_mx("host.grey-test");
        CHECK(no_mx.status == outcome::nodata);
        const auto no_ptr = co_await r.lookup_ptr(asio::ip::make_address("198.18.0.200"));
        CHECK(no_ptr.status == outcome::nxdomain);
    });
}

TEST_CASE("A question asked again is answered from the cache, facts negative ones included") {
    with_resolver(fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto first = co_await r.lookup_a("host.grey-test");
        const auto missing = co_await r.lookup_a("missing.grey-test");
        REQUIRE(r.stats().queries == 2);
        const auto again = co_await r.lookup_a("Host.Grey-Test.");
        const auto missing_again = co_await r.lookup_a("missing.grey-test");
        CHECK(r.stats().queries == 2);
        CHECK(r.stats().cache_hits == 2);
        CHECK(again.values == first.values);
        CHECK(missing_again.status == outcome::nxdomain);
        CHECK(missing.status == outcome::nxdomain);
    });
}

TEST_CASE("The metrics count each question as a cache hit or a miss") {
    grey::metrics::server_metrics m;
    resolver_settings s = fixture();
    s.metrics = &m;
    with_resolver(s, [](resolver& r) -> asio::awaitable<void> {
        (void)co_await r.lookup_a("host.grey-test");
        (void)co_await r.lookup_a("host.grey-test");
        (void)co_await r.lookup_a("HOST.grey-test");
        (void)co_await r.lookup_txt("spf.grey-test");
    });
    CHECK(m.dns_cache_misses.value() == 2);
    CHECK(m.dns_cache_hits.value() == 2);
    CHECK(m.dns_timeouts.value() == 0);
}

TEST_CASE("A server that never answers costs a query its timeout, and the failure is kept for failure_ttl") {
    asio::io_context ioc;
    silent_server silent(ioc);
    resolver_settings s;
    s.servers = {silent.where()};
    s.query_timeout = 200ms;
    SUBCASE("kept") {}
    SUBCASE("not kept") { s.failure_ttl = 0s; }
    resolver r(ioc.get_executor(), s);
    std::vector<answer> got;
    const auto started = std::chrono::steady_clock::now();
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        got.push_back(co_await r.query("host.grey-test", rr_type::a));
        got.push_back(co_await r.query("host.grey-test", rr_type::a));
        silent.socket.close();
    }, asio::detached);
    ioc.run();
    REQUIRE(got.size() == 2);
    for (const answer& a : got) {
        CHECK(a.status == outcome::temporary_failure);
        CHECK(a.why == failure::timeout);
    }
    if (s.failure_ttl > 0s) {
        CHECK(r.stats().queries == 1);  // the second was answered from the cache, at once
        CHECK(r.stats().cache_hits == 1);
        CHECK(r.stats().timeouts == 1);
    } else {
        CHECK(r.stats().queries == 2);
        CHECK(r.stats().timeouts == 2);
    }
    CHECK(std::chrono::steady_clock::now() - started < 5s);  // not libunbound's own, longer, timeouts
}

TEST_CASE("After three queries in a row go unanswered, DNS is unreachable for failure_ttl: queries fail at once") {
    asio::io_context ioc;
    silent_server silent(ioc);
    resolver_settings s;
    s.servers = {silent.where()};
    s.query_timeout = 100ms;
    resolver r(ioc.get_executor(), s);
    std::vector<answer> got;
    std::chrono::steady_clock::duration last{};
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        for (const char* name : {"a.grey-test", "b.grey-test", "c.grey-test"})
            got.push_back(co_await r.query(name, rr_type::a));
        const auto started = std::chrono::steady_clock::now();
        got.push_back(co_await r.query("d.grey-test", rr_type::a));
        last = std::chrono::steady_clock::now() - started;
        silent.socket.close();
    }, asio::detached);
    ioc.run();
    REQUIRE(got.size() == 4);
    for (const answer& a : got) CHECK(a.why == failure::timeout);
    CHECK(r.stats().queries == 3);  // the fourth was never sent
    CHECK(last < 90ms);
}

TEST_CASE("The metrics count each query sent and left unanswered, not those the resolver never sent") {
    asio::io_context ioc;
    silent_server silent(ioc);
    grey::metrics::server_metrics m;
    resolver_settings s;
    s.servers = {silent.where()};
    s.query_timeout = 100ms;
    s.metrics = &m;
    resolver r(ioc.get_executor(), s);
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        for (const char* name : {"a.grey-test", "b.grey-test", "c.grey-test", "d.grey-test"})
            (void)co_await r.query(name, rr_type::a);
        (void)co_await r.query("a.grey-test", rr_type::a);  // its failure, from the cache
        silent.socket.close();
    }, asio::detached);
    ioc.run();
    CHECK(m.dns_timeouts.value() == 3);  // DNS then held unreachable: the fourth never went out
    CHECK(m.dns_cache_misses.value() == 4);
    CHECK(m.dns_cache_hits.value() == 1);
}

TEST_CASE("A query ends when its decision's budget does, before its own timeout") {
    asio::io_context ioc;
    silent_server silent(ioc);
    resolver_settings s;
    s.servers = {silent.where()};
    s.query_timeout = 60s;
    resolver r(ioc.get_executor(), s);
    std::vector<answer> got;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        const budget b = budget::after(100ms);
        got.push_back(co_await r.query("host.grey-test", rr_type::a, b));
        // Spent: the next look-up of the decision is not even asked.
        got.push_back(co_await r.query("other.grey-test", rr_type::a, b));
        silent.socket.close();
    }, asio::detached);
    ioc.run();
    REQUIRE(got.size() == 2);
    CHECK(got[0].why == failure::timeout);
    CHECK(got[1].why == failure::timeout);
    CHECK(r.stats().queries == 1);
    CHECK(r.stats().timeouts == 2);
}

TEST_CASE("Destroying the resolver ends its queries in flight as aborted") {
    asio::io_context ioc;
    silent_server silent(ioc);
    resolver_settings s;
    s.servers = {silent.where()};
    s.query_timeout = 60s;
    auto r = std::make_unique<resolver>(ioc.get_executor(), s);
    std::vector<answer> got;
    for (int i = 0; i < 3; ++i)
        asio::co_spawn(ioc, [&, i]() -> asio::awaitable<void> {
            got.push_back(co_await r->query("q" + std::to_string(i) + ".grey-test", rr_type::a));
        }, asio::detached);
    asio::steady_timer later(ioc, 100ms);
    later.async_wait([&](asio::error_code) {
        r.reset();
        silent.socket.close();
    });
    ioc.run();
    REQUIRE(got.size() == 3);
    for (const answer& a : got) CHECK(a.why == failure::aborted);
}

TEST_CASE("Servers are named as IP:PORT; anything else is refused when the resolver is made") {
    CHECK(unbound_server("127.0.0.1:5353").value() == "127.0.0.1@5353");
    CHECK(unbound_server("[2001:db8::1]:53").value() == "2001:db8::1@53");
    CHECK(!unbound_server("dns.example:53"));
    CHECK(!unbound_server("127.0.0.1"));
    asio::io_context ioc;
    resolver_settings s;
    s.servers = {"127.0.0.1"};
    CHECK_THROWS_AS(resolver(ioc.get_executor(), s), std::invalid_argument);
}

TEST_CASE("Reverse names: in-addr.arpa, ip6.arpa, and a mapped IPv4 address as IPv4") {
    CHECK(reverse_name(asio::ip::make_address("192.0.2.10")) == "10.2.0.192.in-addr.arpa");
    CHECK(reverse_name(asio::ip::make_address("::ffff:192.0.2.10")) == "10.2.0.192.in-addr.arpa");
    CHECK(reverse_name(asio::ip::make_address("2001:db8::10")) ==
          "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
}
