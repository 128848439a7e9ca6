// grey/greylist/engine.hpp — greylisting as a pure function: a triplet's stored record and the
// time in, a decision and the record to store out. No clock of its own, no I/O: the caller
// passes `now`, so every transition is tested without sleeping, and a store applies the new
// record atomically.
//
// A triplet seen for the first time is deferred. A retry passes once `delay` has gone by since
// that first sight, if it comes within `retry_window` of it; one that comes later starts over.
// A triplet that passed is remembered for `max_age` after its latest pass. The seed's policy
// also restarts the delay when a retry comes "too soon" after the first sight (`too_soon`).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

using clock = std::chrono::system_clock;  ///< records outlive the process: wall-clock time
using namespace std::chrono_literals;

/// A time as the stores keep it: whole milliseconds since the epoch (SQLite's columns, the
/// Redis records). The finer part of `t` is dropped, towards zero, as duration_cast does.
inline std::int64_t to_epoch_ms(clock::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

/// The time `ms` milliseconds after the epoch: what to_epoch_ms() wrote, read back.
inline clock::time_point from_epoch_ms(std::int64_t ms) noexcept {
    return clock::time_point(std::chrono::duration_cast<clock::duration>(std::chrono::milliseconds(ms)));
}

/// The greylist's times: how long a new triplet is held back, how long its retry may take, how
/// long a triplet that passed is remembered.
struct timing {
    std::chrono::seconds delay{300};         ///< held back this long from the first sight
    std::chrono::seconds retry_window{48h};  ///< a retry later than this after the first sight starts over
    std::chrono::seconds max_age{35 * 24h};  ///< a passed triplet is kept this long after its latest pass
    std::chrono::seconds too_soon{0};        ///< 0: off

    /// Postgrey's defaults, today's common practice.
    static timing postgrey() { return {}; }
    /// The Kamaelia seed's numbers: retry after 1 h but within 25,000 s (~7 h); a retry within
    /// 180 s restarts the hour; a passed triplet is kept 3,000,000 s (~35 days).
    static timing kamaelia() { return {3600s, 25000s, 3000000s, 180s}; }
};

/// What a store keeps of one triplet: all that decide() needs to know of its past.
struct record {
    clock::time_point first_seen{};  ///< start of the current delay
    clock::time_point last_seen{};   ///< the latest attempt
    clock::time_point passed_at{};   ///< the latest pass (meaningful when passed)
    std::uint64_t attempts = 0;      ///< attempts counted since first_seen
    std::uint64_t passes = 0;        ///< deliveries that passed
    bool passed = false;             ///< it passed once: it now lives max_age after passed_at

    /// Equal field by field (tests compare records whole).
    friend bool operator==(const record&, const record&) = default;
};

/// Why decide() deferred or passed a triplet.
enum class outcome {
    first_seen,   ///< deferred: never seen, or its record had expired
    too_soon,     ///< deferred: the delay has not passed yet
    restarted,    ///< deferred: came too soon (seed) or too late; the delay starts over
    passed,       ///< passed now, for the first time, after the delay
    known,        ///< passed: a triplet that passed before, refreshed
};

/// decide()'s answer: why, and the record the store is to write in place of the old one.
struct decision {
    outcome why;                     ///< pass() says whether it lets the mail through
    record updated;                  ///< what to store
    std::chrono::seconds delayed{};  ///< for `passed`: how long the mail was held back

    /// True when the recipient may go on: `passed` or `known`.
    bool pass() const noexcept { return why == outcome::passed || why == outcome::known; }
};

/// The greylisting step for one triplet: its stored record (none when it was never seen, or
/// was forgotten) and `now` in; the decision and the record to store out. Pure: no clock, no I/O.
inline decision decide(const timing& t, const std::optional<record>& stored, clock::time_point now) {
    const auto since = [now](clock::time_point then) {
        return std::chrono::duration_cast<std::chrono::seconds>(now - then);
    };
    const auto fresh = [now](outcome why) {
        return decision{why, record{now, now, {}, 1, 0, false}};
    };

    if (!stored) return fresh(outcome::first_seen);
    record r = *stored;
    if (r.passed) {
        if (since(r.passed_at) > t.max_age) return fresh(outcome::first_seen);
        r.last_seen = r.passed_at = now;
        ++r.passes;
        return {outcome::known, r};
    }
    const auto waited = since(r.first_seen);
    if (waited > t.retry_window) return fresh(outcome::restarted);  // too late: start over
    if (waited < t.too_soon) {
        r.first_seen = r.last_seen = now;
        ++r.attempts;
        return {outcome::restarted, r};
    }
    if (waited < t.delay) {
        r.last_seen = now;
        ++r.attempts;
        return {outcome::too_soon, r};
    }
    r.last_seen = r.passed_at = now;
    ++r.attempts;
    ++r.passes;
    r.passed = true;
    return {outcome::passed, r, waited};
}

/// When a store may forget a record.
inline clock::time_point expires_at(const timing& t, const record& r) {
    return r.passed ? r.passed_at + t.max_age : r.first_seen + t.retry_window;
}

/// Auto-whitelisting of clients (Postgrey's --auto-whitelist-clients): a client group with
/// `after` deliveries that passed greylisting skips it from then on. 0 turns it off.
struct client_record {
    std::uint64_t passes = 0;        ///< deliveries of the group that passed since its count last lapsed
    clock::time_point last_pass{};   ///< the latest of them: the count lapses max_age after it

    /// Equal field by field (tests compare records whole).
    friend bool operator==(const client_record&, const client_record&) = default;
};

/// Whether the client group with record `c` skips the greylist: `after` passes or more (0:
/// never), the latest within max_age.
inline bool client_whitelisted(unsigned after, const std::optional<client_record>& c,
                               const timing& t, clock::time_point now) {
    return after > 0 && c && c->passes >= after && now - c->last_pass <= t.max_age;
}

/// The group's record after one more delivery passed: a count that has lapsed starts again at 1.
inline client_record count_client_pass(const std::optional<client_record>& c, const timing& t,
                                       clock::time_point now) {
    if (!c || now - c->last_pass > t.max_age) return {1, now};
    return {c->passes + 1, now};
}

/// @}
} // namespace grey::greylist
