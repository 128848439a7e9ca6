// grey/upstream/settings.hpp — what the upstream side of a relaying server is told, and only
// that: the upstreams in order, TLS towards them, pooling, failover, the client's identity, the
// upstream timeouts, and the name Grey greets with.
//
// A program fills one grey::server_config, whose fields keep the seed's flat names
// (`smtp_ip`, `smtp_port`, `upstream_pool_size`); the upstream service takes its own part of it
// once, with of(), and its connector, introducer and relay read nothing else. So the upstream
// code cannot come to depend on the listening side's settings, nor the listening side on these.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../tls/settings.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// The upstream side's settings (server_config's fields of the same meaning).
struct settings {
    /// The real SMTP servers in order of preference (server_config::upstream_endpoints()).
    std::vector<endpoint> endpoints;
    tls::client_settings tls{};  ///< server_config::upstream_tls
    /// The name Grey greets the upstream with on connections that carry many clients' mail
    /// (pooled ones, and the probe): server_config::servername.
    std::string helo_name = "localhost";
    std::size_t pool_size = 16;  ///< server_config::upstream_pool_size
    std::chrono::steady_clock::duration idle_timeout = std::chrono::seconds(10);  ///< server_config::upstream_idle_timeout
    std::chrono::steady_clock::duration retry = std::chrono::seconds(30);  ///< server_config::upstream_retry
    identity_policy identity = identity_policy::automatic;  ///< server_config::upstream_identity
    /// The upstream_* timeouts are the upstream leg's; a client connection takes the struct whole.
    grey::timeouts timeouts{};
    metrics::server_metrics* metrics = nullptr;  ///< server_config::metrics; none when null
};

/// The upstream side's part of `c`.
inline settings of(const server_config& c) {
    return settings{c.upstream_endpoints(), c.upstream_tls, c.servername, c.upstream_pool_size,
                    c.upstream_idle_timeout, c.upstream_retry, c.upstream_identity, c.timeouts, c.metrics};
}

/// @}
} // namespace grey::upstream
