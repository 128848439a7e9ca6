#include <grey/smtp/address.hpp>

#include <doctest/doctest.h>

#include <string>

using grey::errc;
using namespace grey::smtp;

namespace {
grey::result<path> path_of(std::string_view text, path_kind kind = path_kind::forward,
                           charset cs = charset::ascii) {
    auto r = take_path(text, kind, cs);
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
    CHECK_FALSE(is_local_part("caf\xc3\xa9"));  // ASCII unless charset::utf8 is asked
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

// The checks are constexpr: usable where a compile-time answer is wanted.
static_assert(utf8_length("\xF4\x8F\xBF\xBF") == 4 && utf8_length("\xF4\x90\x80\x80") == 0);
static_assert(is_utf8("caf\xc3\xa9") && !is_utf8("\xC0\xAF") && !is_utf8("\xED\xA0\x80"));
static_assert(is_local_part("caf\xc3\xa9", charset::utf8) && !is_local_part("caf\xc3\xa9"));

TEST_CASE("UTF-8 is well-formed as RFC 3629 defines it") {
    CHECK(is_utf8(""));
    CHECK(is_utf8("plain ascii"));
    CHECK(is_utf8("caf\xc3\xa9"));                 // U+00E9, two octets
    CHECK(is_utf8("\xe2\x82\xac"));                // U+20AC, three
    CHECK(is_utf8("\xf0\x9f\x98\x80"));            // U+1F600, four
    CHECK(is_utf8("\xed\x9f\xbf"));                // U+D7FF, just below the surrogates
    CHECK(is_utf8("\xee\x80\x80"));                // U+E000, just above them
    CHECK(is_utf8("\xF4\x8F\xBF\xBF"));            // U+10FFFF, the last code point
    CHECK(utf8_length("\xF4\x8F\xBF\xBF") == 4);
    CHECK(utf8_length("a") == 1);
    CHECK(utf8_length("\xc3\xa9z") == 2);
    CHECK(utf8_length("") == 0);

    SUBCASE("overlong forms") {
        CHECK_FALSE(is_utf8("\xC0\xAF"));          // '/' in two octets
        CHECK_FALSE(is_utf8("\xC1\xBF"));
        CHECK_FALSE(is_utf8("\xE0\x80\xAF"));      // '/' in three
        CHECK_FALSE(is_utf8("\xE0\x9F\xBF"));      // U+07FF in three
        CHECK_FALSE(is_utf8("\xF0\x80\x80\xAF"));  // '/' in four
        CHECK_FALSE(is_utf8("\xF0\x8F\xBF\xBF"));  // U+FFFF in four
        CHECK(utf8_length("\xC0\xAF") == 0);
    }
    SUBCASE("surrogates") {
        CHECK_FALSE(is_utf8("\xED\xA0\x80"));      // U+D800
        CHECK_FALSE(is_utf8("\xED\xBF\xBF"));      // U+DFFF
    }
    SUBCASE("past U+10FFFF") {
        CHECK_FALSE(is_utf8("\xF4\x90\x80\x80"));  // U+110000
        CHECK_FALSE(is_utf8("\xF5\x80\x80\x80"));
        CHECK_FALSE(is_utf8("\xFE"));
        CHECK_FALSE(is_utf8("\xFF"));
    }
    SUBCASE("truncated sequences") {
        CHECK_FALSE(is_utf8("\xC3"));
        CHECK_FALSE(is_utf8("caf\xC3"));
        CHECK_FALSE(is_utf8("\xE2\x82"));
        CHECK_FALSE(is_utf8("\xF0\x9F\x98"));
        CHECK_FALSE(is_utf8("\xC3" "A"));            // a lead octet before ASCII
        CHECK_FALSE(is_utf8("\xE2\x82" "A"));
    }
    SUBCASE("stray continuation octets") {
        CHECK_FALSE(is_utf8("\x80"));
        CHECK_FALSE(is_utf8("a\xBF" "b"));
        CHECK_FALSE(is_utf8("\xc3\xa9\xa9"));
    }
}

TEST_CASE("UTF-8 local parts and U-label domains parse only with charset::utf8") {
    CHECK(is_local_part("caf\xc3\xa9", charset::utf8));
    CHECK(is_local_part("\xe7\x94\xa8\xe6\x88\xb7", charset::utf8));  // 用户
    CHECK(is_local_part("a.\xc3\xa9.b", charset::utf8));
    CHECK_FALSE(is_local_part("\xc3\xa9.", charset::utf8));
    CHECK_FALSE(is_local_part("caf\xc3", charset::utf8));             // truncated
    CHECK_FALSE(is_local_part("\xC0\xAF", charset::utf8));            // overlong
    CHECK_FALSE(is_local_part("\xED\xA0\x80", charset::utf8));        // surrogate
    CHECK_FALSE(is_local_part("caf\xe9", charset::utf8));             // Latin-1, not UTF-8

    const std::string u_label_domain = "\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95";  // 例子.测试
    CHECK(is_domain(u_label_domain, charset::utf8));
    CHECK_FALSE(is_domain(u_label_domain));
    CHECK(is_domain("b\xc3\xbc" "cher.example", charset::utf8));
    CHECK(is_domain("xn--bcher-kva.example"));  // the A-label is plain LDH
    CHECK_FALSE(is_domain("-\xc3\xbc.example", charset::utf8));
    CHECK_FALSE(is_domain("\xc3\xbc-.example", charset::utf8));
    CHECK_FALSE(is_domain("\xF4\x90\x80\x80.example", charset::utf8));
    CHECK_FALSE(is_domain("a..\xc3\xbc", charset::utf8));

    SUBCASE("lengths are counted in octets") {
        std::string label, local;
        for (int i = 0; i < 21; ++i) label += "\xe4\xbe\x8b";  // 63 octets, 21 characters
        for (int i = 0; i < 32; ++i) local += "\xc3\xa9";      // 64 octets, 32 characters
        CHECK(is_domain(label + ".example", charset::utf8));
        CHECK_FALSE(is_domain(label + "\xc3\xa9.example", charset::utf8));
        CHECK(is_local_part(local, charset::utf8));
        CHECK_FALSE(is_local_part(local + "\xc3\xa9", charset::utf8));
    }
    SUBCASE("HELO names stay ASCII (RFC 6531 §3.7.1)") {
        CHECK_FALSE(is_helo_name("b\xc3\xbc" "cher.example"));
        CHECK(is_helo_name("xn--bcher-kva.example"));
    }
}

TEST_CASE("Quoted local parts may hold UTF-8, but a quoted pair stays ASCII") {
    CHECK(is_local_part("\"j\xc3\xb6rg doe\"", charset::utf8));
    CHECK_FALSE(is_local_part("\"j\xc3\xb6rg doe\""));
    CHECK(is_local_part("\"\\\"\xc3\xa9\"", charset::utf8));
    CHECK_FALSE(is_local_part("\"\\\xc3\xa9\"", charset::utf8));  // backslash before UTF-8
    CHECK_FALSE(is_local_part("\"\xc3\"", charset::utf8));        // cut short by the quote
    CHECK_FALSE(is_local_part("\"\xe2\x82\"", charset::utf8));
    CHECK_FALSE(is_local_part("\"\xED\xA0\x80\"", charset::utf8));
}

TEST_CASE("Paths with UTF-8 parse only with charset::utf8") {
    const std::string text = "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>";
    CHECK_FALSE(path_of(text));
    auto p = path_of(text, path_kind::forward, charset::utf8);
    REQUIRE(p);
    CHECK(p->local_part == "j\xc3\xb6rg");
    CHECK(p->domain == "b\xc3\xbc" "cher.example");
    CHECK(p->mailbox == "j\xc3\xb6rg@b\xc3\xbc" "cher.example");

    auto routed = path_of("<@r\xc3\xa9lais.example:bob@example.com>", path_kind::forward, charset::utf8);
    REQUIRE(routed);
    CHECK(routed->mailbox == "bob@example.com");
    CHECK(path_of("<\"q\xc3\xa9>\"@example.com>", path_kind::forward, charset::utf8)->local_part ==
          "\"q\xc3\xa9>\"");
    CHECK_FALSE(path_of("<u@[192.0.2.1\xc3\xa9]>", path_kind::forward, charset::utf8));  // literals stay ASCII
    CHECK_FALSE(path_of("<caf\xe9@example.com>", path_kind::forward, charset::utf8));
}
