// tls_discard_sink — discard_sink.py with STARTTLS, in C++: Python's ssl module decrypts far
// slower than a relay can send, so a Python sink would measure itself. An SMTP server that
// answers every command with 250, offers STARTTLS until it is used, reads message text looking
// only for the CRLF.CRLF that ends it, and reports the octets it took in its 250 reply ("250 ok
// N", "250 ok N tls" when the message came over TLS) so the sender can check that every byte
// arrived, and how. One thread; loopback only.
//
//   tls_discard_sink --port PORT --cert CERT --key KEY
#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ssl.hpp>
#include <fmt/format.h>

#include <grey/detail/asio.hpp>

namespace {

using grey::detail::tcp;
using grey::detail::use_nothrow;
using tls_stream = asio::ssl::stream<tcp::socket>;

constexpr std::string_view end_of_text = "\r\n.\r\n";

/// Reads message text up to CRLF.CRLF, starting with what `in` already holds; leaves in `in`
/// what follows it. Returns the octets of text (its last CRLF included), or nothing when the
/// stream ended first.
template <class Stream>
asio::awaitable<std::optional<std::size_t>> discard_text(Stream& s, std::string& in) {
    // The last octets before the current chunk, at most 4, so that a terminator split between
    // two reads is found; the DATA line's CRLF may begin it.
    std::string prior = "\r\n";
    std::size_t before = 0;  // octets of text before the current chunk
    std::vector<char> block(1 << 20);
    std::string_view chunk = in;
    for (;;) {
        const std::string joined = prior + std::string(chunk.substr(0, end_of_text.size() - 1));
        std::size_t end = std::string_view::npos, rest = 0;  // where the terminator starts; what follows it
        if (const auto at = joined.find(end_of_text); at != std::string::npos) {
            end = before + at - prior.size();  // may be "before - 2": an empty message
            rest = at + end_of_text.size() - prior.size();
        } else if (const auto in_chunk = chunk.find(end_of_text); in_chunk != std::string_view::npos) {
            end = before + in_chunk;
            rest = in_chunk + end_of_text.size();
        }
        if (end != std::string_view::npos) {
            in = std::string(chunk.substr(rest));
            co_return end + 2;
        }
        before += chunk.size();
        prior = (prior + std::string(chunk.substr(chunk.size() - std::min<std::size_t>(chunk.size(), 4))));
        prior.erase(0, prior.size() - std::min<std::size_t>(prior.size(), 4));
        auto [ec, n] = co_await s.async_read_some(asio::buffer(block), use_nothrow);
        if (ec) co_return std::nullopt;
        chunk = std::string_view(block.data(), n);
    }
}

enum class ended { quit, closed, starttls };

/// Answers commands on `s` until QUIT, the end of the stream, or STARTTLS (offered when `s` is
/// not encrypted yet).
template <class Stream>
asio::awaitable<ended> converse(Stream& s, std::string& in, bool tls) {
    const bool offer_tls = !tls;
    for (;;) {
        auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n", use_nothrow);
        if (ec) co_return ended::closed;
        std::string verb = in.substr(0, std::min<std::size_t>(n, 4));
        std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char c) { return char(std::toupper(c)); });
        in.erase(0, n);
        std::string answer = "250 ok\r\n";
        ended after = ended::closed;  // closed here: go on
        if (verb == "EHLO") {
            answer = fmt::format("250-discard-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n{}250 SIZE\r\n",
                                 offer_tls ? "250-STARTTLS\r\n" : "");
        } else if (verb == "STAR" && offer_tls) {
            answer = "220 go ahead\r\n";
            after = ended::starttls;
        } else if (verb == "QUIT") {
            answer = "221 bye\r\n";
            after = ended::quit;
        } else if (verb == "DATA") {
            auto [wec, w] = co_await asio::async_write(s, asio::buffer("354 go ahead\r\n", 14), use_nothrow);
            if (wec) co_return ended::closed;
            const std::optional<std::size_t> octets = co_await discard_text(s, in);
            if (!octets) co_return ended::closed;
            answer = fmt::format("250 ok {}{}\r\n", *octets, tls ? " tls" : "");
        }
        auto [wec, w] = co_await asio::async_write(s, asio::buffer(answer), use_nothrow);
        if (wec) co_return ended::closed;
        if (after != ended::closed) co_return after;
    }
}

asio::awaitable<void> serve(tcp::socket socket, asio::ssl::context& context) {
    socket.set_option(tcp::no_delay(true));
    auto [ec, n] = co_await asio::async_write(socket, asio::buffer("220 discard-sink ESMTP\r\n", 24), use_nothrow);
    if (ec) co_return;
    std::string in;
    const ended plain = co_await converse(socket, in, false);
    if (plain != ended::starttls || !in.empty()) co_return;  // nothing may be pipelined behind STARTTLS
    tls_stream s(std::move(socket), context);
    auto [hec] = co_await s.async_handshake(asio::ssl::stream_base::server, use_nothrow);
    if (hec) co_return;
    co_await converse(s, in, true);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, asio::ssl::context& context) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
        if (ec) co_return;
        asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), context), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    unsigned short port = 0;
    std::string cert, key;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--port") port = static_cast<unsigned short>(std::stoul(argv[i + 1]));
        else if (a == "--cert") cert = argv[i + 1];
        else if (a == "--key") key = argv[i + 1];
    }
    if (!port || cert.empty() || key.empty()) {
        fmt::print(stderr, "usage: tls_discard_sink --port PORT --cert CERT --key KEY\n");
        return 2;
    }
    asio::ssl::context context(asio::ssl::context::tls_server);
    context.use_certificate_chain_file(cert);
    context.use_private_key_file(key, asio::ssl::context::pem);
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    asio::co_spawn(ioc, listen(acceptor, context), asio::detached);
    // Stopped by SIGTERM or SIGINT from whoever started it.
    asio::signal_set signals(ioc, SIGTERM, SIGINT);
    signals.async_wait([&](auto, auto) { ioc.stop(); });
    ioc.run();
}
