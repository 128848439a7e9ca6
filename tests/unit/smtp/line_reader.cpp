#include <grey/smtp/line_reader.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

using grey::errc;
using grey::smtp::line_reader;

namespace {
struct outcome {
    std::vector<std::string> lines;  // raw, CRLF included
    std::error_code error;
    std::size_t buffered = 0;
};

/// Writes `input` into `r` in pieces of the given sizes (cycled), calling drain() after each
/// piece; stops early when drain() returns false.
template <class Drain>
void pour(line_reader& r, std::string_view input, const std::vector<std::size_t>& pieces, Drain drain) {
    std::size_t at = 0, piece = 0;
    while (at < input.size()) {
        auto space = r.prepare();
        REQUIRE(!space.empty());
        const std::size_t n = std::min({pieces[piece++ % pieces.size()], space.size(), input.size() - at});
        std::memcpy(space.data(), input.data() + at, n);
        r.commit(n);
        at += n;
        if (!drain()) return;
    }
}

/// Feeds `input` in pieces of the given sizes (cycled), taking every line as it completes.
outcome feed(std::string_view input, std::size_t max_line, const std::vector<std::size_t>& pieces,
             std::size_t capacity = line_reader::default_capacity) {
    line_reader r(capacity);
    outcome o;
    pour(r, input, pieces, [&] {
        for (;;) {
            auto next = r.next(max_line);
            if (!next) {
                o.error = next.error();
                return false;
            }
            if (!*next) return true;
            CHECK((*next)->raw.substr((*next)->text.size()) == "\r\n");
            o.lines.emplace_back((*next)->raw);
        }
    });
    if (!o.error) o.buffered = r.buffered();
    return o;
}

/// The same input whole, byte by byte, and in random pieces must give the same outcome.
/// (Plain loops, not SUBCASEs: a test case calls this more than once.)
void every_split(std::string_view input, std::size_t max_line, const std::function<void(const outcome&)>& check,
                 std::size_t capacity = line_reader::default_capacity) {
    {
        INFO("whole");
        check(feed(input, max_line, {input.size() + 1}, capacity));
    }
    {
        INFO("byte by byte");
        check(feed(input, max_line, {1}, capacity));
    }
    std::mt19937 rng(12345);
    for (int round = 0; round < 20; ++round) {
        std::vector<std::size_t> pieces;
        for (int i = 0; i < 16; ++i) pieces.push_back(1 + rng() % 7);
        INFO("random pieces, round " << round);
        check(feed(input, max_line, pieces, capacity));
    }
}
} // namespace

TEST_CASE("Lines end only at CRLF and come out whole, however the bytes arrive") {
    every_split("EHLO a\r\nMAIL FROM:<x@y.z>\r\n\r\nQUIT\r\npartial", 512, [](const outcome& o) {
        CHECK_FALSE(o.error);
        CHECK(o.lines == std::vector<std::string>{"EHLO a\r\n", "MAIL FROM:<x@y.z>\r\n", "\r\n", "QUIT\r\n"});
        CHECK(o.buffered == 7);
    });
}

TEST_CASE("A line of exactly the limit passes; one octet more is refused") {
    const std::string at_limit = std::string(510, 'x') + "\r\n";
    every_split(at_limit, 512, [&](const outcome& o) {
        CHECK_FALSE(o.error);
        CHECK(o.lines == std::vector<std::string>{at_limit});
    });
    const std::string over = std::string(511, 'x') + "\r\n";
    every_split(over, 512, [](const outcome& o) { CHECK(o.error == errc::line_too_long); });
}

TEST_CASE("A line over the limit is refused before its end arrives") {
    // No LF ever comes: the reader must not wait for one, holding the bytes.
    const outcome o = feed(std::string(2000, 'x'), 1000, {64});
    CHECK(o.error == errc::line_too_long);
}

TEST_CASE("A bare LF is refused, never taken as a line end") {
    every_split("EHLO a\nMAIL FROM:<x@y.z>\r\n", 512, [](const outcome& o) {
        CHECK(o.error == errc::bare_lf);
        CHECK(o.lines.empty());
    });
    every_split("\n", 512, [](const outcome& o) { CHECK(o.error == errc::bare_lf); });
}

