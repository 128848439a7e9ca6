// grey/greylist/checks/store_screen.hpp — the store's say, the last check of the default
// pipeline: an auto-whitelisted client group passes; otherwise the triplet is greylisted until
// a retry passes (engine.hpp). Both in one store call, screen(): with SQLite, one hop to its
// thread and one transaction rather than three of each.
//
// A store that cannot answer gives store_unavailable (never a pass, never "greylisted": nothing
// was greylisted), and its outage is reported once through store_health, not per recipient.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "../../detail/asio.hpp"
#include "../../metrics/server_metrics.hpp"
#include "../../result.hpp"
#include "../engine.hpp"
#include "../greylist_config.hpp"
#include "../judgement.hpp"
#include "../pipeline.hpp"
#include "../store.hpp"
#include "../triplet.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Tells the store's shared health how a call went, which reports the start or end of an
/// outage; true when the call answered. A call that answered while a part of the store is
/// down (store::part_down()) leaves the outage open.
template <class T>
bool note_store_health(const greylist_settings& s, const result<T>& r) {
    const std::error_code ec = r.has_value() ? s.store->part_down() : r.error();
    if (auto line = s.store->health().note(ec); line && s.report) s.report(*line);
    return r.has_value();
}

/// The auto-whitelist and the greylist, from the configuration's store; always decides.
struct store_screen {
    static constexpr std::string_view name = "store_screen";  ///< in the evidence

    /// Postgrey's reasons, in words: auto_whitelisted ("auto-whitelisted client"); greylisted
    /// ("first seen", "early retry (120 s missing)", "restarted"); passed ("passed after 301 s");
    /// known ("known"); or store_unavailable ("unavailable").
    asio::awaitable<check_answer> operator()(const inquiry& in) const {
        const greylist_settings& s = in.settings;
        metrics::server_metrics* const m = in.metrics;
        const question& q = in.question;
        std::string group = client_group(q.client_address, s.grouping);
        triplet key = make_triplet(q.client_address, q.sender, q.recipient, s.grouping, s.normalisation);
        timing times = s.timing;
        unsigned whitelist_after = s.auto_whitelist_after;
        if (const assessment* a = in.assessed) {
            // Judged first: a retry from any address of the same identity is the same client,
            // and the auto-whitelist learns the identity, sooner than an address group (an
            // identity that retried properly is a mail server); a suspicious client waits
            // longer, and is not let in on its identity's history (a listed snowshoe host
            // of a sender whose other hosts passed).
            if (!a->identity.empty()) {
                group = key.client = a->identity;
                if (s.reputation.identity_whitelist_after) whitelist_after = s.reputation.identity_whitelist_after;
            }
            times.delay = std::max(times.delay, a->delay);
            if (a->tier == tier::suspicious) whitelist_after = 0;
        }
        if (s.transform) {
            key = s.transform(std::move(key));
            group = s.transform(triplet{group, {}, {}}).client;
        }
        const clock::time_point now = s.now();
        const auto started = std::chrono::steady_clock::now();
        auto screened = co_await s.store->screen(group, key, times, now, whitelist_after);
        if (m) m->store_seconds.observe(std::chrono::steady_clock::now() - started);
        if (!note_store_health(s, screened)) co_return check_answer{"unavailable", finding::store_unavailable};
        // A lost count only delays auto-whitelisting: the decision stands, the outage is reported.
        if (screened->uncounted) note_store_health(s, result<void>(screened->uncounted));
        if (screened->auto_whitelisted()) co_return check_answer{"auto-whitelisted client", finding::auto_whitelisted};
        const decision& d = *screened->checked;
        if (m && d.why == outcome::first_seen) m->greylist_first_seen.add();
        if (!d.pass()) {
            const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - d.updated.first_seen);
            const auto missing = std::max(times.delay - waited, std::chrono::seconds{0});
            std::string why(said(d.why));
            if (d.why == outcome::too_soon) why = "early retry (" + std::to_string(missing.count()) + " s missing)";
            co_return check_answer{std::move(why), finding::greylisted, {}, missing};
        }
        if (d.why == outcome::passed && m) m->greylist_delay_seconds.observe(d.delayed);
        if (d.why == outcome::passed)
            co_return check_answer{"passed after " + std::to_string(d.delayed.count()) + " s", finding::passed, d.delayed};
        co_return check_answer{"known", finding::known};
    }

  private:
    static std::string_view said(outcome o) noexcept {
        switch (o) {
        case outcome::first_seen: return "first seen";
        case outcome::too_soon: return "too soon";
        case outcome::restarted: return "restarted";
        case outcome::passed: return "passed";
        case outcome::known: return "known";
        }
        return "?";
    }
};

/// @}
} // namespace grey::greylist
