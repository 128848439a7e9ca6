// grey/policy/server.hpp — policy::server: Grey's greylisting as a Postfix policy service, for
// `check_policy_service inet:127.0.0.1:10023` or `unix:/path` in smtpd_recipient_restrictions.
//
// It listens on TCP and unix-domain endpoints, admits connections within max_connections, and
// runs each as a policy::session. As ServerCore does, each of N threads runs an io_context of
// its own and a connection stays on the one that took it, so a session's state needs no lock. SIGINT/SIGTERM (or stop()) start a graceful stop: listening
// ends, idle connections close at once, a request that has begun is answered, and past the
// drain deadline whatever is left is stopped. It stands on the same listening, worker,
// admission and stop code as ServerCore (server/).
#pragma once

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../config.hpp"
#include "../detail/asio.hpp"
#include "../diagnostics.hpp"
#include "../greylist/judge.hpp"
#include "../metrics/server_metrics.hpp"
#include "../server/admission.hpp"
#include "../server/lifecycle.hpp"
#include "../server/listener.hpp"
#include "../server/workers.hpp"
#include "session.hpp"

namespace grey::policy {
/// @addtogroup group_policy
/// @{

/// Where a policy server listens, in Postfix's notation: "inet:HOST:PORT" (IPv6 as
/// "inet:[::1]:PORT") or "unix:PATH" ("local:PATH" too, as Postfix allows).
struct listen_address {
    bool unix_socket = false;  ///< a unix-domain socket ("unix:"), not TCP ("inet:")
    grey::endpoint inet{};     ///< when !unix_socket
    std::string path;          ///< when unix_socket

    /// In Postfix's notation, as parse_listen_address reads it and main.cf writes it.
    std::string to_string() const {
        if (unix_socket) return "unix:" + path;
        return inet.host.find(':') != std::string::npos ? fmt::format("inet:[{}]:{}", inet.host, inet.port)
                                                         : fmt::format("inet:{}:{}", inet.host, inet.port);
    }
};

/// Reads "inet:HOST:PORT", "unix:PATH" or "local:PATH"; errc::syntax_error (or the endpoint's
/// own error) for anything else.
inline result<listen_address> parse_listen_address(std::string_view text) {
    listen_address a;
    if (text.starts_with("inet:")) {
        auto e = parse_endpoint(text.substr(5));
        if (!e) return e.error();
        a.inet = *e;
        return a;
    }
    for (std::string_view prefix : {"unix:", "local:"}) {
        if (text.starts_with(prefix) && text.size() > prefix.size()) {
            a.unix_socket = true;
            a.path = std::string(text.substr(prefix.size()));
            return a;
        }
    }
    return errc::syntax_error;
}

/// Grey's greylisting as a Postfix policy service: listens, admits connections, and runs each
/// as a session on one of its threads until stopped.
class server {
  public:
    using clock = std::chrono::steady_clock;     ///< for the drain deadline
    using local = asio::local::stream_protocol;  ///< unix-domain stream sockets

    /// `greylisting` is the same greylisting the proxy takes (store, lists, timing,
    /// normalisation, pipeline, log, report); `s` the service's own settings (threads, drain,
    /// limits, texts, metrics).
    server(greylist::greylist_settings greylisting, settings s, std::vector<listen_address> listen,
           std::filesystem::perms socket_mode = std::filesystem::perms(0666))
        : greylist_(std::move(greylisting)), settings_(std::move(s)), listen_(std::move(listen)),
          socket_mode_(socket_mode), workers_(grey::server::workers::own(settings_.threads)),
          main_(workers_.main()), listener_(main_), admission_({settings_.max_connections}),
          lifecycle_(workers_, "policy session") {}

    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Opens every endpoint. Throws std::system_error naming the one that failed.
    void listen() {
        if (!listener_.empty()) return;
        for (const listen_address& a : listen_) {
            if (a.unix_socket) listener_.add_local(a.path, socket_mode_);
            else listener_.add_tcp(a.inet, {}, a.to_string());
        }
    }

    /// What is listened on, with the ports the kernel chose for a port of 0.
    std::vector<std::string> local_addresses() const {
        std::vector<std::string> out;
        for (const auto& ep : listener_.tcp_endpoints())
            out.push_back(listen_address{false, {ep.address().to_string(), ep.port()}, {}}.to_string());
        for (const auto& path : listener_.local_paths()) out.push_back("unix:" + path);
        return out;
    }

    /// SIGINT and SIGTERM start a graceful stop. run() asks for this unless told not to; a
    /// program that announces where it listens asks sooner, so that a signal sent as soon as
    /// the announcement is read is not the default one that kills. Call it before run().
    void handle_signals() {
        if (signals_) return;
        signals_.emplace(main_, SIGINT, SIGTERM);
        signals_->async_wait([this](asio::error_code ec, int) {
            if (!ec) begin_stop();
        });
    }

