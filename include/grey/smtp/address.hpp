// grey/smtp/address.hpp — the address grammar of RFC 5321 §4.1.2 with its length limits
// (§4.5.3.1): domains, address literals, local parts, and the <path> of MAIL and RCPT; and its
// SMTPUTF8 extension (RFC 6531 §3.3), UTF-8 in local parts and U-labels in domains, behind a
// `charset` switch that defaults to ASCII. Pure functions over string_views; parsed values
// view the caller's input; lengths are counted in octets, UTF-8 or not.
#pragma once

#include <arpa/inet.h>  // inet_pton: validates IPv6 literals, no I/O

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "../result.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

inline constexpr std::size_t max_local_part_length = 64;   ///< octets of a local part, RFC 5321 §4.5.3.1.1
inline constexpr std::size_t max_domain_length = 255;      ///< octets of a domain, RFC 5321 §4.5.3.1.2
inline constexpr std::size_t max_path_length = 256;        ///< octets of a path, RFC 5321 §4.5.3.1.3, with <>

/// Whether an address may hold UTF-8: only in a transaction whose MAIL carried SMTPUTF8
/// (RFC 6531 §3.4). Address literals and HELO names stay ASCII either way (§3.7.1).
enum class charset { ascii, utf8 };

/// The length of the well-formed UTF-8 sequence that starts `s` (1 for an ASCII octet), or 0
/// when `s` is empty or starts ill-formed. RFC 3629 §4's table, which rules out what a lax
/// decoder would let through to the upstream: overlong forms (C0, C1, E0 80-9F, F0 80-8F),
/// surrogates (ED A0-BF), code points past U+10FFFF (F4 90+, F5-FF), stray continuation
/// octets and sequences cut short.
constexpr std::size_t utf8_length(std::string_view s) noexcept {
    if (s.empty()) return 0;
    const auto octet = [s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = octet(0);
    if (lead < 0x80) return 1;
    std::size_t n = 0;
    unsigned char low = 0x80, high = 0xBF;  // the range of the second octet
    if (lead >= 0xC2 && lead <= 0xDF) {
        n = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        n = 3;
        if (lead == 0xE0) low = 0xA0;   // overlong
        if (lead == 0xED) high = 0x9F;  // U+D800..DFFF
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        n = 4;
        if (lead == 0xF0) low = 0x90;   // overlong
        if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
    } else {
        return 0;
    }
    if (s.size() < n || octet(1) < low || octet(1) > high) return 0;
    for (std::size_t i = 2; i < n; ++i)
        if (octet(i) < 0x80 || octet(i) > 0xBF) return 0;
    return n;
}

/// Well-formed UTF-8 (RFC 3629), ASCII included.
constexpr bool is_utf8(std::string_view s) noexcept {
    while (!s.empty()) {
        const std::size_t n = utf8_length(s);
        if (n == 0) return false;
        s.remove_prefix(n);
    }
    return true;
}

/// No octet above 0x7F: what an address must be outside an SMTPUTF8 transaction.
constexpr bool is_ascii(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

/// A reverse- or forward-path. For the null reverse-path "<>" every field is empty; for the
/// special forward-path "<Postmaster>" the domain is empty. A source route ("@a,@b:") is
/// accepted and dropped, as RFC 5321 §4.1.1.3 asks.
struct path {
    std::string_view mailbox;     ///< "local@domain", what Grey relays between < and >
    std::string_view local_part;  ///< as written, quotes included
    std::string_view domain;      ///< a domain or an address literal in brackets

    /// The null reverse-path "<>", which bounces and other notifications carry (RFC 5321 §4.5.5).
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

/// Equal but for the case of ASCII letters, as SMTP compares verbs, keywords and domains
/// (RFC 5321 §2.4); other octets compare exactly.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (detail::to_lower(a[i]) != detail::to_lower(b[i])) return false;
    return true;
}

/// Whether `s` begins with `prefix`, compared as iequals() does.
constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

namespace detail {
/// Dot-separated labels of letters, digits and inner hyphens, at most 63 octets each; with
/// `underscore`, '_' counts as a letter; with charset::utf8, a non-ASCII character counts as a
/// letter (a U-label, RFC 6531 §3.3). A U-label is checked for well-formed UTF-8 only, not
/// against IDNA's tables (RFC 5892): the upstream resolves it and judges it. Its 63 octets are
/// counted in UTF-8, which may refuse a long label whose A-label would fit; none is known in use.
constexpr bool is_label_sequence(std::string_view d, bool underscore, charset cs = charset::ascii) noexcept {
    if (d.empty() || d.size() > max_domain_length) return false;
    std::size_t label = 0;
    for (std::size_t i = 0;;) {
        if (i == d.size() || d[i] == '.') {
            if (label == 0 || label > 63 || d[i - 1] == '-') return false;
            if (i == d.size()) return true;
            label = 0;
            ++i;
            continue;
        }
        const char c = d[i];
        if (static_cast<unsigned char>(c) >= 0x80) {
            const std::size_t n = cs == charset::utf8 ? utf8_length(d.substr(i)) : 0;
            if (n == 0) return false;
            i += n;
            label += n;
            continue;
        }
        const bool letter = is_let_dig(c) || (underscore && c == '_');
        if (label == 0 ? !letter : !(letter || c == '-')) return false;
        ++label;
        ++i;
    }
}
} // namespace detail

/// Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str], or with
/// charset::utf8 also a U-label (RFC 6531 §3.3: sub-domain =/ U-label).
constexpr bool is_domain(std::string_view d, charset cs = charset::ascii) noexcept {
    return detail::is_label_sequence(d, false, cs);
}

/// The name a client gives in HELO/EHLO: a domain, except that '_' may stand in a label.
/// ASCII only: a client cannot know before EHLO's reply that SMTPUTF8 is offered, so it sends
/// LDH labels or A-labels (RFC 6531 §3.7.1).
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

/// Local-part = Dot-string / Quoted-string. With charset::utf8, atext and qtextSMTP also take
/// UTF8-non-ascii (RFC 6531 §3.3); a quoted-pair stays ASCII. At most 64 octets either way.
constexpr bool is_local_part(std::string_view s, charset cs = charset::ascii) noexcept {
    if (s.empty() || s.size() > max_local_part_length) return false;
    // The length of the UTF8-non-ascii character at s[i], within s[0, end); 0 if there is none.
    const auto non_ascii = [&](std::size_t i, std::size_t end) -> std::size_t {
        if (cs != charset::utf8) return 0;
        const std::size_t n = utf8_length(s.substr(i, end - i));
        return n > 1 ? n : 0;
    };
    if (s.front() == '"') {
        if (s.size() < 2 || s.back() != '"') return false;
        for (std::size_t i = 1; i + 1 < s.size(); ++i) {
            const unsigned char c = static_cast<unsigned char>(s[i]);
            if (c == '\\') {
                if (i + 2 >= s.size()) return false;
                const unsigned char e = static_cast<unsigned char>(s[++i]);
                if (e < 32 || e > 126) return false;
            } else if (c >= 0x80) {
                const std::size_t n = non_ascii(i, s.size() - 1);
                if (n == 0) return false;
                i += n - 1;
            } else if (c < 32 || c > 126 || c == '"') {
                return false;
            }
        }
        return true;
    }
    bool after_dot = true;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '.') {
            if (after_dot) return false;
            after_dot = true;
        } else if (detail::is_atext(c)) {
            after_dot = false;
        } else if (const std::size_t n = non_ascii(i, s.size()); n != 0) {
            i += n - 1;
            after_dot = false;
        } else {
            return false;
        }
    }
    return !after_dot;
}

