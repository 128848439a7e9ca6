// grey/server_core.hpp — ServerCore<Protocol>: listens, admits, and runs sessions.
//
// Each of N threads runs its own io_context, as event-driven servers such as HAProxy and nginx
// do: a connection is handed to one of them when accepted and stays there, with its upstream
// connection, its coroutine and its watchdog, so a session's state needs no lock and its I/O
// never wakes another thread (one io_context on N threads made every completion a cross-thread
// wake-up: futex and epoll_ctl calls outnumbered the session's own reads and writes three to
// one). A mutex guards only admission (connection counts), never the data path.
// SIGINT/SIGTERM start a graceful stop: listening ends, idle sessions get 421 at once, sessions
// inside a transaction may finish until the drain deadline and then get 421; run() returns
// when the last session has ended.
#pragma once

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <exception>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "config.hpp"
#include "detail/asio.hpp"
#include "diagnostics.hpp"
#include "detail/watchdog.hpp"
#include "metrics/server_metrics.hpp"
#include "proxy_protocol.hpp"
#include "session_context.hpp"
#include "smtp/reply.hpp"
#include "tls/context.hpp"
#include "upstream/client.hpp"
#include "upstream/failover.hpp"
#include "upstream/known_extensions.hpp"
#include "upstream/pool.hpp"

namespace grey {

namespace detail {
/// A Protocol may widen the configuration by declaring `using config_type = …;`, a type derived
/// from server_config; its hooks reach the fields through static_cast on config().
template <class Protocol>
struct config_of {
    using type = server_config;
};
template <class Protocol>
    requires requires { typename Protocol::config_type; }
struct config_of<Protocol> {
    using type = typename Protocol::config_type;
};
} // namespace detail

template <class Protocol>
class ServerCore {
  public:
    using config_type = typename detail::config_of<Protocol>::type;
    static_assert(std::is_base_of_v<server_config, config_type>);

    /// Throws when the TLS certificate, its key or the upstream's CA file cannot be loaded: a
    /// server must not start without the TLS it was told to use.
    explicit ServerCore(config_type config)
        : config_(std::move(config)),
          tls_(config_.tls.enabled() ? std::make_unique<tls::reloadable_context>(config_.tls) : nullptr),
          upstream_tls_(config_.upstream_tls.policy == tls::upstream_policy::none
                            ? nullptr
                            : tls::make_client_context(config_.upstream_tls)),
          workers_(make_workers(config_)),
          ioc_(workers_.front()->ioc),
          signals_(ioc_, SIGINT, SIGTERM),
          drain_timer_(ioc_) {
        if (tls_) signals_.add(SIGHUP);
    }

    ServerCore(const ServerCore&) = delete;
    ServerCore& operator=(const ServerCore&) = delete;

    /// Opens every listen endpoint. Throws std::system_error naming the endpoint that failed.
    void listen() {
        if (!acceptors_.empty()) return;
        for (const endpoint& e : config_.listen_endpoints()) {
            detail::tcp::resolver resolver(ioc_);
            asio::error_code ec;
            auto results = resolver.resolve(e.host, std::to_string(e.port),
                                            detail::tcp::resolver::passive, ec);
            if (ec) throw std::system_error(ec, fmt::format("cannot resolve {}", e.host));
            for (const auto& r : results) {
                detail::tcp::acceptor a(ioc_);
                a.open(r.endpoint().protocol());
                a.set_option(detail::tcp::acceptor::reuse_address(true));
                if (r.endpoint().address().is_v6()) a.set_option(asio::ip::v6_only(true));
                a.bind(r.endpoint(), ec);
                if (ec)
                    throw std::system_error(ec, fmt::format("cannot listen on {}", format(r.endpoint())));
                a.listen(asio::socket_base::max_listen_connections);
                acceptors_.push_back(std::move(a));
                proxy_from_.push_back(e.proxy_from);
            }
        }
    }

