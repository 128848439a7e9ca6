// grey/upstream/service.hpp — what a relaying server keeps for all its sessions' upstream legs:
// the upstreams in order and which are down (failover), what the upstream offers (learned by a
// probe at start and by every EHLO since), the TLS context towards it, and on each worker the
// idle connections its sessions may reuse, closed once idle too long.
//
// ServerCore builds one only for a Protocol that relays (`Protocol::relays_upstream`): a
// Protocol that does not never pays for a pool, a probe or a client TLS context. Each session
// gets its worker's share (share), which the relay takes.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../deadline.hpp"
#include "../detail/asio.hpp"
#include "../tls/context.hpp"
#include "client.hpp"
#include "failover.hpp"
#include "known_extensions.hpp"
#include "pool.hpp"
#include "settings.hpp"
#include "share.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// The upstream side of a relaying server; see the header's comment.
class service {
  public:
    /// For a server with `config`, whose sessions run on `executors` (one pool each). Throws
    /// when the upstream TLS settings cannot be loaded (a CA file that is not there).
    service(const server_config& config, const std::vector<asio::any_io_executor>& executors)
        : settings_(upstream::of(config)),
          tls_(settings_.tls.policy == tls::upstream_policy::none ? nullptr : tls::make_client_context(settings_.tls)),
          upstreams_(settings_.endpoints, settings_.retry, settings_.metrics) {
        for (const auto& ex : executors) workers_.push_back(std::make_unique<worker>(ex, settings_));
        for (auto& w : workers_) w->view = share{&settings_, w->idle.get(), tls_.get(), &learned_, &upstreams_};
    }

    service(const service&) = delete;
    service& operator=(const service&) = delete;

    /// The share of the sessions on worker `i` (in the order of the executors given).
    const share& for_worker(std::size_t i) const noexcept { return workers_[i]->view; }

    /// The service's own tasks, each with the executor it runs on: the probe, on `main`, and a
    /// sweep of idle connections per worker. The server runs and counts them as its own.
    std::vector<std::pair<asio::any_io_executor, asio::awaitable<void>>> tasks(const asio::any_io_executor& main) {
        std::vector<std::pair<asio::any_io_executor, asio::awaitable<void>>> out;
        out.emplace_back(main, probe(main));
        for (auto& w : workers_)
            if (w->idle) out.emplace_back(w->executor, close_idle(*w));
        return out;
    }

    /// A stop: the probe is cut short and the sweeps end. Call on `main` (the probe's).
    void stop() {
        stopping_ = true;
        if (auto d = probe_deadline_.lock()) d->shutdown(deadline::clock::now());
        for (auto& w : workers_)
            asio::post(w->executor, [&w = *w] {
                w.sweeping = false;
                w.sweep.cancel();
            });
    }

  private:
    struct worker {
        worker(asio::any_io_executor ex, const upstream::settings& s) : executor(std::move(ex)), sweep(executor) {
            if (s.pool_size > 0) idle = std::make_unique<pool>(s.pool_size, s.idle_timeout);
        }
        asio::any_io_executor executor;
        asio::steady_timer sweep;
        bool sweeping = true;  // on this worker's executor only
        std::unique_ptr<pool> idle;  // its sockets use the executor
        share view{};
    };

    /// Pooled upstream connections idle past their timeout are closed even when no session
    /// comes to notice: after a burst the upstream is not left holding them.
    static asio::awaitable<void> close_idle(worker& w) {
        using namespace std::chrono_literals;
        const auto period = std::max<deadline::clock::duration>(w.idle->idle_timeout() / 2, 1s);
        for (;;) {
            w.sweep.expires_after(period);
            auto [ec] = co_await w.sweep.async_wait(detail::use_nothrow);
            if (ec || !w.sweeping) co_return;  // the stop
            w.idle->close_expired();
        }
    }

    /// Learns the upstream's extensions before the first client asks for them (EHLO, then
    /// QUIT); every upstream EHLO later refreshes them. The upstreams are probed in order as a
    /// session would try them: one that fails is marked down (sessions skip it from the
    /// start), the first that answers ends the probe. An upstream down at start is not an
    /// error: sessions learn when it is back.
    asio::awaitable<void> probe(asio::any_io_executor main) {
        if (stopping_) co_return;
        // The deadline's pending handler keeps it alive until it has seen stop().
        auto limit = std::make_shared<deadline>(main);
        probe_deadline_ = limit;  // a stop cuts the probe short
        limit->start(limit);
        const std::vector<std::size_t> order = upstreams_.order();
        for (const std::size_t i : order) {
            if (stopping_) break;
            client c(main, *limit, settings_.timeouts);
            const endpoint& where = upstreams_.at(i);
            auto greeting = co_await c.connect(where.host, where.port);
            std::string failure;
            if (greeting && greeting->code == 220) {
                auto hello = co_await c.hello(settings_.helo_name);
                if (hello && hello->completion()) learned_.learn(c.caps());
                else failure = failure_text("EHLO", hello);
                auto bye = co_await c.command("QUIT\r\n", std::chrono::seconds(10));
                (void)bye;
            } else {
                failure = failure_text("greeting", greeting);
            }
            c.close();
            if (failure.empty()) {
                upstreams_.succeeded(i);
                break;
            }
            if (stopping_) break;  // cut short by the stop, not the upstream's failure
            upstreams_.failed(i, failure);
        }
        limit->stop();
    }

    upstream::settings settings_;
    std::shared_ptr<asio::ssl::context> tls_;
    known_extensions learned_;
    failover upstreams_;
    std::weak_ptr<deadline> probe_deadline_;  // on main only
    bool stopping_ = false;                   // on main only
    std::vector<std::unique_ptr<worker>> workers_;  // last: destroyed first, their sockets use the executors
};

/// @}
} // namespace grey::upstream
