#include <grey/smtp/bdat.hpp>
#include <grey/smtp/data_codec.hpp>

#include <doctest/doctest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

using grey::errc;
using grey::smtp::bdat_scanner;
using grey::smtp::parse_bdat;

TEST_CASE("BDAT takes a chunk size, optionally followed by LAST in any case") {
    struct form {
        std::string_view argument;
        std::uint64_t size;
        bool last;
    };
    for (const form f : {form{"0 LAST", 0, true}, form{"0", 0, false}, form{"1000", 1000, false},
                         form{"1000 LAST", 1000, true}, form{"1000 last", 1000, true}, form{"5 LaSt", 5, true},
                         form{"007", 7, false}, form{"9999999999999999999", 9999999999999999999ull, false},
                         form{"18446744073709551 LAST", 18446744073709551ull, true}}) {
        CAPTURE(f.argument);
        const auto b = parse_bdat(f.argument);
        REQUIRE(b);
        CHECK(b->size == f.size);
        CHECK(b->last == f.last);
    }
}

TEST_CASE("BDAT arguments other than digits and an optional LAST are a syntax error") {
    for (std::string_view argument :
         {"", " ", "LAST", " LAST", "-1", "+1", "1 ", " 1", "1  LAST", "1 LAST ", "1 LASTX", "1 LAS", "1x", "1\tLAST",
         "1 LAST\r\n", "0x10", "1,000", "1 END", "1 l@st", "1 LAST LAST",
         // 20 digits: could overflow 64 bits, refused even when small
         "10000000000000000000", "18446744073709551616", "00000000000000000001", "99999999999999999999999"}) {
        CAPTURE(argument);
        CHECK(parse_bdat(argument).error() == errc::syntax_error);
    }
}

namespace {
struct outcome {
    std::error_code error;  // the same with and without DATA output, or the test fails
    std::string data;       // the DATA text, end of data included, when no error
    std::uint64_t octets = 0;
};

/// Feeds `message` cut at `cuts` (ascending offsets), then finishes; once checking only and
/// once writing DATA text, which must agree on the error.
outcome scan(std::string_view message, const std::vector<std::size_t>& cuts) {
    outcome o;
    bdat_scanner checker;
    grey::smtp::dot_stuffer stuffer;
    std::size_t at = 0;
    for (std::size_t i = 0; i <= cuts.size() && !o.error; ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : message.size();
        const std::string_view piece = message.substr(at, to - at);
        o.error = checker.feed(piece);
        if (!o.error) stuffer.append(o.data, piece);  // only checked octets become DATA text
        at = to;
    }
    if (!o.error) o.error = checker.finish();
    o.octets = checker.octets();
    if (o.error) {
        o.data.clear();
        return o;
    }
    o.data.append(stuffer.line_end_before_marker());
    o.data.append(grey::smtp::end_of_data_marker);
    return o;
}

/// The same message whole, byte by byte, cut once at every offset, and in random pieces
/// must give the same outcome. (Plain loops, not SUBCASEs: a test case calls this more than
/// once.)
void every_split(std::string_view message, const std::function<void(const outcome&)>& check) {
    {
        INFO("whole");
        check(scan(message, {}));
    }
    {
        INFO("byte by byte");
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < message.size(); ++i) cuts.push_back(i);
        check(scan(message, cuts));
    }
    for (std::size_t cut = 0; cut <= message.size(); ++cut) {
        INFO("cut at " << cut);
        check(scan(message, {cut}));
    }
    std::mt19937 rng(12345);
    for (int round = 0; round < 20; ++round) {
        std::vector<std::size_t> cuts;
        for (std::size_t at = 1 + rng() % 7; at < message.size(); at += 1 + rng() % 7) cuts.push_back(at);
        INFO("random pieces, round " << round);
        check(scan(message, cuts));
    }
}

void expect_data(std::string_view message, std::string_view data) {
    every_split(message, [&](const outcome& o) {
        CHECK_FALSE(o.error);
        CHECK(o.data == data);
        CHECK(o.octets == message.size());
    });
}

void expect_error(std::string_view message, errc e) {
    every_split(message, [&](const outcome& o) { CHECK(o.error == e); });
}
} // namespace

TEST_CASE("Plain text passes unchanged, followed by the end of data") {
    expect_data("Subject: hi\r\n\r\nhello\r\n", "Subject: hi\r\n\r\nhello\r\n.\r\n");
}

TEST_CASE("A line that begins with a dot is dot-stuffed for DATA") {
    expect_data(".hidden\r\n..two\r\nx.y\r\n.\r\n", "..hidden\r\n...two\r\nx.y\r\n..\r\n.\r\n");
    expect_data(".", "..\r\n.\r\n");
}

TEST_CASE("A CRLF.CRLF inside a chunk is content, not the end of the message") {
    // In BDAT the chunk size alone frames the message: this dot line is text and goes out
    // stuffed, so the upstream does not end the message there and read the rest as commands.
    expect_data("a\r\n.\r\nMAIL FROM:<evil@x.example>\r\n",
                "a\r\n..\r\nMAIL FROM:<evil@x.example>\r\n.\r\n");
}

TEST_CASE("A bare LF inside a chunk is refused, never taken as a line end") {
    expect_error("text\n.\nMAIL FROM:<evil@x.example>\r\n", errc::bare_lf);
    expect_error("\n", errc::bare_lf);
    expect_error("a\r\n\n", errc::bare_lf);
}

