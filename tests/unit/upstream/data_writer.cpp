// The writers against a scripted upstream on loopback: what reaches it and when, and what the
// writers make of its replies.
#include <grey/upstream/data_writer.hpp>

#include <doctest/doctest.h>

#include <exception>
#include <string>
#include <string_view>

using grey::upstream::chunk_writer;
using grey::upstream::held_limit;
using grey::upstream::text_writer;
using namespace std::string_view_literals;

namespace {

/// A client connected to an upstream the test plays: it reads what the client sent and writes
/// the replies the client will read.
struct fixture {
    asio::io_context ioc;
    asio::ip::tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    asio::ip::tcp::socket peer{ioc};
    grey::deadline limit{ioc.get_executor()};
    grey::timeouts timeouts;
    grey::upstream::client up{ioc.get_executor(), limit, timeouts};

    /// Connects, then runs `body` on the io_context.
    template <class Body>
    void run(Body body) {
        asio::co_spawn(
            ioc,
            [this]() -> asio::awaitable<void> {
                co_await acceptor.async_accept(peer, asio::use_awaitable);
                co_await asio::async_write(peer, asio::buffer("220 upstream ready\r\n"sv), asio::use_awaitable);
            },
            asio::detached);
        std::exception_ptr failed;
        bool done = false;
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                const auto greeting = co_await up.connect("127.0.0.1", acceptor.local_endpoint().port());
                REQUIRE(greeting.has_value());
                co_await body();
            },
            [&](std::exception_ptr e) {
                failed = e;
                done = true;
            });
        ioc.run();
        if (failed) std::rethrow_exception(failed);
        CHECK(done);
    }

    /// What the client has sent and the upstream not read yet, waiting for `n` octets.
    asio::awaitable<std::string> received(std::size_t n) {
        std::string got(n, '\0');
        co_await asio::async_read(peer, asio::buffer(got), asio::use_awaitable);
        co_return got;
    }

    /// The upstream's replies, written before the client asks for them.
    asio::awaitable<void> replies(std::string_view lines) {
        co_await asio::async_write(peer, asio::buffer(lines), asio::use_awaitable);
    }

    /// Octets the client has sent that the upstream has not read (loopback delivers at once).
    std::size_t waiting() { return peer.available(); }
};

// One octet more than a writer holds back: it leaves at once.
const std::string big(held_limit + 1, 'x');

grey::smtp::message_data text(std::string_view wire) { return {wire, grey::smtp::framing::data_text}; }
grey::smtp::message_data octets(std::string_view piece) { return {piece, grey::smtp::framing::chunk_octets}; }

} // namespace

TEST_CASE("A small DATA message is held back and leaves with its final dot") {
    fixture f;
    text_writer w(f.timeouts);
    f.run([&]() -> asio::awaitable<void> {
        std::error_code ec = co_await w.write(f.up, text("Subject: small\r\n"));
        CHECK_FALSE(ec);
        ec = co_await w.write(f.up, text("..a stuffed line\r\n"));
        CHECK_FALSE(ec);
        CHECK(f.waiting() == 0);
        co_await f.replies("250 2.0.0 queued\r\n");
        const auto r = co_await w.finish(f.up);
        REQUIRE(r.has_value());
        CHECK(r->code == 250);
        constexpr std::string_view sent = "Subject: small\r\n..a stuffed line\r\n.\r\n";
        const std::string got = co_await f.received(sent.size());
        CHECK(got == sent);
        CHECK(f.waiting() == 0);
    });
}

TEST_CASE("Past the held limit DATA text leaves as it comes, after what was held") {
    fixture f;
    text_writer w(f.timeouts);
    f.run([&]() -> asio::awaitable<void> {
        std::error_code ec = co_await w.write(f.up, text("first\r\n"));
        CHECK_FALSE(ec);
        CHECK(f.waiting() == 0);
        ec = co_await w.write(f.up, text(big));
        CHECK_FALSE(ec);
        std::string got = co_await f.received(7 + big.size());
        CHECK(got == "first\r\n" + big);
        co_await f.replies("554 5.6.0 no thanks\r\n");
        const auto r = co_await w.finish(f.up);
        REQUIRE(r.has_value());
        CHECK(r->code == 554);  // the upstream's answer, whatever it is
        got = co_await f.received(3);
        CHECK(got == ".\r\n");
    });
}

