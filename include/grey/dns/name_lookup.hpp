// grey/dns/name_lookup.hpp — the client's host names (dns/client_names.hpp): the name its
// address resolves to, verified when that name resolves back to the address, as Postfix's
// smtpd verifies it for reject_unknown_client_hostname. The relay tells the upstream (XCLIENT,
// XFORWARD); greylisting matches whitelists against it.
//
// The look-ups are the system's (getnameinfo, then getaddrinfo), so /etc/hosts and the system's
// DNS answer as they do for Postfix. They run on threads of their own, several at once: Asio's
// asynchronous resolver runs an io_context's look-ups one after another on a single thread, and
// one query the DNS drops would hold every new client behind it for the resolver's timeout.
// Answers are kept per thread for a while: a sender opens many sessions from one address, and
// the upstream's name check should not cost each of them two look-ups.
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>
#include <utility>

#include "../detail/asio.hpp"
#include "client_names.hpp"

namespace grey::dns {
/// @addtogroup group_server
/// @{

/// Where the blocking look-ups run: sixteen at once at most, each on a thread that waits on the
/// DNS and costs nothing else. Never destroyed, so that a thread still waiting on a query does
/// not hold up the program's exit.
inline asio::thread_pool& name_lookup_threads() {
    static asio::thread_pool* const threads = new asio::thread_pool(16);
    return *threads;
}

/// What look_up_names() finds for `address`, by blocking look-ups on the calling thread; and
/// whether the answer may be kept long (false after a temporary failure).
inline std::pair<client_names, bool> resolve_client_names(const asio::ip::address& address) {
    client_names found{std::string(unavailable), std::string(unavailable)};
    bool lasting = true;
    grey::detail::tcp::resolver resolver(name_lookup_threads());  // in full: dns::detail would hide it
    asio::error_code ec;
    const auto reverse = resolver.resolve(grey::detail::tcp::endpoint(address, 0), ec);
    if (ec == asio::error::host_not_found_try_again) {
        found = {std::string(temporarily_unavailable), std::string(temporarily_unavailable)};
        lasting = false;
    } else if (!ec && !reverse.empty() && reverse.begin()->host_name() != address.to_string()) {
        // getnameinfo gives the address back as text when there is no name for it.
        found.reverse_name = reverse.begin()->host_name();
        asio::error_code fec;
        const auto forward = resolver.resolve(found.reverse_name, "", fec);
        if (fec == asio::error::host_not_found_try_again) {
            found.name = std::string(temporarily_unavailable);
            lasting = false;
        }
        for (const auto& e : forward)
            if (!fec && e.endpoint().address() == address) found.name = found.reverse_name;
    }
    return {std::move(found), lasting};
}

/// resolve_client_names() as a coroutine for co_spawn onto name_lookup_threads().
inline asio::awaitable<std::pair<client_names, bool>> resolve_on_lookup_thread(asio::ip::address address) {
    co_return resolve_client_names(address);
}

/// The names of `address`: the reverse look-up, and that name verified by a forward look-up
/// that gives the address back; answers kept per thread (ten minutes, thirty seconds after a
/// temporary failure). Never fails: what is not known is a keyword.
inline asio::awaitable<client_names> look_up_names(asio::ip::address address) {
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

    // The look-ups on their threads; the caller resumes on its own executor.
    auto [found, lasting] = co_await asio::co_spawn(name_lookup_threads(), resolve_on_lookup_thread(address),
                                                    asio::use_awaitable);
    if (cache.size() >= max_cached) cache.clear();
    cache[key] = {found, now + (lasting ? std::chrono::minutes(10) : std::chrono::seconds(30))};
    co_return found;
}

/// @}
} // namespace grey::dns
