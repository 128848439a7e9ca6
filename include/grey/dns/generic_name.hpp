// grey/dns/generic_name.hpp — whether a host name looks like one an ISP gives every address of
// a pool (c-98-207-1-23.hsd1.ca.comcast.net, dynamic-1-2-3-4.example.net) rather than one a
// mail server's operator chose (mail.example.com). Spam comes mostly from such hosts, and a
// retry from another address of the same pool is another name: greylisting's identity must
// not rest on it (DESIGN §10). Only the labels left of the registered domain are read, so an
// operator's own domain ("dsl-shop.example") never counts against it. No I/O.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// Whether a host name looks generic, and why.
struct generic_name_result {
    bool generic = false;  ///< the name looks like a pool's
    std::string why;       ///< when generic: "address", or the pool word found ("dynamic", "dsl"…)

    /// The evidence for a log line: `generic=yes:address`, `generic=yes:dsl`, `generic=no`.
    std::string reason() const { return generic ? "generic=yes:" + why : "generic=no"; }
};

namespace detail {

// Words ISPs use for addresses handed out by the pool. A label (or a part of it between '-'
// and '_') that is one of them, alone or followed by digits ("dsl123", "ppp0"), marks the name.
inline constexpr std::array<std::string_view, 36> pool_words = {
    "dynamic", "dyn", "dynip", "dhcp", "pool", "dsl", "adsl", "vdsl", "xdsl", "sdsl", "hsd",
    "cable", "catv", "modem", "dial", "dialup", "dialin", "ppp", "pppoe", "client", "clients",
    "customer", "cust", "broadband", "unassigned", "user", "users", "nat", "res", "residential",
    "resnet", "mobile", "wireless", "ftth", "cpe", "dip"};

// Words that name a host by its number: generic only when numbers follow them in the same
// label ("ip-1-2-3-4", "host-12-34"), since "host.example.com" alone says nothing.
inline constexpr std::array<std::string_view, 5> numbered_words = {"ip", "host", "static", "addr", "node"};

inline bool is_separator(char c) noexcept { return c == '.' || c == '-' || c == '_'; }
inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline bool is_hex(char c) noexcept { return is_digit(c) || (c >= 'a' && c <= 'f'); }
inline bool all_digits(std::string_view s) noexcept {
    for (char c : s)
        if (!is_digit(c)) return false;
    return true;
}

inline std::vector<std::string_view> split(std::string_view s, bool (*at)(char)) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= s.size(); ++i) {
        if (i < s.size() && !at(s[i])) continue;
        parts.push_back(s.substr(start, i - start));
        start = i + 1;
    }
    return parts;
}

// The labels left of the registered domain; without one (or one the name does not end in),
// all but the last two labels, which is right for most names and errs towards reading less.
inline std::string_view host_part(std::string_view host, std::string_view registered_domain) {
    if (!registered_domain.empty() && host.size() > registered_domain.size() &&
        host.substr(host.size() - registered_domain.size()) == registered_domain &&
        host[host.size() - registered_domain.size() - 1] == '.')
        return host.substr(0, host.size() - registered_domain.size() - 1);
    const auto last = host.rfind('.');
    if (last == std::string_view::npos || last == 0) return {};
    const auto second = host.rfind('.', last - 1);
    return second == std::string_view::npos ? std::string_view{} : host.substr(0, second);
}

inline std::string hex_octets(const unsigned char* b, std::size_t n, bool reversed) {
    constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned o = b[reversed ? n - 1 - i : i];
        s += digits[o >> 4];
        s += digits[o & 0xF];
    }
    return s;
}

// The octets of an IPv4 address written in the name: as decimal numbers in order or reversed
// (any separators, zero-padded or not), or as twelve zero-padded digits or eight hex digits.
inline bool embeds_v4(std::string_view part, std::string_view compact, const asio::ip::address_v4& a) {
    const auto b = a.to_bytes();
    std::vector<int> numbers;  // each run of digits in the name; -1 for one too long for an octet
    for (std::size_t i = 0; i < part.size();) {
        if (!is_digit(part[i])) { ++i; continue; }
        std::size_t j = i;
        int value = 0;
        for (; j < part.size() && is_digit(part[j]); ++j)
            if (j - i < 3) value = value * 10 + (part[j] - '0');
        numbers.push_back(j - i <= 3 ? value : -1);
        i = j;
    }
    for (std::size_t i = 0; i + 4 <= numbers.size(); ++i) {
        bool forward = true, backward = true;
        for (std::size_t k = 0; k < 4; ++k) {
            forward = forward && numbers[i + k] == b[k];
            backward = backward && numbers[i + k] == b[3 - k];
        }
        if (forward || backward) return true;
    }
    std::string padded, padded_reversed;
    for (std::size_t k = 0; k < 4; ++k) {
        const auto pad = [](unsigned o) { return std::string(o < 10 ? "00" : o < 100 ? "0" : "") + std::to_string(o); };
        padded += pad(b[k]);
        padded_reversed += pad(b[3 - k]);
    }
    return compact.find(padded) != std::string_view::npos || compact.find(padded_reversed) != std::string_view::npos ||
           compact.find(hex_octets(b.data(), 4, false)) != std::string_view::npos ||
           compact.find(hex_octets(b.data(), 4, true)) != std::string_view::npos;
}