TEST_CASE("A bare CR inside a chunk is refused, never taken as a line end") {
    expect_error("text\r.\rMAIL FROM:<evil@x.example>\r\n", errc::bare_cr);
    expect_error("a\r\r\n", errc::bare_cr);
    expect_error("\r.", errc::bare_cr);
}

TEST_CASE("A CR at the end of one piece and an LF at the start of the next make a CRLF") {
    // every_split cuts between them too; here the cut is spelled out.
    bdat_scanner s;
    grey::smtp::dot_stuffer stuffer;
    std::string data;
    CHECK_FALSE(s.feed("line\r"));  // the CR waits for the octet that judges it
    stuffer.append(data, "line\r");
    CHECK_FALSE(s.feed("\n.next\r\n"));
    stuffer.append(data, "\n.next\r\n");  // the dot starts a line: it gets one more
    CHECK_FALSE(s.finish());
    CHECK(data == "line\r\n..next\r\n");
    CHECK(stuffer.line_end_before_marker().empty());
    CHECK(s.octets() == 13);
    expect_data("line\r\n.next\r\n", "line\r\n..next\r\n.\r\n");
}

TEST_CASE("A CR at the very end of the message is bare") {
    expect_error("text\r", errc::bare_cr);
    expect_error("\r", errc::bare_cr);
    expect_error("a\r\n\r", errc::bare_cr);
}

TEST_CASE("A NUL inside a chunk is refused") {
    expect_error(std::string_view("a\0b\r\n", 5), errc::nul_byte);
    expect_error(std::string_view("ok\r\n\0", 5), errc::nul_byte);
}

TEST_CASE("The first bad octet decides the error, however the message is split") {
    expect_error(std::string_view("a\r\0", 3), errc::bare_cr);  // the CR is judged at the NUL
    expect_error(std::string_view("a\0\n", 3), errc::nul_byte);
    expect_error(std::string(998, 'x') + std::string(1, '\0'), errc::nul_byte);
    expect_error(std::string(999, 'x') + "\n", errc::line_too_long);
    expect_error(std::string(10, 'x') + "\n" + std::string(999, 'x'), errc::bare_lf);
}

TEST_CASE("A text line of 998 octets and its CRLF passes; one octet more is refused") {
    // RFC 5321 §4.5.3.1.6: 1000 octets with the CRLF. The dot added for DATA does not count.
    const std::string at_limit = std::string(998, 'x') + "\r\n";
    expect_data(at_limit + at_limit, at_limit + at_limit + ".\r\n");
    const std::string dotted = "." + std::string(997, 'x') + "\r\n";
    expect_data(dotted, "." + dotted + ".\r\n");
    expect_error(std::string(999, 'x') + "\r\n", errc::line_too_long);
    expect_error("ok\r\n" + std::string(999, 'x'), errc::line_too_long);  // before any line end comes
    expect_data(std::string(998, 'x'), std::string(998, 'x') + "\r\n.\r\n");
}

TEST_CASE("The limit on text lines can be set") {
    bdat_scanner s(10);
    CHECK_FALSE(s.feed("12345678\r\n"));
    CHECK(s.feed("123456789\r\n") == errc::line_too_long);
    CHECK(s.feed("x") == errc::line_too_long);  // and it stays
    CHECK(s.error() == errc::line_too_long);
}

TEST_CASE("A message whose last line lacks a CRLF gets one before the end of data") {
    expect_data("Subject: x\r\n\r\nno end", "Subject: x\r\n\r\nno end\r\n.\r\n");
}

TEST_CASE("An empty message (BDAT 0 LAST) becomes the end of data alone") {
    // After the DATA command's CRLF, ".\r\n" is DATA's empty message (RFC 5321 §4.1.1.4).
    expect_data("", ".\r\n");
    bdat_scanner s;
    CHECK_FALSE(s.feed(""));
    CHECK_FALSE(s.finish());
    CHECK(s.octets() == 0);
    CHECK(grey::smtp::dot_stuffer().line_end_before_marker().empty());
}

TEST_CASE("Octets are counted as the client sent them, before stuffing") {
    bdat_scanner s;
    CHECK_FALSE(s.feed(".a\r\n"));
    CHECK_FALSE(s.feed(".b"));
    CHECK(s.octets() == 6);
    CHECK_FALSE(s.finish());
    CHECK(s.octets() == 6);
    expect_data(".a\r\n.b", "..a\r\n..b\r\n.\r\n");
}

TEST_CASE("DATA text is appended to what the output already holds") {
    grey::smtp::dot_stuffer stuffer;
    std::string data = "kept";
    stuffer.append(data, ".a\r\n");
    CHECK(data == "kept..a\r\n");
    stuffer.append(data, "b.");
    CHECK(data == "kept..a\r\nb.");  // a dot inside a line is content
    CHECK(stuffer.line_end_before_marker() == "\r\n");
    stuffer.reset();
    data.clear();
    stuffer.append(data, ".");
    CHECK(data == "..");  // a new message starts at a line start
}

TEST_CASE("A BINARYMIME body is counted, whatever its octets, and never judged by lines") {
    bdat_scanner s = bdat_scanner::binary();
    CHECK(s.is_binary());
    using namespace std::string_literals;
    const std::string body = "\0\n.\n\r\r\n"s + std::string(5000, 'x') + "\r";
    CHECK_FALSE(s.feed(body.substr(0, 3)));
    CHECK_FALSE(s.feed(body.substr(3)));
    CHECK_FALSE(s.finish());  // a CR at the end is content too
    CHECK(s.octets() == body.size());
    CHECK_FALSE(s.error());
    CHECK_FALSE(bdat_scanner().is_binary());
}
