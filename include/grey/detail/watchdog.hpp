// grey/detail/watchdog.hpp — one timer per connection that enforces every timeout of the
// session, on both legs (after Asio's cpp20/coroutines/timeout.cpp).
//
// A session is one coroutine, so at any moment it waits for at most one thing: the client's
// next bytes, or the upstream's answer. Before each wait it sets the deadline for that wait
// (expires_after). When a deadline passes, the watchdog cancels the I/O pending on the sockets
// it guards; the session sees operation_aborted, asks expired(), and answers as the RFC asks.
// Moving a deadline later costs a clock read and a store, not a timer operation, so the steady
// state adds no work per line. A server shutdown caps every deadline at the drain deadline.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>

#include "asio.hpp"

namespace grey::detail {

class watchdog {
  public:
    using clock = std::chrono::steady_clock;

    explicit watchdog(const asio::any_io_executor& ex) : timer_(ex) {}
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;

    /// Sockets whose pending operations are cancelled when a deadline passes.
    void guard(tcp::socket* client, tcp::socket* upstream = nullptr) { guarded_ = {client, upstream}; }
    void guard_upstream(tcp::socket* upstream) { guarded_[1] = upstream; }

    /// The current wait must end within `d` (or by the drain deadline, if that is sooner).
    void expires_after(clock::duration d) {
        expired_ = false;
        deadline_ = std::min(clock::now() + d, drain_deadline_);
        if (deadline_ < armed_) timer_.cancel();  // wake the watchdog to re-arm sooner
    }

    bool expired() const noexcept { return expired_; }
    bool shutting_down() const noexcept { return drain_deadline_ != clock::time_point::max(); }

    /// The session is waiting for a new command with no transaction open: a shutdown may
    /// interrupt that wait at once rather than at the drain deadline.
    void set_idle(bool idle) noexcept { idle_ = idle; }

    /// Called on the session's executor by ServerCore's graceful stop.
    void shutdown(clock::time_point drain_deadline) {
        drain_deadline_ = drain_deadline;
        if (idle_) {
            deadline_ = clock::now();
        } else {
            deadline_ = std::min(deadline_, drain_deadline_);
        }
        timer_.cancel();
    }

    /// Starts watching. `owner` keeps the watchdog alive while its timer has a wait pending:
    /// a plain handler rather than a coroutine, so an idle connection pays one small timer
    /// operation for its timeouts, not a coroutine frame.
    void start(std::shared_ptr<void> owner) { arm(std::move(owner)); }

    /// Stops watching. Called once the session is over.
    void stop() {
        stopped_ = true;
        timer_.cancel();
    }

  private:
    void arm(std::shared_ptr<void> owner) {
        armed_ = deadline_;
        timer_.expires_at(armed_);
        timer_.async_wait([this, owner = std::move(owner)](asio::error_code) mutable {
            if (stopped_) return;
            if (clock::now() >= deadline_) {
                expired_ = true;
                deadline_ = clock::time_point::max();  // until the session sets a new one
                for (tcp::socket* s : guarded_) {
                    asio::error_code ignored;
                    if (s && s->is_open()) s->cancel(ignored);
                }
            }
            arm(std::move(owner));
        });
    }

    asio::steady_timer timer_;
    std::array<tcp::socket*, 2> guarded_{};
    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point armed_ = clock::time_point::max();
    clock::time_point drain_deadline_ = clock::time_point::max();
    bool expired_ = false;
    bool idle_ = false;
    bool stopped_ = false;
};

} // namespace grey::detail
