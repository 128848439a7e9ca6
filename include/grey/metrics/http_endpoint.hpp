// grey/metrics/http_endpoint.hpp — GET /metrics over HTTP/1.x, for Prometheus to scrape: the
// smallest server that does the job, on an io_context the program runs. Each connection gets
// one answer and is closed; a request must arrive within five seconds and in 8 KiB, and at
// most 16 connections are served at once, so a scraper gone wrong cannot hold the server.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "../config.hpp"
#include "../detail/asio.hpp"
#include "../diagnostics.hpp"
#include "../server/listener.hpp"

namespace grey::metrics {
/// @addtogroup group_metrics
/// @{

/// Answers GET /metrics with what `body` returns, composed anew for each scrape (typically
/// registry::write); other paths get 404, other methods 405.
class http_endpoint {
  public:
    /// Listens on `where` now, on every address it resolves to (throws std::system_error when
    /// it cannot); serves once start()ed.
    http_endpoint(asio::io_context& ioc, const endpoint& where, std::function<std::string()> body)
        : ioc_(ioc), listener_(ioc.get_executor()), body_(std::move(body)) {
        listener_.add_tcp(where);
    }

    /// Where it listens (the first address, when the host has several): with port 0, the port
    /// the system chose.
    asio::ip::tcp::endpoint local_endpoint() const { return listener_.tcp_endpoints().front(); }

    /// Starts serving, as a coroutine per listening socket on the io_context given at
    /// construction.
    void start() {
        for (auto& door : listener_.tcp())
            asio::co_spawn(ioc_, accept_loop(door.acceptor), diagnostics::reported{"metrics"});
    }

    /// Stops accepting; answers in progress finish. Call on the io_context's thread, or post.
    void stop() { listener_.close(); }

  private:
    static constexpr std::size_t max_request = 8192;
    static constexpr std::size_t max_connections = 16;

    asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor) {
        co_await server::accept_each(
            acceptor, [this]() -> asio::any_io_executor { return ioc_.get_executor(); },
            [this](asio::ip::tcp::socket socket, const asio::ip::tcp::endpoint&) {
                if (*open_ >= max_connections) return;  // the socket closes as it goes
                asio::co_spawn(ioc_, answer(std::move(socket), open_), diagnostics::reported{"metrics"});
            });
    }

    asio::awaitable<void> answer(detail::tcp::socket accepted, std::shared_ptr<std::size_t> open) {
        ++*open;
        // Shared with the deadline's handler, which may run after this coroutine has ended.
        const auto socket_ptr = std::make_shared<detail::tcp::socket>(std::move(accepted));
        detail::tcp::socket& socket = *socket_ptr;
        struct leave {
            std::shared_ptr<std::size_t> open;
            ~leave() { --*open; }
        } leaving{open};
        asio::steady_timer deadline(socket.get_executor(), std::chrono::seconds(5));
        deadline.async_wait([socket_ptr](asio::error_code ec) {
            asio::error_code ignored;
            if (!ec) socket_ptr->close(ignored);
        });
        std::string request;
        while (request.find("\r\n\r\n") == std::string::npos && request.find("\n\n") == std::string::npos) {
            if (request.size() >= max_request) co_return;
            char buffer[1024];
            auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), detail::use_nothrow);
            if (ec) co_return;
            request.append(buffer, n);
        }
        const std::string_view line = std::string_view(request).substr(0, request.find_first_of("\r\n"));
        std::string reply;
        if (line.starts_with("GET /metrics ") || line == "GET /metrics") {
            const std::string body = body_();
            reply = fmt::format("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                                "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                                body.size(), body);
        } else if (line.starts_with("GET ")) {
            reply = "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        } else {
            reply = "HTTP/1.0 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        }
        auto [ec, n] = co_await asio::async_write(socket, asio::buffer(reply), detail::use_nothrow);
        (void)ec;
        (void)n;
        deadline.cancel();
        asio::error_code ignored;
        socket.shutdown(detail::tcp::socket::shutdown_send, ignored);
        socket.close(ignored);
    }

    asio::io_context& ioc_;
    server::listener<> listener_;
    std::function<std::string()> body_;
    std::shared_ptr<std::size_t> open_ = std::make_shared<std::size_t>(0);
};

/// @}
} // namespace grey::metrics
