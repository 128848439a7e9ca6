// grey/greylist/lists.hpp — the seed's static lists: which domains Grey relays for, which
// clients may relay anywhere, and which triples skip greylisting. Parsed once, matched per
// recipient; replaced whole on reload (SIGHUP), never edited in place.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../detail/asio.hpp"
#include "../network.hpp"
#include "../result.hpp"
#include "../smtp/address.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

using grey::network;  // network.hpp: the lists' networks are the core's

/// (client address, sender, recipient) that always passes.
struct whitelisted_triple {
    std::string peer;       ///< the client's address, compared exactly
    std::string sender;     ///< reverse-path, in any case
    std::string recipient;  ///< forward-path, in any case
};

/// (claimed HELO name, client address prefix, recipient) that always passes: for big senders
/// whose addresses change but whose HELO name does not (the seed's "non-standard" triples).
struct whitelisted_nonstandard_triple {
    std::string helo;            ///< the HELO/EHLO name, in any case
    std::string address_prefix;  ///< the start of the client's address as text: "192.0.2."
    std::string recipient;       ///< forward-path, in any case
};

/// The static lists, as the configuration gives them.
struct lists {
    std::vector<std::string> allowed_domains;  ///< empty: every domain (loopback-only servers)
    std::vector<std::string> allowed_senders;  ///< client addresses that may relay anywhere
    std::vector<network> allowed_sender_nets;  ///< networks that may relay anywhere
    std::vector<whitelisted_triple> whitelisted_triples;  ///< pass, never greylisted
    std::vector<whitelisted_nonstandard_triple> whitelisted_nonstandard_triples;  ///< the same, by HELO name

    /// Whether Grey takes mail for `domain` (compared in any case).
    bool relays_for(std::string_view domain) const {
        if (allowed_domains.empty()) return true;
        for (const auto& d : allowed_domains)
            if (smtp::iequals(d, domain)) return true;
        return false;
    }

    /// Whether the client at `peer` is an allowed sender, by address or by network.
    bool may_relay_anywhere(std::string_view peer) const {
        for (const auto& s : allowed_senders)
            if (s == peer) return true;
        for (const auto& n : allowed_sender_nets)
            if (n.contains(peer)) return true;
        return false;
    }

    /// Whether a whitelisted triple or non-standard triple matches this recipient.
    bool whitelisted(std::string_view peer, std::string_view helo, std::string_view sender,
                     std::string_view recipient) const {
        for (const auto& t : whitelisted_triples)
            if (t.peer == peer && smtp::iequals(t.sender, sender) && smtp::iequals(t.recipient, recipient))
                return true;
        for (const auto& t : whitelisted_nonstandard_triples)
            if (smtp::iequals(t.helo, helo) && peer.substr(0, t.address_prefix.size()) == t.address_prefix &&
                smtp::iequals(t.recipient, recipient))
                return true;
        return false;
    }
};

/// @}
} // namespace grey::greylist
