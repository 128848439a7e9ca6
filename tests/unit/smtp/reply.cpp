#include <grey/smtp/reply.hpp>

#include <doctest/doctest.h>

using namespace grey::smtp;

TEST_CASE("A reply's wire form carries its code and enhanced code on every line") {
    CHECK(to_wire(replies::ok) == "250 2.0.0 OK\r\n");
    CHECK(to_wire(reply{550, "5.7.1", {"first", "second"}}) == "550-5.7.1 first\r\n550 5.7.1 second\r\n");
    CHECK(to_wire(reply{250, "", {"mx.example", "PIPELINING", "SIZE 10"}}) ==
          "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10\r\n");
    CHECK(to_wire(reply{354, "", std::vector<std::string>()}) == "354 \r\n");
}

TEST_CASE("A reply's class says what kind of answer it is") {
    CHECK(replies::ok.completion());
    CHECK(replies::start_data.positive());
    CHECK_FALSE(replies::start_data.completion());
    CHECK(replies::try_again_later.transient());
    CHECK(replies::bad_sequence.permanent());
}

TEST_CASE("The catalogue uses the codes RFC 5321 and RFC 3463 give each situation") {
    CHECK(replies::try_again_later == reply{451, "4.7.1", "Please try again later"});  // the seed's words
    CHECK(replies::line_too_long.code == 500);
    CHECK(replies::bad_sequence.code == 503);
    CHECK(replies::unknown_parameter.code == 555);
    CHECK(replies::message_too_big.enhanced == "5.3.4");
    CHECK(replies::too_many_recipients.enhanced == "4.5.3");
    CHECK(replies::timeout.code == 421);
    CHECK(replies::shutting_down.code == 421);
}
