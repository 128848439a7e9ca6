// grey/greylist/store.hpp — the one asynchronous interface behind which greylist state lives:
// in memory, in SQLite, or in Redis. A store never blocks the caller's event loop.
//
// check() is the whole greylisting step for one triplet, atomic per triplet: read its record,
// decide with the engine, write what the engine returned. Two sessions (or two proxies sharing
// a Redis) racing on one triplet therefore see one record, never two.
//
// screen() is what a decision asks: the auto-whitelist, then check(), then the count of a pass.
// The base class makes it three calls; a store whose every call costs a thread hop and a
// transaction (SQLite) does it in one.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "../detail/asio.hpp"
#include "../result.hpp"
#include "engine.hpp"
#include "store_health.hpp"
#include "triplet.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// A stored triplet, for administration (listing, searching).
struct entry {
    triplet key;   ///< as stored: hashed in privacy mode
    record value;  ///< as check() or whitelist() last stored it
};

/// store::screen()'s answer: the client group skipped the greylist, or the triplet's decision.
struct screening {
    /// The triplet's decision; none when the client group is auto-whitelisted, whose triplets
    /// are then neither checked nor recorded.
    std::optional<decision> checked;
    /// Why the pass was not counted for the client group; empty when it was, or when nothing
    /// was to be counted. Not a failure of the decision (a lost count only delays
    /// auto-whitelisting), but the store's health must still hear of it.
    std::error_code uncounted;

    /// True when the client group skipped the greylist.
    bool auto_whitelisted() const noexcept { return !checked; }
};

/// Where greylist state lives: memory_store, sqlite_store or redis_store. Its calls are
/// coroutines that report a failure as an error code, not an exception.
class store {
  public:
    virtual ~store() = default;

    /// Decides `t` at `now` and stores the outcome, atomically for that triplet.
    virtual asio::awaitable<result<decision>> check(const triplet& t, const timing& timing,
                                                    clock::time_point now) = 0;

    /// Auto-whitelisting: the client group's record, and counting one passed delivery.
    virtual asio::awaitable<result<std::optional<client_record>>> client(const std::string& group) = 0;
    /// Counts one passed delivery of the client group (count_client_pass).
    virtual asio::awaitable<result<void>> count_pass(const std::string& group, const timing& timing,
                                                     clock::time_point now) = 0;

    /// The greylisting step for one recipient: when `auto_whitelist_after` > 0 and the client
    /// `group` has passed that often (client_whitelisted), that alone; else check(`t`), and on a
    /// pass, count_pass(`group`) when `auto_whitelist_after` > 0. Fails when the look-up or the
    /// check fails; a failed count only sets `uncounted`. This default makes the three calls;
    /// a store overrides it to make them one.
    virtual asio::awaitable<result<screening>> screen(const std::string& group, const triplet& t,
                                                      const timing& timing, clock::time_point now,
                                                      unsigned auto_whitelist_after) {
        if (auto_whitelist_after > 0) {
            auto c = co_await client(group);
            if (!c) co_return c.error();
            if (client_whitelisted(auto_whitelist_after, *c, timing, now)) co_return screening{};
        }
        auto d = co_await check(t, timing, now);
        if (!d) co_return d.error();
        screening out{std::move(*d), {}};
        if (out.checked->pass() && auto_whitelist_after > 0)
            out.uncounted = (co_await count_pass(group, timing, now)).error();
        co_return out;
    }

    // ---- Administration (examples/greylist_admin) ----

    /// Entries whose client, sender or recipient contains `needle` ("" lists all).
    virtual asio::awaitable<result<std::vector<entry>>> find(std::string needle) = 0;
    /// Stores `t` as passed at `now`: it passes from now on, and lives as any passed triplet,
    /// refreshed by each pass.
    virtual asio::awaitable<result<void>> whitelist(const triplet& t, const timing& timing,
                                                    clock::time_point now) = 0;
    /// Removes `t`; true when it was there.
    virtual asio::awaitable<result<bool>> remove(const triplet& t) = 0;
    /// Removes every record expired at `now`; returns how many.
    virtual asio::awaitable<result<std::size_t>> purge(const timing& timing, clock::time_point now) = 0;

    /// Whether the store is answering, as its callers saw it: one state for all the sessions
    /// that share the store, whatever thread they run on.
    store_health& health() noexcept { return health_; }

    /// Why a part of the store cannot answer while the rest can (a Redis Cluster master
    /// down): the calls for the other parts succeed, so their outcomes alone would say the
    /// store came and went with every call. Empty when the whole store answers (the default).
    virtual std::error_code part_down() const { return {}; }

  private:
    store_health health_;
};

/// @}
} // namespace grey::greylist
