// grey/greylist/store.hpp — the one asynchronous interface behind which greylist state lives:
// in memory, in SQLite, or in Redis. A store never blocks the caller's event loop.
//
// check() is the whole greylisting step for one triplet, atomic per triplet: read its record,
// decide with the engine, write what the engine returned. Two sessions (or two proxies sharing
// a Redis) racing on one triplet therefore see one record, never two.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
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

  private:
    store_health health_;
};

/// @}
} // namespace grey::greylist
