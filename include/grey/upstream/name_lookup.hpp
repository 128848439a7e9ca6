// grey/upstream/name_lookup.hpp — the client's host name, for XCLIENT's and XFORWARD's NAME:
// the name its address resolves to, verified when that name resolves back to the address,
// as Postfix's smtpd verifies it for reject_unknown_client_hostname.
//
// The look-ups run on Asio's resolver (getnameinfo, then getaddrinfo, on the resolver's own
// thread), so /etc/hosts and the system's DNS answer as they do for Postfix. Answers are kept
// per thread for a while: a sender opens many sessions from one address, and the upstream's
// name check should not cost each of them two look-ups.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

#include "../detail/asio.hpp"
#include "identity.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// The client's host names, as XCLIENT's NAME and REVERSE_NAME (and XFORWARD's NAME) carry them.
struct client_names {
    std::string name;          ///< verified, or "[UNAVAILABLE]" / "[TEMPUNAVAIL]"
    std::string reverse_name;  ///< as the reverse look-up gave it, or the same keywords
};

/// The names of `address`: the reverse look-up, and that name verified by a forward look-up
/// that gives the address back; answers kept per thread (ten minutes, thirty seconds after a
/// temporary failure). Never fails: what is not known is a keyword.
inline asio::awaitable<client_names> look_up_names(asio::any_io_executor ex, asio::ip::address address) {
    using clock = std::chrono::steady_clock;
    struct cached {
        client_names names;
        clock::time_point until;
    };
    constexpr std::size_t max_cached = 4096;
    thread_local std::unordered_map<std::string, cached> cache;

    const std::string key = address.to_string();
    const auto now = clock::now();
    if (auto it = cache.find(key); it != cache.end() && it->second.until > now) co_return it->second.names;

    client_names found{std::string(unavailable), std::string(unavailable)};
    bool lasting = true;  // a temporary failure is kept briefly
    detail::tcp::resolver resolver(ex);
    auto [ec, reverse] = co_await resolver.async_resolve(detail::tcp::endpoint(address, 0), detail::use_nothrow);
    if (ec == asio::error::host_not_found_try_again) {
        found = {std::string(temporarily_unavailable), std::string(temporarily_unavailable)};
        lasting = false;
    } else if (!ec && !reverse.empty() && reverse.begin()->host_name() != key) {
        // getnameinfo gives the address back as text when there is no name for it.
        found.reverse_name = reverse.begin()->host_name();
        auto [fec, forward] = co_await resolver.async_resolve(found.reverse_name, "", detail::use_nothrow);
        if (fec == asio::error::host_not_found_try_again) {
            found.name = std::string(temporarily_unavailable);
            lasting = false;
        }
        for (const auto& e : forward)
            if (!fec && e.endpoint().address() == address) found.name = found.reverse_name;
    }
    if (cache.size() >= max_cached) cache.clear();
    cache[key] = {found, now + (lasting ? std::chrono::minutes(10) : std::chrono::seconds(30))};
    co_return found;
}

/// @}
} // namespace grey::upstream
