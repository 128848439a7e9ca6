// grey/greylist/triplet.hpp — the greylisting triplet (client, sender, recipient), normalised
// so that one sender retrying is recognised as the same triplet: the client address grouped
// to its subnet (a big sender retries from another host of its pool), and the sender address
// stripped of the parts that change with each message (BATV tags in the shapes senders use,
// SRS wrapping, +extensions, VERP numbers). No I/O.
#pragma once

#include <arpa/inet.h>  // inet_pton / inet_ntop: parsing and printing addresses, no I/O

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../smtp/address.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// The steps normalise_sender takes, each on by default: it takes off the parts of a sender
/// address that change from one message (or retry) to the next.
struct normalisation {
    bool lowercase_domain = true;  ///< `Example.COM` → `example.com`
    bool unwrap_batv = true;       ///< `prvs=1234abcdef=user@d`, `btv1==…==user@d` → `user@d`
    bool unwrap_srs = true;        ///< `SRS0=h=tt=orig.example=user@fwd` → `user@orig.example`
    bool strip_extension = true;   ///< `user+tag@d` → `user@d`
    bool fold_digits = true;       ///< `bounce-12345@d` → `bounce-#@d` (VERP): numbers standing alone, as Postgrey
};

/// How much of the client's address makes its group: a pool of hosts that retry for each other.
struct grouping {
    unsigned ipv4_prefix = 24;   ///< 32: the exact address
    unsigned ipv6_prefix = 64;   ///< 128: the exact address
};

/// What greylisting remembers a delivery attempt by; make_triplet builds it.
struct triplet {
    std::string client;     ///< "192.0.2.0/24", "2001:db8::/64", or the address as given
    std::string sender;     ///< normalised reverse-path ("" for <>)
    std::string recipient;  ///< forward-path, domain in lower case

    /// The same triplet: all three parts equal.
    friend bool operator==(const triplet&, const triplet&) = default;
};

/// The client's address masked to its group: "192.0.2.77" → "192.0.2.0/24". A string that
/// is not an IP address is returned unchanged.
inline std::string client_group(std::string_view address, const grouping& g) {
    const std::string text(address);
    unsigned char bytes[16] = {};
    int family = AF_INET;
    unsigned prefix = g.ipv4_prefix, bits = 32;
    if (inet_pton(AF_INET, text.c_str(), bytes) != 1) {
        if (inet_pton(AF_INET6, text.c_str(), bytes) != 1) return text;
        family = AF_INET6;
        prefix = g.ipv6_prefix;
        bits = 128;
    }
    if (prefix >= bits) return text;
    for (unsigned i = 0; i < bits / 8; ++i) {
        const unsigned first_bit = i * 8;
        if (first_bit >= prefix) bytes[i] = 0;
        else if (first_bit + 8 > prefix) bytes[i] &= static_cast<unsigned char>(0xFF << (8 - (prefix - first_bit)));
    }
    char out[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, bytes, out, sizeof out);
    return std::string(out) + "/" + std::to_string(prefix);
}

namespace detail {
inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = smtp::detail::to_lower(c);
    return out;
}

/// The characters a BATV tag may hold, per scheme: the narrower, the fewer local parts that
/// look like a tag by chance.
enum class tag_chars { hex, alnum, alnum_hyphen };

/// A BATV tag: 6 to 64 characters of one class. Six is below every tag seen in the wild
/// (Cisco IronPort's 9, the draft's 10, Barracuda's 11, SparkPost's 13) and above the short
/// words people put between '=' signs (`prvs=xyz=bob`); 64 holds a SHA-256 in hex.
constexpr bool is_batv_tag(std::string_view s, tag_chars kind) noexcept {
    if (s.size() < 6 || s.size() > 64) return false;
    for (char c : s) {
        const char l = smtp::detail::to_lower(c);
        switch (kind) {
        case tag_chars::hex:
            if (!smtp::detail::is_digit(c) && !(l >= 'a' && l <= 'f')) return false;
            break;
        case tag_chars::alnum_hyphen:
            if (c == '-') break;
            [[fallthrough]];
        case tag_chars::alnum:
            if (!smtp::detail::is_let_dig(c)) return false;
            break;
        }
    }
    return true;
}

