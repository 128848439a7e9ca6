// grey/stream.hpp — a connection's byte stream: plain TCP, or TLS once STARTTLS has been
// negotiated (RFC 3207), upgraded in place on the same socket.
//
// TLS is OpenSSL driven by readiness, as nginx and Postfix drive it: the socket stays
// non-blocking, SSL_read and SSL_write run on it directly, and when OpenSSL wants to read or
// write first the stream waits for the socket with Asio (async_wait). So the plain path keeps
// its read-when-readable fast path, and an idle TLS connection holds no buffer of its own:
// OpenSSL frees its record buffers between records (SSL_MODE_RELEASE_BUFFERS), where
// asio::ssl::stream would keep 34 KiB per connection. The context comes from Asio's
// ssl::context (tls/context.hpp).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include <asio/ssl/context.hpp>
#include <asio/ssl/error.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "detail/asio.hpp"

namespace grey {
/// @addtogroup group_tls
/// @{

/// What a TLS session negotiated, readable by hooks.
struct tls_info {
    std::string version;       ///< "TLSv1.3"
    std::string cipher;        ///< "TLS_AES_256_GCM_SHA384"
    std::string peer_subject;  ///< the peer certificate's subject, when it sent one
    /// Whether that certificate's chain verified against the CAs configured for it (a
    /// client's: tls::server_settings::client_ca_file; the upstream's: verify's CA file).
    bool peer_verified = false;
    /// Whether the handshake resumed an earlier session (a ticket or a session ID) rather than
    /// making a new one: no certificate was sent then, and peer_subject is the first session's.
    bool resumed = false;
};

namespace detail {

/// A BIO over a socket descriptor that writes with MSG_NOSIGNAL: OpenSSL's own socket BIO
/// write()s, and a peer gone mid-write would raise SIGPIPE and end the whole process.
class nosignal_bio {
  public:
    static BIO* make(int fd) {
        BIO* b = BIO_new(method());
        if (b) BIO_set_data(b, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
        return b;
    }

  private:
    static int fd(BIO* b) { return static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(b))); }
    static bool transient(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

    static int write(BIO* b, const char* data, int size) {
        BIO_clear_retry_flags(b);
        const auto n = ::send(fd(b), data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
        if (n < 0 && transient(errno)) BIO_set_retry_write(b);
        return static_cast<int>(n);
    }
    static int read(BIO* b, char* data, int size) {
        BIO_clear_retry_flags(b);
        const auto n = ::recv(fd(b), data, static_cast<std::size_t>(size), 0);
        if (n < 0 && transient(errno)) BIO_set_retry_read(b);
        return static_cast<int>(n);
    }
    static long control(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }
    static int create(BIO* b) {
        BIO_set_init(b, 1);
        return 1;
    }

    static BIO_METHOD* method() {
        static BIO_METHOD* const m = [] {
            BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "grey-socket");
            BIO_meth_set_write(made, write);
            BIO_meth_set_read(made, read);
            BIO_meth_set_ctrl(made, control);
            BIO_meth_set_create(made, create);
            return made;
        }();
        return m;
    }
};

} // namespace detail

/// A connection's byte stream, on either leg: plain TCP, then TLS once handshake() has
/// succeeded, on the same socket. The socket is its owner's, and must outlive the stream.
class stream {
  public:
    using tcp = detail::tcp;  ///< asio::ip::tcp
    /// The side this end takes in the handshake: server towards a client, client towards the
    /// upstream.
    enum class role { server, client };

    /// A plain stream over `socket`.
    explicit stream(tcp::socket& socket) : socket_(socket) {}
    ~stream() {
        if (ssl_) SSL_free(ssl_);
    }
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;

    /// The socket, for waits, endpoints and options. Reading or writing on it directly would
    /// bypass TLS.
    tcp::socket& socket() noexcept { return socket_; }
    /// Whether handshake() has succeeded: every octet since goes through TLS.
    bool is_tls() const noexcept { return ssl_ != nullptr; }
    /// What TLS negotiated; only while is_tls().
    const tls_info& tls() const noexcept {
        assert(extras_);
        return extras_->info;
    }

    /// Whether anything can be read without waiting: in the socket, or held by OpenSSL.
    bool has_input() {
        if (ssl_ && SSL_has_pending(ssl_)) return true;
        asio::error_code ec;
        return socket_.available(ec) > 0 && !ec;
    }

    /// Whether read_now() may make progress without waiting for the socket: OpenSSL holds
    /// input already.
    bool readable_now() const noexcept { return ssl_ && SSL_has_pending(ssl_) && !want_write_; }

