// grey/greylist/judge.hpp — the greylisting decision for one recipient, apart from any protocol:
// the proxy (GreyListingPolicy) and the Postfix policy server ask the same question and get
// the same answer. In order:
//
//   1. relay control (when asked for): a recipient outside allowed_domains is denied, unless
//      the client is an allowed sender (address or network), which may relay anywhere and is
//      not greylisted (the seed's rule);
//   2. whitelisted triples and non-standard triples pass, and so do the clients and recipients
//      of the whitelist files (Postgrey's whitelist_clients and whitelist_recipients);
//   3. an auto-whitelisted client group passes;
//   4. the greylist: deferred until a retry passes.
//
// A store that cannot answer gives store_unavailable (never a pass, never "greylisted": nothing
// was greylisted), and its outage is reported once through store_health, not per recipient.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "../config.hpp"
#include "../detail/asio.hpp"
#include "../diagnostics.hpp"
#include "../metrics/server_metrics.hpp"
#include "engine.hpp"
#include "lists.hpp"
#include "store.hpp"
#include "triplet.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// The lists, shared by all sessions and replaced whole on reload: a session keeps the
/// snapshot it started with.
class shared_lists {
  public:
    /// Holds `l` until the first replace().
    explicit shared_lists(lists l = {}) : current_(std::make_shared<const lists>(std::move(l))) {}
    /// The lists of this moment, as a snapshot that a later replace() leaves unchanged.
    std::shared_ptr<const lists> load() const { return current_.load(); }
    /// Puts `l` in place for every load() from now on; safe from any thread.
    void replace(lists l) { current_.store(std::make_shared<const lists>(std::move(l))); }

  private:
    std::atomic<std::shared_ptr<const lists>> current_;
};

/// Greylisting's configuration: the server's, and what the greylist needs. The proxy
/// (GreyListingPolicy) and the policy server take the same one.
struct greylist_config : server_config {
    greylist::timing timing = timing::postgrey();  ///< the greylist's delay and lifetimes
    greylist::grouping grouping{};                 ///< how client addresses are grouped
    greylist::normalisation normalisation{};       ///< how senders are normalised
    unsigned auto_whitelist_after = 5;  ///< passed deliveries before a client skips the greylist; 0: off
    bool add_header = false;            ///< prepend X-Greylist to mail that was held back
    /// Applied to each triplet (and client group) before it reaches the store; privacy mode
    /// sets it to greylist::hashed (privacy.hpp).
    std::function<triplet(triplet)> transform;
    std::shared_ptr<greylist::store> store;  ///< where the greylist lives; required
    std::shared_ptr<shared_lists> lists = std::make_shared<shared_lists>();  ///< replaced on reload
    /// Receives the session's log line; none when empty.
    std::function<void(const std::string&)> log;
    /// Receives a line when the store stops answering and when it answers again (store_health):
    /// once per outage for all sessions. Standard error by default; none when empty.
    std::function<void(const std::string&)> report = [](const std::string& line) {
        diagnostics::report(line.find("available again") != std::string::npos ? diagnostics::level::notice
                                                                               : diagnostics::level::error,
                            "store", line);
    };
    /// The clock greylisting reads: replaced in tests to move time without sleeping.
    std::function<clock::time_point()> now = [] { return clock::now(); };
};

/// One recipient of one client, as the decision needs it.
struct question {
    std::string_view client_address;    ///< the client's IP address, as text
    std::string_view helo_name;         ///< the name it gave in HELO/EHLO
    std::string_view sender;            ///< "" for the null reverse-path
    std::string_view recipient;         ///< the mailbox
    std::string_view recipient_domain;  ///< "" for `<Postmaster>`
    bool relay_control = true;          ///< apply allowed_domains (the proxy does; Postfix does its own)
    /// The client's verified host name; "" when it has none or nobody looked it up (only the
    /// whitelist files' name entries read it).
    std::string_view client_name{};
};

