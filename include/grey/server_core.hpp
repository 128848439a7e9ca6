// grey/server_core.hpp — ServerCore<Protocol>: the SMTP door. It composes the generic server
// (server/listener.hpp, server/workers.hpp, server/admission.hpp) with what only an SMTP
// front needs: the PROXY header of a trusted load balancer, the per-connection deadline,
// STARTTLS's context, a 421 for a connection over a limit, and, for a Protocol that relays,
// the upstream service (upstream/service.hpp: pool, failover, probe, TLS towards it).
//
// Stand-alone, it runs one io_context per thread; as a guest, on executors the program
// already runs (one io_context, or one per thread), beside the program's own work: start()
// and async_stop() never block, and signals are left to the program unless it asks. Either way
// a stop is graceful: listening ends, idle sessions get 421 at once, sessions inside a
// transaction may finish until the drain deadline and then get 421.
//
// Its length is the stop's: every task the server runs (accept loops, PROXY header waits,
// sessions, the upstream service's) is counted by its lifecycle (server/lifecycle.hpp, which
// the policy server shares), so that the last one to end, and no other, completes async_stop().
#pragma once

#include <algorithm>
#include <array>
#include <csignal>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "config.hpp"
#include "deadline.hpp"
#include "detail/asio.hpp"
#include "diagnostics.hpp"
#include "metrics/server_metrics.hpp"
#include "protocol.hpp"
#include "proxy_protocol.hpp"
#include "server/admission.hpp"
#include "server/lifecycle.hpp"
#include "server/listener.hpp"
#include "server/proxy_header.hpp"
#include "server/workers.hpp"
#include "session_context.hpp"
#include "smtp/reply.hpp"
#include "tls/context.hpp"
#include "upstream/service.hpp"

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
    explicit ServerCore(config_type config)
        : ServerCore(std::move(config), [](const server_config& c) { return server::workers::own(c.threads); }) {}

    /// A guest on the program's io_context. Sessions run on it one at a time: an io_context
    /// that several threads run needs the other constructor, with a strand per thread.
    ServerCore(asio::io_context& ioc, config_type config)
        : ServerCore(std::vector<asio::any_io_executor>{ioc.get_executor()}, std::move(config)) {}

    /// A guest on the program's executors: each connection is handed to the next one in turn
    /// and stays there. Each executor must run one handler at a time (an io_context run by
    /// one thread, or a strand), since a session and the upstream connections kept for its
    /// executor are used without locks. The first one also accepts.
    ServerCore(std::vector<asio::any_io_executor> executors, config_type config)
        : ServerCore(std::move(config), [&executors](const server_config&) {
              return server::workers::guest(std::move(executors));
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
        if (!listener_.empty()) return;
        for (const endpoint& e : config_.listen_endpoints()) listener_.add_tcp(e, e.proxy_from);
    }

    /// The addresses actually bound (a port of 0 in the configuration is chosen by the kernel).
    std::vector<asio::ip::tcp::endpoint> local_endpoints() const { return listener_.tcp_endpoints(); }

    /// "127.0.0.1:25", "[::1]:25": an endpoint as configuration and log lines spell it.
    static std::string format(const asio::ip::tcp::endpoint& ep) { return server::format(ep); }

    /// Listens (if listen() has not been called) and starts accepting, on the executors; returns
    /// at once. Call it before the executors run or from the first one's thread. Throws as
    /// listen() does. A server serves once: start() after a stop does nothing.
    void start() {
        listen();
        std::vector<std::pair<asio::any_io_executor, asio::awaitable<void>>> tasks;
        if (upstream_) tasks = upstream_->tasks(main_);
        for (auto& door : listener_.tcp()) tasks.emplace_back(main_, accept_loop(door.acceptor, door.tag));
        // A server serves once: start() after a stop, or a second time, does nothing.
        if (!lifecycle_.enter(tasks.size(), [this] { return !std::exchange(started_, true); })) return;
        for (auto& [ex, task] : tasks) lifecycle_.launch(ex, std::move(task));
    }

    /// Stand-alone: serves until stop() or SIGINT/SIGTERM (SIGHUP reloads the TLS certificate),
    /// then drains. Runs the first io_context (which also accepts) on the calling thread and
    /// each other one on a thread of its own; returns when the last session has ended.
    /// Throws std::logic_error for a guest, whose program runs its own executors.
    void run() {
        if (!workers_.owned())
            throw std::logic_error("grey::ServerCore::run() serves on the server's own io_contexts; "
                                   "a guest on the program's executors calls start()");
        handle_signals();
        start();
        workers_.run();
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
                lifecycle_.when_stopped([held, ex = main_] { asio::post(ex, std::move(*held)); });
                stop();
            },
            token);
    }

    /// The configuration the server was given.
    const config_type& config() const noexcept { return config_; }

  private:
    /// Whether Protocol relays to an upstream, and so needs the upstream service.
    static constexpr bool relays = requires { Protocol::relays_upstream; };

    template <class MakeWorkers>
        requires std::is_invocable_r_v<server::workers, MakeWorkers&, const server_config&>
    ServerCore(config_type config, MakeWorkers make_workers)
        : config_(std::move(config)),
          tls_(config_.tls.enabled() ? std::make_unique<tls::reloadable_context>(config_.tls) : nullptr),
          workers_(make_workers(config_)),
          main_(workers_.main()),
          listener_(main_),
          admission_({config_.limits.max_connections, config_.limits.max_connections_per_ip}),
          lifecycle_(workers_, "session") {
        if constexpr (relays) {
            std::vector<asio::any_io_executor> executors;
            for (auto& w : workers_) executors.push_back(w.executor);
            upstream_ = std::make_unique<upstream::service>(config_, executors);
        }
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

    /// A session's place under the limits, and its deadline; the place is given back once the
    /// client has gone, which may be before the session ends.
    struct session_slot {
        explicit session_slot(const asio::any_io_executor& ex) : executor(ex), deadline(ex) {}
        void shutdown(deadline::clock::time_point drain_deadline) { deadline.shutdown(drain_deadline); }
        asio::any_io_executor executor;
        grey::deadline deadline;
        typename server::admission<session_slot>::place place{};
    };

    struct endpoints {
        asio::ip::tcp::endpoint peer;
        asio::ip::tcp::endpoint local;
        std::optional<asio::ip::tcp::endpoint> proxied_by{};  // the load balancer, behind a PROXY header
    };

    /// A connection from a load balancer whose PROXY header has not all come yet.
    struct header_wait;
    using header_wait_list = std::list<std::weak_ptr<header_wait>>;
    struct header_wait {
        explicit header_wait(asio::ip::tcp::socket s) : socket(std::move(s)), deadline(socket.get_executor()) {}
        asio::ip::tcp::socket socket;
        asio::steady_timer deadline;
        std::array<char, proxy::default_max_v2_length> buffer;
        typename header_wait_list::iterator where;  // guarded by the lifecycle's lock
    };

    asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, const std::vector<network>& proxy_from) {
        // The local address a connection reached is the listening one, unless that is a
        // wildcard: then each connection is asked.
        const auto bound = acceptor.local_endpoint();
        const bool wildcard = bound.address().is_unspecified();
        std::size_t worker = 0;
        co_await server::accept_each(
            acceptor, [&]() -> const asio::any_io_executor& { return workers_[worker = workers_.next()].executor; },
            [&](asio::ip::tcp::socket socket, const asio::ip::tcp::endpoint& peer) {
                endpoints ends{peer, bound};
                if (wildcard) {
                    asio::error_code local_ec;
                    ends.local = socket.local_endpoint(local_ec);
                    if (local_ec) return;  // already gone
                }
                if (proxy_from.empty()) return admit(std::move(socket), ends, worker);
                const bool trusted = std::any_of(proxy_from.begin(), proxy_from.end(),
                                                 [&](const network& n) { return n.contains(peer.address()); });
                if (!trusted) {
                    count(metrics::refusal::proxy_untrusted);
                    asio::error_code ignored;
                    socket.close(ignored);
                    return;
                }
                // Registered before it runs, so that a stop finds it (co_spawn may run it at once).
                auto wait = std::make_shared<header_wait>(std::move(socket));
                if (!lifecycle_.enter(1, [&] {
                        wait->where = header_waits_.insert(header_waits_.end(), wait);
                        return true;
                    }))
                    return;
                lifecycle_.launch(workers_[worker].executor, read_proxy_header(std::move(wait), ends, worker));
            });
    }

    /// The PROXY header that opens a connection from a trusted load balancer
    /// (server/proxy_header.hpp): the session is admitted (per-address limits included) as the
    /// client it names, or, for a health check (LOCAL) or an address family it cannot carry,
    /// as the connection's own ends. A header that is missing, malformed or late: the
    /// connection is closed, with no session and no reply.
    asio::awaitable<void> read_proxy_header(std::shared_ptr<header_wait> state, endpoints ends, std::size_t worker) {
        state->deadline.expires_after(config_.timeouts.proxy_header);
        state->deadline.async_wait([state](asio::error_code ec) {
            asio::error_code ignored;
            if (!ec) state->socket.close(ignored);
        });
        const auto done = [this, &state] { lifecycle_.locked([&] { header_waits_.erase(state->where); }); };
        const std::optional<proxy::header> header = co_await server::read_proxy_header(state->socket, state->buffer);
        if (header) {
            if (header->has_addresses()) ends.proxied_by = ends.peer;
            ends.peer = header->source_or(ends.peer);
            ends.local = header->destination_or(ends.local);
            state->deadline.cancel();
            done();
            admit(std::move(state->socket), ends, worker);
            co_return;
        }
        state->deadline.cancel();
        asio::error_code ignored;
        state->socket.close(ignored);
        done();
        if (!lifecycle_.stopping()) count(metrics::refusal::proxy_header);
    }

    void count(metrics::refusal why) {
        if (config_.metrics) config_.metrics->refused(why);
    }

    void admit(asio::ip::tcp::socket socket, const endpoints& ends, std::size_t worker) {
        const asio::any_io_executor& executor = workers_[worker].executor;
        auto slot = std::make_shared<session_slot>(executor);
        switch (admission_.admit(slot, unmapped(ends.peer.address()).to_string())) {
        case server::refusal::none: break;
        case server::refusal::shutting_down:
            return refuse(socket, smtp::replies::shutting_down, metrics::refusal::shutting_down);
        case server::refusal::connection_limit:
            return refuse(socket, smtp::replies::too_many_connections, metrics::refusal::connection_limit);
        case server::refusal::per_address_limit:
            return refuse(socket, smtp::replies::too_many_from_peer, metrics::refusal::per_address_limit);
        }
        if (!lifecycle_.enter()) {  // the stop began since admission said yes
            admission_.release(*slot);
            return refuse(socket, smtp::replies::shutting_down, metrics::refusal::shutting_down);
        }
        if (auto* m = config_.metrics) {
            m->connections_accepted.add();
            m->sessions_open.add(1);
        }
        const upstream::share* relay = upstream_ ? &upstream_->for_worker(worker) : nullptr;
        lifecycle_.launch(executor, session(std::move(socket), ends, slot, relay), [this, slot] {
            admission_.release(*slot);
            if (config_.metrics) config_.metrics->sessions_open.add(-1);
        });
    }

    /// A connection over a limit gets its 421 without a session: one non-blocking write of a
    /// short line into an empty socket buffer, then close.
    void refuse(asio::ip::tcp::socket& socket, const smtp::reply& r, metrics::refusal why) {
        count(why);
        asio::error_code ec;
        socket.non_blocking(true, ec);
        asio::write(socket, asio::buffer(smtp::to_wire(r)), ec);
        socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
        socket.close(ec);
    }

    asio::awaitable<void> session(asio::ip::tcp::socket socket, endpoints ends, std::shared_ptr<session_slot> slot,
                                  const upstream::share* relay) {
        asio::error_code ec;
        socket.set_option(asio::ip::tcp::no_delay(true), ec);
        if constexpr (protocol<Protocol>) {  // else a static_assert has said why
            // The peer is built in this one expression, moved into the Protocol and not kept
            // in the coroutine's frame: an idle connection pays for one copy of it.
            Protocol session(session_context{socket, config_, slot->deadline, tls_.get(), relay, ends.peer, ends.local,
                                             grey::peer::accepted(ends.peer, ends.local, ends.proxied_by),
                                             [this, raw = slot.get()] { admission_.release(*raw); }});
            // Any Protocol's client socket is bounded by the drain deadline of a stop, and its
            // deadline ends with the session even if run() throws.
            struct stop_deadline {
                grey::deadline& d;
                ~stop_deadline() { d.stop(); }
            } stopper{slot->deadline};
            slot->deadline.guard(socket);
            slot->deadline.start(slot);
            co_await session.run();
        }
    }

    /// On the first executor: stop(), async_stop() and the signals post it there.
    void begin_stop() {
        const auto deadline = deadline::clock::now() + config_.drain;
        lifecycle_.stop(deadline, [&] {
            asio::error_code ignored;
            if (signals_) signals_->cancel(ignored);
            listener_.close();
            if (upstream_) upstream_->stop();
            for (auto& weak : header_waits_)
                if (auto wait = weak.lock())
                    asio::post(wait->socket.get_executor(), [wait] {
                        asio::error_code ignored;
                        wait->socket.close(ignored);
                    });
            admission_.stop(deadline);
        });
    }

    config_type config_;
    std::unique_ptr<tls::reloadable_context> tls_;
    server::workers workers_;
    asio::any_io_executor main_;  // the first worker's: it also accepts, probes, takes the signals
    /// For a Protocol that relays; after workers_, so destroyed first (its sockets use them).
    std::unique_ptr<upstream::service> upstream_;
    server::listener<std::vector<network>> listener_;  // each door's PROXY sources
    server::admission<session_slot> admission_;
    std::optional<asio::signal_set> signals_;
    header_wait_list header_waits_;  // guarded by the lifecycle's lock
    bool started_ = false;           // guarded by the lifecycle's lock
    /// After workers_ and the rest: its completions run while they still exist.
    server::lifecycle lifecycle_;
};

/// @}
} // namespace grey
