// grey/upstream/identity.hpp — the real client's identity, told to the upstream MTA with
// Postfix's XCLIENT or XFORWARD extension (XCLIENT_README, XFORWARD_README). No I/O.
//
// Without it the MTA behind Grey sees every message come from Grey's address: its client
// checks, its logs and its Received: headers lose the sender. The two extensions differ in
// what they change:
//
//   XCLIENT   the upstream takes the client's identity for the rest of the connection: its
//             client restrictions (DNSBLs, reject_unknown_client_hostname, rate limits) apply
//             to the real client. It answers with a new 220 greeting, and takes the HELO name
//             from the next EHLO, so Grey says EHLO again with the client's own name. Postfix
//             authorises XCLIENT by the current client address: once ADDR has changed, a
//             second XCLIENT on the connection is refused, so such a connection serves only
//             clients of the same identity (see relay.hpp and pool.hpp).
//   XFORWARD  the attributes hold for the next mail transaction only and change no access
//             decision: logs, Received: headers and content filters see the real client. Sent
//             before each MAIL, it suits connections shared by many clients.
//
// Values are xtext (RFC 3461 §4); an attribute the upstream did not list is not sent; a
// command stays within 512 octets (the limit XCLIENT_README sets), several commands if need be.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../config.hpp"
#include "../dns/client_names.hpp"
#include "../smtp/extensions.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// What the relay does on one connection, given the policy and what the upstream offers.
enum class identity_method {
    none,      ///< the upstream is told nothing
    xclient,   ///< XCLIENT once per connection, then EHLO again
    xforward,  ///< XFORWARD before each MAIL
};

/// What `policy` uses with an upstream that offers `caps`.
constexpr identity_method choose(identity_policy policy, const smtp::extensions& caps) noexcept {
    using smtp::attribute;
    const bool xclient = caps.has(smtp::extension::xclient);
    const bool xforward = caps.has(smtp::extension::xforward);
    switch (policy) {
    case identity_policy::none: return identity_method::none;
    case identity_policy::xclient: return xclient ? identity_method::xclient : identity_method::none;
    case identity_policy::xforward: return xforward ? identity_method::xforward : identity_method::none;
    case identity_policy::automatic:
        if (xclient && caps.xclient_offers(attribute::addr)) return identity_method::xclient;
        if (xforward) return identity_method::xforward;
        return xclient ? identity_method::xclient : identity_method::none;
    }
    return identity_method::none;
}

/// The client as the upstream is to see it. Unknown values are "[UNAVAILABLE]", or
/// "[TEMPUNAVAIL]" for a name whose look-up failed for now (XCLIENT_README).
struct client_identity {
    std::string addr;          ///< "192.0.2.1", or "IPV6:2001:db8::1"
    std::uint16_t port = 0;    ///< the client's port; 0 when unknown
    std::string name;          ///< the verified host name (reverse look-up confirmed forward)
    std::string reverse_name;  ///< what the reverse look-up said, verified or not
    std::string helo;          ///< the client's HELO/EHLO name
    std::string proto;         ///< "ESMTP" after EHLO, "SMTP" after HELO

    /// identity_key() of this client's address, HELO name and protocol.
    std::string key() const;
};

/// What a connection that has taken an identity by XCLIENT may serve again: the same address,
/// HELO name and protocol. Not the port, which differs with every connection of one client, nor
/// the names, which follow from the address: so the key is known before any look-up.
inline std::string identity_key(std::string_view addr, std::string_view helo, std::string_view proto) {
    return fmt::format("{}|{}|{}", addr, helo, proto);
}

inline std::string client_identity::key() const { return identity_key(addr, helo, proto); }

/// XCLIENT_README's keyword for a value that is not known.
using dns::unavailable;
/// XCLIENT_README's keyword for a name whose look-up failed for now.
using dns::temporarily_unavailable;

/// An address as XCLIENT and XFORWARD write it: IPv6 with the "IPV6:" prefix.
inline std::string identity_address(std::string_view address) {
    if (address.empty()) return std::string(unavailable);
    if (address.find(':') != std::string_view::npos) return fmt::format("IPV6:{}", address);
    return std::string(address);
}

/// RFC 3461 §4: octets outside "!".."~", and "+" and "=", as "+" and two upper-case hex digits.
inline std::string xtext(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 33 || u > 126 || c == '+' || c == '=') out += fmt::format("+{:02X}", u);
        else out += c;
    }
    return out;
}

/// The XCLIENT or XFORWARD command lines (CRLF included) that tell `who` to an upstream that
/// listed `offered`, each at most `max_line` octets; none when nothing offered applies.
inline std::vector<std::string> identity_commands(identity_method method, const client_identity& who,
                                                  const smtp::extensions& offered, std::size_t max_line = 512) {
    using smtp::attribute;
    if (method == identity_method::none) return {};
    const std::string_view verb = method == identity_method::xclient ? "XCLIENT" : "XFORWARD";
    const auto has = [&](attribute a) {
        return method == identity_method::xclient ? offered.xclient_offers(a) : offered.xforward_offers(a);
    };
    const std::string port = who.port ? std::to_string(who.port) : std::string(unavailable);
    // NAME and ADDR first, as XCLIENT_README suggests when a command must be split.
    const std::pair<attribute, std::string_view> fields[] = {
        {attribute::name, who.name},   {attribute::addr, who.addr},
        {attribute::port, port},       {attribute::proto, who.proto},
        {attribute::helo, who.helo},   {attribute::reverse_name, who.reverse_name},
    };
    std::vector<std::string> lines;
    std::string line;
    for (const auto& [a, value] : fields) {
        if (!has(a) || (method == identity_method::xforward && a == attribute::reverse_name)) continue;
        const std::string_view shown = value.empty() ? unavailable : value;
        // "[UNAVAILABLE]" and "[TEMPUNAVAIL]" are keywords, not values to encode.
        const bool keyword = shown == unavailable || shown == temporarily_unavailable;
        const std::string encoded = keyword ? std::string(shown) : xtext(shown);
        std::string item = fmt::format(" {}={}", smtp::attribute_name(a), encoded);
        if (!line.empty() && line.size() + item.size() + 2 > max_line) {
            lines.push_back(line + "\r\n");
            line.clear();
        }
        if (line.empty()) line = verb;
        line += item;
    }
    if (!line.empty()) lines.push_back(line + "\r\n");
    return lines;
}

/// @}
} // namespace grey::upstream
