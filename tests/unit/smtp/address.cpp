#include <grey/smtp/address.hpp>

#include <doctest/doctest.h>

#include <string>

using grey::errc;
using namespace grey::smtp;

namespace {
grey::result<path> path_of(std::string_view text, path_kind kind = path_kind::forward) {
    auto r = take_path(text, kind);
    if (r && !text.empty()) return errc::syntax_error;  // trailing bytes
    return r;
}
} // namespace

TEST_CASE("Domains follow RFC 5321's sub-domain grammar and length limits") {
    CHECK(is_domain("example.com"));
    CHECK(is_domain("a"));
    CHECK(is_domain("x1-y2.example"));
    CHECK(is_domain("123.example"));
    CHECK_FALSE(is_domain(""));
    CHECK_FALSE(is_domain("a..b"));
    CHECK_FALSE(is_domain(".a"));
    CHECK_FALSE(is_domain("a."));
    CHECK_FALSE(is_domain("a_b.example"));
    CHECK_FALSE(is_domain("-a.example"));
    CHECK_FALSE(is_domain("a-.example"));
    CHECK(is_domain(std::string(63, 'a') + ".example"));
    CHECK_FALSE(is_domain(std::string(64, 'a') + ".example"));
    std::string long_domain;
    while (long_domain.size() < 250) long_domain += "abcdefghi.";
    long_domain += "example";  // over 255
    CHECK_FALSE(is_domain(long_domain));
}

TEST_CASE("Address literals are IPv4 or tagged IPv6") {
    CHECK(is_address_literal("[192.0.2.1]"));
    CHECK(is_address_literal("[0.0.0.0]"));
    CHECK(is_address_literal("[IPv6:::1]"));
    CHECK(is_address_literal("[ipv6:2001:db8::192.0.2.1]"));
    CHECK_FALSE(is_address_literal("[256.0.0.1]"));
    CHECK_FALSE(is_address_literal("[1.2.3]"));
    CHECK_FALSE(is_address_literal("[1.2.3.4.5]"));
    CHECK_FALSE(is_address_literal("[0001.2.3.4]"));
    CHECK_FALSE(is_address_literal("[2001:db8::1]"));  // IPv6 needs its tag
    CHECK_FALSE(is_address_literal("[X-tag:stuff]"));
    CHECK_FALSE(is_address_literal("192.0.2.1"));
}

TEST_CASE("Local parts are dot-strings or quoted strings of at most 64 octets") {
    CHECK(is_local_part("alice"));
    CHECK(is_local_part("a.b+c_d-e!#$%&'*/=?^`{|}~"));
    CHECK(is_local_part("\"john doe\""));
    CHECK(is_local_part("\"quote\\\"inside\""));
    CHECK_FALSE(is_local_part(""));
    CHECK_FALSE(is_local_part("a..b"));
    CHECK_FALSE(is_local_part(".a"));
    CHECK_FALSE(is_local_part("a."));
    CHECK_FALSE(is_local_part("a b"));
    CHECK_FALSE(is_local_part("\"unterminated"));
    CHECK_FALSE(is_local_part("caf\xc3\xa9"));  // no SMTPUTF8 offered
    CHECK(is_local_part(std::string(64, 'a')));
    CHECK_FALSE(is_local_part(std::string(65, 'a')));
}

TEST_CASE("Paths are parsed with their parts, source routes dropped") {
    auto p = path_of("<alice@example.org>");
    REQUIRE(p);
    CHECK(p->mailbox == "alice@example.org");
    CHECK(p->local_part == "alice");
    CHECK(p->domain == "example.org");

    auto routed = path_of("<@relay1.example,@relay2.example:bob@example.com>");
    REQUIRE(routed);
    CHECK(routed->mailbox == "bob@example.com");

    auto quoted = path_of("<\"odd>local@x\"@example.com>");
    REQUIRE(quoted);
    CHECK(quoted->local_part == "\"odd>local@x\"");
    CHECK(quoted->domain == "example.com");

    CHECK(path_of("<u@[192.0.2.1]>")->domain == "[192.0.2.1]");
    CHECK(path_of("<>", path_kind::reverse)->is_null());
    CHECK_FALSE(path_of("<>", path_kind::forward));
    CHECK_FALSE(path_of("<@relay.example:>"));
    CHECK_FALSE(path_of("<@relay.example,bob@example.com>"));
    CHECK_FALSE(path_of("<@:bob@example.com>"));
    CHECK_FALSE(path_of("<bob>"));
    CHECK_FALSE(path_of("<bob@>"));
    CHECK_FALSE(path_of("bob@example.com"));
}

TEST_CASE("A path is at most 256 octets with its brackets") {
    const std::string domain = std::string(63, 'd') + "." + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                               std::string(51, 'd');  // 254 - ... keeps the domain valid
    const std::string local = std::string(64, 'l');
    const std::string too_long = "<" + local + "@" + domain + ">";
    CHECK(too_long.size() > max_path_length);
    CHECK_FALSE(path_of(too_long));
    const std::string fits = "<" + local + "@" + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
                             std::string(60, 'd') + ">";
    CHECK(fits.size() <= max_path_length);
    CHECK(path_of(fits));
}
