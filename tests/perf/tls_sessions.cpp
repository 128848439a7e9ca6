// tls_sessions — STARTTLS sessions per second through an SMTP server. Many sessions at once, each
// a full one as an MTA without a TLS session cache makes it: greeting, EHLO, STARTTLS, a full
// handshake (no resumption), EHLO again, MAIL, RCPT, DATA with a --size message, QUIT; one
// command at a time. A session counts only when the final dot got 250 and QUIT 221.
// Prints the rate, the sessions that failed (a run with any is not a figure), the share of
// one core this client used, to show whether it, rather than the server, set the pace, and the
// slowest session in ms (a stall: the rate counts the run until its last session ends).
//
//   tls_sessions --port 2525 [--seconds 3] [--concurrency 8] [--size 1024]
//
// --no-tls leaves out STARTTLS: plain sessions. --sources N opens the sessions from N loopback
// addresses in turn, 127.0.0.1 to 127.0.0.N, each saying its own EHLO name (client-K.example),
// as many clients reaching an MX; without it every session comes from 127.0.0.1 with one name.
//
// --resume makes each of the --concurrency clients an MTA with a TLS session cache: it offers
// the session of its own previous connection (a ticket, or a TLS 1.2 session ID), so that every
// session but each client's first can be an abbreviated handshake. The line then also says how
// many the server resumed. --tls1.2 keeps the client to TLS 1.2 (default: 1.2 or 1.3).
//
// With --stream N it sends instead one message of N octets in one session, in 1 MiB writes, and
// prints MiB/s from DATA's 354 to the final 250 and that reply.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <netinet/in.h>
#include <sys/resource.h>

#include <asio/ssl.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include <grey/detail/asio.hpp>

namespace {

using grey::detail::tcp;
using grey::detail::use_nothrow;
using steady = std::chrono::steady_clock;
using tls_stream = asio::ssl::stream<tcp::socket>;

/// Reads one reply, multi-line included, from `s` through `in` (bytes read past it stay there).
/// Returns its code; 0 when the stream failed or the line is not a reply.
template <class Stream>
asio::awaitable<int> reply(Stream& s, std::string& in) {
    for (;;) {
        auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n", use_nothrow);
        if (ec) co_return 0;
        const int code = n >= 5 ? std::atoi(in.substr(0, 3).c_str()) : 0;
        const bool last = n < 6 || in[3] != '-';
        in.erase(0, n);
        if (last) co_return code;
    }
}

template <class Stream>
asio::awaitable<int> command(Stream& s, std::string& in, std::string_view text) {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(text), use_nothrow);
    if (ec) co_return 0;
    const int code = co_await reply(s, in);
    co_return code;
}

/// Message text of exactly `size` octets (a header, then lines of 76 'x'), followed by the dot.
std::string message(std::size_t size) {
    std::string text = "Subject: tls session\r\n\r\n";
    while (text.size() + 2 < size) text.append(std::min<std::size_t>(76, size - text.size() - 2), 'x').append("\r\n");
    text.resize(std::max(size, text.size()));
    return text + ".\r\n";
}

/// Where a session comes from: its source address (none: the kernel's choice) and EHLO line.
struct origin {
    asio::ip::address_v4 address;
    bool bind = false;
    std::string ehlo = "EHLO client.example\r\n";
};

/// EHLO, MAIL, RCPT and DATA, one at a time. True when DATA got its 354.
template <class Stream>
asio::awaitable<bool> envelope(Stream& s, std::string& in, const origin& from) {
    // Awaited one by one into `code`: GCC 12 miscompiles co_await inside conditions.
    int code = co_await command(s, in, from.ehlo);
    if (code != 250) co_return false;
    code = co_await command(s, in, "MAIL FROM:<bench@example.com>\r\n");
    if (code != 250) co_return false;
    code = co_await command(s, in, "RCPT TO:<user@example.com>\r\n");
    if (code != 250) co_return false;
    code = co_await command(s, in, "DATA\r\n");
    co_return code == 354;
}

