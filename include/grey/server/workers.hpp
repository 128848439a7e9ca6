// grey/server/workers.hpp — the executors a server's connections run on. Stand-alone, one
// io_context per thread, as event-driven servers such as HAProxy and nginx do: a connection is
// handed to one of them when accepted and stays there, so its state needs no lock and its I/O
// never wakes another thread (one io_context on N threads made every completion a cross-thread
// wake-up: futex and epoll_ctl calls outnumbered a session's own reads and writes three to
// one). As a guest, the program's own executors, each running one handler at a time (an
// io_context run by one thread, or a strand).
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "../detail/asio.hpp"

namespace grey::server {
/// @addtogroup group_server
/// @{

/// A server's executors, in the order connections are handed to them. The first one also
/// accepts, takes the signals and runs the server's own tasks.
class workers {
  public:
    /// One executor's share of the connections.
    struct worker {
        std::unique_ptr<asio::io_context> owned;  ///< stand-alone only; outlives the rest
        asio::any_io_executor executor;           ///< runs one handler at a time
        /// Keeps a stand-alone run() serving while the worker has no connection; released
        /// when the server has stopped.
        std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{};
    };

    /// Stand-alone: `threads` io_contexts of the server's own (0: one per core).
    static workers own(unsigned threads) {
        const unsigned n = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
        workers ws;
        for (unsigned i = 0; i < n; ++i) {
            // Each io_context is run by one thread only: Asio may then skip its locking.
            auto ioc = std::make_unique<asio::io_context>(1);
            asio::any_io_executor ex = ioc->get_executor();
            auto work = asio::make_work_guard(*ioc);
            ws.all_.push_back(worker{std::move(ioc), std::move(ex), std::move(work)});
        }
        return ws;
    }

    /// A guest on the program's executors. Throws std::invalid_argument when there are none.
    static workers guest(std::vector<asio::any_io_executor> executors) {
        if (executors.empty()) throw std::invalid_argument("grey: no executor to run on");
        workers ws;
        for (auto& ex : executors) ws.all_.push_back(worker{nullptr, std::move(ex)});
        return ws;
    }

    workers(workers&&) noexcept = default;             ///< moved whole, io_contexts and all
    workers& operator=(workers&&) noexcept = default;  ///< moved whole, io_contexts and all

    /// How many there are; never 0.
    std::size_t size() const noexcept { return all_.size(); }
    /// The i-th.
    worker& operator[](std::size_t i) noexcept { return all_[i]; }
    /// The first one's executor: it accepts, takes the signals, runs the server's own tasks.
    const asio::any_io_executor& main() const noexcept { return all_.front().executor; }
    /// Whether the server runs its own io_contexts (else the program's executors).
    bool owned() const noexcept { return all_.front().owned != nullptr; }

    /// The index of the worker the next connection goes to, in turn. On main() only.
    std::size_t next() noexcept { return next_++ % all_.size(); }

    auto begin() noexcept { return all_.begin(); }  ///< the first worker
    auto end() noexcept { return all_.end(); }      ///< past the last

    /// Stand-alone: runs the first io_context on the calling thread and each other on a thread
    /// of its own; returns when all have run out of work (see release()).
    void run() {
        std::vector<std::thread> threads;
        for (std::size_t i = 1; i < all_.size(); ++i)
            threads.emplace_back([ioc = all_[i].owned.get()] { ioc->run(); });
        all_.front().owned->run();
        for (auto& t : threads) t.join();
    }

    /// The server has stopped: its own io_contexts may run out of work. On main() only.
    void release() noexcept {
        for (auto& w : all_) w.work.reset();
    }

    /// Past every deadline: the server's own io_contexts stop, whatever is left on them.
    void stop_owned() noexcept {
        for (auto& w : all_)
            if (w.owned) w.owned->stop();
    }

  private:
    workers() = default;
    std::vector<worker> all_;
    std::size_t next_ = 0;
};

/// @}
} // namespace grey::server
