// grey/session_context.hpp — what ServerCore hands each Protocol instance it creates: the
// client's socket and both its ends, the server's configuration, the connection's watchdog,
// the idle upstream connections its thread keeps, the upstreams and which are down, and the
// way to give back the client's place under the connection limits.
#pragma once

#include <functional>

#include "config.hpp"
#include "detail/asio.hpp"
#include "detail/watchdog.hpp"

namespace asio::ssl {
class context;
}

namespace grey {

namespace upstream {
class pool;
class known_extensions;
class failover;
}
namespace tls {
class reloadable_context;
}

/// @addtogroup group_server
/// @{

/// One accepted connection's share of the server, given to the Protocol that serves it.
struct session_context {
    asio::ip::tcp::socket& socket;  ///< the client's connection
    const server_config& config;  ///< may be a type derived from server_config
    /// The connection's timeouts. It guards `socket`: a Protocol sets a deadline before each
    /// wait (expires_after) and says when it waits for a new command (set_idle), so a stop
    /// interrupts an idle session at once and any other at the drain deadline.
    detail::watchdog& watchdog;
    upstream::pool* upstream_pool = nullptr;  ///< idle upstream connections; null when not pooling
    tls::reloadable_context* tls = nullptr;   ///< the server's TLS context; null without TLS
    asio::ssl::context* upstream_tls = nullptr;  ///< towards the upstream; null when its policy is none
    upstream::known_extensions* upstream_extensions = nullptr;  ///< what the upstream offers, as last seen
    asio::ip::tcp::endpoint peer{};           ///< the client's address, known from accept
    asio::ip::tcp::endpoint local{};          ///< the address it connected to
    /// Frees the client's place under the connection limits (in total and per address). A
    /// Protocol calls it when its client's connection is ending, before any work the session
    /// still does without the client (an upstream QUIT): a client that opens its next
    /// connection as soon as this one is answered must not find it still counted. ServerCore
    /// frees the place anyway when the session ends; calling it more than once is harmless.
    std::function<void()> client_leaving{};
    /// The upstreams in order and which are marked down, shared by the server's sessions
    /// (upstream/failover.hpp); null: config's upstreams are tried in order, none skipped.
    upstream::failover* upstreams = nullptr;
};

/// @}
} // namespace grey