    /// Serves until stop(), or SIGINT/SIGTERM when `with_signals`; returns once every
    /// connection has ended. Runs the first io_context on the calling thread.
    void run(bool with_signals = true) {
        listen();
        if (with_signals) handle_signals();
        const std::size_t doors = listener_.tcp().size() + listener_.unix_domain().size();
        if (lifecycle_.enter(doors, [] { return true; })) {
            for (auto& door : listener_.tcp()) lifecycle_.launch(main_, accept_loop(door.acceptor));
            for (auto& door : listener_.unix_domain()) lifecycle_.launch(main_, accept_loop(door.acceptor));
        }
        workers_.run();
    }

    /// Starts a graceful stop; safe from any thread.
    void stop() {
        asio::post(main_, [this] { begin_stop(); });
    }

  private:
    /// A connection's place under max_connections, and how to stop it.
    struct slot {
        asio::any_io_executor executor;
        std::function<void(clock::time_point)> stop;
        typename grey::server::admission<slot>::place place{};
        void shutdown(clock::time_point drain_deadline) { stop(drain_deadline); }
    };

    template <class Acceptor>
    asio::awaitable<void> accept_loop(Acceptor& acceptor) {
        co_await grey::server::accept_each(
            acceptor, [this]() -> const asio::any_io_executor& { return workers_[workers_.next()].executor; },
            [this](auto socket, const auto&) { admit(std::move(socket)); });
    }

    /// The peer, as warnings name it: "127.0.0.1:40312", or the socket's path.
    template <class Socket>
    static std::string name_of(const Socket& s) {
        asio::error_code ec;
        if constexpr (std::is_same_v<typename Socket::protocol_type, local>) {
            const auto ep = s.local_endpoint(ec);
            return ec ? "unix:?" : "unix:" + ep.path();
        } else {
            const auto ep = s.remote_endpoint(ec);
            return ec ? "inet:?" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
        }
    }

    template <class Socket>
    void admit(Socket socket) {
        auto sl = std::make_shared<slot>();
        sl->executor = socket.get_executor();
        const grey::server::refusal refused = admission_.admit(sl);
        {
            std::lock_guard lock(crowding_);
            if (refused != grey::server::refusal::none) {
                const bool stopping = refused == grey::server::refusal::shutting_down;
                // Postfix retries on another connection (smtpd_policy_service_try_limit), then
                // applies its default action: said once per crowding, not per connection.
                if (!stopping && !crowded_ && settings_.report)
                    settings_.report(diagnostics::level::warning,
                                     fmt::format("policy: {} connections, the limit: more are closed",
                                                 settings_.max_connections));
                crowded_ = !stopping;
                if (settings_.metrics)
                    settings_.metrics->refused(stopping ? metrics::refusal::shutting_down
                                                        : metrics::refusal::connection_limit);
                asio::error_code ignored;
                socket.close(ignored);
                return;
            }
            crowded_ = false;
        }
        std::string name = name_of(socket);
        auto s = std::make_shared<session<Socket>>(std::move(socket), greylist_, settings_, std::move(name));
        sl->stop = [weak = std::weak_ptr<session<Socket>>(s)](clock::time_point deadline) {
            if (auto live = weak.lock()) live->stop(deadline);
        };
        if (auto* m = settings_.metrics) {
            m->connections_accepted.add();
            m->sessions_open.add(1);
        }
        if (!lifecycle_.enter()) {  // the stop began since admission said yes
            admission_.release(*sl);
            if (settings_.metrics) settings_.metrics->sessions_open.add(-1);
            return;
        }
        lifecycle_.launch(sl->executor, session<Socket>::run(std::move(s)), [this, sl] {
            admission_.release(*sl);
            if (settings_.metrics) settings_.metrics->sessions_open.add(-1);
        });
    }

    void begin_stop() {
        const auto deadline = clock::now() + settings_.drain;
        lifecycle_.stop(deadline, [&] {
            asio::error_code ignored;
            if (signals_) signals_->cancel(ignored);
            listener_.close();
            admission_.stop(deadline);
        });
    }

    greylist::greylist_settings greylist_;
    settings settings_;
    std::vector<listen_address> listen_;
    std::filesystem::perms socket_mode_;
    grey::server::workers workers_;
    asio::any_io_executor main_;  // the first worker's: it also accepts, and takes the signals
    grey::server::listener<> listener_;
    grey::server::admission<slot> admission_;
    std::optional<asio::signal_set> signals_;  // once handle_signals() is called
    std::mutex crowding_;  // guards crowded_
    bool crowded_ = false;
    /// After workers_ and the rest: its completions run while they still exist.
    grey::server::lifecycle lifecycle_;
};

/// @}
} // namespace grey::policy
