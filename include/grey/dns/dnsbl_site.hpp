// grey/dns/dnsbl_site.hpp — a DNS list (DNSBL or DNSWL) as Postfix's postscreen_dnsbl_sites
// names it, `domain[=filter][*weight]`, so that an operator's postscreen settings read the
// same here: "zen.spamhaus.org*2", "list.dnswl.org=127.0.[0..255].[1..3]*-5",
// "bl.example=127.0.0.[2;4;6]". The filter is four octets, each a number or a bracketed list
// of numbers and "low..high" ranges separated by ';'; without one any reply in 127.0.0.0/8
// counts. The weight is an integer, 1 by default, negative for an allowlist. Also the name
// a client's address is looked up as. No I/O.
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <asio/ip/address.hpp>

#include "../result.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// Which A replies of a list count: for each octet, the values allowed.
struct dnsbl_filter {
    std::array<std::bitset<256>, 4> octets;  ///< octets[i][v]: v allowed as the reply's i-th octet

    /// Whether `reply` passes the filter.
    bool matches(const asio::ip::address_v4& reply) const noexcept {
        const auto b = reply.to_bytes();
        for (std::size_t i = 0; i < 4; ++i)
            if (!octets[i].test(b[i])) return false;
        return true;
    }
};

/// One entry of postscreen_dnsbl_sites: a list's domain, which replies count, and their weight.
struct dnsbl_site {
    std::string domain;                  ///< the list's zone, lowercase, without a final dot
    std::optional<dnsbl_filter> filter;  ///< the replies that count; none: any reply in 127.0.0.0/8
    int weight = 1;                      ///< added to the score when a reply counts; < 0 for an allowlist

    /// Whether a reply of `reply` counts for this entry (the caller has refused errors).
    bool matches(const asio::ip::address_v4& reply) const noexcept { return !filter || filter->matches(reply); }
};

/// The longest domain a list may have, so that an IPv6 address's query name (64 octets of
/// nibbles and dots before it) stays within DNS's 253.
inline constexpr std::size_t max_dnsbl_domain = 253 - 64;

/// The largest weight, either way: sums over any sane number of lists stay far from overflow.
inline constexpr int max_dnsbl_weight = 1'000'000;

namespace detail {

inline bool valid_dns_domain(std::string_view d) {
    if (d.empty() || d.size() > max_dnsbl_domain) return false;
    std::size_t label = 0;
    for (std::size_t i = 0; i <= d.size(); ++i) {
        if (i == d.size() || d[i] == '.') {
            if (label == 0 || label > 63 || d[i - 1] == '-' || d[i - label] == '-') return false;
            label = 0;
            continue;
        }
        const char c = d[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) return false;
        ++label;
    }
    return true;
}

// A decimal number of at most `max`; nullopt for anything else (signs, spaces, nothing).
inline std::optional<unsigned> small_number(std::string_view s, unsigned max) {
    if (s.empty() || s.size() > 7) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + unsigned(c - '0');
    }
    return v <= max ? std::optional<unsigned>(v) : std::nullopt;
}

// One octet of a filter: "2", or "[2..11]", "[2;4;6]", "[1;3..5]" (Postfix's ip_match syntax).
inline bool parse_filter_octet(std::string_view s, std::bitset<256>& allowed) {
    if (s.size() >= 2 && s.front() == '[' && s.back() == ']') {
        std::string_view items = s.substr(1, s.size() - 2);
        if (items.empty()) return false;
        for (;;) {
            const auto semi = items.find(';');
            const std::string_view item = items.substr(0, semi);
            const auto dots = item.find("..");
            const auto low = small_number(item.substr(0, dots), 255);
            const auto high = dots == std::string_view::npos ? low : small_number(item.substr(dots + 2), 255);
            if (!low || !high || *low > *high) return false;
            for (unsigned v = *low; v <= *high; ++v) allowed.set(v);
            if (semi == std::string_view::npos) return true;
            items.remove_prefix(semi + 1);
        }
    }
    const auto v = small_number(s, 255);
    if (!v) return false;
    allowed.set(*v);
    return true;
}

inline std::optional<dnsbl_filter> parse_filter(std::string_view s) {
    dnsbl_filter f;
    std::size_t octet = 0, start = 0;
    bool bracket = false;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i < s.size() && s[i] == '[') bracket = true;
        if (i < s.size() && s[i] == ']') bracket = false;
        if (i < s.size() && (s[i] != '.' || bracket)) continue;
        if (octet == 4 || !parse_filter_octet(s.substr(start, i - start), f.octets[octet])) return std::nullopt;
        ++octet;
        start = i + 1;
    }
    return octet == 4 ? std::optional<dnsbl_filter>(f) : std::nullopt;
}

} // namespace detail

/// Reads one `domain[=filter][*weight]` entry. errc::syntax_error for an empty or malformed
/// domain (letters, digits, '-', '_' in labels of 1 to 63; a final dot is dropped), a filter
/// that is not four octets of numbers 0-255 or bracketed lists of them and "low..high" ranges,
/// or a weight that is not an integer within ±max_dnsbl_weight.
inline result<dnsbl_site> parse_dnsbl_site(std::string_view text) {
    dnsbl_site site;
    if (const auto star = text.rfind('*'); star != std::string_view::npos) {
        std::string_view w = text.substr(star + 1);
        const bool negative = !w.empty() && w.front() == '-';
        if (!w.empty() && (w.front() == '-' || w.front() == '+')) w.remove_prefix(1);
        const auto magnitude = detail::small_number(w, max_dnsbl_weight);
        if (!magnitude) return errc::syntax_error;
        site.weight = negative ? -static_cast<int>(*magnitude) : static_cast<int>(*magnitude);
        text = text.substr(0, star);
    }
    if (const auto equals = text.find('='); equals != std::string_view::npos) {
        site.filter = detail::parse_filter(text.substr(equals + 1));
        if (!site.filter) return errc::syntax_error;
        text = text.substr(0, equals);
    }
    if (!text.empty() && text.back() == '.') text.remove_suffix(1);
    site.domain.assign(text);
    for (char& c : site.domain) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (!detail::valid_dns_domain(site.domain)) return errc::syntax_error;
    return site;
}

/// The name `address` is looked up as in the list `domain`: "2.0.18.198.bl.example" for
/// 198.18.0.2 (an IPv4-mapped IPv6 address is its IPv4 address); an IPv6 address's 32 nibbles
/// in reverse, dot-separated, before the domain.
inline std::string dnsbl_query_name(const asio::ip::address& address, std::string_view domain) {
    std::string name;
    if (address.is_v4() || address.to_v6().is_v4_mapped()) {
        const auto v4 = address.is_v4() ? address.to_v4() : asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
        const auto b = v4.to_bytes();
        for (std::size_t i = 4; i-- > 0;) name += std::to_string(b[i]) + '.';
    } else {
        constexpr char hex[] = "0123456789abcdef";
        const auto b = address.to_v6().to_bytes();
        for (std::size_t i = 16; i-- > 0;) {
            name += hex[b[i] & 0xF];
            name += '.';
            name += hex[b[i] >> 4];
            name += '.';
        }
    }
    return name.append(domain);
}

/// @}
} // namespace grey::dns