    /// The addresses actually bound (a port of 0 in the configuration is chosen by the kernel).
    std::vector<detail::tcp::endpoint> local_endpoints() const {
        std::vector<detail::tcp::endpoint> eps;
        for (const auto& a : acceptors_) eps.push_back(a.local_endpoint());
        return eps;
    }

    static std::string format(const detail::tcp::endpoint& ep) {
        return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                                    : fmt::format("{}:{}", ep.address().to_string(), ep.port());
    }

    /// Serves until stop() or SIGINT/SIGTERM, then drains. Runs the first io_context (which
    /// also accepts) on the calling thread and each other one on a thread of its own.
    void run() {
        listen();
        wait_for_signal();
        if constexpr (requires { Protocol::relays_upstream; })
            asio::co_spawn(ioc_, probe_upstream(), asio::detached);
        for (std::size_t i = 0; i < acceptors_.size(); ++i)
            asio::co_spawn(ioc_, accept_loop(acceptors_[i], proxy_from_[i]), asio::detached);
        for (auto& w : workers_)
            if (w->pool) asio::co_spawn(w->ioc, close_idle_upstreams(*w), asio::detached);

        std::vector<std::thread> threads;
        for (std::size_t i = 1; i < workers_.size(); ++i)
            threads.emplace_back([w = workers_[i].get()] { w->ioc.run(); });
        ioc_.run();
        for (auto& t : threads) t.join();
    }

    /// Loads the TLS certificate and key again (done on SIGHUP): sessions already encrypted
    /// keep theirs. Returns the error when the files cannot be loaded; the old ones then stay.
    std::optional<std::string> reload_tls() { return tls_ ? tls_->reload() : std::nullopt; }

    /// Starts a graceful stop; safe from any thread.
    void stop() {
        asio::post(ioc_, [this] { begin_stop(); });
    }

    const config_type& config() const noexcept { return config_; }

  private:
    /// One thread's share of the connections: its io_context, and the idle upstream
    /// connections its sessions may reuse (sockets of that io_context).
    struct worker {
        explicit worker(const server_config& config) {
            if (config.upstream_pool_size > 0)
                pool = std::make_unique<upstream::pool>(config.upstream_pool_size, config.upstream_idle_timeout);
        }
        // Run by one thread; other threads only post to it (admission, stores' answers).
        asio::io_context ioc{1};
        asio::steady_timer pool_timer{ioc};
        bool closing_idle_upstreams = true;  // on this worker's thread only
        // Keeps run() serving while the worker has no connection; released by the stop.
        asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
        std::unique_ptr<upstream::pool> pool;  // after ioc: destroyed first, its sockets use ioc
    };

    static std::vector<std::unique_ptr<worker>> make_workers(const server_config& config) {
        const unsigned n = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());
        std::vector<std::unique_ptr<worker>> workers;
        for (unsigned i = 0; i < n; ++i) workers.push_back(std::make_unique<worker>(config));
        return workers;
    }

    /// Pooled upstream connections idle past their timeout are closed even when no session
    /// comes to notice: after a burst the upstream is not left holding them.
    static asio::awaitable<void> close_idle_upstreams(worker& w) {
        const auto period = std::max<detail::watchdog::clock::duration>(w.pool->idle_timeout() / 2, 1s);
        for (;;) {
            w.pool_timer.expires_after(period);
            auto [ec] = co_await w.pool_timer.async_wait(detail::use_nothrow);
            if (ec || !w.closing_idle_upstreams) co_return;  // the stop
            w.pool->close_expired();
        }
    }

