// grey/tls/context.hpp — a server's TLS settings, loaded into an OpenSSL context through Asio's
// ssl::context, and reloadable while sessions run.
//
// A session takes a shared_ptr to the context that is current when its client says STARTTLS,
// so a reload (a renewed certificate, on SIGHUP) swaps the pointer without disturbing the
// sessions already encrypted with the old one. A reload that fails keeps the old context.
// Session tickets stay good across reloads: their keys are the reloadable_context's, not the
// context's (ticket_keys.hpp).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include <asio/ssl/context.hpp>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include "settings.hpp"
#include "ticket_keys.hpp"

namespace grey::tls {
/// @addtogroup group_tls
/// @{

/// Buffers as both sides of Grey use them. An idle session keeps no read or write buffer:
/// OpenSSL frees them between records. A busy one reads ahead, several records in one read
/// (without it OpenSSL reads each record's 5-octet header, then its body: two system calls
/// per 16 KiB); what it read ahead shows in SSL_has_pending, which the stream asks.
inline void set_buffering(SSL_CTX* native) {
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(native, 1);
    SSL_CTX_set_default_read_buffer_len(native, 64 * 1024);
}

/// Asks clients for a certificate without making one a condition of the handshake: the chain is
/// verified against `ca_file` (when given) and the outcome left for SSL_get_verify_result,
/// whatever it is. A refused handshake would only push the mail to a plain-text retry.
inline void ask_for_client_certificates(asio::ssl::context& ctx, const std::string& ca_file) {
    SSL_CTX* native = ctx.native_handle();
    if (!ca_file.empty()) {
        asio::error_code ec;
        ctx.load_verify_file(ca_file, ec);
        STACK_OF(X509_NAME)* issuers = ec ? nullptr : SSL_load_client_CA_file(ca_file.c_str());
        if (!issuers) throw std::runtime_error(fmt::format("TLS: cannot load client CA file {}", ca_file));
        SSL_CTX_set_client_CA_list(native, issuers);
    }
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
}

/// Session resumption as `s` says (server_settings::resumption). On, tickets are sealed with
/// `keys`, the ring every context of this server shares, so that they outlive a reload; TLS
/// 1.2 session IDs are cached by the context itself. Off, no ticket is issued (none in TLS
/// 1.2, no NewSessionTicket in 1.3) and no session is cached: every handshake is a full one.
inline void set_resumption(SSL_CTX* native, const server_settings& s, std::shared_ptr<ticket_keys> keys) {
    // OpenSSL resumes a session only in the context (by this id) it was made in; without one
    // set, a server that verifies client certificates fails every resumption attempt.
    static constexpr unsigned char id[] = "grey";
    SSL_CTX_set_session_id_context(native, id, sizeof id - 1);
    if (!s.resumption) {
        SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(native, 0);
        SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
        return;
    }
    SSL_CTX_clear_options(native, SSL_OP_NO_TICKET);
    // A size of 0 would be no limit to OpenSSL; here it is no cache (tickets only).
    SSL_CTX_set_session_cache_mode(native, s.session_cache_size ? SSL_SESS_CACHE_SERVER : SSL_SESS_CACHE_OFF);
    SSL_CTX_sess_set_cache_size(native, static_cast<long>(s.session_cache_size));
    SSL_CTX_set_timeout(native, static_cast<long>(s.session_lifetime.count()));
    use_ticket_keys(native, keys ? std::move(keys) : std::make_shared<ticket_keys>(s.session_lifetime));
}

/// Loads `s` into a new context, its tickets sealed with `keys` (a ring of its own when none
/// is given). Throws std::runtime_error naming the file that failed: a server with a broken
/// certificate must not start.
inline std::shared_ptr<asio::ssl::context> make_server_context(const server_settings& s,
                                                               std::shared_ptr<ticket_keys> keys = nullptr) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    // TLS 1.2 and 1.3 only; no compression (CRIME), no renegotiation started by the client.
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                     SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    set_buffering(native);
    if (SSL_CTX_set_cipher_list(native, s.ciphers.c_str()) != 1)
        throw std::runtime_error(fmt::format("TLS: no usable cipher in '{}'", s.ciphers));
    if (SSL_CTX_set_ciphersuites(native, s.tls13_suites.c_str()) != 1)
        throw std::runtime_error(fmt::format("TLS: no usable TLS 1.3 suite in '{}'", s.tls13_suites));
    asio::error_code ec;
    ctx->use_certificate_chain_file(s.certificate_chain_file, ec);
    if (ec) throw std::runtime_error(fmt::format("TLS: cannot load certificate {}: {}", s.certificate_chain_file, ec.message()));
    ctx->use_private_key_file(s.private_key_file, asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error(fmt::format("TLS: cannot load key {}: {}", s.private_key_file, ec.message()));
    if (SSL_CTX_check_private_key(native) != 1)
        throw std::runtime_error(fmt::format("TLS: key {} does not match certificate {}", s.private_key_file,
                                             s.certificate_chain_file));
    // The file's chain is the chain sent, as Postfix sends it. Without this, a file that holds
    // no intermediates makes OpenSSL look for a chain in the verify store at every handshake.
    SSL_CTX_set_mode(native, SSL_MODE_NO_AUTO_CHAIN);
    if (s.ask_client_certificate || !s.client_ca_file.empty()) ask_for_client_certificates(*ctx, s.client_ca_file);
    set_resumption(native, s, std::move(keys));
    return ctx;
}

/// The context of Grey's client side, towards the upstream. Throws std::runtime_error when the
/// CA file cannot be loaded.
inline std::shared_ptr<asio::ssl::context> make_client_context(const client_settings& s) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression |
                     SSL_OP_NO_RENEGOTIATION);
    set_buffering(native);
    SSL_CTX_set_ciphersuites(native, modern_tls13_suites);  // offered in this order; the upstream picks
    if (s.policy == upstream_policy::verify) {
        asio::error_code ec;
        if (s.ca_file.empty()) ctx->set_default_verify_paths(ec);
        else ctx->load_verify_file(s.ca_file, ec);
        if (ec) throw std::runtime_error(fmt::format("TLS: cannot load CA file {}: {}", s.ca_file, ec.message()));
        ctx->set_verify_mode(asio::ssl::verify_peer);
    } else {
        ctx->set_verify_mode(asio::ssl::verify_none);
    }
    return ctx;
}

