// grey/upstream/share.hpp — what one session's upstream leg is given by the server's upstream
// service (service.hpp): the settings, and the state its worker's sessions share.
#pragma once

#include "../detail/asio.hpp"
#include "failover.hpp"
#include "known_extensions.hpp"
#include "pool.hpp"
#include "settings.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// One worker's view of the upstream service, for the sessions that run on it: all but `idle`
/// are shared by every worker. Pointers, since a session keeps them no longer than it lives.
struct share {
    const upstream::settings* settings = nullptr;  ///< the upstream side's settings; never null in a share given out
    pool* idle = nullptr;                      ///< this worker's idle connections; null when not pooling
    asio::ssl::context* tls = nullptr;         ///< towards the upstream; null when its policy is none
    known_extensions* learned = nullptr;       ///< what the upstream offers, as last seen
    failover* upstreams = nullptr;             ///< the upstreams in order, and which are down
};

/// @}
} // namespace grey::upstream