    /// Learns the upstream's extensions before the first client asks for them (EHLO, then
    /// QUIT); every upstream EHLO later refreshes them. The upstreams are probed in order as a
    /// session would try them: one that fails is marked down (sessions skip it from the
    /// start), the first that answers ends the probe. An upstream down at start is not an
    /// error: sessions learn when it is back.
    asio::awaitable<void> probe_upstream() {
        // The watchdog's pending handler keeps it alive until it has seen stop().
        auto watchdog = std::make_shared<detail::watchdog>(ioc_.get_executor());
        watchdog->start(watchdog);
        const std::vector<std::size_t> order = upstreams_.order();
        for (const std::size_t i : order) {
            upstream::client c(ioc_.get_executor(), *watchdog, config_.timeouts);
            const endpoint& where = upstreams_.at(i);
            auto greeting = co_await c.connect(where.host, where.port);
            std::string failure;
            if (greeting && greeting->code == 220) {
                auto hello = co_await c.hello(config_.servername);
                if (hello && hello->completion()) upstream_extensions_.learn(c.caps());
                else failure = upstream::failure_text("EHLO", hello);
                auto bye = co_await c.command("QUIT\r\n", std::chrono::seconds(10));
                (void)bye;
            } else {
                failure = upstream::failure_text("greeting", greeting);
            }
            c.close();
            if (failure.empty()) {
                upstreams_.succeeded(i);
                break;
            }
            upstreams_.failed(i, failure);
        }
        watchdog->stop();
    }

    void wait_for_signal() {
        signals_.async_wait([this](asio::error_code ec, int signal) {
            if (ec) return;
            if (signal != SIGHUP) return begin_stop();
            if (auto error = reload_tls())
                diagnostics::report(diagnostics::level::error, "tls",
                                    fmt::format("TLS not reloaded, the old certificate stays: {}", *error));
            else
                diagnostics::report(diagnostics::level::notice, "tls", "TLS certificate reloaded");
            wait_for_signal();
        });
    }

    struct session_slot;
    using slot_list = std::list<std::weak_ptr<session_slot>>;
    using peer_counts = std::map<std::string, std::size_t>;
    /// A session's place under the limits; `released` (guarded by mutex_) once the client has
    /// gone, which may be before the session ends.
    struct session_slot {
        explicit session_slot(const asio::any_io_executor& ex) : executor(ex), watchdog(ex) {}
        asio::any_io_executor executor;
        detail::watchdog watchdog;
        typename slot_list::iterator where;
        peer_counts::iterator peer;  // stays valid: the entry lives while its count is not 0
        bool released = false;
    };

    struct endpoints {
        detail::tcp::endpoint peer;
        detail::tcp::endpoint local;
    };

    asio::awaitable<void> accept_loop(detail::tcp::acceptor& acceptor, const std::vector<network>& proxy_from) {
        // The local address a connection reached is the listening one, unless that is a
        // wildcard: then each connection is asked.
        const auto bound = acceptor.local_endpoint();
        const bool wildcard = bound.address().is_unspecified();
        for (;;) {
            worker& w = *workers_[next_worker_++ % workers_.size()];  // accept loops share a thread
            detail::tcp::endpoint peer;
            auto [ec, socket] = co_await acceptor.async_accept(w.ioc, peer, detail::use_nothrow);
            if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
            if (ec) {
                // Out of descriptors or the like: back off instead of spinning.
                asio::steady_timer pause(ioc_, std::chrono::milliseconds(50));
                co_await pause.async_wait(detail::use_nothrow);
                continue;
            }
            endpoints ends{peer, bound};
            if (wildcard) {
                asio::error_code local_ec;
                ends.local = socket.local_endpoint(local_ec);
                if (local_ec) continue;  // already gone
            }
            if (proxy_from.empty()) {
                admit(std::move(socket), ends, w);
                continue;
            }
            const bool trusted = std::any_of(proxy_from.begin(), proxy_from.end(),
                                             [&](const network& n) { return n.contains(peer.address()); });
            asio::error_code ignored;
            if (!trusted) count(metrics::refusal::proxy_untrusted);
            if (!trusted) socket.close(ignored);
            else asio::co_spawn(w.ioc, read_proxy_header(std::move(socket), ends, w), asio::detached);
        }
    }