/// Connects and, when `tls`, says EHLO and STARTTLS and does the handshake; then the envelope.
/// True when DATA got its 354.
/// `from` is an lvalue of the caller's: GCC 12 destroys a temporary in a co_await expression
/// twice.
asio::awaitable<bool> open_data(tls_stream& s, std::string& in, tcp::endpoint server, bool tls, const origin& from) {
    tcp::socket& plain = s.next_layer();
    if (from.bind) {
        asio::error_code bec;
        plain.open(tcp::v4(), bec);
        // The port is chosen at connect, for the whole four-tuple: many sessions from one address.
        if (!bec) plain.set_option(asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>(true), bec);
        if (!bec) plain.bind(tcp::endpoint(from.address, 0), bec);
        if (bec) co_return false;
    }
    auto [ec] = co_await plain.async_connect(server, use_nothrow);
    if (ec) co_return false;
    plain.set_option(tcp::no_delay(true));
    int code = co_await reply(plain, in);
    if (code != 220) co_return false;
    bool ok = false;
    if (tls) {
        code = co_await command(plain, in, from.ehlo);
        if (code != 250) co_return false;
        code = co_await command(plain, in, "STARTTLS\r\n");
        // Anything sent behind the 220 would be plaintext injected into the TLS session.
        if (code != 220 || !in.empty()) co_return false;
        auto [hec] = co_await s.async_handshake(asio::ssl::stream_base::client, use_nothrow);
        if (hec) co_return false;
        ok = co_await envelope(s, in, from);
    } else {
        ok = co_await envelope(plain, in, from);
    }
    co_return ok;
}

struct tally {
    std::size_t started = 0;
    std::size_t ok = 0;  // the others failed, or had not ended when the run was cut off
    std::size_t resumed = 0;  // of those ok, the sessions whose handshake resumed an earlier one
    steady::duration slowest{};  // the longest session, from connect to QUIT's reply
};

/// The `n`th session's origin among `sources` loopback addresses (0: no binding).
origin origin_of(std::size_t n, std::size_t sources) {
    origin o;
    if (!sources) return o;
    const std::size_t k = n % sources + 1;
    o.address = asio::ip::address_v4((127u << 24) | static_cast<unsigned>(k));
    o.bind = true;
    o.ehlo = sources == 1 ? o.ehlo : fmt::format("EHLO client-{}.example\r\n", k);
    return o;
}

/// What a client keeps between its connections: the TLS session it may offer next.
struct client_cache {
    client_cache() = default;
    client_cache(const client_cache&) = delete;
    client_cache& operator=(const client_cache&) = delete;
    ~client_cache() { keep(nullptr); }
    /// Keeps `next` (owned from now on) in place of the one held.
    void keep(SSL_SESSION* next) {
        if (session) SSL_SESSION_free(session);
        session = next;
    }
    SSL_SESSION* session = nullptr;
};

/// One session; with `cache`, offering its session and keeping the new one (the TLS 1.3 ticket
/// came after the handshake, and has been read with the replies since). `resumed` says whether
/// the server resumed it.
asio::awaitable<bool> one_session(tcp::endpoint server, asio::ssl::context& context, const std::string& text,
                                  bool tls, const origin& from, client_cache* cache, bool& resumed) {
    tls_stream s(co_await asio::this_coro::executor, context);
    if (cache && cache->session) SSL_set_session(s.native_handle(), cache->session);
    std::string in;
    const bool open = co_await open_data(s, in, server, tls, from);
    if (!open) co_return false;
    int code = 0;
    if (tls) code = co_await command(s, in, text);
    else code = co_await command(s.next_layer(), in, text);
    if (code != 250) co_return false;
    if (tls) code = co_await command(s, in, "QUIT\r\n");
    else code = co_await command(s.next_layer(), in, "QUIT\r\n");
    resumed = tls && SSL_session_reused(s.native_handle()) == 1;
    if (cache && tls) {
        // A copy, as an MTA's session cache keeps one: the connection ends without close_notify,
        // and OpenSSL then marks its own session as not to be resumed.
        SSL_SESSION* next = nullptr;
        if (SSL_SESSION* own = SSL_get0_session(s.native_handle()); own && SSL_SESSION_is_resumable(own))
            next = SSL_SESSION_dup(own);
        cache->keep(next);
    }
    // No close_notify: the server closes after 221, as it does for the MTAs that skip it.
    co_return code == 221;
}

asio::awaitable<void> sessions(tcp::endpoint server, asio::ssl::context& context, const std::string& text,
                               bool tls, std::size_t sources, bool resume, steady::time_point until, tally& t) {
    client_cache cache;
    while (steady::now() < until) {
        const origin from = origin_of(t.started++, sources);
        const auto began = steady::now();
        bool resumed = false;
        const bool ok = co_await one_session(server, context, text, tls, from, resume ? &cache : nullptr, resumed);
        if (ok) ++t.ok;
        if (ok && resumed) ++t.resumed;
        t.slowest = std::max(t.slowest, steady::now() - began);
    }
}

struct stream_result {
    bool ok = false;
    std::size_t sent = 0;
    double seconds = 0;
    std::string reply;  // the final reply's last line, for the caller to check the octets
};