TEST_CASE("A bare CR is refused, even with no LF after it") {
    every_split("EHLO a\rb\r\n", 512, [](const outcome& o) { CHECK(o.error == errc::bare_cr); });
    every_split("hello\r.\rMAIL FROM:<a@b.c>", 512, [](const outcome& o) { CHECK(o.error == errc::bare_cr); });
}

TEST_CASE("A CR at the end of the input waits for the next byte") {
    const outcome o = feed("EHLO a\r", 512, {100});
    CHECK_FALSE(o.error);
    CHECK(o.lines.empty());
    CHECK(o.buffered == 7);
}

TEST_CASE("A NUL byte is refused") {
    every_split(std::string_view("EHLO a\0b\r\n", 10), 512, [](const outcome& o) { CHECK(o.error == errc::nul_byte); });
    every_split(std::string_view("no end \0", 8), 512, [](const outcome& o) { CHECK(o.error == errc::nul_byte); });
}

TEST_CASE("The SMTP smuggling sequences never yield a lone dot line") {
    for (std::string_view trick : {"\n.\n", "\r\n.\n", "\n.\r\n", "\r.\r", "\r\n.\r"}) {
        CAPTURE(trick);
        const std::string input = "text" + std::string(trick) + "MAIL FROM:<evil@x.example>\r\n.\r\n";
        const outcome o = feed(input, 1000, {3});
        CHECK(o.error);
        for (const auto& l : o.lines) CHECK(l != ".\r\n");
    }
}

TEST_CASE("A small buffer is reused across many lines without growing") {
    std::string input;
    for (int i = 0; i < 500; ++i) input += "line " + std::to_string(i) + "\r\n";
    every_split(
        input, 60,
        [](const outcome& o) {
            CHECK_FALSE(o.error);
            REQUIRE(o.lines.size() == 500);
            CHECK(o.lines[0] == "line 0\r\n");
            CHECK(o.lines[499] == "line 499\r\n");
        },
        64);
}

TEST_CASE("Consecutive lines are adjacent in the buffer, so they can be passed on as one chunk") {
    line_reader r;
    const std::string_view input = "a\r\nbb\r\nccc\r\n";
    auto space = r.prepare();
    std::memcpy(space.data(), input.data(), input.size());
    r.commit(input.size());
    auto first = r.next(1000);
    auto second = r.next(1000);
    REQUIRE((first && *first && second && *second));
    CHECK((*first)->raw.data() + (*first)->raw.size() == (*second)->raw.data());
}

TEST_CASE("The buffer is taken on first use and given back only when nothing is unread") {
    line_reader r;
    CHECK_FALSE(r.holds_buffer());
    auto none = r.next(1000);
    REQUIRE(none);
    CHECK_FALSE(*none);  // no buffer: simply nothing yet

    const std::string_view input = "NOOP\r\nQU";
    auto space = r.prepare();
    CHECK(r.holds_buffer());
    std::memcpy(space.data(), input.data(), input.size());
    r.commit(input.size());
    auto noop = r.next(1000);
    REQUIRE((noop && *noop));
    CHECK((*noop)->raw == "NOOP\r\n");

    r.release();  // "QU" is still unread: kept
    CHECK(r.holds_buffer());
    CHECK(r.buffered() == 2);

    space = r.prepare();
    std::memcpy(space.data(), "IT\r\n", 4);
    r.commit(4);
    auto quit = r.next(1000);
    REQUIRE((quit && *quit));
    CHECK((*quit)->raw == "QUIT\r\n");
    r.release();
    CHECK_FALSE(r.holds_buffer());
    CHECK(r.buffered() == 0);
}

