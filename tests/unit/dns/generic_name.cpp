// dns/generic_name.hpp: names of the shapes ISPs give their pools, and names operators choose.
#include <doctest/doctest.h>

#include <string>

#include <grey/dns/generic_name.hpp>

using grey::dns::check_generic_name;

namespace {
asio::ip::address ip(const char* text) { return asio::ip::make_address(text); }

bool generic(const char* host, const char* address, const char* domain = "") {
    return check_generic_name(host, ip(address), domain).generic;
}
} // namespace

TEST_CASE("The client's octets in the name, in either order and any notation, make it generic") {
    CHECK(generic("c-98-207-1-23.hsd1.ca.comcast.net", "98.207.1.23", "comcast.net"));
    CHECK(generic("1-2-3-4.static.example.net", "1.2.3.4", "example.net"));
    CHECK(generic("4.3.2.1.example.net", "1.2.3.4"));
    CHECK(generic("host_1_2_3_4.example.net", "1.2.3.4"));
    CHECK(generic("static.38.9.12.5.clients.your-server.de", "5.12.9.38", "your-server.de"));
    CHECK(generic("ip001-002-003-004.example.net", "1.2.3.4"));
    CHECK(generic("h098207001023.example.net", "98.207.1.23"));
    CHECK(generic("c0a80117.example.net", "192.168.1.23"));
    CHECK(generic("node-1701a8c0.example.net", "192.168.1.23"));  // hex, reversed
    CHECK(generic("c0-a8-01-17.example.net", "192.168.1.23"));
    const auto r = check_generic_name("c-98-207-1-23.hsd1.ca.comcast.net", ip("98.207.1.23"), "comcast.net");
    CHECK(r.why == "address");
    CHECK(r.reason() == "generic=yes:address");
}

TEST_CASE("An IPv4 client seen through a dual-stack socket is read as IPv4") {
    CHECK(generic("dyn-98-207-1-23.example.net", "::ffff:98.207.1.23"));
    CHECK(generic("98-207-1-23.example.net", "::ffff:98.207.1.23"));
}

TEST_CASE("An IPv6 address's long run of nibbles, or its groups, make the name generic") {
    CHECK(generic("2a01-4f8-c17-b8f-0-0-0-2.example.net", "2a01:4f8:c17:b8f::2"));
    CHECK(generic("host-2a0104f80c170b8f.example.net", "2a01:4f8:c17:b8f::2"));
    CHECK(generic("f8b0.71c0.8f40.10a2.example.net", "2a01:4f8:c17:b8f::2"));  // nibbles reversed
    CHECK_FALSE(generic("mail.example.net", "2a01:4f8:c17:b8f::2"));
    // Zero groups alone say nothing: every address has some.
    CHECK_FALSE(generic("0-0-0-0.example.net", "2001:db8::1"));
}

TEST_CASE("Pool words as labels or prefixes make the name generic") {
    CHECK(generic("dynamic-1-2-3-4.example.net", "192.0.2.7"));
    CHECK(check_generic_name("dynamic-1-2-3-4.example.net", ip("192.0.2.7")).why == "dynamic");
    CHECK(generic("adsl123.example.net", "192.0.2.7"));
    CHECK(generic("ppp0.isp.example.net", "192.0.2.7"));
    CHECK(generic("pool.example.net", "192.0.2.7"));
    CHECK(generic("customer.example.net", "192.0.2.7"));
    CHECK(generic("a.b.dialup.example.net", "192.0.2.7"));
    CHECK(generic("unassigned.example.net", "192.0.2.7"));
    CHECK(generic("ip-10-20-30-40.example.net", "192.0.2.7"));
    CHECK(generic("host-12-34.example.net", "192.0.2.7"));
    CHECK(generic("x.res.example.net", "192.0.2.7"));
    CHECK(check_generic_name("ppp0.isp.example.net", ip("192.0.2.7")).reason() == "generic=yes:ppp");
}

TEST_CASE("Names an operator chooses are not generic") {
    for (const char* host : {"mail.example.com", "mx1.example.com", "smtp-out.example.com", "mail-out-42.example.com",
                             "outbound.mailserver.example.org", "host.example.com", "ip.example.com", "relay2.example.net",
                             "mx01.mail.example.co.uk"}) {
        CAPTURE(host);
        CHECK_FALSE(generic(host, "192.0.2.7"));
        CHECK(check_generic_name(host, ip("192.0.2.7")).reason() == "generic=no");
    }
    // Words inside other words are not pool words.
    CHECK_FALSE(generic("poolside.example.com", "192.0.2.7"));
    CHECK_FALSE(generic("resolver.example.com", "192.0.2.7"));
    CHECK_FALSE(generic("clientele.example.com", "192.0.2.7"));
}

TEST_CASE("Only the labels left of the registered domain are read") {
    CHECK_FALSE(generic("mail.dsl-shop.example", "192.0.2.7", "dsl-shop.example"));
    CHECK_FALSE(generic("mail.dynamic.example", "192.0.2.7"));  // no registered domain: the last two labels
    CHECK_FALSE(generic("mail.1-2-3-4.example", "1.2.3.4", "1-2-3-4.example"));
    CHECK(generic("dsl.dsl-shop.example", "192.0.2.7", "dsl-shop.example"));
    CHECK_FALSE(generic("example.net", "192.0.2.7", "example.net"));
    // A registered domain the name does not end in is not trusted: the last two labels then.
    CHECK(generic("dsl.example.net", "192.0.2.7", "other.example"));
}

TEST_CASE("Case and a final dot do not matter; nothing breaks on odd input") {
    CHECK(generic("DYNAMIC-1-2-3-4.Example.NET.", "192.0.2.7", "EXAMPLE.net."));
    CHECK(generic("C-98-207-1-23.HSD1.ca.comcast.net", "98.207.1.23", "comcast.net"));
    for (const char* odd : {"", ".", "..", "a", "-.-.-", "1.2.3.4", "[1.2.3.4]", "a..b.c", "99999999999999999999.x.y"}) {
        CAPTURE(odd);
        (void)check_generic_name(odd, ip("1.2.3.4"));
        (void)check_generic_name(odd, ip("2001:db8::1"));
    }
    CHECK_FALSE(generic("1.2.3.4", "1.2.3.4"));  // an address is not a name of a pool
}
