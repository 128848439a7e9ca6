// grey/config.hpp — what a Grey server is told: where to listen, where to relay, its limits and
// timeouts. Aggregates with defaults, so a program names only what it changes:
//     grey::ServerCore<H> server({.port = 1025, .smtp_ip = "127.0.0.1", .smtp_port = 25});
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "network.hpp"
#include "result.hpp"
#include "tls/settings.hpp"

namespace grey {

namespace metrics {
struct server_metrics;
}

namespace upstream {
/// @addtogroup group_upstream
/// @{

/// How the upstream learns who the client is (server_config::upstream_identity; what each
/// choice does: upstream/identity.hpp). A setting, so it lives with the settings.
enum class identity_policy {
    none,       ///< the upstream sees Grey as the client
    xclient,    ///< XCLIENT when the upstream offers it, else nothing
    xforward,   ///< XFORWARD when the upstream offers it, else nothing
    automatic,  ///< XCLIENT when the upstream offers it with ADDR, else XFORWARD, else nothing
};

/// @}
} // namespace upstream

/// @addtogroup group_server
/// @{

using namespace std::chrono_literals;

/// A listen or upstream address: "127.0.0.1:25", "[::1]:25", "mx.example:25".
struct endpoint {
    std::string host;        ///< an address, or a name resolved when connecting
    std::uint16_t port = 0;  ///< 0 when listening: the kernel chooses
    /// The PROXY protocol (HAProxy's proxy-protocol.txt, v1 or v2): when not empty, every
    /// connection to this endpoint must come from one of these networks (a load balancer) and
    /// open with a header naming the real client, whose address the session then takes
    /// everywhere (policy, greylist, per-address limits, log, XCLIENT). Any other connection
    /// is closed unanswered.
    std::vector<network> proxy_from{};