/// Mailbox = Local-part "@" ( Domain / address-literal ), split at the last "@" outside quotes.
inline result<path> parse_mailbox(std::string_view m, charset cs = charset::ascii) {
    const std::size_t at = m.rfind('@');
    if (at == std::string_view::npos) return errc::syntax_error;
    const std::string_view local = m.substr(0, at);
    const std::string_view domain = m.substr(at + 1);
    if (!is_local_part(local, cs)) return errc::syntax_error;
    if (!(is_domain(domain, cs) || is_address_literal(domain))) return errc::syntax_error;
    return path{m, local, domain};
}

/// Which path take_path() reads: MAIL's reverse-path, which may be null, or RCPT's
/// forward-path, which may be "<Postmaster>".
enum class path_kind { reverse, forward };

/// Parses a path at the front of `input` and removes it from `input`. A reverse path may be
/// "<>"; a forward path may be "<Postmaster>". With charset::utf8 the path may hold UTF-8
/// (RFC 6531 §3.3); whether the transaction allows it is the caller's question.
inline result<path> take_path(std::string_view& input, path_kind kind, charset cs = charset::ascii) {
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
            if (hop.size() < 2 || hop.front() != '@' || !is_domain(hop.substr(1), cs))
                return errc::syntax_error;
            if (comma == std::string_view::npos) break;
            route.remove_prefix(comma + 1);
        }
        inner.remove_prefix(colon + 1);
    }
    return parse_mailbox(inner, cs);
}

/// @}
} // namespace grey::smtp
