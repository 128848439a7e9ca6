#include <grey/smtp/bdat_receiver.hpp>
#include <grey/smtp/message_data.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using grey::smtp::bdat_receiver;
using step = grey::smtp::bdat_receiver::step;
namespace replies = grey::smtp::replies;

TEST_CASE("A chunked message that keeps the rules is delivered piece by piece, then ended") {
    bdat_receiver r(1000, 1024, false);
    CHECK(r.take("Subject: x\r") == step::deliver);
    CHECK(r.take("\n\r\nbody") == step::deliver);
    CHECK(r.finish() == step::deliver);
    CHECK_FALSE(r.failure());
    CHECK(r.octets() == 18);
}

TEST_CASE("A framing fault aborts the message once; later pieces and LAST are skipped with the same answer") {
    bdat_receiver r(1000, 1024, false);
    CHECK(r.take("ok\r\n") == step::deliver);
    CHECK(r.take("a\nb") == step::abort);
    REQUIRE(r.failure());
    CHECK(r.failure()->code == replies::bare_line_ending.code);
    CHECK(r.take("fine\r\n") == step::skip);
    CHECK(r.finish() == step::skip);
    CHECK(r.failure()->code == 500);
}

TEST_CASE("A CR that ends the message fails it at LAST") {
    bdat_receiver r(1000, 1024, false);
    CHECK(r.take("text\r") == step::deliver);
    CHECK(r.finish() == step::abort);
    REQUIRE(r.failure());
    CHECK(r.failure()->enhanced == replies::bare_line_ending.enhanced);
}

TEST_CASE("A message over the size limit is refused with 552, its octets read on") {
    bdat_receiver r(1000, 10, false);
    CHECK(r.take("12345\r\n") == step::deliver);
    CHECK(r.take("1234") == step::abort);  // 11 octets: one too many
    REQUIRE(r.failure());
    CHECK(r.failure()->code == replies::message_too_big.code);
    CHECK(r.take("x") == step::skip);
}

TEST_CASE("NUL and over-long lines get their own replies") {
    bdat_receiver nul(1000, 1024, false);
    CHECK(nul.take(std::string_view("a\0b", 3)) == step::abort);
    CHECK(nul.failure()->lines == replies::nul_byte.lines);
    bdat_receiver longer(10, 1024, false);
    CHECK(longer.take("123456789\r\n") == step::abort);
    CHECK(longer.failure()->lines == replies::line_too_long.lines);
}

TEST_CASE("A BINARYMIME body is delivered whatever its octets") {
    bdat_receiver r(10, 1024, true);
    CHECK(r.take(std::string_view("\0\n\r.\r\nxxxxxxxxxxxxxxxx", 22)) == step::deliver);
    CHECK(r.take("\r") == step::deliver);
    CHECK(r.finish() == step::deliver);
}

TEST_CASE("A handler's own failure is kept like a framing fault") {
    bdat_receiver r(1000, 1024, false);
    CHECK(r.fail(replies::cannot_take_binary) == step::abort);
    CHECK(r.fail(replies::message_too_big) == step::skip);  // the first answer stays
    CHECK(r.failure()->code == replies::cannot_take_binary.code);
    CHECK(r.take("x") == step::skip);
}

TEST_CASE("A chunk that is not the last is acknowledged with its size") {
    const grey::smtp::reply ack = bdat_receiver::chunk_received(4096);
    CHECK(ack.code == 250);
    CHECK(ack.enhanced == "2.0.0");
    CHECK(ack.lines.front() == "4096 octets received");
}

TEST_CASE("for_each_content reads a message's content in either framing") {
    using grey::smtp::framing;
    std::string from_data, from_chunks;
    grey::smtp::for_each_content({"..a\r\nb\r\n\r\n", framing::data_text},
                                 [&](std::string_view c) { from_data.append(c); });
    grey::smtp::for_each_content({".a\r\nb\r", framing::chunk_octets}, [&](std::string_view c) { from_chunks.append(c); });
    grey::smtp::for_each_content({"\n\r\n", framing::chunk_octets}, [&](std::string_view c) { from_chunks.append(c); });
    CHECK(from_data == ".a\r\nb\r\n\r\n");
    CHECK(from_chunks == from_data);
}
