// grey/policy/server.hpp — policy::server: Grey's greylisting as a Postfix policy service, for
// `check_policy_service inet:127.0.0.1:10023` or `unix:/path` in smtpd_recipient_restrictions.
//
// It listens on TCP and unix-domain endpoints, admits connections within max_connections, and
// runs each as a policy::session. As ServerCore does, each of N threads runs an io_context of
// its own and a connection stays on the one that took it, so a session's state needs no lock;
// a mutex guards only admission. SIGINT/SIGTERM (or stop()) start a graceful stop: listening
// ends, idle connections close at once, a request that has begun is answered, and past the
// drain deadline whatever is left is stopped. ServerCore is not reused: it knows TCP sockets
// and SMTP sessions only.
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

    /// `greylisting` is the same configuration the proxy takes: store, lists, timing,
    /// normalisation, log, report, servername (in X-Greylist), threads and drain.
    server(greylist::greylist_config greylisting, settings s, std::vector<listen_address> listen,
           std::filesystem::perms socket_mode = std::filesystem::perms(0666))
        : greylist_(std::move(greylisting)), settings_(std::move(s)), listen_(std::move(listen)),
          socket_mode_(socket_mode), workers_(make_workers(greylist_.threads)), ioc_(workers_.front()->ioc),
          drain_timer_(ioc_) {}

    server(const server&) = delete;
    server& operator=(const server&) = delete;

    ~server() {
        for (const auto& path : socket_files_) {
            std::error_code ignored;
            std::filesystem::remove(path, ignored);
        }
    }

    /// Opens every endpoint. Throws std::system_error naming the one that failed.
    void listen() {
        if (!tcp_acceptors_.empty() || !local_acceptors_.empty()) return;
        for (const listen_address& a : listen_) {
            if (a.unix_socket) listen_local(a.path);
            else listen_tcp(a.inet);
        }
    }

    /// What is listened on, with the ports the kernel chose for a port of 0.
    std::vector<std::string> local_addresses() const {
        std::vector<std::string> out;
        for (const auto& a : tcp_acceptors_) {
            const auto ep = a.local_endpoint();
            out.push_back(listen_address{false, {ep.address().to_string(), ep.port()}, {}}.to_string());
        }
        for (const auto& a : local_acceptors_) out.push_back("unix:" + a.local_endpoint().path());
        return out;
    }

    /// SIGINT and SIGTERM start a graceful stop. run() asks for this unless told not to; a
    /// program that announces where it listens asks sooner, so that a signal sent as soon as
    /// the announcement is read is not the default one that kills. Call it before run().
    void handle_signals() {
        if (signals_) return;
        signals_.emplace(ioc_, SIGINT, SIGTERM);
        signals_->async_wait([this](asio::error_code ec, int) {
            if (!ec) begin_stop();
        });
    }

    /// Serves until stop(), or SIGINT/SIGTERM when `with_signals`; returns once every
    /// connection has ended. Runs the first io_context on the calling thread.
    void run(bool with_signals = true) {
        listen();
        if (with_signals) handle_signals();
        for (auto& a : tcp_acceptors_) asio::co_spawn(ioc_, accept_loop(a), asio::detached);
        for (auto& a : local_acceptors_) asio::co_spawn(ioc_, accept_loop(a), asio::detached);
        std::vector<std::thread> threads;
        for (std::size_t i = 1; i < workers_.size(); ++i) threads.emplace_back([w = workers_[i].get()] { w->ioc.run(); });
        ioc_.run();
        for (auto& t : threads) t.join();
    }

    /// Starts a graceful stop; safe from any thread.
    void stop() {
        asio::post(ioc_, [this] { begin_stop(); });
    }

  private:
    struct worker {
        asio::io_context ioc{1};
        asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
    };

    /// A connection's place under max_connections, and how to stop it.
    struct slot {
        asio::any_io_executor executor;
        std::function<void(clock::time_point)> stop;
        std::list<std::shared_ptr<slot>>::iterator where;
    };

    static std::vector<std::unique_ptr<worker>> make_workers(unsigned threads) {
        const unsigned n = threads ? threads : std::max(1u, std::thread::hardware_concurrency());
        std::vector<std::unique_ptr<worker>> workers;
        for (unsigned i = 0; i < n; ++i) workers.push_back(std::make_unique<worker>());
        return workers;
    }

    void listen_tcp(const grey::endpoint& e) {
        detail::tcp::resolver resolver(ioc_);
        asio::error_code ec;
        auto results = resolver.resolve(e.host, std::to_string(e.port), detail::tcp::resolver::passive, ec);
        if (ec) throw std::system_error(ec, fmt::format("cannot resolve {}", e.host));
        for (const auto& r : results) {
            detail::tcp::acceptor a(ioc_);
            a.open(r.endpoint().protocol());
            a.set_option(detail::tcp::acceptor::reuse_address(true));
            if (r.endpoint().address().is_v6()) a.set_option(asio::ip::v6_only(true));
            a.bind(r.endpoint(), ec);
            if (ec) throw std::system_error(ec, fmt::format("cannot listen on inet:{}:{}", e.host, e.port));
            a.listen(asio::socket_base::max_listen_connections);
            tcp_acceptors_.push_back(std::move(a));
        }
    }

    void listen_local(const std::string& path) {
        namespace fs = std::filesystem;
        std::error_code fec;
        const auto status = fs::symlink_status(path, fec);
        if (fs::exists(status)) {
            // A socket left by a server that died may be replaced; one that answers may not.
            if (!fs::is_socket(status))
                throw std::runtime_error(fmt::format("cannot listen on unix:{}: exists and is not a socket", path));
            local::socket probe(ioc_);
            asio::error_code ec;
            probe.connect(local::endpoint(path), ec);
            if (!ec) throw std::runtime_error(fmt::format("cannot listen on unix:{}: another server is listening", path));
            fs::remove(path, fec);
        }
        local::acceptor a(ioc_);
        asio::error_code ec;
        a.open(local::endpoint(path).protocol(), ec);
        if (!ec) a.bind(local::endpoint(path), ec);
        if (ec) throw std::system_error(ec, fmt::format("cannot listen on unix:{}", path));
        socket_files_.push_back(path);
        // Postfix's smtpd runs as its own user and must be able to connect.
        fs::permissions(path, socket_mode_, fec);
        if (fec) throw std::system_error(fec, fmt::format("cannot set the mode of unix:{}", path));
        a.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw std::system_error(ec, fmt::format("cannot listen on unix:{}", path));
        local_acceptors_.push_back(std::move(a));
    }

    template <class Acceptor>
    asio::awaitable<void> accept_loop(Acceptor& acceptor) {
        for (;;) {
            worker& w = *workers_[next_worker_++ % workers_.size()];
            auto [ec, socket] = co_await acceptor.async_accept(w.ioc, detail::use_nothrow);
            if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
            if (ec) {
                // Out of descriptors or the like: back off instead of spinning.
                asio::steady_timer pause(ioc_, std::chrono::milliseconds(50));
                co_await pause.async_wait(detail::use_nothrow);
                continue;
            }
            admit(std::move(socket), w);
        }
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
    void admit(Socket socket, worker& w) {
        auto sl = std::make_shared<slot>();
        {
            std::lock_guard lock(mutex_);
            if (stopping_ || slots_.size() >= settings_.max_connections) {
                // Postfix retries on another connection (smtpd_policy_service_try_limit), then
                // applies its default action: said once per crowding, not per connection.
                if (!stopping_ && !crowded_ && settings_.report)
                    settings_.report(diagnostics::level::warning,
                                     fmt::format("policy: {} connections, the limit: more are closed",
                                                 settings_.max_connections));
                crowded_ = !stopping_;
                if (greylist_.metrics)
                    greylist_.metrics->refused(stopping_ ? metrics::refusal::shutting_down
                                                         : metrics::refusal::connection_limit);
                asio::error_code ignored;
                socket.close(ignored);
                return;
            }
            crowded_ = false;
            sl->where = slots_.insert(slots_.end(), sl);
        }
        std::string name = name_of(socket);
        auto s = std::make_shared<session<Socket>>(std::move(socket), greylist_, settings_, std::move(name));
        sl->executor = w.ioc.get_executor();
        sl->stop = [weak = std::weak_ptr<session<Socket>>(s)](clock::time_point deadline) {
            if (auto live = weak.lock()) live->stop(deadline);
        };
        if (auto* m = greylist_.metrics) {
            m->connections_accepted.add();
            m->sessions_open.add(1);
        }
        asio::co_spawn(w.ioc, session<Socket>::run(std::move(s)), [this, sl](std::exception_ptr e) {
            if (e) log_exception(e);
            release(*sl);
            if (greylist_.metrics) greylist_.metrics->sessions_open.add(-1);
        });
    }

    void release(slot& sl) {
        std::lock_guard lock(mutex_);
        slots_.erase(sl.where);
        if (stopping_ && slots_.empty()) finish();
    }

    void begin_stop() {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
        asio::error_code ignored;
        if (signals_) signals_->cancel(ignored);
        for (auto& a : tcp_acceptors_) a.close(ignored);
        for (auto& a : local_acceptors_) a.close(ignored);
        const auto deadline = clock::now() + greylist_.drain;
        for (auto& sl : slots_) asio::post(sl->executor, [stop = sl->stop, deadline] { stop(deadline); });
        if (slots_.empty()) {
            finish();
            return;
        }
        drain_timer_.expires_at(deadline + std::chrono::seconds(10));
        drain_timer_.async_wait([this](asio::error_code ec) {
            if (!ec)
                for (auto& w : workers_) w->ioc.stop();
        });
    }

    void finish() {
        drain_timer_.cancel();
        for (auto& w : workers_) w->work.reset();
    }

    void log_exception(std::exception_ptr e) const {
        std::string what = "unknown exception";
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            what = ex.what();
        } catch (...) {
        }
        if (settings_.report) settings_.report(diagnostics::level::error, "policy: session ended by exception: " + what);
    }

    greylist::greylist_config greylist_;
    settings settings_;
    std::vector<listen_address> listen_;
    std::filesystem::perms socket_mode_;
    std::vector<std::unique_ptr<worker>> workers_;
    asio::io_context& ioc_;  // the first worker's: it also accepts, and takes the signals
    std::optional<asio::signal_set> signals_;  // once handle_signals() is called
    asio::steady_timer drain_timer_;
    std::vector<detail::tcp::acceptor> tcp_acceptors_;
    std::vector<local::acceptor> local_acceptors_;
    std::vector<std::string> socket_files_;
    std::mutex mutex_;
    std::list<std::shared_ptr<slot>> slots_;
    bool stopping_ = false;
    bool crowded_ = false;
    std::size_t next_worker_ = 0;
};

/// @}
} // namespace grey::policy
