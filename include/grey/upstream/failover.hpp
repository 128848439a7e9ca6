// grey/upstream/failover.hpp — several upstream MTAs in order of preference, and which of them
// are down for now: the state every thread of a server shares (ServerCore owns it, sessions
// reach it through session_context).
//
// Each new upstream connection (the relay's, the probe's at start) tries the upstreams in
// order, skipping those marked down. One that cannot be reached, does not greet in time,
// greets with anything but 220 (a 421 from an MTA shedding load, any 4xx or 5xx) or fails
// before it can take a transaction (EHLO, the TLS the policy asks for) is marked down for
// `retry`, and the next is tried. When every upstream is marked down they are all tried in
// order anyway: a refusal without a try would hold mail back for nothing once one is back.
// A pooled connection is used whichever upstream it goes to.
//
// The choice is made only when a connection is opened, before any MAIL: a transaction is never
// split between upstreams (relay.hpp). The state is one atomic per upstream (the time until
// which it is skipped), so choosing takes no lock; marking down and up again, rare, writes one
// diagnostics line each and counts in the metrics.
#pragma once

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../config.hpp"
#include "../diagnostics.hpp"
#include "../metrics/server_metrics.hpp"
#include "../result.hpp"
#include "../smtp/reply.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// Why a new connection is given up, for the line that marks its upstream down: `stage`
/// ("greeting", "EHLO") and the error, or the reply that was not the one expected.
inline std::string failure_text(std::string_view stage, const result<smtp::reply>& r) {
    if (!r) return fmt::format("{}: {}", stage, r.error().message());
    const std::string_view text = r->lines.empty() ? std::string_view{} : std::string_view(r->lines.back());
    if (r->enhanced.empty()) return fmt::format("{}: {} {}", stage, r->code, text);
    return fmt::format("{}: {} {} {}", stage, r->code, r->enhanced, text);
}

/// The upstreams in order of preference and which are marked down; safe to use from any
/// thread.
class failover {
  public:
    /// The clock of the retry times.
    using clock = std::chrono::steady_clock;
    /// Where the time comes from: the steady clock, or a test's.
    using time_source = std::function<clock::time_point()>;

    /// `upstreams` in order of preference (at least one); an upstream that fails is skipped
    /// for `retry`. Diagnostics go to `reporter` (the process's when null), counts to
    /// `metrics` (none when null); both must outlive this object.
    explicit failover(std::vector<endpoint> upstreams, clock::duration retry = std::chrono::seconds(30),
                      metrics::server_metrics* metrics = nullptr, time_source now = {},
                      diagnostics::reporter* reporter = nullptr)
        : entries_(upstreams.size()), retry_(retry), metrics_(metrics),
          now_(now ? std::move(now) : time_source([] { return clock::now(); })), reporter_(reporter) {
        assert(!upstreams.empty());
        for (std::size_t i = 0; i < upstreams.size(); ++i) {
            entry& e = entries_[i];
            e.where = std::move(upstreams[i]);
            e.name = format_endpoint(e.where.host, e.where.port);
            if (metrics_) e.marked_down = &metrics_->upstreams_marked_down.at(e.name);
        }
    }

    failover(const failover&) = delete;
    failover& operator=(const failover&) = delete;

    /// How many upstreams there are.
    std::size_t size() const noexcept { return entries_.size(); }

    /// The `i`th upstream, in order of preference.
    const endpoint& at(std::size_t i) const noexcept { return entries_[i].where; }

    /// The `i`th upstream as diagnostics name it ("host:port").
    const std::string& name(std::size_t i) const noexcept { return entries_[i].name; }

    /// The order in which a new connection tries the upstreams now: those not marked down, by
    /// preference; when every one is marked down, all of them by preference.
    std::vector<std::size_t> order() const {
        const auto now = ticks(now_());
        std::vector<std::size_t> chosen;
        chosen.reserve(entries_.size());
        for (std::size_t i = 0; i < entries_.size(); ++i)
            if (entries_[i].down_until.load(std::memory_order_relaxed) <= now) chosen.push_back(i);
        if (chosen.empty())
            for (std::size_t i = 0; i < entries_.size(); ++i) chosen.push_back(i);
        return chosen;
    }

    /// Whether the `i`th upstream is skipped now (it failed less than `retry` ago).
    bool skipped(std::size_t i) const noexcept {
        return entries_[i].down_until.load(std::memory_order_relaxed) > ticks(now_());
    }

    /// Whether the `i`th upstream is marked down: it failed, and has not answered since (it may
    /// be past its retry time, and be tried again).
    bool marked_down(std::size_t i) const noexcept {
        return entries_[i].down_until.load(std::memory_order_relaxed) != up;
    }

    /// The `i`th upstream failed (`why` says how): it is skipped for `retry` from now. When it
    /// was up, one diagnostics line says so and the metrics count it; a failure while it is
    /// still marked down (at its retry) only moves its retry time.
    void failed(std::size_t i, std::string_view why) {
        entry& e = entries_[i];
        const auto until = ticks(now_() + retry_);
        if (e.down_until.exchange(until, std::memory_order_relaxed) != up) return;
        if (metrics_) {
            e.marked_down->add();
            metrics_->upstreams_down.add(1);
        }
        report(diagnostics::level::warning,
               fmt::format("upstream {} marked down for {}s: {}{}", e.name,
                           std::chrono::duration_cast<std::chrono::seconds>(retry_).count(), why,
                           all_down() ? "; every upstream is down, all are tried in order" : ""));
    }

    /// A connection to the `i`th upstream was opened (greeting and EHLO answered): it is up.
    /// When it was marked down, one diagnostics line says it is used again.
    void succeeded(std::size_t i) {
        entry& e = entries_[i];
        if (e.down_until.load(std::memory_order_relaxed) == up) return;  // the common case: no write
        if (e.down_until.exchange(up, std::memory_order_relaxed) == up) return;
        if (metrics_) metrics_->upstreams_down.add(-1);
        report(diagnostics::level::notice, fmt::format("upstream {} used again", e.name));
    }

  private:
    using rep = clock::rep;
    static constexpr rep up = std::numeric_limits<rep>::min();  // down_until of an upstream that is up

    struct entry {
        endpoint where;
        std::string name;
        std::atomic<rep> down_until{up};  // skipped while now is before it
        metrics::counter* marked_down = nullptr;
    };

    static rep ticks(clock::time_point t) noexcept { return t.time_since_epoch().count(); }

    bool all_down() const noexcept {
        for (const entry& e : entries_)
            if (e.down_until.load(std::memory_order_relaxed) == up) return false;
        return true;
    }

    void report(diagnostics::level l, std::string_view text) {
        // A topic of its own: other upstream lines under load do not crowd these out.
        if (reporter_) reporter_->report(l, "failover", text);
        else diagnostics::report(l, "failover", text);
    }

    std::vector<entry> entries_;
    const clock::duration retry_;
    metrics::server_metrics* metrics_;
    time_source now_;
    diagnostics::reporter* reporter_;
};

/// @}
} // namespace grey::upstream