// An IPv6 address in the name: twelve nibbles in a row (not all zero) as written or in
// ip6.arpa's reversed order, or four of its groups in a row, written as hex numbers.
inline bool embeds_v6(std::string_view part, std::string_view compact, const asio::ip::address_v6& a) {
    const auto b = a.to_bytes();
    const std::string nibbles = hex_octets(b.data(), 16, false);
    const std::string reversed(nibbles.rbegin(), nibbles.rend());
    constexpr std::size_t run = 12;
    for (std::size_t i = 0; i + run <= nibbles.size(); ++i) {
        const std::string_view forward = std::string_view(nibbles).substr(i, run);
        const std::string_view backward = std::string_view(reversed).substr(i, run);
        if (forward.find_first_not_of('0') != std::string_view::npos && compact.find(forward) != std::string_view::npos)
            return true;
        if (backward.find_first_not_of('0') != std::string_view::npos && compact.find(backward) != std::string_view::npos)
            return true;
    }
    std::vector<long> groups;  // each token of the name read as a group; -1 when it is none
    for (std::string_view t : split(part, is_separator)) {
        long value = t.empty() || t.size() > 4 ? -1 : 0;
        for (char c : t) value = value < 0 || !is_hex(c) ? -1 : value * 16 + (is_digit(c) ? c - '0' : c - 'a' + 10);
        groups.push_back(value);
    }
    for (std::size_t i = 0; i + 4 <= groups.size(); ++i) {
        for (std::size_t g = 0; g + 4 <= 8; ++g) {
            bool same = true, nonzero = false;
            for (std::size_t k = 0; k < 4 && same; ++k) {
                const long want = b[2 * (g + k)] << 8 | b[2 * (g + k) + 1];
                same = groups[i + k] == want;
                nonzero = nonzero || want != 0;
            }
            if (same && nonzero) return true;
        }
    }
    return false;
}

// The pool word a label holds, or "" when it holds none.
inline std::string_view pool_word(std::string_view label) {
    const auto tokens = split(label, [](char c) { return c == '-' || c == '_'; });
    for (std::string_view t : tokens) {
        for (std::string_view w : pool_words)
            if (t.size() >= w.size() && t.substr(0, w.size()) == w && all_digits(t.substr(w.size()))) return w;
    }
    if (tokens.size() >= 3) {  // a numbered word: the word, then at least two numbers
        for (std::string_view w : numbered_words) {
            if (tokens[0] != w) continue;
            std::size_t numbers = 0;
            for (std::size_t i = 1; i < tokens.size(); ++i) numbers += !tokens[i].empty() && all_digits(tokens[i]);
            if (numbers >= 2) return w;
        }
    }
    return {};
}

} // namespace detail

/// Whether `host` looks like a name given to every address of a pool: `address` (the
/// client's; an IPv4-mapped IPv6 address is read as IPv4) written in it, or a pool word
/// ("dynamic", "dsl", "pool", "ip-1-2-3-4"…) as a label or its prefix. Only the labels left of
/// `registered_domain` are read (registered_domain.hpp gives it); when it is empty or `host`
/// does not end in it, the last two labels are taken as the registered domain. Case and a
/// final dot do not matter.
inline generic_name_result check_generic_name(std::string_view host, const asio::ip::address& address,
                                              std::string_view registered_domain = {}) {
    std::string name(host), domain(registered_domain);
    for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (char& c : domain) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    while (!name.empty() && name.back() == '.') name.pop_back();
    while (!domain.empty() && domain.back() == '.') domain.pop_back();

    const std::string_view part = detail::host_part(name, domain);
    if (part.empty()) return {};
    std::string compact;
    for (char c : part)
        if (!detail::is_separator(c)) compact += c;

    const bool v4 = address.is_v4() || (address.is_v6() && address.to_v6().is_v4_mapped());
    const bool embedded =
        v4 ? detail::embeds_v4(part, compact,
                               address.is_v4() ? address.to_v4() : asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()))
           : detail::embeds_v6(part, compact, address.to_v6());
    if (embedded) return {true, "address"};
    for (std::string_view label : detail::split(part, [](char c) { return c == '.'; }))
        if (const std::string_view w = detail::pool_word(label); !w.empty()) return {true, std::string(w)};
    return {};
}

/// @}
} // namespace grey::dns
