// grey/session_context.hpp — what ServerCore hands each Protocol instance it creates: the
// client's socket and both its ends, the server's configuration, the connection's watchdog,
// and the idle upstream connections its thread keeps.
#pragma once

#include "config.hpp"
#include "detail/asio.hpp"
#include "detail/watchdog.hpp"

namespace grey {

namespace upstream {
class pool;
}

struct session_context {
    asio::ip::tcp::socket& socket;
    const server_config& config;  ///< may be a type derived from server_config
    detail::watchdog& watchdog;
    upstream::pool* upstream_pool = nullptr;  ///< idle upstream connections; null when not pooling
    asio::ip::tcp::endpoint peer{};           ///< the client's address, known from accept
    asio::ip::tcp::endpoint local{};          ///< the address it connected to
};

} // namespace grey