    /// What to wait for on the socket before read_now() can make progress: readability, or
    /// writability when OpenSSL must write first. Callers wait with socket().async_wait, so
    /// that a plain connection's wait is no coroutine of its own.
    tcp::socket::wait_type read_wait() noexcept {
        return std::exchange(want_write_, false) ? tcp::socket::wait_write : tcp::socket::wait_read;
    }

    /// Waits on the socket until read_now() may make progress (see read_wait()): the socket's
    /// own asynchronous operation, so that an idle connection's wait is no coroutine frame.
    template <class CompletionToken>
    auto async_wait_readable(CompletionToken&& token) {
        return socket_.async_wait(read_wait(), std::forward<CompletionToken>(token));
    }

    /// Waits until a read can make progress.
    asio::awaitable<std::error_code> wait_readable() {
        if (readable_now()) co_return std::error_code{};
        auto [ec] = co_await socket_.async_wait(read_wait(), detail::use_nothrow);
        co_return ec;
    }

    /// Reads what is there without waiting; asio::error::would_block when nothing is. Over
    /// TLS, as many records as are there and fit: SSL_read gives one record at a time, and a
    /// session that handles 16 KiB per wake-up spends more on the wake-ups than on the bytes.
    std::size_t read_now(asio::mutable_buffer b, asio::error_code& ec) {
        if (!ssl_) return socket_.read_some(b, ec);
        std::size_t total = 0;
        auto* const into = static_cast<char*>(b.data());
        while (total < b.size()) {
            std::size_t n = 0;
            ERR_clear_error();
            if (SSL_read_ex(ssl_, into + total, b.size() - total, &n) != 1) {
                // What stops a later read is reported by that read, once this one's octets
                // have been taken.
                if (total == 0) ec = failure(SSL_get_error(ssl_, 0), /*reading=*/true);
                else ec = {};
                return total;
            }
            total += n;
        }
        ec = {};
        return total;
    }

    /// Reads at least one octet, waiting as long as it takes (the deadline bounds the wait).
    asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
        if (!ssl_) {
            auto [ec, n] = co_await socket_.async_read_some(b, detail::use_nothrow);
            co_return std::tuple<std::error_code, std::size_t>{ec, n};
        }
        for (;;) {
            asio::error_code ec;
            const std::size_t n = read_now(b, ec);
            if (ec != asio::error::would_block) co_return std::tuple<std::error_code, std::size_t>{ec, n};
            const std::error_code wait_ec = co_await wait_readable();
            if (wait_ec) co_return std::tuple<std::error_code, std::size_t>{wait_ec, 0};
        }
    }

