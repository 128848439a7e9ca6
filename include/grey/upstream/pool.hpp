// grey/upstream/pool.hpp — idle upstream connections kept for reuse, as MTAs' connection
// caches do: a message relayed over a kept connection saves the upstream a connect, a greeting,
// an EHLO and a QUIT. A connection is pooled only between transactions, in a clean state; it is
// used by one session at a time; it is closed (QUIT) when idle past its timeout, and dropped
// when the server has closed it meanwhile. Pooled connections greet the upstream with Grey's
// own name, since they carry many clients' mail.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "client.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// One thread's idle upstream connections; a short mutex guards the list (a pool is used by
/// its thread's sessions, and closed by its thread's timer). A pooled connection goes to
/// whichever upstream it was opened to (failover.hpp): each one knows its own.
class pool {
  public:
    /// The clock of the idle times.
    using clock = std::chrono::steady_clock;

    /// Keeps at most `max_idle` connections, each for at most `idle_timeout`.
    pool(std::size_t max_idle, clock::duration idle_timeout) : max_idle_(max_idle), idle_timeout_(idle_timeout) {}

    /// An idle connection that still looks alive and may serve a client of identity `key`
    /// (upstream/identity.hpp): one that took that identity by XCLIENT, else one that took
    /// none; or null. The most recently used first.
    std::unique_ptr<client> acquire(std::string_view key = {}) {
        std::vector<std::unique_ptr<client>> dead;
        std::unique_ptr<client> found;
        {
            std::lock_guard lock(mutex_);
            const auto now = clock::now();
            for (int pass = 0; pass < 2 && !found; ++pass) {
                const std::string_view wanted = pass == 0 ? key : std::string_view{};
                if (pass == 1 && key.empty()) break;
                for (auto it = idle_.rbegin(); it != idle_.rend() && !found;) {
                    if (it->first->identity() != wanted) {
                        ++it;
                        continue;
                    }
                    auto c = std::move(it->first);
                    const bool fresh = now - it->second <= idle_timeout_;
                    it = decltype(it)(idle_.erase(std::next(it).base()));
                    if (fresh && c->looks_alive()) found = std::move(c);
                    else dead.push_back(std::move(c));
                }
            }
        }
        for (auto& d : dead) d->close();
        return found;
    }

    /// Keeps `c` for the next session, unless the pool is full.
    void release(std::unique_ptr<client> c) {
        c->detach();
        std::vector<std::unique_ptr<client>> expired;
        {
            std::lock_guard lock(mutex_);
            expired = take_expired(clock::now());
            if (idle_.size() < max_idle_) idle_.emplace_back(std::move(c), clock::now());
            else expired.push_back(std::move(c));
        }
        for (auto& e : expired) e->quit_and_close();
    }

    /// Closes the connections idle past the timeout, so that the upstream does not keep a
    /// session (a process, for Postfix's smtpd) for each after a burst. Returns how many.
    std::size_t close_expired() {
        std::vector<std::unique_ptr<client>> expired;
        {
            std::lock_guard lock(mutex_);
            expired = take_expired(clock::now());
        }
        for (auto& e : expired) e->quit_and_close();
        return expired.size();
    }

    /// How long a connection may stay idle in the pool.
    clock::duration idle_timeout() const noexcept { return idle_timeout_; }

    /// How many connections are idle in the pool now.
    std::size_t idle() const {
        std::lock_guard lock(mutex_);
        return idle_.size();
    }

  private:
    std::vector<std::unique_ptr<client>> take_expired(clock::time_point now) {
        std::vector<std::unique_ptr<client>> expired;
        std::erase_if(idle_, [&](auto& e) {
            if (now - e.second <= idle_timeout_) return false;
            expired.push_back(std::move(e.first));
            return true;
        });
        return expired;
    }

    const std::size_t max_idle_;
    const clock::duration idle_timeout_;
    mutable std::mutex mutex_;
    std::vector<std::pair<std::unique_ptr<client>, clock::time_point>> idle_;
};

/// @}
} // namespace grey::upstream