/// After DATA's 354: `size` octets (rounded up to whole 1 MiB blocks of 76-octet lines), the
/// dot, and the final reply.
template <class Stream>
asio::awaitable<void> send_text(Stream& s, std::string& in, std::size_t size, stream_result& r) {
    std::string block;
    while (block.size() + 78 <= (1u << 20)) block.append(76, 'x').append("\r\n");
    const auto start = steady::now();
    for (; r.sent < size; r.sent += block.size()) {
        auto [ec, n] = co_await asio::async_write(s, asio::buffer(block), use_nothrow);
        if (ec) co_return;
    }
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(".\r\n", 3), use_nothrow);
    if (ec) co_return;
    auto [rec, got] = co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n", use_nothrow);
    if (rec) co_return;
    r.seconds = std::chrono::duration<double>(steady::now() - start).count();
    r.reply = in.substr(0, got - 2);
    r.ok = r.reply.starts_with("250 ");
}

asio::awaitable<void> stream(tcp::endpoint server, asio::ssl::context& context, std::size_t size, bool tls,
                             stream_result& r) {
    tls_stream s(co_await asio::this_coro::executor, context);
    std::string in;
    const origin from;
    const bool open = co_await open_data(s, in, server, tls, from);
    if (!open) co_return;
    if (tls) co_await send_text(s, in, size, r);
    else co_await send_text(s.next_layer(), in, size, r);
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
    unsigned short port = 0;
    double seconds = 3;
    std::size_t concurrency = 8, size = 1024, stream_size = 0, sources = 0;
    bool tls = true, resume = false, tls12 = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        if (a == "--no-tls") tls = false;
        else if (a == "--resume") resume = true;
        else if (a == "--tls1.2") tls12 = true;
        else if (a == "--port" && has_value) port = static_cast<unsigned short>(std::stoul(argv[++i]));
        else if (a == "--seconds" && has_value) seconds = std::stod(argv[++i]);
        else if (a == "--concurrency" && has_value) concurrency = std::stoul(argv[++i]);
        else if (a == "--size" && has_value) size = std::stoul(argv[++i]);
        else if (a == "--stream" && has_value) stream_size = std::stoull(argv[++i]);
        else if (a == "--sources" && has_value) sources = std::stoul(argv[++i]);
        else port = 0, i = argc;  // anything else: usage
    }
    if (!port || sources > 254) {
        fmt::print(stderr, "usage: tls_sessions --port PORT [--seconds S] [--concurrency N] [--size OCTETS]\n"
                           "                    [--no-tls] [--sources N] [--resume] [--tls1.2]\n"
                           "       tls_sessions --port PORT --stream OCTETS [--no-tls]\n");
        return 2;
    }
    // The client checks no certificate (the servers' are self-signed). Without --resume it keeps
    // no session and takes no ticket: every handshake is a full one, as the server's cost per
    // new client is what is measured. With it, each client slot keeps its last session itself
    // (SSL_get1_session, SSL_set_session), not in OpenSSL's client cache.
    asio::ssl::context context(asio::ssl::context::tls_client);
    context.set_verify_mode(asio::ssl::verify_none);
    SSL_CTX_set_session_cache_mode(context.native_handle(), SSL_SESS_CACHE_OFF);
    if (!resume) SSL_CTX_set_options(context.native_handle(), SSL_OP_NO_TICKET);
    if (tls12) SSL_CTX_set_max_proto_version(context.native_handle(), TLS1_2_VERSION);

    asio::io_context ioc;
    const tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
    if (stream_size) {
        stream_result r;
        asio::co_spawn(ioc, stream(server, context, stream_size, tls, r), asio::detached);
        ioc.run_for(std::chrono::minutes(10));
        fmt::print("stream {} octets {} seconds {:.3f} rate {:.1f} reply {}\n", tls ? "tls" : "plain", r.sent,
                   r.seconds, r.ok ? double(r.sent) / r.seconds / (1 << 20) : 0.0, r.reply);
        return r.ok ? 0 : 1;
    }

    tally t;
    const std::string text = message(size);
    const auto start = steady::now();
    const auto until = start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
    const double cpu_before = cpu_seconds();
    for (std::size_t w = 0; w < concurrency; ++w)
        asio::co_spawn(ioc, sessions(server, context, text, tls, sources, resume, until, t), asio::detached);
    // Bounded: a session still open a minute after the end counts as failed.
    ioc.run_for(std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds + 60)));
    const double elapsed = std::chrono::duration<double>(steady::now() - start).count();
    const std::size_t failed = t.started - t.ok;
    fmt::print("sessions {} failed {} seconds {:.3f} rate {:.0f} client_cpu {:.2f} slowest_ms {:.1f} resumed {}\n", t.ok,
               failed, elapsed, double(t.ok) / elapsed, (cpu_seconds() - cpu_before) / elapsed,
               std::chrono::duration<double, std::milli>(t.slowest).count(), t.resumed);
    return failed ? 1 : 0;
}
