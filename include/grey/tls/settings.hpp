// grey/tls/settings.hpp — what a server is told about TLS: plain data, no OpenSSL, so that
// config.hpp stays light. tls/context.hpp turns it into an OpenSSL context.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace grey::tls {
/// @addtogroup group_tls
/// @{

/// TLS 1.3's suites in Mozilla's order: OpenSSL's own puts AES-256-GCM first, which costs a
/// fifth more per octet than AES-128-GCM for no strength a mail relay needs. Both legs use it.
inline constexpr const char* modern_tls13_suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// TLS 1.2 cipher suites with forward secrecy and AEAD only (Mozilla's "intermediate"
/// profile).
inline constexpr const char* modern_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

/// STARTTLS on the listening side (RFC 3207). Offered only when a certificate is configured.
struct server_settings {
    std::string certificate_chain_file;  ///< PEM: the server's certificate, then intermediates
    std::string private_key_file;        ///< PEM
    /// MAIL before STARTTLS gets "530 5.7.0 Must issue a STARTTLS command first".
    bool required = false;
    /// How long a client may take over the handshake after "220 Ready to start TLS".
    std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(30);
    std::string ciphers = modern_ciphers;  ///< TLS 1.2 suites, OpenSSL's syntax
    std::string tls13_suites = modern_tls13_suites;  ///< TLS 1.3 suites, in order of preference
    /// Ask each client for a certificate (Postfix's smtpd_tls_ask_ccert). A client that sends
    /// none, or one that does not verify, still gets its session: what it proved shows in its
    /// tls_info (peer_subject, peer_verified), for hooks to decide on. Off by default, as
    /// some clients give up when asked.
    bool ask_client_certificate = false;
    /// PEM bundle of the CAs that client certificates are verified against, also named to the
    /// client as the acceptable issuers; setting it asks for certificates. Empty: no client
    /// certificate is ever taken as verified.
    std::string client_ca_file;
    /// Let a client that has been here before resume its TLS session in an abbreviated
    /// handshake (no certificate signature, no key exchange when TLS 1.2; a PSK when 1.3), as
    /// MTAs such as Postfix do with their TLS session cache: by a session ticket (TLS 1.2 and
    /// 1.3), sealed with keys that rotate every `session_lifetime` (tls/ticket_keys.hpp), or by
    /// a TLS 1.2 session ID kept in the server's cache. Off: every handshake is a full one.
    bool resumption = true;
    /// How long a session may be resumed (Postfix's smtpd_tls_session_cache_timeout, 3600 s).
    /// Also each ticket key's sealing time: a ticket is never opened more than twice this after
    /// it was issued, and OpenSSL refuses its session once this has passed.
    std::chrono::seconds session_lifetime = std::chrono::hours(1);
    /// TLS 1.2 sessions kept for resumption by session ID (OpenSSL's default size); the oldest
    /// goes when it is full; 0 keeps none (tickets only). The cache belongs to the context, so
    /// a reload empties it, unlike the ticket keys.
    std::size_t session_cache_size = 20480;

    /// Whether STARTTLS is offered at all: a certificate is configured.
    bool enabled() const noexcept { return !certificate_chain_file.empty(); }
};

/// TLS to the upstream MTA, as Postfix's smtp_tls_security_level names the levels.
enum class upstream_policy {
    none,     ///< plain text
    may,      ///< STARTTLS when the upstream offers it; plain text when it does not, or when the
              ///< handshake fails (Grey then connects again and goes on in plain text): TLS by
              ///< opportunity never holds mail back
    encrypt,  ///< TLS required, the certificate not checked; otherwise the client gets 4xx
    verify,   ///< TLS required, the certificate verified against `ca_file` (or the system's
              ///< store) and `server_name`; otherwise the client gets 4xx
};

/// TLS towards the upstream MTA, on Grey's client side.
struct client_settings {
    upstream_policy policy = upstream_policy::none;  ///< whether TLS is used, and what it must prove
    std::string ca_file;      ///< PEM bundle for `verify`; empty: the system's trusted CAs
    std::string server_name;  ///< the name (or address) the certificate must carry, also sent as
                              ///< SNI; empty: the host of the upstream connected to, as
                              ///< configured (smtp_ip, or its entry of upstreams)
};

/// @}
} // namespace grey::tls