/// Why judge() accepted, refused or deferred a recipient.
enum class finding {
    relays_anywhere,    ///< an allowed sender: passes, not greylisted
    relay_denied,       ///< a recipient outside allowed_domains
    whitelisted,        ///< a whitelisted triple or non-standard triple, or in the whitelist files
    auto_whitelisted,   ///< a client group that has passed often enough
    greylisted,         ///< deferred: first seen, too soon, or started over
    passed,             ///< passed now, after being held back
    known,              ///< passed: a triplet that passed before
    store_unavailable,  ///< the store did not answer: deferred
};

/// judge()'s answer: why, and the times that go with it.
struct judgement {
    finding why;                     ///< accepted() says whether the recipient may go on
    std::chrono::seconds delayed{};  ///< for `passed`: how long the mail was held back
    std::chrono::seconds wait{};     ///< for `greylisted`: how long until a retry can pass

    /// True when the recipient may go on: relays anywhere, whitelisted, passed or known.
    bool accepted() const noexcept {
        return why == finding::relays_anywhere || why == finding::whitelisted || why == finding::auto_whitelisted ||
               why == finding::passed || why == finding::known;
    }
    /// What the seed's log line says of the recipient.
    std::string_view describe() const noexcept {
        if (accepted()) return "accepted";
        if (why == finding::store_unavailable) return "tempfail (store unavailable)";
        return why == finding::greylisted ? "greylisted" : "refused";
    }
};

/// Tells the store's shared health how a call went, which reports the start or end of an
/// outage; true when the call answered.
template <class T>
bool note_store_health(const greylist_config& s, const result<T>& r) {
    if (auto line = s.store->health().note(r.error()); line && s.report) s.report(*line);
    return r.has_value();
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
inline void time_store(const greylist_config& s, std::chrono::steady_clock::time_point started) {
    if (s.metrics) s.metrics->store_seconds.observe(std::chrono::steady_clock::now() - started);
}

inline asio::awaitable<judgement> decide(const greylist_config& s, const lists& l, const question& q) {
    if (l.may_relay_anywhere(q.client_address)) co_return judgement{finding::relays_anywhere};
    // <Postmaster> has no domain, and every server must take it (RFC 5321 §4.5.1).
    if (q.relay_control && !q.recipient_domain.empty() && !l.relays_for(q.recipient_domain))
        co_return judgement{finding::relay_denied};
    if (l.whitelisted(q.client_address, q.helo_name, q.sender, q.recipient) ||
        l.whitelisted_by_files(q.client_address, q.client_name, q.recipient))
        co_return judgement{finding::whitelisted};

    std::string group = client_group(q.client_address, s.grouping);
    triplet key = make_triplet(q.client_address, q.sender, q.recipient, s.grouping, s.normalisation);
    if (s.transform) {
        key = s.transform(std::move(key));
        group = s.transform(triplet{group, {}, {}}).client;
    }
    const clock::time_point now = s.now();
    // One store call for the auto-whitelist, the triplet and the count of a pass: with SQLite,
    // one hop to its thread and one transaction rather than three of each.
    const auto started = std::chrono::steady_clock::now();
    auto screened = co_await s.store->screen(group, key, s.timing, now, s.auto_whitelist_after);
    time_store(s, started);
    if (!note_store_health(s, screened)) co_return judgement{finding::store_unavailable};
    // A lost count only delays auto-whitelisting: the decision stands, the outage is reported.
    if (screened->uncounted) note_store_health(s, result<void>(screened->uncounted));
    if (screened->auto_whitelisted()) co_return judgement{finding::auto_whitelisted};
    const decision& d = *screened->checked;
    if (s.metrics && d.why == outcome::first_seen) s.metrics->greylist_first_seen.add();
    if (!d.pass()) {
        const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - d.updated.first_seen);
        co_return judgement{finding::greylisted, {}, std::max(s.timing.delay - waited, std::chrono::seconds{0})};
    }
    if (d.why == outcome::passed) co_return judgement{finding::passed, d.delayed};
    co_return judgement{finding::known};
}

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

/// The decision for `q`, from the lists `l` and the store and settings in `s`; counted in
/// s.metrics when there are metrics.
inline asio::awaitable<judgement> judge(const greylist_config& s, const lists& l, const question& q) {
    const judgement j = co_await judging::decide(s, l, q);
    if (s.metrics) s.metrics->recipient(judging::kind_of(j));
    co_return j;
}

/// @}
} // namespace grey::greylist