/// The server's current context; reload() loads the files again. Every context it loads seals
/// session tickets with the same keys, so that a reload does not cost each client that holds
/// one a full handshake.
class reloadable_context {
  public:
    /// Loads `s` now. Throws std::runtime_error, as make_server_context() does: a server with
    /// a broken certificate must not start.
    explicit reloadable_context(server_settings s)
        : settings_(std::move(s)), keys_(std::make_shared<ticket_keys>(settings_.session_lifetime)),
          current_(make_server_context(settings_, keys_)) {}

    /// The settings every load reads, the first and each reload().
    const server_settings& settings() const noexcept { return settings_; }

    /// The context for a handshake starting now. The pointer keeps it alive for its session,
    /// whatever reload() does meanwhile. Safe from any thread.
    std::shared_ptr<asio::ssl::context> current() const {
        std::lock_guard lock(mutex_);
        return current_;
    }

    /// Loads the certificate and key again. On failure the old context stays and the error is
    /// returned: a reload never leaves the server without TLS.
    std::optional<std::string> reload() {
        try {
            auto fresh = make_server_context(settings_, keys_);
            std::lock_guard lock(mutex_);
            current_ = std::move(fresh);
            return std::nullopt;
        } catch (const std::exception& e) {
            return e.what();
        }
    }

  private:
    const server_settings settings_;
    const std::shared_ptr<ticket_keys> keys_;
    mutable std::mutex mutex_;
    std::shared_ptr<asio::ssl::context> current_;
};

/// @}
} // namespace grey::tls
