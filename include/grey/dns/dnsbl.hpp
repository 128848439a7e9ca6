// grey/dns/dnsbl.hpp — a client's score on DNS lists, as postscreen computes it: each list's
// A records for the client's address, filtered and weighted by the sites' settings
// (dnsbl_site.hpp), summed. Lists that vouch for senders (DNSWL) carry negative weights. All
// lists are asked at once, each domain once however many entries name it, so a decision waits
// for the slowest list, not for their sum.
//
// A reply in 127.255.255.0/24 is a list refusing the resolver (Spamhaus answers 127.255.255.254
// to a query through a public resolver, .255 for too many queries), and a reply outside
// 127.0.0.0/8 is no listing (a lapsed list's domain may answer everything): both are that
// list's failure, as is a look-up that failed. A failure is evidence "unknown" with its reason,
// never a listing, and never a pass (DESIGN §9). Link grey::dns.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../detail/asio.hpp"
#include "../network.hpp"
#include "budget.hpp"
#include "dnsbl_site.hpp"
#include "evidence.hpp"
#include "resolver.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

namespace detail {

// The answers of one score's look-ups, as each task ends; the last one wakes the caller.
struct dnsbl_gather {
    dnsbl_gather(const asio::any_io_executor& ex, std::size_t n) : done(ex), answers(n), left(n) {
        done.expires_at(std::chrono::steady_clock::time_point::max());
    }
    asio::steady_timer done;
    std::vector<lookup<asio::ip::address>> answers;
    std::size_t left;
};

// One list's look-up as a task of its own. The query was made by the caller, so a task that
// outlives it never touches the resolver (the awaitable holds it weakly). It is spawned
// detached: the resolver reports every failure as a value, so nothing is thrown to be lost.
inline asio::awaitable<void> dnsbl_ask(std::shared_ptr<dnsbl_gather> g, std::size_t i,
                                       asio::awaitable<lookup<asio::ip::address>> query) {
    g->answers[i] = co_await std::move(query);
    if (--g->left == 0) g->done.cancel();
}

// The score itself, owning its sites: an awaitable starts only when awaited.
inline asio::awaitable<dnsbl_score> score(resolver& r, asio::ip::address address, std::vector<dnsbl_site> sites,
                                          budget b) {
    std::vector<std::string> domains;  // each once, in the sites' order
    for (const dnsbl_site& s : sites)
        if (std::find(domains.begin(), domains.end(), s.domain) == domains.end()) domains.push_back(s.domain);

    dnsbl_score result;
    if (domains.empty()) co_return result;
    const auto ex = co_await asio::this_coro::executor;
    const auto g = std::make_shared<dnsbl_gather>(ex, domains.size());
    for (std::size_t i = 0; i < domains.size(); ++i)
        asio::co_spawn(ex, dnsbl_ask(g, i, r.lookup_a(dnsbl_query_name(address, domains[i]), b)), asio::detached);
    while (g->left > 0) {
        auto [ec] = co_await g->done.async_wait(grey::detail::use_nothrow);
        (void)ec;  // the last task cancels the wait; `left` says whether all are in
    }

    static const network refusals = *network::parse("127.255.255.0/24");
    static const network loopback = *network::parse("127.0.0.0/8");
    std::vector<std::vector<asio::ip::address_v4>> replies(domains.size());
    for (std::size_t i = 0; i < domains.size(); ++i) {
        const lookup<asio::ip::address>& l = g->answers[i];
        std::string why(unknown_reason(l));
        for (const auto& a : l.values) {
            if (!why.empty()) break;
            if (refusals.contains(a)) why = "refused:" + a.to_string();
            else if (a.is_v4() && loopback.contains(a)) replies[i].push_back(a.to_v4());
        }
        if (why.empty() && l.found() && replies[i].empty() && !l.values.empty())
            why = "bad-reply:" + l.values.front().to_string();
        if (why.empty()) continue;
        replies[i].clear();
        bool allowlist = true;
        for (const dnsbl_site& s : sites)
            if (s.domain == domains[i]) allowlist = allowlist && s.weight < 0;
        result.failures.push_back({domains[i], std::move(why), allowlist});
    }

    for (const dnsbl_site& s : sites) {
        const auto i = static_cast<std::size_t>(std::find(domains.begin(), domains.end(), s.domain) - domains.begin());
        for (const auto& reply : replies[i]) {
            if (!s.matches(reply)) continue;
            result.total += s.weight;
            result.allowlisted = result.allowlisted || s.weight < 0;
            result.hits.push_back({s.domain, reply, s.weight});
            break;
        }
    }
    co_return result;
}

} // namespace detail

/// The score of `address` on the lists of `sites` (dnsbl_query_name(): an IPv4-mapped IPv6
/// address as IPv4). Each domain is asked once, all at once, each look-up on a task of its own
/// on the caller's executor (the resolver's), within `b`. An entry counts when a reply of its
/// list passes its filter, once however many replies do. No sites: a score of 0.
inline asio::awaitable<dnsbl_score> score(resolver& r, const asio::ip::address& address,
                                          const std::vector<dnsbl_site>& sites, budget b = {}) {
    return detail::score(r, address, sites, b);
}

/// @}
} // namespace grey::dns