    /// The PROXY header that opens a connection from a trusted load balancer: the session is
    /// admitted (per-address limits included) as the client it names, or, for a health check
    /// (LOCAL) or an address family it cannot carry, as the connection's own ends. The header
    /// is peeked at, and only its own octets are taken off the socket, so the session reads
    /// the client's first octets itself. A header that is missing, malformed or late: the
    /// connection is closed, with no session and no reply.
    asio::awaitable<void> read_proxy_header(detail::tcp::socket socket, endpoints ends, worker& w) {
        struct waiting {
            explicit waiting(detail::tcp::socket s) : socket(std::move(s)), deadline(socket.get_executor()) {}
            detail::tcp::socket socket;
            asio::steady_timer deadline;
            std::array<char, proxy::default_max_v2_length> buffer;
        };
        auto state = std::make_shared<waiting>(std::move(socket));
        state->deadline.expires_after(config_.timeouts.proxy_header);
        state->deadline.async_wait([state](asio::error_code ec) {
            asio::error_code ignored;
            if (!ec) state->socket.close(ignored);
        });
        std::size_t taken = 0;
        for (;;) {
            auto [wait_ec] = co_await state->socket.async_wait(detail::tcp::socket::wait_read, detail::use_nothrow);
            asio::error_code ec;
            const auto room = asio::buffer(state->buffer.data() + taken, state->buffer.size() - taken);
            const std::size_t seen = wait_ec ? 0 : state->socket.receive(room, detail::tcp::socket::message_peek, ec);
            if (wait_ec || ec || seen == 0) break;  // closed, or the deadline passed
            const auto parsed = proxy::parse_header(std::string_view(state->buffer.data(), taken + seen));
            if (!parsed) break;
            // Incomplete: all that is there is header, and is taken. Complete: its rest only.
            const std::size_t take = *parsed ? (*parsed)->length - taken : seen;
            if (asio::read(state->socket, asio::buffer(state->buffer.data() + taken, take), ec) != take) break;
            taken += take;
            if (!*parsed) continue;
            ends.peer = (*parsed)->source_or(ends.peer);
            ends.local = (*parsed)->destination_or(ends.local);
            state->deadline.cancel();
            admit(std::move(state->socket), ends, w);
            co_return;
        }
        state->deadline.cancel();
        asio::error_code ignored;
        state->socket.close(ignored);
        count(metrics::refusal::proxy_header);
    }

    void count(metrics::refusal why) {
        if (config_.metrics) config_.metrics->refused(why);
    }

    void admit(detail::tcp::socket socket, const endpoints& ends, worker& w) {
        std::string address = ends.peer.address().to_string();

        auto slot = std::make_shared<session_slot>(w.ioc.get_executor());
        {
            std::lock_guard lock(mutex_);
            const smtp::reply* refusal = nullptr;
            metrics::refusal why{};
            if (stopping_) {
                refusal = &smtp::replies::shutting_down;
                why = metrics::refusal::shutting_down;
            } else if (slots_.size() >= config_.limits.max_connections) {
                refusal = &smtp::replies::too_many_connections;
                why = metrics::refusal::connection_limit;
            } else if (per_peer_[address] >= config_.limits.max_connections_per_ip) {
                refusal = &smtp::replies::too_many_from_peer;
                why = metrics::refusal::per_address_limit;
            }
            if (refusal) {
                count(why);
                if (per_peer_[address] == 0) per_peer_.erase(address);
                refuse(socket, *refusal);
                return;
            }
            slot->peer = per_peer_.try_emplace(std::move(address), 0).first;
            ++slot->peer->second;
            slot->where = slots_.insert(slots_.end(), slot);
        }
        if (auto* m = config_.metrics) {
            m->connections_accepted.add();
            m->sessions_open.add(1);
        }
        asio::co_spawn(w.ioc, session(std::move(socket), ends, slot, w.pool.get()),
                       [this, slot](std::exception_ptr e) {
                           if (e) log_exception(e);
                           release(*slot);
                           if (config_.metrics) config_.metrics->sessions_open.add(-1);
                       });
    }