namespace {
/// A session's reading loop: lines, and after "BDAT <n>" n raw octets taken with take(),
/// waiting for more input when the chunk is not all there. Events are "line:<raw>" and
/// "octets:<taken>" (one event per chunk, however many takes it needed).
struct take_outcome {
    std::vector<std::string> events;
    std::error_code error;
};

take_outcome read_with_chunks(std::string_view input, const std::vector<std::size_t>& pieces) {
    line_reader r(64);
    take_outcome o;
    std::size_t chunk_left = 0;
    std::string chunk;
    auto drain = [&]() -> bool {
        for (;;) {
            if (chunk_left > 0) {
                const std::string_view t = r.take(chunk_left);
                chunk.append(t);
                chunk_left -= t.size();
                if (chunk_left > 0) return true;  // the rest of the chunk has not come yet
                o.events.push_back("octets:" + chunk);
                chunk.clear();
                continue;
            }
            auto next = r.next(32);
            if (!next) {
                o.error = next.error();
                return false;
            }
            if (!*next) return true;
            const std::string raw((*next)->raw);
            o.events.push_back("line:" + raw);
            if (raw.starts_with("BDAT ")) chunk_left = std::stoul(raw.substr(5));
        }
    };
    pour(r, input, pieces, drain);
    return o;
}

void every_split_with_chunks(std::string_view input, const std::function<void(const take_outcome&)>& check) {
    {
        INFO("whole");
        check(read_with_chunks(input, {input.size() + 1}));
    }
    {
        INFO("byte by byte");
        check(read_with_chunks(input, {1}));
    }
    std::mt19937 rng(54321);
    for (int round = 0; round < 20; ++round) {
        std::vector<std::size_t> pieces;
        for (int i = 0; i < 16; ++i) pieces.push_back(1 + rng() % 11);
        INFO("random pieces, round " << round);
        check(read_with_chunks(input, pieces));
    }
}
} // namespace

TEST_CASE("Raw octets taken between lines leave the next line intact, however the bytes arrive") {
    // Chunks hold what lines may not (bare CR and LF, NUL, a lone dot, more than the line
    // limit): take() hands them over unjudged, and the command after them is read as a line.
    const std::string chunk = std::string("a\rb\nc\0.\r\n", 10) + std::string(40, 'x');
    const std::string input =
        "EHLO a\r\nBDAT " + std::to_string(chunk.size()) + "\r\n" + chunk + "BDAT 0 LAST\r\nBDAT 3\r\nendQUIT\r\n";
    every_split_with_chunks(input, [&](const take_outcome& o) {
        CHECK_FALSE(o.error);
        CHECK(o.events == std::vector<std::string>{"line:EHLO a\r\n", "line:BDAT 50\r\n", "octets:" + chunk,
                                                   "line:BDAT 0 LAST\r\n", "line:BDAT 3\r\n", "octets:end",
                                                   "line:QUIT\r\n"});
    });
}

TEST_CASE("A CR taken with a chunk and an LF left after it make no line end") {
    // The chunk "ab\r" ends in a CR; the LF after it starts the next command: it is bare.
    every_split_with_chunks("BDAT 3\r\nab\r\nQUIT\r\n", [](const take_outcome& o) {
        CHECK(o.error == errc::bare_lf);
        CHECK(o.events == std::vector<std::string>{"line:BDAT 3\r\n", "octets:ab\r"});
    });
    // The chunk "ab" is followed by "\r\n": an empty line, then QUIT.
    every_split_with_chunks("BDAT 2\r\nab\r\nQUIT\r\n", [](const take_outcome& o) {
        CHECK_FALSE(o.error);
        CHECK(o.events == std::vector<std::string>{"line:BDAT 2\r\n", "octets:ab", "line:\r\n", "line:QUIT\r\n"});
    });
}

TEST_CASE("take() after a partial scan: what was scanned and not taken is still a line start") {
    line_reader r;
    auto put = [&](std::string_view bytes) {
        auto space = r.prepare();
        std::memcpy(space.data(), bytes.data(), bytes.size());
        r.commit(bytes.size());
    };
    put("abcdef\r");
    auto none = r.next(1000);
    REQUIRE(none);
    CHECK_FALSE(*none);  // scanned up to the CR, which waits for its next byte
    CHECK(r.take(2) == "ab");
    CHECK(r.buffered() == 5);
    put("\n");
    auto line = r.next(1000);
    REQUIRE((line && *line));
    CHECK((*line)->raw == "cdef\r\n");

    put("xy\r");
    none = r.next(1000);
    REQUIRE(none);
    CHECK_FALSE(*none);
    CHECK(r.take(3) == "xy\r");  // the CR goes with the octets taken
    put("\n");
    CHECK(r.next(1000).error() == errc::bare_lf);
}

TEST_CASE("take() gives at most what is buffered, and nothing without a buffer") {
    line_reader r;
    CHECK(r.take(10).empty());
    auto space = r.prepare();
    std::memcpy(space.data(), "hello", 5);
    r.commit(5);
    CHECK(r.take(0).empty());
    CHECK(r.buffered() == 5);
    CHECK(r.take(100) == "hello");
    CHECK(r.buffered() == 0);
    CHECK(r.take(100).empty());
    r.release();
    CHECK_FALSE(r.holds_buffer());
}
