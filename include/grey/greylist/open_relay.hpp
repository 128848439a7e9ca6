// grey/greylist/open_relay.hpp — the configuration a greylisting proxy must refuse to start
// with: one that would make it an open relay.
//
// The MTA behind the proxy sees every message arrive from the proxy's address, and MTAs
// relay for the hosts they trust, so whoever reaches the proxy relays through the MTA. With
// no allowed_domains the proxy takes any recipient (lists::relays_for), which is safe only
// when no one but this host can reach it. A pure check, so the refusal is tested without a
// socket and every program that proxies asks the same question.
#pragma once

#include <string>
#include <vector>

#include <asio/ip/address.hpp>

#include "../config.hpp"
#include "lists.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// True when every endpoint listens on a loopback address (or on "localhost"), so that only
/// this host can connect. A name other than localhost may resolve anywhere: not loopback.
inline bool loopback_only(const std::vector<endpoint>& endpoints) {
    for (const auto& e : endpoints) {
        asio::error_code ec;
        const auto address = asio::ip::make_address(e.host, ec);
        if (ec ? e.host != "localhost" : !address.is_loopback()) return false;
    }
    return true;
}

/// Why a proxy listening on `listen` with the relay lists `l` would be an open relay; empty
/// when it would not. A program refuses to start when this is not empty. (A Postfix policy
/// service needs no such check: Postfix decides relaying before it asks.)
inline std::string open_relay_reason(const std::vector<endpoint>& listen, const lists& l) {
    if (!l.allowed_domains.empty() || loopback_only(listen)) return {};
    return "listening on a non-loopback address with no relay.allowed_domains would make an open relay "
           "(the MTA behind the proxy trusts the proxy's address)";
}

/// @}
} // namespace grey::greylist
