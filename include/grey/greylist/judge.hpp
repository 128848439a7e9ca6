// grey/greylist/judge.hpp — the greylisting decision for one recipient, apart from any protocol:
// the proxy (GreyListingPolicy) and the Postfix policy server ask the same question, through
// judge(), and get the same answer. judge() runs the configuration's pipeline of checks
// (pipeline.hpp), by default, in order:
//
//   1. relay control (checks/relay_control.hpp): a recipient outside allowed_domains is denied
//      (when asked for), unless the client is an allowed sender (address or network), which may
//      relay anywhere and is not greylisted (the seed's rule);
//   2. whitelisted triples and non-standard triples pass (checks/whitelists.hpp), and so do the
//      clients and recipients of the whitelist files (checks/file_whitelists.hpp: Postgrey's
//      whitelist_clients and whitelist_recipients);
//   3. judging first (checks/reputation.hpp): what DNS says of the client and sender makes it
//      trusted (not greylisted), refused (only with a refuse threshold), or greylisted, keyed
//      by its identity and, when suspicious, held longer;
//   4. the store (checks/store_screen.hpp): an auto-whitelisted client group passes; else the
//      greylist defers until a retry passes; a store that cannot answer gives store_unavailable.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "../detail/asio.hpp"
#include "../metrics/server_metrics.hpp"
#include "checks/file_whitelists.hpp"
#include "checks/relay_control.hpp"
#include "checks/reputation.hpp"
#include "checks/store_screen.hpp"
#include "checks/whitelists.hpp"
#include "engine.hpp"
#include "greylist_config.hpp"
#include "judgement.hpp"
#include "lists.hpp"
#include "pipeline.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// The standard checks, in order: relay control, the whitelists, the whitelist files, judging
/// first, the store. A start for a pipeline of one's own (greylist_config::pipeline).
inline pipeline default_pipeline() {
    return pipeline{{relay_control{}, whitelists{}, file_whitelists{}, reputation{}, store_screen{}}};
}

/// The seed's log line: timestamp | remotename | peer | sender | recipients | status
inline std::string log_line(std::chrono::system_clock::time_point when, std::string_view remotename,
                            std::string_view peer, std::string_view sender, std::string_view recipients,
                            std::string_view status) {
    return fmt::format("{:%Y%m%d%H%M%S} | {} | {} | {} | {} | {}",
                       fmt::gmtime(std::chrono::system_clock::to_time_t(when)), remotename, peer, sender,
                       recipients, status);
}

/// The header a message held back `delayed` gets when add_header is on (no CRLF): the proxy
/// prepends it, the policy server asks Postfix to.
inline std::string x_greylist_header(std::chrono::seconds delayed, std::string_view host, clock::time_point now) {
    return fmt::format("X-Greylist: delayed {} seconds by Grey at {}; {:%a, %d %b %Y %H:%M:%S} +0000",
                       delayed.count(), host, fmt::gmtime(clock::to_time_t(now)));
}

namespace judging {
inline metrics::verdict_kind kind_of(const judgement& j) noexcept {
    if (j.accepted()) return metrics::verdict_kind::accepted;
    switch (j.why) {
    case finding::relay_denied: return metrics::verdict_kind::relay_denied;
    case finding::store_unavailable: return metrics::verdict_kind::store_unavailable;
    case finding::greylisted: return metrics::verdict_kind::greylisted;
    default: return metrics::verdict_kind::refused;
    }
}
} // namespace judging

/// The decision for `q`, from the lists `l` and the store and settings in `s`: the checks of
/// s.pipeline, or of default_pipeline() when it has none; counted in `m` when not null.
inline asio::awaitable<judgement> judge(const greylist_settings& s, metrics::server_metrics* m, const lists& l,
                                        const question& q) {
    static const pipeline standard = default_pipeline();  // built once: the checks hold no state
    judgement j = co_await (s.pipeline ? *s.pipeline : standard).run(s, m, l, q);
    if (m) m->recipient(judging::kind_of(j));
    co_return j;
}

/// The proxy's decision: judge() with its configuration's greylisting and metrics.
inline asio::awaitable<judgement> judge(const greylist_config& c, const lists& l, const question& q) {
    return judge(c, c.metrics, l, q);
}

/// @}
} // namespace grey::greylist
