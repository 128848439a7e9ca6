#include <grey/smtp/extensions.hpp>

#include <doctest/doctest.h>

using namespace grey::smtp;

TEST_CASE("An EHLO reply's keywords are read whatever their case, SIZE with its argument") {
    const reply ehlo{250, "", {"mx.example", "pipelining", "SIZE 10240000", "8BITMIME", "DSN", "SMTPUTF8",
                               "CHUNKING", "STARTTLS", "AUTH PLAIN", "X-UNKNOWN"}};
    const extensions e = extensions::from_ehlo(ehlo);
    for (extension x : {extension::pipelining, extension::size, extension::eight_bit_mime, extension::dsn,
                        extension::smtputf8, extension::chunking, extension::starttls})
        CHECK(e.has(x));
    CHECK_FALSE(e.has(extension::binarymime));
    CHECK_FALSE(e.has(extension::enhanced_status_codes));
    REQUIRE(e.size_limit);
    CHECK(*e.size_limit == 10240000);
    SUBCASE("the first line is the server's name, not a keyword") {
        CHECK_FALSE(extensions::from_ehlo(reply{250, "", {"DSN"}}).has(extension::dsn));
    }
    SUBCASE("the flags survive the round trip through bits") {
        CHECK(extensions::from_bits(e.bits()).bits() == e.bits());
    }
}

TEST_CASE("Grey offers SMTPUTF8 and DSN only when the upstream has them, and never CHUNKING on its word") {
    extensions upstream;
    CHECK(relayable(upstream).bits() == 0);
    upstream.add(extension::smtputf8);
    upstream.add(extension::chunking);
    upstream.add(extension::pipelining);
    const extensions offered = relayable(upstream);
    CHECK(offered.has(extension::smtputf8));
    CHECK_FALSE(offered.has(extension::dsn));
    CHECK_FALSE(offered.has(extension::chunking));  // offered by MailHandler itself, upstream or not
    CHECK_FALSE(offered.has(extension::pipelining));
}

TEST_CASE("BINARYMIME is offered only when the upstream has it and CHUNKING, which alone carries it") {
    extensions upstream;
    upstream.add(extension::binarymime);
    CHECK_FALSE(relayable(upstream).has(extension::binarymime));
    upstream.add(extension::chunking);
    CHECK(relayable(upstream).has(extension::binarymime));
}
