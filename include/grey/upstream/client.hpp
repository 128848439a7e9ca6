// grey/upstream/client.hpp — the SMTP client for the second leg, Grey to the real MTA.
//
// It sends only what the caller composed, reads replies with the same line_reader the server
// side uses (so a bare LF from the upstream is an error, not a line end), and learns the
// upstream's extensions from its EHLO reply. Every wait is bounded by the connection's deadline;
// every failure is a value: the relay turns it into a 4xx for the client.
#pragma once

#include <sys/socket.h>  // recv(MSG_PEEK): is an idle connection still open?

#include <array>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "../config.hpp"
#include "../detail/asio.hpp"
#include "../deadline.hpp"
#include "../metrics/registry.hpp"
#include "../smtp/address.hpp"
#include "../smtp/command_format.hpp"
#include "../smtp/extensions.hpp"
#include "../smtp/line_reader.hpp"
#include "../smtp/reply.hpp"
#include "../smtp/reply_parser.hpp"
#include "../stream.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// One SMTP connection to an upstream MTA: the commands the relay composed go out, the replies
/// come back parsed, each wait bounded by the deadline of the session using it.
class client {
  public:
    /// A client not yet connected, on `ex`, whose waits `limit` bounds by the upstream
    /// timeouts in `t` (which must outlive it).
    client(const asio::any_io_executor& ex, deadline& limit, const timeouts& t)
        : socket_(ex), stream_(socket_), limit_(&limit), timeouts_(t), in_(4096) {}

