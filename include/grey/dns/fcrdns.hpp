// grey/dns/fcrdns.hpp — forward-confirmed reverse DNS: a name the client's address points to
// (PTR) that points back to the address (A or AAAA). Anyone can write a PTR record for their
// own addresses, naming any domain; only the domain's owner can make the name resolve back, so
// a confirmed name is one the client's operator and the domain's agree on: evidence of who
// sends, and a stable identity for a pool of senders (DESIGN §10). Link grey::dns.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "../detail/asio.hpp"
#include "../network.hpp"
#include "budget.hpp"
#include "evidence.hpp"
#include "resolver.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// The most PTR names of one address checked: a long list is no better evidence, and each
/// name costs a query.
inline constexpr std::size_t max_fcrdns_names = 10;

/// Checks `address` (an IPv4-mapped IPv6 address as the IPv4 address it maps): its PTR names,
/// the first max_fcrdns_names of them, each resolved (A for IPv4, AAAA for IPv6) until one
/// gives the address back. A name that confirms wins over a look-up that failed; with none
/// confirming, a failed look-up makes the result unknown, since the name it left unread might
/// have confirmed. All look-ups share `b`. Never throws for what DNS answers or fails to.
inline asio::awaitable<fcrdns_result> check_fcrdns(resolver& r, asio::ip::address address, budget b = {}) {
    address = unmapped(address);
    fcrdns_result result;
    const auto ptr = co_await r.lookup_ptr(address, b);
    if (const std::string_view failed = unknown_reason(ptr); !failed.empty()) {
        result.why = "ptr:" + std::string(failed);
        co_return result;
    }
    for (std::string name : ptr.values) {
        if (result.names.size() == max_fcrdns_names) break;
        std::transform(name.begin(), name.end(), name.begin(),
                       [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
        while (!name.empty() && name.back() == '.') name.pop_back();
        if (!name.empty() && std::find(result.names.begin(), result.names.end(), name) == result.names.end())
            result.names.push_back(std::move(name));
    }
    if (result.names.empty()) {
        result.status = fcrdns_status::fail;
        result.why = "no-ptr";
        co_return result;
    }
    std::string failed_forward;
    for (const std::string& name : result.names) {
        // Only the client's own family can give its address back.
        lookup<asio::ip::address> forward;
        if (address.is_v4()) forward = co_await r.lookup_a(name, b);
        else forward = co_await r.lookup_aaaa(name, b);
        if (const std::string_view failed = unknown_reason(forward); !failed.empty()) {
            if (failed_forward.empty()) failed_forward = "forward:" + std::string(failed);
            continue;
        }
        for (const auto& a : forward.values) {
            if (unmapped(a) != address) continue;
            result.status = fcrdns_status::ok;
            result.name = name;
            result.why.clear();
            co_return result;
        }
    }
    if (!failed_forward.empty()) {
        result.why = failed_forward;
        co_return result;
    }
    result.status = fcrdns_status::fail;
    result.why = "not-confirmed";
    co_return result;
}

/// @}
} // namespace grey::dns