    /// A connection over a limit gets its 421 without a session: one non-blocking write of a
    /// short line into an empty socket buffer, then close.
    static void refuse(detail::tcp::socket& socket, const smtp::reply& r) {
        asio::error_code ec;
        socket.non_blocking(true, ec);
        asio::write(socket, asio::buffer(smtp::to_wire(r)), ec);
        socket.shutdown(detail::tcp::socket::shutdown_both, ec);
        socket.close(ec);
    }

    asio::awaitable<void> session(detail::tcp::socket socket, endpoints ends, std::shared_ptr<session_slot> slot,
                                  upstream::pool* pool) {
        asio::error_code ec;
        socket.set_option(detail::tcp::no_delay(true), ec);
        Protocol protocol(session_context{socket, config_, slot->watchdog, pool, tls_.get(), upstream_tls_.get(),
                                          &upstream_extensions_, ends.peer, ends.local,
                                          [this, raw = slot.get()] { release(*raw); }, &upstreams_});
        slot->watchdog.start(slot);
        co_await protocol.run();  // stops the watchdog when it ends
    }

    void release(session_slot& slot) {
        std::lock_guard lock(mutex_);
        if (std::exchange(slot.released, true)) return;
        slots_.erase(slot.where);
        if (--slot.peer->second == 0) per_peer_.erase(slot.peer);
        if (stopping_ && slots_.empty()) finish();
    }

    void begin_stop() {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
        asio::error_code ignored;
        signals_.cancel(ignored);
        for (auto& a : acceptors_) a.close(ignored);
        for (auto& w : workers_)
            asio::post(w->ioc, [&w = *w] {
                w.closing_idle_upstreams = false;
                w.pool_timer.cancel();
            });
        const auto deadline = detail::watchdog::clock::now() + config_.drain;
        for (auto& weak : slots_) {
            if (auto slot = weak.lock())
                asio::post(slot->executor, [slot, deadline] { slot->watchdog.shutdown(deadline); });
        }
        if (slots_.empty()) {
            finish();
            return;
        }
        // Sessions that ignore their 421 still end: the watchdog closes their sockets, and
        // past a grace period the io_context itself is stopped.
        drain_timer_.expires_at(deadline + std::chrono::seconds(10));
        drain_timer_.async_wait([this](asio::error_code ec) {
            if (!ec)
                for (auto& w : workers_) w->ioc.stop();
        });
    }

    /// The last session has ended after a stop: every io_context may run out of work.
    void finish() {
        drain_timer_.cancel();
        for (auto& w : workers_) w->work.reset();
    }

    static void log_exception(std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            diagnostics::report(diagnostics::level::error, "session", fmt::format("session ended by exception: {}", ex.what()));
        } catch (...) {
            diagnostics::report(diagnostics::level::error, "session", "session ended by unknown exception");
        }
    }

    config_type config_;
    std::unique_ptr<tls::reloadable_context> tls_;
    std::shared_ptr<asio::ssl::context> upstream_tls_;
    upstream::known_extensions upstream_extensions_;
    /// The upstreams and which are down, shared by every thread's sessions and the probe.
    upstream::failover upstreams_{config_.upstream_endpoints(), config_.upstream_retry, config_.metrics};
    std::vector<std::unique_ptr<worker>> workers_;
    asio::io_context& ioc_;  // the first worker's: it also accepts, and takes the signals
    asio::signal_set signals_;
    asio::steady_timer drain_timer_;
    std::vector<detail::tcp::acceptor> acceptors_;
    std::vector<std::vector<network>> proxy_from_;  // each acceptor's PROXY sources
    std::mutex mutex_;
    slot_list slots_;
    peer_counts per_peer_;
    bool stopping_ = false;
    std::size_t next_worker_ = 0;
};

} // namespace grey
