// grey/server_core.hpp — ServerCore<Protocol>: listens, admits, and runs sessions.
//
// Stand-alone, it runs one io_context per thread, as event-driven servers such as HAProxy and
// nginx do: a connection is handed to one of them when accepted and stays there, with its
// upstream connection, its coroutine and its watchdog, so a session's state needs no lock and
// its I/O never wakes another thread (one io_context on N threads made every completion a
// cross-thread wake-up: futex and epoll_ctl calls outnumbered the session's own reads and
// writes three to one). A mutex guards only admission (connection counts), never the data path.
//
// As a guest, it runs on executors the program already runs (one io_context, or one per
// thread), beside the program's own work: start() and async_stop() never block, and signals are
// left to the program unless it asks. Either way a stop is graceful: listening ends, idle
// sessions get 421 at once, sessions inside a transaction may finish until the drain deadline
// and then get 421.
#pragma once

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
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
#include "protocol.hpp"
#include "proxy_protocol.hpp"
#include "session_context.hpp"
#include "smtp/reply.hpp"
#include "tls/context.hpp"
#include "upstream/client.hpp"
#include "upstream/failover.hpp"
#include "upstream/known_extensions.hpp"
#include "upstream/pool.hpp"

namespace grey {
/// @addtogroup group_server
/// @{

/// Serves a Protocol (protocol.hpp) on the configured endpoints: one Protocol object per
/// admitted connection, whose run() is the session.
template <class Protocol>
class ServerCore {
    static_assert(session_constructible<Protocol>,
                  "grey::ServerCore<Protocol>: Protocol needs a constructor taking grey::session_context");
    static_assert(runs_session<Protocol>,
                  "grey::ServerCore<Protocol>: Protocol needs a member run() returning asio::awaitable<void>");
    static_assert(configurable<Protocol>,
                  "grey::ServerCore<Protocol>: Protocol::config_type must derive from grey::server_config");

  public:
    /// The configuration: server_config, or the Protocol's own config_type derived from it.
    using config_type =
        std::conditional_t<configurable<Protocol>, typename protocol_config<Protocol>::type, server_config>;

    /// Stand-alone: the server makes its own io_contexts, one per thread (config.threads), and
    /// run() serves on them.
    /// Throws when the TLS certificate, its key or the upstream's CA file cannot be loaded: a
    /// server must not start without the TLS it was told to use.
    explicit ServerCore(config_type config) : ServerCore(std::move(config), &own_workers) {}

    /// A guest on the program's io_context. Sessions run on it one at a time: an io_context
    /// that several threads run needs the other constructor, with a strand per thread.
    ServerCore(asio::io_context& ioc, config_type config)
        : ServerCore(std::vector<asio::any_io_executor>{ioc.get_executor()}, std::move(config)) {}

    /// A guest on the program's executors: each connection is handed to the next one in turn
    /// and stays there. Each executor must run one handler at a time (an io_context run by
    /// one thread, or a strand), since a session and the upstream connections kept for its
    /// executor are used without locks. The first one also accepts.
    ServerCore(std::vector<asio::any_io_executor> executors, config_type config)
        : ServerCore(std::move(config), [&executors](const server_config& c) {
              return guest_workers(std::move(executors), c);
          }) {}

    /// A Protocol that is not one has been named by a static_assert above; this keeps the
    /// rest of the program from adding errors of its own.
    template <class... Args>
        requires(!protocol<Protocol>)
    explicit ServerCore(Args&&...) : ServerCore(server_config{}) {}

    ServerCore(const ServerCore&) = delete;
    ServerCore& operator=(const ServerCore&) = delete;

