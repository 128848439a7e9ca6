// grey/deadline.hpp — grey::deadline: one timer per connection that enforces every timeout of a
// session on any socket it guards, TCP or unix-domain, on both legs (after Asio's
// cpp20/coroutines/timeout.cpp, and Beast's basic_stream::expires_after).
//
// A session is one coroutine, so at any moment it waits for at most one thing: the client's
// next bytes, or the upstream's answer. Before each wait it sets the deadline for that wait
// (expires_after). When a deadline passes, the timer cancels the I/O pending on the sockets it
// guards; the session sees operation_aborted, asks expired(), and answers as its protocol asks.
// Moving a deadline later costs a clock read and a store, not a timer operation, so the steady
// state adds no work per line. A server's graceful stop caps every deadline at the drain
// deadline, and ends an idle wait at once.
//
// ServerCore gives each Protocol one in its session_context; the Postfix policy sessions keep
// one each too. A Protocol of its own calls expires_after() before each wait and set_idle()
// while it waits for a new request, and reads shutting_down() between requests.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <memory>

#include "detail/asio.hpp"

namespace grey {
/// @addtogroup group_server
/// @{

/// The deadlines of one connection, kept by one timer; see the header's comment.
class deadline {
  public:
    using clock = std::chrono::steady_clock;  ///< the deadlines' clock

    /// A deadline with nothing to guard and no wait bounded, on the session's executor.
    explicit deadline(const asio::any_io_executor& ex) : timer_(ex) {}
    deadline(const deadline&) = delete;
    deadline& operator=(const deadline&) = delete;

    /// The client's socket, whose pending operations are cancelled when a deadline passes. Any
    /// socket with cancel(error_code&) and is_open(): TCP, unix-domain, the lowest layer of TLS.
    template <class Socket>
    void guard(Socket& client) noexcept {
        guarded_[0] = guarded::of(&client);
    }
    /// The upstream's socket, guarded beside the client's; null when there is none.
    template <class Socket>
    void guard_upstream(Socket* upstream) noexcept {
        guarded_[1] = guarded::of(upstream);
    }
    /// No upstream socket any more.
    void guard_upstream(std::nullptr_t) noexcept { guarded_[1] = {}; }

    /// The current wait must end within `d` (or by the drain deadline, if that is sooner).
    void expires_after(clock::duration d) {
        expired_ = false;
        deadline_ = std::min(clock::now() + d, drain_deadline_);
        if (deadline_ < armed_) timer_.cancel();  // wake the timer to re-arm sooner
    }

    /// Whether the last wait was cut short because its deadline passed.
    bool expired() const noexcept { return expired_; }
    /// Whether a graceful stop has begun: a session should take no new command or request.
    bool shutting_down() const noexcept { return drain_deadline_ != clock::time_point::max(); }

    /// The session is waiting for a new command with no transaction open: a stop may
    /// interrupt that wait at once rather than at the drain deadline.
    void set_idle(bool idle) noexcept { idle_ = idle; }

    /// A graceful stop, called on the session's executor: an idle wait ends now, any other by
    /// `drain_deadline`.
    void shutdown(clock::time_point drain_deadline) {
        drain_deadline_ = drain_deadline;
        deadline_ = idle_ ? clock::now() : std::min(deadline_, drain_deadline_);
        timer_.cancel();
    }

    /// Starts watching. `owner` keeps the deadline alive while its timer has a wait pending:
    /// a plain handler rather than a coroutine, so an idle connection pays one small timer
    /// operation for its timeouts, not a coroutine frame.
    void start(std::shared_ptr<void> owner) { arm(std::move(owner)); }

    /// Stops watching. Called once the session is over.
    void stop() {
        stopped_ = true;
        timer_.cancel();
    }

  private:
    /// A socket seen only as what a passed deadline does to it: no virtual call, no allocation.
    struct guarded {
        void* socket = nullptr;
        void (*cancel)(void*) = nullptr;

        template <class Socket>
        static guarded of(Socket* s) noexcept {
            if (!s) return {};
            return {s, [](void* p) {
                        auto& socket = *static_cast<Socket*>(p);
                        asio::error_code ignored;
                        if (socket.is_open()) socket.cancel(ignored);
                    }};
        }
    };

    void arm(std::shared_ptr<void> owner) {
        armed_ = deadline_;
        timer_.expires_at(armed_);
        timer_.async_wait([this, owner = std::move(owner)](asio::error_code) mutable {
            if (stopped_) return;
            if (clock::now() >= deadline_) {
                expired_ = true;
                deadline_ = clock::time_point::max();  // until the session sets a new one
                for (const guarded& g : guarded_)
                    if (g.socket) g.cancel(g.socket);
            }
            arm(std::move(owner));
        });
    }

    asio::steady_timer timer_;
    std::array<guarded, 2> guarded_{};  // the client's socket, the upstream's
    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point armed_ = clock::time_point::max();
    clock::time_point drain_deadline_ = clock::time_point::max();
    bool expired_ = false;
    bool idle_ = false;
    bool stopped_ = false;
};

/// @}
} // namespace grey
