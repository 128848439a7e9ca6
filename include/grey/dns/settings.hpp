// grey/dns/settings.hpp — how the resolver asks: by itself from the root (libunbound's own
// iteration, the default), or through the servers named; how long a query may take; how much
// it keeps.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "../config.hpp"
#include "../result.hpp"

namespace grey::metrics {
struct server_metrics;
}

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// The resolver's settings. Aggregates with defaults, as config.hpp's are.
struct resolver_settings {
    /// Servers every query is forwarded to, as "HOST:PORT" or "[v6]:PORT", HOST an address;
    /// empty: resolve from the root.
    std::vector<std::string> servers;
    /// A query unanswered for this long ends as a timeout (a temporary failure).
    std::chrono::milliseconds query_timeout{2000};
    /// A trust anchor file (unbound-anchor's root.key) for DNSSEC validation; empty: none is
    /// loaded and nothing is validated, which is what evidence for greylisting needs.
    std::string trust_anchor_file;
    /// Answers kept, at most; the oldest used goes first.
    std::size_t cache_entries = 4096;
    /// An answer is kept for its TTL, this long at most.
    std::chrono::seconds max_cache_ttl{3600};
    /// NXDOMAIN and NODATA are kept for their SOA's minimum (RFC 2308 §5), this long at most.
    std::chrono::seconds max_negative_ttl{900};
    /// NXDOMAIN and NODATA without an SOA are kept this long.
    std::chrono::seconds negative_ttl{60};
    /// A server failure (SERVFAIL, REFUSED) or a query that went unanswered for its whole
    /// timeout is kept this long (RFC 2308 §7 allows up to five minutes): while a zone or the
    /// resolver is down, each decision costs its budget once, not every time; 0 keeps none.
    std::chrono::seconds failure_ttl{30};
    /// Where the queries it sends are timed, by type (grey_dns_query_seconds); none when null.
    metrics::server_metrics* metrics = nullptr;

    /// Equal field by field: a resolver made with one serves the other.
    friend bool operator==(const resolver_settings&, const resolver_settings&) = default;
};

/// "HOST:PORT" or "[v6]:PORT" (config.hpp's parse_endpoint(), HOST an IP address) as libunbound
/// names a forwarder: "IP@PORT". errc::syntax_error for anything else, names included, since
/// the resolver cannot resolve its own servers.
inline result<std::string> unbound_server(std::string_view server) {
    auto e = parse_endpoint(server);
    if (!e) return e.error();
    asio::error_code ec;
    const auto address = asio::ip::make_address(e->host, ec);
    if (ec) return errc::syntax_error;
    return address.to_string() + "@" + std::to_string(e->port);
}

/// @}
} // namespace grey::dns