    /// Detaches from the deadline; the socket closes with the client.
    ~client() { detach(); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Connects to `host` (an address, or a name resolved here) and reads the greeting. A
    /// greeting other than 220 is returned as is.
    asio::awaitable<result<smtp::reply>> connect(const std::string& host, std::uint16_t port) {
        host_ = host;
        port_ = port;
        limit_->guard_upstream(&socket_);
        limit_->expires_after(timeouts_.upstream_connect);
        asio::error_code ec;
        const auto address = asio::ip::make_address(host, ec);
        if (!ec) {
            std::tie(ec) = co_await socket_.async_connect({address, port}, detail::use_nothrow);
        } else {
            detail::tcp::resolver resolver(socket_.get_executor());
            auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), detail::use_nothrow);
            ec = rec;
            if (!ec) std::tie(ec, std::ignore) = co_await asio::async_connect(socket_, results, detail::use_nothrow);
        }
        if (ec) co_return timed(ec);
        // Each command is one small write answered by the server: Nagle would hold it back.
        socket_.set_option(detail::tcp::no_delay(true), ec);
        socket_.non_blocking(true, ec);  // TLS runs on the socket by readiness (stream.hpp)
        sent_ = deadline::clock::now();  // the greeting is timed from the connection's start
        co_return co_await read_reply(timeouts_.upstream_greeting);
    }

    /// EHLO, falling back to HELO when the server refuses EHLO (RFC 5321 §3.2).
    asio::awaitable<result<smtp::reply>> hello(std::string_view domain) {
        std::string line;
        smtp::append_ehlo(line, domain);
        auto r = co_await command(line, timeouts_.upstream_command);
        if (r && r->completion()) {
            caps_ = smtp::extensions::from_ehlo(*r);
            co_return r;
        }
        if (!r || !r->permanent()) co_return r;
        caps_ = smtp::extensions{};
        line.clear();
        smtp::append_helo(line, domain);
        co_return co_await command(line, timeouts_.upstream_command);
    }

    /// Sends one command line (CRLF included) and reads its reply, each within `timeout`.
    asio::awaitable<result<smtp::reply>> command(std::string_view line, deadline::clock::duration timeout) {
        const std::error_code ec = co_await write(line, timeout);
        if (ec) co_return ec;
        co_return co_await read_reply(timeout);
    }

    /// Writes `bytes` as they are, within `timeout`.
    asio::awaitable<std::error_code> write(std::string_view bytes, deadline::clock::duration timeout) {
        limit_->expires_after(timeout);
        if (reply_time_) sent_ = deadline::clock::now();
        const std::error_code ec = co_await stream_.write(bytes);
        co_return ec ? timed(ec) : std::error_code{};
    }

    /// Two pieces in one gathered write.
    asio::awaitable<std::error_code> write(std::string_view first, std::string_view second,
                                           deadline::clock::duration timeout) {
        limit_->expires_after(timeout);
        if (reply_time_) sent_ = deadline::clock::now();
        const std::error_code ec = co_await stream_.write(first, second);
        co_return ec ? timed(ec) : std::error_code{};
    }

    /// Reads one reply, single- or multi-line, each read within `timeout`. A malformed reply or
    /// a bare LF is an error, as is a connection closed before the reply ends.
    asio::awaitable<result<smtp::reply>> read_reply(deadline::clock::duration timeout) {
        smtp::reply_parser parser;
        for (;;) {
            auto next = in_.next(in_.capacity());
            if (!next) co_return errc::upstream_protocol;
            if (*next) {
                auto r = parser.feed((*next)->text);
                if (!r) co_return r.error();
                if (*r && reply_time_) reply_time_->observe(deadline::clock::now() - sent_);
                if (*r) co_return std::move(**r);
                continue;
            }
            limit_->expires_after(timeout);
            auto [ec, n] = co_await stream_.read_some(detail::buffer(in_.prepare()));
            if (ec) co_return timed(ec);
            in_.commit(n);
        }
    }

    /// STARTTLS (RFC 3207), then the handshake; the caller says EHLO again. Whatever the
    /// server sent behind its 220 is dropped unread: an attacker on the path could have put a
    /// reply there for Grey to take as the answer to a command sent inside TLS.
    asio::awaitable<std::error_code> start_tls(asio::ssl::context& context, const std::string& server_name, bool check_name) {
        auto r = co_await command(smtp::command_lines::starttls, timeouts_.upstream_command);
        if (!r) co_return r.error();
        if (r->code != 220) co_return errc::upstream_protocol;
        in_.discard();
        limit_->expires_after(timeouts_.upstream_command);
        const std::error_code ec = co_await stream_.handshake(context, stream::role::client, server_name, check_name);
        co_return ec ? timed(ec) : std::error_code{};
    }

    /// What TLS negotiated with the upstream; null in plain text.
    const tls_info* tls() const noexcept { return stream_.is_tls() ? &stream_.tls() : nullptr; }

    /// Closes the connection at once, with no QUIT.
    void close() {
        stream_.close();
        detach();
    }

    /// Closes an idle connection politely: QUIT, written without waiting (a few octets into an
    /// empty socket buffer), and no wait for the answer, so that the server logs a clean
    /// disconnect rather than a lost connection.
    void quit_and_close() {
        stream_.write_now("QUIT\r\n");
        close();
    }

    /// A pooled connection outlives the session that opened it: it is detached from that
    /// session's deadline when pooled, and attached to the next session's (`w`) when reused.
    void attach(deadline& w) {
        limit_ = &w;
        w.guard_upstream(&socket_);
    }
    /// Leaves the deadline of the session that used it (see attach()).
    void detach() {
        if (limit_) limit_->guard_upstream(nullptr);
        limit_ = nullptr;
    }

    /// False when the server has closed the connection or sent something unasked (a 421
    /// before closing): checked without blocking before an idle connection is reused.
    bool looks_alive() {
        if (!socket_.is_open() || in_.buffered() > 0) return false;
        char byte;
        const auto n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }

    /// What the upstream's last EHLO reply offered (nothing after HELO).
    const smtp::extensions& caps() const noexcept { return caps_; }

    /// Where the time from the latest write to each reply is observed; none when null.
    void time_replies(metrics::histogram* h) noexcept { reply_time_ = h; }

    /// The identity.key() the connection took by XCLIENT; empty while it has taken none.
    const std::string& identity() const noexcept { return identity_; }
    /// Records that the connection took the identity whose key() is `key` (XCLIENT accepted).
    void set_identity(std::string key) { identity_ = std::move(key); }
    /// The connection's socket.
    detail::tcp::socket& socket() noexcept { return socket_; }

    /// The upstream this client connected to (or last tried), as connect() was given it: the
    /// host is what TLS checks the certificate against when no other name is configured.
    const std::string& host() const noexcept { return host_; }
    /// Its port.
    std::uint16_t port() const noexcept { return port_; }
    /// "host:port", for diagnostics.
    std::string remote_name() const { return format_endpoint(host_, port_); }

  private:
    std::error_code timed(std::error_code ec) const {
        if (limit_ && limit_->expired()) return errc::upstream_timeout;
        if (ec == asio::error::eof || ec == asio::error::connection_reset) return errc::upstream_closed;
        return ec;
    }

    detail::tcp::socket socket_;
    stream stream_;
    deadline* limit_;
    const timeouts& timeouts_;
    smtp::line_reader in_;
    smtp::extensions caps_;
    std::string identity_;  // see identity()
    std::string host_;      // see host()
    std::uint16_t port_ = 0;
    metrics::histogram* reply_time_ = nullptr;
    deadline::clock::time_point sent_{};  // the latest write, for reply_time_
};

/// @}
} // namespace grey::upstream
