// grey/smtp/address.hpp — the address grammar of RFC 5321 §4.1.2 with its length limits
// (§4.5.3.1): domains, address literals, local parts, and the <path> of MAIL and RCPT.
// Pure functions over string_views; parsed values view the caller's input.
#pragma once

#include <arpa/inet.h>  // inet_pton: validates IPv6 literals, no I/O

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "../result.hpp"

namespace grey::smtp {

inline constexpr std::size_t max_local_part_length = 64;   // RFC 5321 §4.5.3.1.1
inline constexpr std::size_t max_domain_length = 255;      // RFC 5321 §4.5.3.1.2
inline constexpr std::size_t max_path_length = 256;        // RFC 5321 §4.5.3.1.3, with <>

/// A reverse- or forward-path. For the null reverse-path "<>" every field is empty; for the
/// special forward-path "<Postmaster>" the domain is empty. A source route ("@a,@b:") is
/// accepted and dropped, as RFC 5321 §4.1.1.3 asks.
struct path {
    std::string_view mailbox;     ///< "local@domain", what Grey relays between < and >
    std::string_view local_part;  ///< as written, quotes included
    std::string_view domain;      ///< a domain or an address literal in brackets

    bool is_null() const noexcept { return mailbox.empty(); }
};

namespace detail {
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_let_dig(char c) noexcept { return is_alpha(c) || is_digit(c); }
constexpr bool is_atext(char c) noexcept {
    return is_let_dig(c) || std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}
constexpr char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }
} // namespace detail

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (detail::to_lower(a[i]) != detail::to_lower(b[i])) return false;
    return true;
}

constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

namespace detail {
/// Dot-separated labels of letters, digits and inner hyphens, at most 63 octets each; with
/// `underscore`, '_' counts as a letter.
constexpr bool is_label_sequence(std::string_view d, bool underscore) noexcept {
    if (d.empty() || d.size() > max_domain_length) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i <= d.size(); ++i) {
        const bool boundary = i == d.size() || d[i] == '.';
        if (boundary) {
            if (label == 0 || label > 63 || d[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        const char c = d[i];
        const bool letter = is_let_dig(c) || (underscore && c == '_');
        if (label == 0 ? !letter : !(letter || c == '-')) return false;
        ++label;
    }
    return true;
}
} // namespace detail

/// Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str].
constexpr bool is_domain(std::string_view d) noexcept { return detail::is_label_sequence(d, false); }

/// The name a client gives in HELO/EHLO: a domain, except that '_' may stand in a label.
/// Windows and Exchange hosts are named so and say so every day; refusing them would keep
/// their mail queued until it bounces. Postfix's strictest HELO check (valid_hostname())
/// accepts '_' for the same reason; anything else that cannot be a host name is refused.
constexpr bool is_helo_name(std::string_view d) noexcept { return detail::is_label_sequence(d, true); }

/// IPv4-address-literal = Snum 3("." Snum), without the brackets.
constexpr bool is_ipv4_literal(std::string_view s) noexcept {
    int parts = 0;
    std::size_t i = 0;
    while (true) {
        std::size_t digits = 0;
        int value = 0;
        while (i < s.size() && detail::is_digit(s[i]) && digits < 4) {
            value = value * 10 + (s[i] - '0');
            ++i;
            ++digits;
        }
        if (digits == 0 || digits > 3 || value > 255) return false;
        ++parts;
        if (i == s.size()) return parts == 4;
        if (s[i] != '.' || parts == 4) return false;
        ++i;
    }
}

/// address-literal = "[" ( IPv4 / "IPv6:" IPv6 ) "]". General literals have no registered tag
/// and are refused.
inline bool is_address_literal(std::string_view s) {
    if (s.size() < 3 || s.front() != '[' || s.back() != ']') return false;
    const std::string_view inner = s.substr(1, s.size() - 2);
    if (istarts_with(inner, "IPv6:")) {
        const std::string ip(inner.substr(5));
        in6_addr out{};
        return ip.size() <= 45 && inet_pton(AF_INET6, ip.c_str(), &out) == 1;
    }
    return is_ipv4_literal(inner);
}

/// Local-part = Dot-string / Quoted-string.
constexpr bool is_local_part(std::string_view s) noexcept {
    if (s.empty() || s.size() > max_local_part_length) return false;
    if (s.front() == '"') {
        if (s.size() < 2 || s.back() != '"') return false;
        for (std::size_t i = 1; i + 1 < s.size(); ++i) {
            const unsigned char c = static_cast<unsigned char>(s[i]);
            if (c == '\\') {
                if (i + 2 >= s.size()) return false;
                const unsigned char e = static_cast<unsigned char>(s[++i]);
                if (e < 32 || e > 126) return false;
            } else if (c < 32 || c > 126 || c == '"') {
                return false;
            }
        }
        return true;
    }
    bool after_dot = true;
    for (char c : s) {
        if (c == '.') {
            if (after_dot) return false;
            after_dot = true;
        } else if (detail::is_atext(c)) {
            after_dot = false;
        } else {
            return false;
        }
    }
    return !after_dot;
}

/// Mailbox = Local-part "@" ( Domain / address-literal ), split at the last "@" outside quotes.
inline result<path> parse_mailbox(std::string_view m) {
    const std::size_t at = m.rfind('@');
    if (at == std::string_view::npos) return errc::syntax_error;
    const std::string_view local = m.substr(0, at);
    const std::string_view domain = m.substr(at + 1);
    if (!is_local_part(local)) return errc::syntax_error;
    if (!(is_domain(domain) || is_address_literal(domain))) return errc::syntax_error;
    return path{m, local, domain};
}

enum class path_kind { reverse, forward };

/// Parses a path at the front of `input` and removes it from `input`. A reverse path may be
/// "<>"; a forward path may be "<Postmaster>".
inline result<path> take_path(std::string_view& input, path_kind kind) {
    if (input.empty() || input.front() != '<') return errc::syntax_error;
    // Find the closing '>' outside a quoted local part.
    std::size_t close = std::string_view::npos;
    bool quoted = false;
    for (std::size_t i = 1; i < input.size() && i <= max_path_length; ++i) {
        const char c = input[i];
        if (quoted && c == '\\') { ++i; continue; }
        if (c == '"') quoted = !quoted;
        else if (!quoted && c == '>') { close = i; break; }
    }
    if (close == std::string_view::npos || close + 1 > max_path_length) return errc::syntax_error;
    std::string_view inner = input.substr(1, close - 1);
    input.remove_prefix(close + 1);

    if (inner.empty()) {
        if (kind == path_kind::reverse) return path{};
        return errc::syntax_error;
    }
    if (kind == path_kind::forward && iequals(inner, "postmaster")) return path{inner, inner, {}};
    if (inner.front() == '@') {  // A-d-l ":" — a source route, accepted and dropped
        const std::size_t colon = inner.find(':');
        if (colon == std::string_view::npos) return errc::syntax_error;
        std::string_view route = inner.substr(0, colon);
        while (true) {
            const std::size_t comma = route.find(',');
            const std::string_view hop = route.substr(0, comma);
            if (hop.size() < 2 || hop.front() != '@' || !is_domain(hop.substr(1)))
                return errc::syntax_error;
            if (comma == std::string_view::npos) break;
            route.remove_prefix(comma + 1);
        }
        inner.remove_prefix(colon + 1);
    }
    return parse_mailbox(inner);
}

} // namespace grey::smtp