TEST_CASE("A chunked message sent as DATA is stuffed on the way, and its last line ended") {
    fixture f;
    text_writer w(f.timeouts);
    f.run([&]() -> asio::awaitable<void> {
        // Cut inside a CRLF: the dot after it still starts a line.
        std::error_code ec = co_await w.write(f.up, octets(".a\r"));
        CHECK_FALSE(ec);
        ec = co_await w.write(f.up, octets("\n.\r\nno end"));
        CHECK_FALSE(ec);
        CHECK(f.waiting() == 0);
        co_await f.replies("250 2.0.0 queued\r\n");
        const auto r = co_await w.finish(f.up);
        REQUIRE(r.has_value());
        CHECK(r->code == 250);
        constexpr std::string_view sent = "..a\r\n..\r\nno end\r\n.\r\n";
        const std::string got = co_await f.received(sent.size());
        CHECK(got == sent);
        // The next message starts at a line start, with nothing held.
        ec = co_await w.write(f.up, octets("."));
        CHECK_FALSE(ec);
        co_await f.replies("250 2.0.0 queued\r\n");
        const auto again = co_await w.finish(f.up);
        REQUIRE(again.has_value());
        const std::string second = co_await f.received(7);
        CHECK(second == "..\r\n.\r\n");
    });
}

TEST_CASE("A large chunked message sent as DATA leaves as it comes, stuffed") {
    fixture f;
    text_writer w(f.timeouts);
    f.run([&]() -> asio::awaitable<void> {
        const std::string line = "." + std::string(98, 'y') + "\r\n";  // 101 octets, stuffed to 102
        std::string message;
        while (message.size() <= held_limit) message += line;
        const std::error_code ec = co_await w.write(f.up, octets(message));
        CHECK_FALSE(ec);
        const std::size_t lines = message.size() / line.size();
        const std::string got = co_await f.received(message.size() + lines);
        CHECK(got.starts_with(".." + std::string(98, 'y') + "\r\n.."));
        CHECK(got.size() == message.size() + lines);
        w.clear();
    });
}

TEST_CASE("BDAT chunks carry the octets as given, each header counting what was held and what came") {
    fixture f;
    chunk_writer w(f.timeouts);
    f.run([&]() -> asio::awaitable<void> {
        std::error_code ec = co_await w.write(f.up, "a\r\n.b");
        CHECK_FALSE(ec);
        CHECK(f.waiting() == 0);
        ec = co_await w.write(f.up, big);
        CHECK_FALSE(ec);
        const std::string first = "BDAT " + std::to_string(5 + big.size()) + "\r\na\r\n.b" + big;
        std::string got = co_await f.received(first.size());
        CHECK(got == first);
        ec = co_await w.write(f.up, "\r\n");  // held, and the first chunk's reply not read yet
        CHECK_FALSE(ec);
        co_await f.replies("250 2.0.0 chunk taken\r\n250 2.0.0 message taken\r\n");
        const auto r = co_await w.finish(f.up);
        REQUIRE(r.has_value());
        CHECK(r->code == 250);
        REQUIRE_FALSE(r->lines.empty());
        CHECK(r->lines.back().find("message taken") != std::string::npos);
        got = co_await f.received(15);
        CHECK(got == "BDAT 2 LAST\r\n\r\n");
        CHECK_FALSE(w.refused());
    });
}

TEST_CASE("An empty chunked message ends with BDAT 0 LAST") {
    fixture f;
    chunk_writer w(f.timeouts);
    f.run([&]() -> asio::awaitable<void> {
        co_await f.replies("250 ok\r\n");
        const auto r = co_await w.finish(f.up);
        REQUIRE(r.has_value());
        CHECK(r->code == 250);
        const std::string got = co_await f.received(13);
        CHECK(got == "BDAT 0 LAST\r\n");
    });
}

TEST_CASE("A refused chunk ends the message: nothing more is sent and the refusal is its answer") {
    fixture f;
    chunk_writer w(f.timeouts);
    f.run([&]() -> asio::awaitable<void> {
        std::error_code ec = co_await w.write(f.up, big);
        CHECK_FALSE(ec);
        const std::string chunk = "BDAT " + std::to_string(big.size()) + "\r\n" + big;
        const std::string got = co_await f.received(chunk.size());
        CHECK(got == chunk);
        co_await f.replies("552 5.3.4 too big\r\n");
        ec = co_await w.write(f.up, big);  // reads the refusal before a next chunk, sends nothing
        CHECK_FALSE(ec);
        CHECK(w.refused());
        ec = co_await w.write(f.up, "more\r\n");
        CHECK_FALSE(ec);
        const auto r = co_await w.finish(f.up);
        REQUIRE(r.has_value());
        CHECK(r->code == 552);
        CHECK(f.waiting() == 0);
        CHECK_FALSE(w.refused());  // finish() ended the message
    });
}

TEST_CASE("A connection lost under a writer is an error, not an answer") {
    fixture f;
    chunk_writer w(f.timeouts);
    f.run([&]() -> asio::awaitable<void> {
        const std::error_code ec = co_await w.write(f.up, big);
        CHECK_FALSE(ec);
        f.peer.close();
        const auto r = co_await w.finish(f.up);  // the chunk's reply never comes
        CHECK_FALSE(r.has_value());
    });
}
