// grey/dns/helo_check.hpp — whether the name a client gave in HELO/EHLO resolves to the
// client. RFC 5321 §4.1.4 forbids refusing mail for a HELO name that does not match, but a
// real mail server usually names itself by a name that resolves to it, and bots make one up:
// evidence to weigh, never a verdict of its own. An address literal ("[192.0.2.1]",
// "[IPv6:2001:db8::1]") is compared with the client's address, with no look-up. Link grey::dns.
#pragma once

#include <string>
#include <string_view>

#include "../detail/asio.hpp"
#include "../network.hpp"
#include "budget.hpp"
#include "evidence.hpp"
#include "resolver.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

namespace detail {

// A name the DNS could hold: letters, digits, '-', '_' in dot-separated labels. Anything else
// (spaces, brackets, a bare address, which RFC 5321 §4.1.3 writes in brackets) is not looked up.
inline bool is_helo_name(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    bool all_numeric = true;
    std::size_t label = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
        if (i == name.size() || name[i] == '.') {
            if (label == 0 || label > 63) return false;
            label = 0;
            continue;
        }
        const char c = name[i];
        const bool digit = c >= '0' && c <= '9';
        const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!digit && !letter && c != '-' && c != '_') return false;
        all_numeric = all_numeric && digit;
        ++label;
    }
    return !all_numeric;
}

// The check itself, owning its name: an awaitable starts only when awaited, after a view
// given to it may have ended.
inline asio::awaitable<helo_result> check_helo(resolver& r, std::string name, asio::ip::address client, budget b) {
    client = unmapped(client);
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
        std::string inner = name.substr(1, name.size() - 2);
        std::string tag = inner.substr(0, 5);
        for (char& c : tag) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        const bool v6 = tag == "ipv6:";  // RFC 5321 §4.1.3: the tag is case-insensitive
        if (v6) inner.erase(0, 5);
        asio::error_code ec;
        const auto literal = asio::ip::make_address(inner, ec);
        if (ec || literal.is_v6() != v6) co_return helo_result{helo_status::fail, "bad-literal"};
        if (unmapped(literal) == client) co_return helo_result{helo_status::ok_literal, ""};
        co_return helo_result{helo_status::mismatch, "literal"};
    }
    while (!name.empty() && name.back() == '.') name.pop_back();
    if (!is_helo_name(name)) co_return helo_result{helo_status::fail, "not-a-name"};

    lookup<asio::ip::address> own;
    if (client.is_v4()) own = co_await r.lookup_a(name, b);
    else own = co_await r.lookup_aaaa(name, b);
    if (const std::string_view failed = unknown_reason(own); !failed.empty())
        co_return helo_result{helo_status::unknown, std::string(failed)};
    for (const auto& a : own.values)
        if (unmapped(a) == client) co_return helo_result{helo_status::ok, ""};
    if (own.found()) co_return helo_result{helo_status::mismatch, ""};
    if (own.status == outcome::nxdomain) co_return helo_result{helo_status::fail, "nxdomain"};

    lookup<asio::ip::address> other;
    if (client.is_v4()) other = co_await r.lookup_aaaa(name, b);
    else other = co_await r.lookup_a(name, b);
    if (const std::string_view failed = unknown_reason(other); !failed.empty())
        co_return helo_result{helo_status::unknown, std::string(failed)};
    if (other.found()) co_return helo_result{helo_status::mismatch, ""};
    co_return helo_result{helo_status::fail, "no-address"};
}

} // namespace detail

/// Checks `helo` against `client` (an IPv4-mapped IPv6 address as the IPv4 address it maps).
/// A name is resolved in the client's family first (A for IPv4, AAAA for IPv6): an answer
/// holding the client is ok, one without it a mismatch; with no address there, the other
/// family tells a mismatch (it resolves elsewhere) from a failure (no address at all). A look-up
/// that fails leaves it unknown. A final dot and case do not matter. Both look-ups share `b`.
inline asio::awaitable<helo_result> check_helo(resolver& r, std::string_view helo, const asio::ip::address& client,
                                               budget b = {}) {
    return detail::check_helo(r, std::string(helo), client, b);
}

/// @}
} // namespace grey::dns