    /// Opens every listen endpoint. Throws std::system_error naming the endpoint that failed.
    void listen() {
        if (!acceptors_.empty()) return;
        for (const endpoint& e : config_.listen_endpoints()) {
            detail::tcp::resolver resolver(main_);
            asio::error_code ec;
            auto results = resolver.resolve(e.host, std::to_string(e.port),
                                            detail::tcp::resolver::passive, ec);
            if (ec) throw std::system_error(ec, fmt::format("cannot resolve {}", e.host));
            for (const auto& r : results) {
                detail::tcp::acceptor a(main_);
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

    /// "127.0.0.1:25", "[::1]:25": an endpoint as configuration and log lines spell it.
    static std::string format(const detail::tcp::endpoint& ep) {
        return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                                    : fmt::format("{}:{}", ep.address().to_string(), ep.port());
    }

    /// Listens (if listen() has not been called) and starts accepting, on the executors; returns
    /// at once. Call it before the executors run or from the first one's thread. Throws as
    /// listen() does. A server serves once: start() after a stop does nothing.
    void start() {
        listen();
        std::vector<std::pair<asio::any_io_executor, asio::awaitable<void>>> tasks;
        if constexpr (requires { Protocol::relays_upstream; }) tasks.emplace_back(main_, probe_upstream());
        for (std::size_t i = 0; i < acceptors_.size(); ++i)
            tasks.emplace_back(main_, accept_loop(acceptors_[i], proxy_from_[i]));
        for (auto& w : workers_)
            if (w->pool) tasks.emplace_back(w->executor, close_idle_upstreams(*w));
        {
            std::lock_guard lock(mutex_);
            if (started_ || stopping_) return;
            started_ = true;
            tasks_ += tasks.size();
        }
        for (auto& [ex, task] : tasks) launch(ex, std::move(task));
    }

    /// Stand-alone: serves until stop() or SIGINT/SIGTERM (SIGHUP reloads the TLS certificate),
    /// then drains. Runs the first io_context (which also accepts) on the calling thread and
    /// each other one on a thread of its own; returns when the last session has ended.
    /// Throws std::logic_error for a guest, whose program runs its own executors.
    void run() {
        if (!workers_.front()->owned)
            throw std::logic_error("grey::ServerCore::run() serves on the server's own io_contexts; "
                                   "a guest on the program's executors calls start()");
        handle_signals();
        start();
        std::vector<std::thread> threads;
        for (std::size_t i = 1; i < workers_.size(); ++i)
            threads.emplace_back([w = workers_[i].get()] { w->owned->run(); });
        workers_.front()->owned->run();
        for (auto& t : threads) t.join();
    }

    /// SIGINT and SIGTERM start a graceful stop, SIGHUP reloads the TLS certificate. run() asks
    /// for this; a guest asks only if the program leaves those signals to the server. Call it
    /// before the executors run or from the first one's thread.
    void handle_signals() {
        if (signals_) return;
        signals_.emplace(main_, SIGINT, SIGTERM);
        if (tls_) signals_->add(SIGHUP);
        wait_for_signal();
    }

    /// Loads the TLS certificate and key again (done on SIGHUP): sessions already encrypted
    /// keep theirs. Returns the error when the files cannot be loaded; the old ones then stay.
    std::optional<std::string> reload_tls() { return tls_ ? tls_->reload() : std::nullopt; }

    /// Starts a graceful stop; safe from any thread. A stand-alone run() returns when it is done.
    void stop() {
        asio::post(main_, [this] { begin_stop(); });
    }

    /// Starts a graceful stop, if none has started, and completes (signature `void()`) once
    /// every session and every task of the server has ended: the server may then be destroyed.
    /// Safe from any thread; takes any completion token (a handler, asio::use_awaitable…).
    template <class CompletionToken>
    auto async_stop(CompletionToken&& token) {
        return asio::async_initiate<CompletionToken, void()>(
            [this](auto handler) {
                auto held = std::make_shared<decltype(handler)>(std::move(handler));
                std::function<void()> complete = [held, ex = main_] { asio::post(ex, std::move(*held)); };
                {
                    std::lock_guard lock(mutex_);
                    if (!stopped_) {
                        on_stopped_.push_back(std::move(complete));
                        complete = nullptr;
                    }
                }
                if (complete) complete();
                else stop();
            },
            token);
    }

    /// The configuration the server was given.
    const config_type& config() const noexcept { return config_; }

  private:
    /// One executor's share of the connections, and the idle upstream connections its sessions
    /// may reuse (sockets of that executor).
    struct worker {
        worker(std::unique_ptr<asio::io_context> own, asio::any_io_executor ex, const server_config& config)
            : owned(std::move(own)), executor(std::move(ex)), pool_timer(executor) {
            // Keeps a stand-alone run() serving while the worker has no connection.
            if (owned) work.emplace(owned->get_executor());
            if (config.upstream_pool_size > 0)
                pool = std::make_unique<upstream::pool>(config.upstream_pool_size, config.upstream_idle_timeout);
        }
        std::unique_ptr<asio::io_context> owned;  // stand-alone only; outlives all below
        asio::any_io_executor executor;           // runs one handler at a time
        asio::steady_timer pool_timer;
        bool closing_idle_upstreams = true;  // on this worker's executor only
        std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;  // released by the stop
        std::unique_ptr<upstream::pool> pool;  // last: destroyed first, its sockets use the executor
    };
    using workers = std::vector<std::unique_ptr<worker>>;

    static workers own_workers(const server_config& config) {
        const unsigned n = config.threads ? config.threads : std::max(1u, std::thread::hardware_concurrency());
        workers ws;
        for (unsigned i = 0; i < n; ++i) {
            // Each io_context is run by one thread only: Asio may then skip its locking.
            auto ioc = std::make_unique<asio::io_context>(1);
            auto ex = ioc->get_executor();
            ws.push_back(std::make_unique<worker>(std::move(ioc), std::move(ex), config));
        }
        return ws;
    }

    static workers guest_workers(std::vector<asio::any_io_executor> executors, const server_config& config) {
        if (executors.empty()) throw std::invalid_argument("grey::ServerCore: no executor to run on");
        workers ws;
        for (auto& ex : executors) ws.push_back(std::make_unique<worker>(nullptr, std::move(ex), config));
        return ws;
    }

    template <class MakeWorkers>
        requires std::is_invocable_r_v<workers, MakeWorkers&, const server_config&>
    ServerCore(config_type config, MakeWorkers make_workers)
        : config_(std::move(config)),
          tls_(config_.tls.enabled() ? std::make_unique<tls::reloadable_context>(config_.tls) : nullptr),
          upstream_tls_(config_.upstream_tls.policy == tls::upstream_policy::none
                            ? nullptr
                            : tls::make_client_context(config_.upstream_tls)),
          workers_(make_workers(config_)),
          main_(workers_.front()->executor),
          drain_timer_(main_) {}

    /// Runs one of the server's tasks, already counted in tasks_ by the caller under mutex_ (so
    /// that a stop cannot see the last task end in between), and not under it: co_spawn may run
    /// the task, even to its end, before it returns. `ended` runs first when the task ends.
    template <class Ended = void (*)()>
    void launch(const asio::any_io_executor& ex, asio::awaitable<void> task, Ended ended = [] {}) {
        asio::co_spawn(ex, std::move(task), [this, ended = std::move(ended)](std::exception_ptr e) mutable {
            if (e) log_exception(e);
            ended();
            std::lock_guard lock(mutex_);
            if (--tasks_ == 0 && stopping_) finish_locked();
        });
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
        if (stopping()) co_return;
        // The watchdog's pending handler keeps it alive until it has seen stop().
        auto watchdog = std::make_shared<detail::watchdog>(main_);
        probe_watchdog_ = watchdog;  // a stop cuts the probe short
        watchdog->start(watchdog);
        const std::vector<std::size_t> order = upstreams_.order();
        for (const std::size_t i : order) {
            if (stopping()) break;
            upstream::client c(main_, *watchdog, config_.timeouts);
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
            if (stopping()) break;  // cut short by the stop, not the upstream's failure
            upstreams_.failed(i, failure);
        }
        watchdog->stop();
    }

    void wait_for_signal() {
        signals_->async_wait([this](asio::error_code ec, int signal) {
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

    /// A connection from a load balancer whose PROXY header has not all come yet.
    struct header_wait;
    using header_wait_list = std::list<std::weak_ptr<header_wait>>;
    struct header_wait {
        explicit header_wait(detail::tcp::socket s) : socket(std::move(s)), deadline(socket.get_executor()) {}
        detail::tcp::socket socket;
        asio::steady_timer deadline;
        std::array<char, proxy::default_max_v2_length> buffer;
        typename header_wait_list::iterator where;  // guarded by mutex_
    };

    asio::awaitable<void> accept_loop(detail::tcp::acceptor& acceptor, const std::vector<network>& proxy_from) {
        // The local address a connection reached is the listening one, unless that is a
        // wildcard: then each connection is asked.
        const auto bound = acceptor.local_endpoint();
        const bool wildcard = bound.address().is_unspecified();
        for (;;) {
            worker& w = *workers_[next_worker_++ % workers_.size()];  // accept loops share a thread
            detail::tcp::endpoint peer;
            auto [ec, socket] = co_await acceptor.async_accept(w.executor, peer, detail::use_nothrow);
            if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
            if (ec) {
                // Out of descriptors or the like: back off instead of spinning.
                asio::steady_timer pause(main_, std::chrono::milliseconds(50));
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
            if (!trusted) {
                count(metrics::refusal::proxy_untrusted);
                asio::error_code ignored;
                socket.close(ignored);
                continue;
            }
            // Registered before it runs, so that a stop finds it (co_spawn may run it at once).
            auto wait = std::make_shared<header_wait>(std::move(socket));
            {
                std::lock_guard lock(mutex_);
                if (stopping_) continue;
                wait->where = header_waits_.insert(header_waits_.end(), wait);
                ++tasks_;
            }
            launch(w.executor, read_proxy_header(std::move(wait), ends, w));
        }
    }

    /// The PROXY header that opens a connection from a trusted load balancer: the session is
    /// admitted (per-address limits included) as the client it names, or, for a health check
    /// (LOCAL) or an address family it cannot carry, as the connection's own ends. The header
    /// is peeked at, and only its own octets are taken off the socket, so the session reads
    /// the client's first octets itself. A header that is missing, malformed or late: the
    /// connection is closed, with no session and no reply.
    asio::awaitable<void> read_proxy_header(std::shared_ptr<header_wait> state, endpoints ends, worker& w) {
        state->deadline.expires_after(config_.timeouts.proxy_header);
        state->deadline.async_wait([state](asio::error_code ec) {
            asio::error_code ignored;
            if (!ec) state->socket.close(ignored);
        });
        const auto done = [this, &state] {
            std::lock_guard lock(mutex_);
            header_waits_.erase(state->where);
        };
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
            done();
            admit(std::move(state->socket), ends, w);
            co_return;
        }
        state->deadline.cancel();
        asio::error_code ignored;
        state->socket.close(ignored);
        done();
        if (!stopping()) count(metrics::refusal::proxy_header);
    }

    bool stopping() {
        std::lock_guard lock(mutex_);
        return stopping_;
    }

    void count(metrics::refusal why) {
        if (config_.metrics) config_.metrics->refused(why);
    }

    void admit(detail::tcp::socket socket, const endpoints& ends, worker& w) {
        std::string address = ends.peer.address().to_string();

        auto slot = std::make_shared<session_slot>(w.executor);
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
            ++tasks_;
        }
        if (auto* m = config_.metrics) {
            m->connections_accepted.add();
            m->sessions_open.add(1);
        }
        launch(w.executor, session(std::move(socket), ends, slot, w.pool.get()), [this, slot] {
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
        if constexpr (protocol<Protocol>) {  // else a static_assert has said why
            Protocol session(session_context{socket, config_, slot->watchdog, pool, tls_.get(), upstream_tls_.get(),
                                             &upstream_extensions_, ends.peer, ends.local,
                                             [this, raw = slot.get()] { release(*raw); }, &upstreams_});
            // Any Protocol's client socket is bounded by the drain deadline of a stop, and its
            // watchdog ends with the session even if run() throws.
            struct stop_watchdog {
                detail::watchdog& w;
                ~stop_watchdog() { w.stop(); }
            } stopper{slot->watchdog};
            slot->watchdog.guard(&socket);
            slot->watchdog.start(slot);
            co_await session.run();
        }
    }

    void release(session_slot& slot) {
        std::lock_guard lock(mutex_);
        if (std::exchange(slot.released, true)) return;
        slots_.erase(slot.where);
        if (--slot.peer->second == 0) per_peer_.erase(slot.peer);
    }

    /// On the first executor: stop(), async_stop() and the signals post it there.
    void begin_stop() {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
        asio::error_code ignored;
        if (signals_) signals_->cancel(ignored);
        for (auto& a : acceptors_) a.close(ignored);
        if (auto probe = probe_watchdog_.lock()) probe->shutdown(detail::watchdog::clock::now());
        for (auto& w : workers_)
            asio::post(w->executor, [&w = *w] {
                w.closing_idle_upstreams = false;
                w.pool_timer.cancel();
            });
        for (auto& weak : header_waits_)
            if (auto wait = weak.lock())
                asio::post(wait->socket.get_executor(), [wait] {
                    asio::error_code ignored;
                    wait->socket.close(ignored);
                });
        const auto deadline = detail::watchdog::clock::now() + config_.drain;
        for (auto& weak : slots_) {
            if (auto slot = weak.lock())
                asio::post(slot->executor, [slot, deadline] { slot->watchdog.shutdown(deadline); });
        }
        if (tasks_ == 0) {
            finish_locked();
            return;
        }
        // Sessions that ignore their 421 still end: the watchdog closes their sockets. Past a
        // grace period, a stand-alone server stops its io_contexts; a guest's belong to the
        // program, which is told.
        drain_timer_.expires_at(deadline + std::chrono::seconds(10));
        drain_timer_.async_wait([this](asio::error_code ec) {
            if (ec) return;
            if (!workers_.front()->owned) {
                diagnostics::report(diagnostics::level::warning, "server",
                                    "sessions still running past the drain deadline");
                return;
            }
            for (auto& w : workers_) w->owned->stop();
        });
    }

    /// The last task has ended after a stop: the stand-alone io_contexts may run out of work,
    /// and async_stop() completes.
    void finish_locked() {
        if (std::exchange(stopped_, true)) return;
        asio::post(main_, [this, waiting = std::move(on_stopped_)] {
            drain_timer_.cancel();
            for (auto& w : workers_) w->work.reset();
            for (const auto& complete : waiting) complete();
        });
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
    workers workers_;
    asio::any_io_executor main_;  // the first worker's: it also accepts, probes, takes the signals
    std::optional<asio::signal_set> signals_;
    asio::steady_timer drain_timer_;
    std::vector<detail::tcp::acceptor> acceptors_;
    std::vector<std::vector<network>> proxy_from_;  // each acceptor's PROXY sources
    std::weak_ptr<detail::watchdog> probe_watchdog_;  // on main_ only
    std::mutex mutex_;  // guards what follows
    slot_list slots_;
    peer_counts per_peer_;
    header_wait_list header_waits_;
    std::size_t tasks_ = 0;  // coroutines of the server still running, sessions included
    bool started_ = false;
    bool stopping_ = false;
    bool stopped_ = false;
    std::vector<std::function<void()>> on_stopped_;  // async_stop()'s completions
    std::size_t next_worker_ = 0;  // on main_ only
};

/// @}
} // namespace grey