/// BATV: senders sign their reverse-path with a tag that changes every day (or every
/// message), so the tag must go or each retry is a new triplet. The shapes in use, prefixes
/// in any case, each unwrapped to the plain local part:
///   prvs=TAG=local      draft-levine-smtp-batv-01 (Exim, Halon, Proofpoint: TAG = K DDD
///                       SSSSSS, 10 hex digits; Cisco IronPort signs with 9): TAG is hex
///   prvs=local=TAG      the reversed order, which rspamd's BATV rule (rules/misc.lua) also
///                       recognises; taken only when `local` is not itself a hex tag and holds
///                       no '=', since the draft's order wins a tie
///   msprvs1=TAG=local   SparkPost/Momentum (Message Systems' "prvs"), TAG letters, digits
///                       and '-': msprvs1=17582Z2TKy0DK=bounces-9178@…
///   btv1==TAG==local    Barracuda, which doubles the '=': btv1==760cdc7c545==julian@…
///   local+prvs=TAG      batv-tools' sub-address form (also caught by strip_extension)
/// Anything else with '=' in it (`a=b`, `foo=bar=baz`, `prvs=xyz=bob`) is kept as written.
inline std::string_view unwrap_batv(std::string_view local) {
    constexpr auto npos = std::string_view::npos;
    // "TAG<sep>rest" → rest, when TAG is a tag of `kind` and rest is not empty.
    const auto after_tag = [&](std::string_view s, std::string_view sep, tag_chars kind) {
        const auto end = s.find(sep);
        if (end == npos || end + sep.size() == s.size() || !is_batv_tag(s.substr(0, end), kind)) return local;
        return s.substr(end + sep.size());
    };
    if (smtp::istarts_with(local, "btv1==")) return after_tag(local.substr(6), "==", tag_chars::alnum);
    if (smtp::istarts_with(local, "msprvs1=")) return after_tag(local.substr(8), "=", tag_chars::alnum_hyphen);
    if (smtp::istarts_with(local, "prvs=")) {
        const std::string_view rest = local.substr(5);
        if (const auto core = after_tag(rest, "=", tag_chars::hex); core != local) return core;
        const auto eq = rest.find('=');  // prvs=local=TAG
        if (eq != npos && eq > 0 && eq == rest.rfind('=') && is_batv_tag(rest.substr(eq + 1), tag_chars::hex))
            return rest.substr(0, eq);
        return local;
    }
    if (const auto plus = local.rfind('+'); plus != npos && plus > 0 &&
                                            smtp::istarts_with(local.substr(plus + 1), "prvs=") &&
                                            is_batv_tag(local.substr(plus + 6), tag_chars::hex))
        return local.substr(0, plus);
    return local;
}

/// SRS (the Sender Rewriting Scheme): SRS0=HHH=TT=orig-domain=orig-local@forwarder, and
/// SRS1=HHH=first-forwarder==HHH=TT=orig-domain=orig-local@forwarder.
inline bool unwrap_srs(std::string_view local, std::string& out_local, std::string& out_domain) {
    std::string_view rest;
    if (smtp::istarts_with(local, "SRS0") && local.size() > 5 && std::strchr("=+-", local[4])) {
        rest = local.substr(5);
    } else if (smtp::istarts_with(local, "SRS1") && local.size() > 5 && std::strchr("=+-", local[4])) {
        const auto inner = local.find("==");
        if (inner == std::string_view::npos) return false;
        rest = local.substr(inner + 2);
    } else {
        return false;
    }
    // rest = HHH=TT=orig-domain=orig-local
    std::string_view parts[3];
    for (auto& p : parts) {
        const auto eq = rest.find('=');
        if (eq == std::string_view::npos) return false;
        p = rest.substr(0, eq);
        rest.remove_prefix(eq + 1);
    }
    if (parts[2].empty() || rest.empty()) return false;
    out_domain = std::string(parts[2]);
    out_local = std::string(rest);
    return true;
}

// Postgrey's `s/\b\d+\b/#/g`: a number standing alone (its neighbours no letter, digit or
// '_') becomes '#'; digits inside a word stay, so that s1@ and s9@ are two senders.
inline std::string fold_digit_runs(std::string_view s) {
    const auto word = [](char c) { return smtp::detail::is_digit(c) || c == '_' || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); };
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        if (!smtp::detail::is_digit(s[i])) {
            out.push_back(s[i++]);
            continue;
        }
        std::size_t end = i;
        while (end < s.size() && smtp::detail::is_digit(s[end])) ++end;
        const bool alone = (i == 0 || !word(s[i - 1])) && (end == s.size() || !word(s[end]));
        if (alone) out.push_back('#');
        else out.append(s.substr(i, end - i));
        i = end;
    }
    return out;
}
} // namespace detail

/// The sender as greylisting compares it. `mailbox` is a reverse-path's "local@domain".
inline std::string normalise_sender(std::string_view mailbox, const normalisation& n) {
    if (mailbox.empty()) return {};
    const auto at = mailbox.rfind('@');
    std::string local(at == std::string_view::npos ? mailbox : mailbox.substr(0, at));
    std::string domain(at == std::string_view::npos ? std::string_view{} : mailbox.substr(at + 1));
    if (n.unwrap_batv) local = std::string(detail::unwrap_batv(local));
    if (n.unwrap_srs) {
        std::string l, d;
        if (detail::unwrap_srs(local, l, d)) {
            local = std::move(l), domain = std::move(d);
            // Forwarders wrap signed senders: SRS0=HH=TT=citrix.com=prvs=0530a50c4=roger.pau
            if (n.unwrap_batv) local = std::string(detail::unwrap_batv(local));
        }
    }
    if (n.strip_extension) {
        if (const auto plus = local.find('+'); plus != std::string::npos && plus > 0) local.resize(plus);
    }
    if (n.fold_digits) local = detail::fold_digit_runs(local);
    if (n.lowercase_domain) domain = detail::lower(domain);
    return domain.empty() ? local : local + "@" + domain;
}

/// The recipient as greylisting compares it: the domain in lower case, the local part as
/// written, since only its own domain may read it (RFC 5321 §2.4).
inline std::string normalise_recipient(std::string_view mailbox) {
    const auto at = mailbox.rfind('@');
    if (at == std::string_view::npos) return detail::lower(mailbox);  // <Postmaster>
    return std::string(mailbox.substr(0, at + 1)) + detail::lower(mailbox.substr(at + 1));
}

/// The triplet of one recipient: client_group, normalise_sender and normalise_recipient.
inline triplet make_triplet(std::string_view client_address, std::string_view sender,
                            std::string_view recipient, const grouping& g = {},
                            const normalisation& n = {}) {
    return {client_group(client_address, g), normalise_sender(sender, n), normalise_recipient(recipient)};
}

/// @}
} // namespace grey::greylist