    /// Writes all of `bytes`, waiting as long as it takes (the deadline bounds the wait).
    asio::awaitable<std::error_code> write(std::string_view bytes) {
        if (!ssl_) {
            auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes), detail::use_nothrow);
            co_return ec;
        }
        co_return co_await write_tls(bytes);
    }

    /// Two pieces in one gathered write; over TLS small pieces share one record.
    asio::awaitable<std::error_code> write(std::string_view first, std::string_view second) {
        if (!ssl_) {
            const std::array<asio::const_buffer, 2> pieces{asio::buffer(first), asio::buffer(second)};
            auto [ec, n] = co_await asio::async_write(socket_, pieces, detail::use_nothrow);
            co_return ec;
        }
        if (first.size() + second.size() <= record_size) {
            extras_->scratch.assign(first).append(second);
            const std::error_code ec = co_await write_tls(extras_->scratch);
            extras_->scratch.clear();
            extras_->scratch.shrink_to_fit();
            co_return ec;
        }
        const std::error_code ec = co_await write_tls(first);
        if (ec) co_return ec;
        co_return co_await write_tls(second);
    }

    /// Starts TLS on the connection. Nothing read before it may be trusted afterwards: the
    /// caller drops what it had buffered (RFC 3207 §4.2). On failure the stream stays plain
    /// and should be closed. A client sends `server_name` as SNI (unless it is an address)
    /// and, with `check_name`, requires the certificate to carry it; whether the chain is
    /// verified at all is the context's verify mode.
    asio::awaitable<std::error_code> handshake(asio::ssl::context& context, role r, const std::string& server_name = {},
                                               bool check_name = false) {
        assert(!ssl_);
        // Owned here until the handshake succeeds, so that a session ended mid-handshake (the
        // server stopping) frees it too. SSL_new takes its own reference to the context.
        std::unique_ptr<SSL, decltype(&SSL_free)> owner(SSL_new(context.native_handle()), &SSL_free);
        SSL* const ssl = owner.get();
        BIO* bio = ssl ? detail::nosignal_bio::make(socket_.native_handle()) : nullptr;
        if (!bio) co_return asio::error::no_memory;
        SSL_set_bio(ssl, bio, bio);
        if (r == role::server) {
            SSL_set_accept_state(ssl);
        } else {
            SSL_set_connect_state(ssl);
            asio::error_code not_address;
            (void)asio::ip::make_address(server_name, not_address);
            const bool is_address = !not_address;
            if (!server_name.empty() && !is_address) SSL_set_tlsext_host_name(ssl, server_name.c_str());
            if (check_name) {
                SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                const int named = is_address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str())
                                             : SSL_set1_host(ssl, server_name.c_str());
                if (named != 1) co_return asio::error::invalid_argument;
            }
        }
        for (;;) {
            ERR_clear_error();
            const int rc = SSL_do_handshake(ssl);
            if (rc == 1) break;
            const int err = SSL_get_error(ssl, rc);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) co_return openssl_error(err);
            auto [ec] = co_await socket_.async_wait(err == SSL_ERROR_WANT_READ ? tcp::socket::wait_read
                                                                               : tcp::socket::wait_write,
                                                    detail::use_nothrow);
            if (ec) co_return ec;
        }
        ssl_ = owner.release();
        extras_ = std::make_unique<tls_extras>();
        extras_->info.version = SSL_get_version(ssl_);
        extras_->info.cipher = SSL_get_cipher_name(ssl_);
        extras_->info.resumed = SSL_session_reused(ssl_) == 1;
        if (X509* peer = SSL_get1_peer_certificate(ssl_)) {
            char subject[256];
            X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof subject);
            extras_->info.peer_subject = subject;
            extras_->info.peer_verified = SSL_get_verify_result(ssl_) == X509_V_OK;
            X509_free(peer);
        }
        co_return std::error_code{};
    }

    /// Writes `bytes` if they fit without waiting, else drops them: a last word (QUIT) to a
    /// peer that need not hear it.
    void write_now(std::string_view bytes) {
        asio::error_code ec;
        if (!ssl_) {
            socket_.write_some(asio::buffer(bytes), ec);
            return;
        }
        std::size_t n = 0;
        ERR_clear_error();
        SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n);
    }

    /// Says close_notify if it fits without waiting, then closes the socket.
    void close() {
        if (ssl_ && socket_.is_open()) {
            ERR_clear_error();
            SSL_shutdown(ssl_);
        }
        asio::error_code ignored;
        socket_.close(ignored);
    }

  private:
    static constexpr std::size_t record_size = 16 * 1024;  // TLS's largest record

    asio::awaitable<std::error_code> write_tls(std::string_view bytes) {
        while (!bytes.empty()) {
            ERR_clear_error();
            std::size_t n = 0;
            if (SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) == 1) {
                bytes.remove_prefix(n);
                continue;
            }
            const int err = SSL_get_error(ssl_, 0);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) co_return failure(err, false);
            auto [ec] = co_await socket_.async_wait(err == SSL_ERROR_WANT_READ ? tcp::socket::wait_read
                                                                               : tcp::socket::wait_write,
                                                    detail::use_nothrow);
            if (ec) co_return ec;
        }
        co_return std::error_code{};
    }

    /// An SSL_read/SSL_write failure as an error code: "try again" as would_block, the peer
    /// closing as eof, anything else as OpenSSL's error.
    std::error_code failure(int err, bool reading) {
        switch (err) {
        case SSL_ERROR_WANT_READ: return asio::error::would_block;
        case SSL_ERROR_WANT_WRITE:
            if (reading) want_write_ = true;  // the next wait_readable waits for writability
            return asio::error::would_block;
        case SSL_ERROR_ZERO_RETURN: return asio::error::eof;
        default: return openssl_error(err);
        }
    }

    static std::error_code openssl_error(int err) {
        const unsigned long e = ERR_get_error();
        if (e) return {static_cast<int>(e), asio::error::get_ssl_category()};
        if (err == SSL_ERROR_SYSCALL && errno) return {errno, std::system_category()};
        return asio::error::eof;  // the peer closed the connection without close_notify
    }

    // Only a TLS connection pays for these: a plain one, idle or not, stays small.
    struct tls_extras {
        tls_info info;
        std::string scratch;  // small writes joined into one record
    };

    tcp::socket& socket_;
    SSL* ssl_ = nullptr;
    std::unique_ptr<tls_extras> extras_;
    bool want_write_ = false;
};

/// @}
} // namespace grey
