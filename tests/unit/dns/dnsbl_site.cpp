// dns/dnsbl_site.hpp: postscreen_dnsbl_sites entries, their filters, and the names looked up.
#include <doctest/doctest.h>

#include <string>

#include <grey/dns/dnsbl_site.hpp>

using namespace grey::dns;

namespace {
asio::ip::address_v4 v4(const char* text) { return asio::ip::make_address_v4(text); }
} // namespace

TEST_CASE("A site alone counts any reply, with a weight of 1") {
    const auto s = parse_dnsbl_site("zen.spamhaus.org");
    REQUIRE(s);
    CHECK(s->domain == "zen.spamhaus.org");
    CHECK_FALSE(s->filter);
    CHECK(s->weight == 1);
    CHECK(s->matches(v4("127.0.0.2")));
    CHECK(s->matches(v4("127.0.0.11")));
}

TEST_CASE("Weights are integers, negative for an allowlist") {
    CHECK(parse_dnsbl_site("example.com*2")->weight == 2);
    CHECK(parse_dnsbl_site("swl.spamhaus.org*-4")->weight == -4);
    CHECK(parse_dnsbl_site("example.com*+3")->weight == 3);
    CHECK(parse_dnsbl_site("example.com*0")->weight == 0);
    CHECK(parse_dnsbl_site("example.com*1000000")->weight == 1000000);
    CHECK(parse_dnsbl_site("example.com*-1000000")->weight == -1000000);
}

TEST_CASE("A filter of one address counts that reply only") {
    const auto s = parse_dnsbl_site("example.com=127.0.0.4");
    REQUIRE(s);
    REQUIRE(s->filter);
    CHECK(s->matches(v4("127.0.0.4")));
    CHECK_FALSE(s->matches(v4("127.0.0.2")));
    CHECK(s->weight == 1);
}

TEST_CASE("Filters take ranges and lists in brackets, in any octet") {
    const auto range = parse_dnsbl_site("bl.example=127.0.0.[2..11]*3");
    REQUIRE(range);
    CHECK(range->weight == 3);
    CHECK(range->matches(v4("127.0.0.2")));
    CHECK(range->matches(v4("127.0.0.11")));
    CHECK_FALSE(range->matches(v4("127.0.0.1")));
    CHECK_FALSE(range->matches(v4("127.0.0.12")));

    const auto wl = parse_dnsbl_site("list.dnswl.org=127.0.[0..255].[1..3]*-5");
    REQUIRE(wl);
    CHECK(wl->weight == -5);
    CHECK(wl->matches(v4("127.0.5.1")));
    CHECK(wl->matches(v4("127.0.255.3")));
    CHECK_FALSE(wl->matches(v4("127.0.5.0")));
    CHECK_FALSE(wl->matches(v4("127.1.5.1")));

    const auto list = parse_dnsbl_site("bl.example=127.0.0.[2;4;6]");
    REQUIRE(list);
    CHECK(list->matches(v4("127.0.0.4")));
    CHECK_FALSE(list->matches(v4("127.0.0.5")));

    const auto mixed = parse_dnsbl_site("wl.mailspike.net=127.0.0.[17;19..20]*-2");
    REQUIRE(mixed);
    CHECK(mixed->matches(v4("127.0.0.17")));
    CHECK_FALSE(mixed->matches(v4("127.0.0.18")));
    CHECK(mixed->matches(v4("127.0.0.20")));
}

TEST_CASE("The domain is kept lowercase, without its final dot") {
    CHECK(parse_dnsbl_site("ZEN.Spamhaus.ORG.")->domain == "zen.spamhaus.org");
    CHECK(parse_dnsbl_site("b.barracudacentral.org=127.0.0.2*7")->domain == "b.barracudacentral.org");
}

TEST_CASE("Malformed entries are refused") {
    for (const char* bad : {"", ".", "*2", "=127.0.0.2", "example..com", "-example.com", "example-.com",
                            "exa mple.com", "example.com*", "example.com*x", "example.com*2.5", "example.com*--1",
                            "example.com*1000001", "example.com=", "example.com=127.0.0", "example.com=127.0.0.2.1",
                            "example.com=127.0.0.256", "example.com=127.0.0.[]", "example.com=127.0.0.[5..2]",
                            "example.com=127.0.0.[2..]", "example.com=127.0.0.[2;]", "example.com=127.0.0.[2",
                            "example.com=127.0.0.2]", "example.com=127.0.0.-1", "example.com=127.0.0.2=127.0.0.3",
                            "example.com=127.0.[0.0]"}) {
        CAPTURE(bad);
        const auto s = parse_dnsbl_site(bad);
        CHECK_FALSE(s);
        CHECK(s.error() == grey::errc::syntax_error);
    }
    // append, not +: GCC 12 at -O2 warns (-Warray-bounds) of a moved temporary it misreads
    CHECK_FALSE(parse_dnsbl_site(std::string(64, 'a').append(".example")));
    CHECK(parse_dnsbl_site(std::string(63, 'a').append(".example")));
    CHECK_FALSE(parse_dnsbl_site(std::string(max_dnsbl_domain + 1, 'a')));
}

TEST_CASE("A client's address is looked up reversed before the list's domain") {
    CHECK(dnsbl_query_name(asio::ip::make_address("198.19.7.2"), "bl.example") == "2.7.19.198.bl.example");
    CHECK(dnsbl_query_name(asio::ip::make_address("::ffff:198.19.7.2"), "bl.example") == "2.7.19.198.bl.example");
    CHECK(dnsbl_query_name(asio::ip::make_address("3fff:0:0:7::2"), "bl.example") ==
          "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.0.0.0.0.0.0.0.0.0.0.0.f.f.f.3.bl.example");
}