    /// Same host text, port and PROXY sources.
    friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// Reads "host:port", "[v6]:port" or "name:port"; errc::syntax_error for anything else.
inline result<endpoint> parse_endpoint(std::string_view s) {
    std::string_view host, port;
    if (!s.empty() && s.front() == '[') {
        const auto close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
            return errc::syntax_error;
        host = s.substr(1, close - 1);
        port = s.substr(close + 2);
    } else {
        const auto colon = s.rfind(':');
        if (colon == std::string_view::npos || s.find(':') != colon) return errc::syntax_error;
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    if (host.empty() || port.empty() || port.size() > 5) return errc::syntax_error;
    unsigned value = 0;
    for (char c : port) {
        if (c < '0' || c > '9') return errc::syntax_error;
        value = value * 10 + unsigned(c - '0');
    }
    if (value > 65535) return errc::syntax_error;
    return endpoint{std::string(host), static_cast<std::uint16_t>(value)};
}

/// `host`:`port` as parse_endpoint() reads it back ("[host]:port" for an IPv6 address): how an
/// upstream is named in diagnostics and metrics.
inline std::string format_endpoint(std::string_view host, std::uint16_t port) {
    const bool v6 = host.find(':') != std::string_view::npos;
    std::string s;
    s.reserve(host.size() + 8);
    if (v6) s += '[';
    s += host;
    if (v6) s += ']';
    s += ':';
    s += std::to_string(port);
    return s;
}

/// Limits. A limit that is hit gives the client a clear SMTP error and affects no other session.
struct limits {
    std::size_t max_command_line = 512;   ///< octets with CRLF, RFC 5321 §4.5.3.1.4
    std::size_t max_text_line = 1000;     ///< octets with CRLF, not counting a transparency dot (RFC 5321 §4.5.3.1.6)
    std::uint64_t max_message_size = 64 * 1024 * 1024;  ///< advertised as SIZE (RFC 1870)
    std::size_t max_recipients = 100;     ///< RFC 5321 §4.5.3.1.8 asks for at least 100
    std::size_t max_errors = 3;           ///< refused commands before the session is closed
    std::size_t max_connections = 1000;   ///< in total; more get 421
    std::size_t max_connections_per_ip = 100;  ///< from one client address; more get 421
};

/// Timeouts, after RFC 5321 §4.5.3.2. The client-side ones apply to Grey as a server, the
/// upstream ones to Grey as the client of the real MTA.
struct timeouts {
    std::chrono::steady_clock::duration command = 5min;     ///< next command (§4.5.3.2.7)
    std::chrono::steady_clock::duration data_block = 3min;  ///< next chunk of DATA text
    std::chrono::steady_clock::duration send = 5min;        ///< a reply the client does not read
    std::chrono::steady_clock::duration proxy_header = 10s; ///< the PROXY header, from connect
    std::chrono::steady_clock::duration upstream_connect = 30s;   ///< TCP connect to the upstream
    std::chrono::steady_clock::duration upstream_greeting = 5min;  ///< §4.5.3.2.1
    std::chrono::steady_clock::duration upstream_command = 5min;   ///< EHLO, MAIL, RCPT (§4.5.3.2.2–3)
    std::chrono::steady_clock::duration upstream_data_init = 2min; ///< §4.5.3.2.4
    std::chrono::steady_clock::duration upstream_data_block = 3min;///< §4.5.3.2.5
    std::chrono::steady_clock::duration upstream_data_term = 10min;///< §4.5.3.2.6
};

/// What a session does with input that the client sent without waiting for a reply where
/// RFC 2920 says it must wait (see smtp::ends_pipelined_group).
enum class pipelining_policy {
    refuse,  ///< 554 5.5.0 and close, before any message text reaches the upstream
    allow,   ///< take it as if the client had waited
};

/// What a ServerCore is told: where it listens, where it relays, its limits and timeouts. Every
/// field has a default; a Protocol may extend it (ServerCore's `config_type`).
struct server_config {
    std::uint16_t port = 1025;             ///< used when `listen` is empty: 127.0.0.1:port
    std::string smtp_ip = "127.0.0.1";     ///< the real SMTP server (seed name), when `upstreams` is empty
    std::uint16_t smtp_port = 25;          ///< its port (seed name)
    /// The real SMTP servers in order of preference, for failover (upstream/failover.hpp): each
    /// new upstream connection goes to the first that is not marked down, and one that cannot
    /// be reached, does not greet in time or greets with anything but 220 is marked down for
    /// `upstream_retry` and the next is tried. Empty: `smtp_ip`:`smtp_port` is the one upstream.
    std::vector<endpoint> upstreams{};
    std::vector<endpoint> listen{};        ///< where to listen; IPv4 and IPv6
    std::string servername = "localhost";  ///< the name Grey gives itself in its replies
    std::string serverid = "Grey";         ///< the software named in the greeting
    unsigned threads = 0;                  ///< 0: one per core
    /// Wait this long before the greeting: a client that talks first is refused (RFC 5321
    /// §3.1 says to wait for the greeting; spamware often does not).
    std::chrono::milliseconds greet_pause{0};
    /// Commands or message text sent ahead where RFC 2920 forbids it, as Postfix's
    /// reject_unauth_pipelining refuses them.
    pipelining_policy improper_pipelining = pipelining_policy::refuse;
    /// STARTTLS for clients (RFC 3207): offered when a certificate is given.
    tls::server_settings tls{};
    /// TLS towards the upstream MTA.
    tls::client_settings upstream_tls{};
    /// On SIGINT/SIGTERM, sessions have this long to finish before they get 421.
    std::chrono::steady_clock::duration drain = 30s;
    grey::limits limits{};      ///< sizes and counts a client may not exceed
    grey::timeouts timeouts{};  ///< on both legs
    /// Idle upstream connections each thread keeps for reuse between sessions, as MTAs'
    /// connection caches do: a session then costs the upstream no connect, greeting, EHLO or
    /// QUIT. Pooled connections carry many clients' mail, so they greet the upstream as
    /// `servername`, not with a client's HELO name. 0: each session opens its own connection,
    /// greets with its client's HELO name, and closes it with QUIT.
    std::size_t upstream_pool_size = 16;
    /// A pooled connection idle this long is closed (QUIT), so that after a burst the upstream
    /// is not left holding sessions (Postfix gives each an smtpd process).
    std::chrono::steady_clock::duration upstream_idle_timeout = 10s;
    /// An upstream that failed (see `upstreams`) is skipped this long before it is tried again;
    /// when every upstream is marked down, all are tried in order anyway.
    std::chrono::steady_clock::duration upstream_retry = 30s;
    /// How the upstream learns who the client is (upstream/identity.hpp): XCLIENT or XFORWARD
    /// when it offers them, as MTAs offer them only to the hosts they trust to say so.
    upstream::identity_policy upstream_identity = upstream::identity_policy::automatic;
    /// Where the server's components count what they do (metrics/server_metrics.hpp); none
    /// when null. It must outlive the server.
    metrics::server_metrics* metrics = nullptr;

    /// Where to listen: `listen`, or else 127.0.0.1:`port`.
    std::vector<endpoint> listen_endpoints() const {
        if (!listen.empty()) return listen;
        return {endpoint{"127.0.0.1", port}};
    }

    /// The upstreams in order of preference: `upstreams`, or else `smtp_ip`:`smtp_port`.
    std::vector<endpoint> upstream_endpoints() const {
        if (!upstreams.empty()) return upstreams;
        return {endpoint{smtp_ip, smtp_port}};
    }
};

/// @}
} // namespace grey
