// grey/greylist/lists.hpp — the seed's static lists: which domains Grey relays for, which
// clients may relay anywhere, and which triples skip greylisting; and whitelists kept in files
// of their own (Postgrey's), seen through whitelist_files. Parsed once, matched per recipient;
// replaced whole on reload (SIGHUP), never edited in place.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
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

/// Where a whitelist file's entry was read, so that a log line can name the line that let a
/// client through.
struct whitelist_entry {
    std::string source;     ///< the file, as it was named
    std::size_t line = 0;   ///< 1 for the first line

    /// "FILE:LINE".
    std::string where() const { return source + ":" + std::to_string(line); }
};

/// Whitelists kept in files of their own, such as Postgrey's whitelist_clients and
/// whitelist_recipients (postgrey_whitelists.hpp). The lists see them only through this, so
/// that the core needs no regular-expression library. Each look-up answers with the entry that
/// lists what it was asked, or null.
class whitelist_files {
  public:
    virtual ~whitelist_files() = default;
    /// The entry by which the client at `address` (as text) passes by its address.
    virtual const whitelist_entry* client_address_listed(std::string_view address) const = 0;
    /// The entry by which a client whose verified host name is `name` passes by its name.
    virtual const whitelist_entry* client_name_listed(std::string_view name) const = 0;
    /// Whether any entry looks at the client's name: only then is a name worth looking up.
    virtual bool matches_client_names() const = 0;
    /// The entry by which mail to `recipient` (an address, `local@domain`) passes.
    virtual const whitelist_entry* recipient_listed(std::string_view recipient) const = 0;
};

/// The static lists, as the configuration gives them.
struct lists {
    std::vector<std::string> allowed_domains;  ///< empty: every domain (loopback-only servers)
    std::vector<std::string> allowed_senders;  ///< client addresses that may relay anywhere
    std::vector<network> allowed_sender_nets;  ///< networks that may relay anywhere
    std::vector<whitelisted_triple> whitelisted_triples;  ///< pass, never greylisted
    std::vector<whitelisted_nonstandard_triple> whitelisted_nonstandard_triples;  ///< the same, by HELO name
    /// Clients and recipients that pass, from files such as Postgrey's; none when null.
    std::shared_ptr<const whitelist_files> files;

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

    /// Whether the files pass this client, by its address or by its verified host name (""
    /// when it has none), or this recipient. Postgrey's order: name, address, recipient.
    bool whitelisted_by_files(std::string_view peer, std::string_view client_name, std::string_view recipient) const {
        if (!files) return false;
        return (!client_name.empty() && files->client_name_listed(client_name)) || files->client_address_listed(peer) ||
               files->recipient_listed(recipient);
    }

    /// Whether a decision needs the client's host name: only when the files match names.
    bool wants_client_name() const { return files && files->matches_client_names(); }
};

/// @}
} // namespace grey::greylist
