// grey/server/lifecycle.hpp — the tasks a server runs, and its graceful stop: the same for
// every door (ServerCore, the Postfix policy server).
//
// Every coroutine of a server (accept loops, sessions, PROXY header waits, the upstream's
// probe) is counted from before it starts until it has ended, under one lock with the stop
// flag: a task is either counted before the stop begins, and so waited for, or never started.
// A stop runs the door's own closing (listeners, admission, the upstream service) under that
// lock, then waits: when the last task ends the stand-alone io_contexts may run out of work
// and the stop's completions run. Sessions that ignore their 421 still end, since the drain
// deadline closes their sockets; past a grace period after it a stand-alone server stops its
// io_contexts, and a guest's program, whose executors they are, is told.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/asio.hpp"
#include "../diagnostics.hpp"
#include "workers.hpp"

namespace grey::server {
/// @addtogroup group_server
/// @{

/// A server's running tasks and its stop. Safe from any thread.
class lifecycle {
  public:
    using clock = std::chrono::steady_clock;  ///< for the drain deadline

    /// How long past the drain deadline a stand-alone server waits before it stops its
    /// io_contexts whatever is left on them.
    static constexpr std::chrono::seconds grace{10};

    /// For a server on `w` (which must outlive it); an exception that escapes one of its tasks
    /// is reported under `task_topic` ("session").
    lifecycle(workers& w, std::string task_topic)
        : workers_(w), main_(w.main()), drain_timer_(main_), task_topic_(std::move(task_topic)) {}

    lifecycle(const lifecycle&) = delete;
    lifecycle& operator=(const lifecycle&) = delete;

    /// Counts `n` tasks about to be launched, unless a stop has begun or `admit` (run under
    /// the lock, so that what it records is seen by a stop's closing) says no. True when
    /// counted: each must then be launch()ed.
    template <class Admit>
    bool enter(std::size_t n, Admit admit) {
        std::lock_guard lock(mutex_);
        if (stopping_ || !admit()) return false;
        tasks_ += n;
        return true;
    }
    /// Counts one task about to be launched, unless a stop has begun.
    bool enter() {
        return enter(1, [] { return true; });
    }

    /// Runs a task counted by enter(), not under the lock: co_spawn may run it, even to its
    /// end, before it returns. `ended` runs first when it ends; an exception that escapes the
    /// task is reported, never thrown further.
    template <class Ended = void (*)()>
    void launch(const asio::any_io_executor& ex, asio::awaitable<void> task, Ended ended = [] {}) {
        asio::co_spawn(ex, std::move(task), [this, ended = std::move(ended)](std::exception_ptr e) mutable {
            if (e) diagnostics::report_exception(task_topic_, e);
            ended();
            std::lock_guard lock(mutex_);
            if (--tasks_ == 0 && stopping_) finish_locked();
        });
    }

    /// Runs `f` under the lock the stop takes: for the door's own records that its closing
    /// reads (a list of connections still waiting for their first bytes).
    template <class F>
    decltype(auto) locked(F f) {
        std::lock_guard lock(mutex_);
        return f();
    }

    /// Whether a stop has begun.
    bool stopping() {
        std::lock_guard lock(mutex_);
        return stopping_;
    }

    /// Begins the stop, unless one has: runs `close` under the lock, then waits for the
    /// tasks, each bounded by `drain_deadline`.
    template <class Close>
    void stop(clock::time_point drain_deadline, Close close) {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
        close();
        if (tasks_ == 0) return finish_locked();
        drain_timer_.expires_at(drain_deadline + grace);
        drain_timer_.async_wait([this](asio::error_code ec) {
            if (ec) return;
            if (!workers_.owned()) {
                diagnostics::report(diagnostics::level::warning, "server", "sessions still running past the drain deadline");
                return;
            }
            workers_.stop_owned();
        });
    }

    /// Runs `complete` once the stop has ended (at once when it has), on any thread.
    void when_stopped(std::function<void()> complete) {
        {
            std::lock_guard lock(mutex_);
            if (!stopped_) {
                on_stopped_.push_back(std::move(complete));
                return;
            }
        }
        complete();
    }

  private:
    /// The last task has ended after a stop: the stand-alone io_contexts may run out of work.
    void finish_locked() {
        if (std::exchange(stopped_, true)) return;
        asio::post(main_, [this, waiting = std::move(on_stopped_)] {
            drain_timer_.cancel();
            workers_.release();
            for (const auto& complete : waiting) complete();
        });
    }

    workers& workers_;
    asio::any_io_executor main_;  // the drain timer's and the completions'
    asio::steady_timer drain_timer_;
    std::string task_topic_;
    std::mutex mutex_;  // guards what follows
    std::size_t tasks_ = 0;
    bool stopping_ = false;
    bool stopped_ = false;
    std::vector<std::function<void()>> on_stopped_;
};

/// @}
} // namespace grey::server
