// grey/session/starttls.hpp — STARTTLS on the server side (RFC 3207), apart from the session
// loop: what happens between the 220 and the first command inside TLS.
//
// What the client sent behind STARTTLS was sent in plain text and is dropped unread: executed
// inside the TLS session it would be a command an attacker on the path injected
// (CVE-2011-0411). The handshake is bounded by its own timeout. The session, once this
// succeeds, forgets what it knew from before TLS (RFC 3207 §4.2): the caller resets its state.
#pragma once

#include <memory>
#include <system_error>

#include "../deadline.hpp"
#include "../detail/asio.hpp"
#include "../metrics/server_metrics.hpp"
#include "../smtp/line_reader.hpp"
#include "../stream.hpp"
#include "../tls/context.hpp"

namespace grey {
/// @addtogroup group_sessions
/// @{

/// After the client has been told 220: drops the plaintext read so far from `in`, and runs the
/// server's handshake on `s` with the context of this moment (a reload does not change it
/// under a handshake), within the context's handshake timeout. Counted in `metrics` when
/// given, a handshake that succeeded as resumed or full. On failure nothing can be said to the client, neither in plain text nor in TLS: the
/// caller closes the connection.
inline asio::awaitable<std::error_code> start_server_tls(stream& s, smtp::line_reader& in, deadline& limit,
                                                         tls::reloadable_context& context,
                                                         metrics::server_metrics* metrics = nullptr) {
    in.discard();
    in.release();
    limit.expires_after(context.settings().handshake_timeout);
    const std::shared_ptr<asio::ssl::context> current = context.current();
    const std::error_code ec = co_await s.handshake(*current, stream::role::server);
    if (metrics) {
        if (ec) metrics->tls_handshake_failures.add();
        else metrics->tls_handshake(s.tls().resumed);
    }
    co_return ec;
}

/// @}
} // namespace grey
