// grey/session_context.hpp — what ServerCore hands each Protocol instance it creates: the
// client's socket and both its ends, the server's configuration, the connection's deadline,
// the upstream service as its worker sees it (for a Protocol that relays), and the way to give
// back the client's place under the connection limits.
#pragma once

#include <functional>

#include "config.hpp"
#include "detail/asio.hpp"
#include "deadline.hpp"
#include "session/peer.hpp"

namespace grey {

namespace upstream {
struct share;
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
    grey::deadline& deadline;
    tls::reloadable_context* tls = nullptr;   ///< the server's TLS context; null without TLS
    /// The server's upstream service as this connection's worker sees it (pool, failover,
    /// what the upstream offers, TLS towards it: upstream/service.hpp); null for a Protocol
    /// that does not relay (no `relays_upstream`).
    const upstream::share* upstream = nullptr;
    asio::ip::tcp::endpoint peer{};           ///< the client's address, known from accept
    asio::ip::tcp::endpoint local{};          ///< the address it connected to
    /// The client as every part of the session reads it (session/peer.hpp), built from the
    /// two above and the PROXY header that named it; a Protocol made some other way may leave
    /// it empty, and MailHandler then builds it from the socket.
    grey::peer client{};
    /// Frees the client's place under the connection limits (in total and per address). A
    /// Protocol calls it when its client's connection is ending, before any work the session
    /// still does without the client (an upstream QUIT): a client that opens its next
    /// connection as soon as this one is answered must not find it still counted. ServerCore
    /// frees the place anyway when the session ends; calling it more than once is harmless.
    std::function<void()> client_leaving{};
};

/// @}
} // namespace grey
