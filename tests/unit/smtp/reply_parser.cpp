#include <grey/smtp/reply_parser.hpp>

#include <doctest/doctest.h>

#include <string>

using grey::errc;
using namespace grey::smtp;

TEST_CASE("A one-line reply is parsed with its enhanced code") {
    reply_parser p;
    auto r = p.feed("250 2.1.5 Ok");
    REQUIRE(r);
    REQUIRE(*r);
    CHECK(**r == reply{250, "2.1.5", "Ok"});
}

TEST_CASE("A multi-line reply ends at its line with a space, and its enhanced code is kept once") {
    reply_parser p;
    CHECK_FALSE(*p.feed("550-5.7.1 first"));
    CHECK_FALSE(*p.feed("550-5.7.1 second"));
    auto r = p.feed("550 5.7.1 third");
    REQUIRE((r && *r));
    CHECK(**r == reply{550, "5.7.1", {"first", "second", "third"}});
    SUBCASE("the parser is ready for the next reply") { CHECK(**p.feed("221 Bye") == reply{221, "", "Bye"}); }
}

TEST_CASE("An EHLO reply keeps its keywords as lines") {
    reply_parser p;
    (void)p.feed("250-mx.example Hello");
    (void)p.feed("250-PIPELINING");
    auto r = p.feed("250 8BITMIME");
    REQUIRE((r && *r));
    CHECK((*r)->enhanced.empty());
    CHECK((*r)->lines == std::vector<std::string>{"mx.example Hello", "PIPELINING", "8BITMIME"});
}

TEST_CASE("An enhanced code must match the reply's class") {
    CHECK(reply_parser::enhanced_prefix("2.1.5 Ok", 250) == "2.1.5");
    CHECK(reply_parser::enhanced_prefix("5.1.5 Ok", 250).empty());
    CHECK(reply_parser::enhanced_prefix("2.1 Ok", 250).empty());
    CHECK(reply_parser::enhanced_prefix("2.1.5", 250) == "2.1.5");
    CHECK(reply_parser::enhanced_prefix("2.1.5x", 250).empty());
}

TEST_CASE("Malformed replies are refused") {
    for (std::string_view bad : {"", "25", "2x0 ok", "250ok", "600 no", "150 no", "250_x"}) {
        CAPTURE(bad);
        reply_parser p;
        CHECK(p.feed(bad).error() == errc::upstream_protocol);
    }
    SUBCASE("codes that change inside a reply") {
        reply_parser p;
        (void)p.feed("250-first");
        CHECK(p.feed("251 second").error() == errc::upstream_protocol);
    }
    SUBCASE("a reply longer than the line limit") {
        reply_parser p;
        std::error_code last;
        for (std::size_t i = 0; i <= reply_parser::max_lines && !last; ++i) last = p.feed("250-more").error();
        CHECK(last == errc::upstream_protocol);
    }
}

TEST_CASE("A bare code is a reply with no text") {
    reply_parser p;
    auto r = p.feed("354");
    REQUIRE((r && *r));
    CHECK((*r)->code == 354);
}
