#include <grey/greylist/lists.hpp>

#include <doctest/doctest.h>

using namespace grey::greylist;

TEST_CASE("Networks parse from CIDR notation and match addresses inside them") {
    auto v4 = network::parse("192.0.2.0/24");
    REQUIRE(v4);
    CHECK(v4->contains(std::string_view("192.0.2.1")));
    CHECK(v4->contains(std::string_view("192.0.2.255")));
    CHECK_FALSE(v4->contains(std::string_view("192.0.3.1")));
    CHECK_FALSE(v4->contains(std::string_view("2001:db8::1")));
    SUBCASE("an IPv4 client seen as IPv4-mapped IPv6") { CHECK(v4->contains(std::string_view("::ffff:192.0.2.7"))); }

    auto odd = network::parse("10.0.0.0/13");
    REQUIRE(odd);
    CHECK(odd->contains(std::string_view("10.7.255.255")));
    CHECK_FALSE(odd->contains(std::string_view("10.8.0.0")));

    auto v6 = network::parse("2001:db8::/32");
    REQUIRE(v6);
    CHECK(v6->contains(std::string_view("2001:db8:ffff::1")));
    CHECK_FALSE(v6->contains(std::string_view("2001:db9::1")));

    auto host = network::parse("198.51.100.7");
    REQUIRE(host);
    CHECK(host->contains(std::string_view("198.51.100.7")));
    CHECK_FALSE(host->contains(std::string_view("198.51.100.8")));

    CHECK(network::parse("0.0.0.0/0")->contains(std::string_view("203.0.113.1")));
}

TEST_CASE("Malformed networks are refused") {
    for (const char* bad : {"192.0.2.0/33", "192.0.2.0/", "192.0.2/24", "nonsense", "2001:db8::/129", "1.2.3.4/2x", ""})
        CHECK_MESSAGE(!network::parse(bad), bad);
}

TEST_CASE("Relay control: allowed domains, and clients that may relay anywhere") {
    lists l;
    CHECK(l.relays_for("anything.example"));  // no list: every domain
    l.allowed_domains = {"example.com"};
    CHECK(l.relays_for("EXAMPLE.com"));
    CHECK_FALSE(l.relays_for("example.org"));
    l.allowed_senders = {"192.0.2.10"};
    l.allowed_sender_nets = {*network::parse("198.51.100.0/24")};
    CHECK(l.may_relay_anywhere("192.0.2.10"));
    CHECK(l.may_relay_anywhere("198.51.100.99"));
    CHECK_FALSE(l.may_relay_anywhere("192.0.2.11"));
}

TEST_CASE("Whitelisted triples and non-standard triples skip greylisting") {
    lists l;
    l.whitelisted_triples = {{"192.0.2.1", "alice@example.org", "bob@example.com"}};
    l.whitelisted_nonstandard_triples = {{"mx.bigsender.example", "203.0.113.", "bob@example.com"}};
    CHECK(l.whitelisted("192.0.2.1", "any", "alice@example.org", "bob@example.com"));
    CHECK_FALSE(l.whitelisted("192.0.2.2", "any", "alice@example.org", "bob@example.com"));
    CHECK(l.whitelisted("203.0.113.77", "MX.BigSender.example", "x@y.example", "bob@example.com"));
    CHECK_FALSE(l.whitelisted("203.0.114.77", "mx.bigsender.example", "x@y.example", "bob@example.com"));
    CHECK_FALSE(l.whitelisted("203.0.113.77", "mx.bigsender.example", "x@y.example", "carol@example.com"));
}
