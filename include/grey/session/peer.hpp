// grey/session/peer.hpp — the client of one connection, as every part of Grey sees it: its
// address (an IPv4 client seen through a dual-stack socket un-mapped, once), port, the address
// it reached, the load balancer that named it in a PROXY header, the name it claimed in
// HELO/EHLO, its host names once looked up, and TLS once it is up. Built when the connection
// is accepted and filled in as the session learns more, so that hooks, the greylist, the
// relay's XCLIENT line and the log all read one record (after Postfix's smtpd_peer.c).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "../detail/asio.hpp"
#include "../dns/client_names.hpp"
#include "../dns/name_lookup.hpp"
#include "../network.hpp"

namespace grey {
/// @addtogroup group_sessions
/// @{

struct tls_info;

/// The client of one connection; see the header's comment.
struct peer {
    asio::ip::address address{};        ///< the client's address, un-mapped
    std::uint16_t port = 0;             ///< its port; 0 when not known
    asio::ip::address local_address{};  ///< the address it reached (un-mapped)
    std::uint16_t local_port = 0;       ///< the port it reached
    /// The load balancer whose PROXY header named the client; none when it came straight.
    std::optional<asio::ip::tcp::endpoint> proxied_by{};
    std::string helo{};                 ///< the name claimed at the latest accepted HELO/EHLO
    const tls_info* tls = nullptr;      ///< what TLS negotiated; null while in plain text
    /// Once looked up (look_up_names); shared, not copied, by the copies of the record a
    /// session makes, and small while not looked up: an idle connection pays a pointer.
    std::shared_ptr<const dns::client_names> names{};

    /// The client of a connection accepted from `client` on `local` (either may be unknown: an
    /// endpoint with port 0 and no address).
    static peer accepted(const asio::ip::tcp::endpoint& client, const asio::ip::tcp::endpoint& local,
                         std::optional<asio::ip::tcp::endpoint> proxied_by = std::nullopt) {
        peer p;
        p.address = unmapped(client.address());
        p.port = client.port();
        p.local_address = unmapped(local.address());
        p.local_port = local.port();
        p.proxied_by = proxied_by;
        return p;
    }

    /// Whether the client's address is known.
    bool known() const noexcept { return port != 0 || !address.is_unspecified(); }
    /// The client's address and port.
    asio::ip::tcp::endpoint endpoint() const { return {address, port}; }
};

/// The client's host names, looked up the first time anyone asks and kept in `p`: the greylist
/// and the relay of one session never look up twice. Never fails: what is not known is a
/// keyword (dns/client_names.hpp).
inline asio::awaitable<const dns::client_names*> look_up_names(peer& p) {
    if (!p.names) {
        dns::client_names found{std::string(dns::unavailable), std::string(dns::unavailable)};
        if (p.known()) found = co_await dns::look_up_names(p.address);
        p.names = std::make_shared<const dns::client_names>(std::move(found));
    }
    co_return p.names.get();
}

/// @}
} // namespace grey
