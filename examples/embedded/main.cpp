// embedded — Grey as a guest in a program that already has its own Asio event loop. The
// program here is a small service with a control socket (one command per line: `status`,
// `stop`); on the same io_context, on the same thread, it hosts two servers:
//   - an SMTP front that relays every message to the real MTA (a ConcreteMailHandler), and
//   - a tarpit (tarpit.hpp) for the senders it has decided against, a Protocol of its own.
// Neither server owns a thread or a signal: the program runs the loop, and stops them with
// async_stop(), which completes once their last session has ended.
//
//   embedded --listen 127.0.0.1:1025 --upstream 127.0.0.1:25 --tarpit 127.0.0.1:1026
//            --control 127.0.0.1:1027
#include <csignal>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <grey/grey.hpp>

#include "tarpit.hpp"

namespace {

struct RelayEverything : grey::ConcreteMailHandler<RelayEverything> {
    using ConcreteMailHandler::ConcreteMailHandler;
    bool shouldWeAcceptMail() { return true; }
};

grey::endpoint endpoint_or_throw(const std::string& text) {
    auto e = grey::parse_endpoint(text);
    if (!e) throw CLI::ValidationError(fmt::format("not HOST:PORT: {}", text));
    return *e;
}

std::string where(const asio::ip::tcp::endpoint& ep) { return grey::ServerCore<embedded::Tarpit>::format(ep); }

/// The program's own service, which was there before Grey: a line per command, a line per reply.
class control_socket {
  public:
    control_socket(asio::io_context& ioc, const grey::endpoint& at, std::function<std::string()> status,
                   std::function<asio::awaitable<void>()> stop)
        : acceptor_(ioc, {asio::ip::make_address(at.host), at.port}), status_(std::move(status)),
          stop_(std::move(stop)) {}

    asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

    asio::awaitable<void> serve() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(asio::experimental::as_tuple(asio::use_awaitable));
            if (ec) co_return;  // closed by the stop
            co_await converse(std::move(socket));
        }
    }

    void close() {
        asio::error_code ignored;
        acceptor_.close(ignored);
    }

  private:
    asio::awaitable<void> converse(asio::ip::tcp::socket socket) {
        const auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);
        std::string in;
        for (;;) {
            auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(in, 1024), "\n", nothrow);
            if (ec) co_return;
            std::string command = in.substr(0, n);
            in.erase(0, n);
            while (!command.empty() && (command.back() == '\n' || command.back() == '\r')) command.pop_back();
            std::string reply;
            if (command == "status") {
                reply = status_() + "\n";
            } else if (command == "stop") {
                co_await asio::async_write(socket, asio::buffer(std::string("stopping\n")), nothrow);
                co_await stop_();
                reply = "stopped\n";
            } else {
                reply = "unknown command; try status or stop\n";
            }
            auto [write_ec, written] = co_await asio::async_write(socket, asio::buffer(reply), nothrow);
            if (write_ec || command == "stop") co_return;
        }
    }

    asio::ip::tcp::acceptor acceptor_;
    std::function<std::string()> status_;
    std::function<asio::awaitable<void>()> stop_;
};

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"embedded: an Asio program that hosts an SMTP front and a tarpit on its own event loop"};
    std::string listen = "127.0.0.1:1025", upstream = "127.0.0.1:25", tarpit = "127.0.0.1:1026",
                control = "127.0.0.1:1027";
    unsigned drip_ms = 1000;
    app.add_option("--listen", listen, "SMTP front: where clients connect")->capture_default_str();
    app.add_option("--upstream", upstream, "The real MTA the front relays to")->capture_default_str();
    app.add_option("--tarpit", tarpit, "Where refused senders are held")->capture_default_str();
    app.add_option("--drip", drip_ms, "Milliseconds between two octets of the tarpit's reply")->capture_default_str();
    app.add_option("--control", control, "The program's control socket (status, stop)")->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    asio::io_context ioc(1);  // the program's loop: one thread, no lock anywhere

    grey::server_config front_config;
    embedded::tarpit_config tarpit_config;
    try {
        const auto up = endpoint_or_throw(upstream);
        front_config.listen = {endpoint_or_throw(listen)};
        front_config.smtp_ip = up.host;
        front_config.smtp_port = up.port;
        tarpit_config.listen = {endpoint_or_throw(tarpit)};
        tarpit_config.drip = std::chrono::milliseconds(drip_ms);
        tarpit_config.upstream_pool_size = 0;  // it relays nothing
    } catch (const CLI::Error& e) {
        return app.exit(e);
    }

    grey::ServerCore<RelayEverything> front(ioc, front_config);
    grey::ServerCore<embedded::Tarpit> held(ioc, tarpit_config);
    asio::signal_set signals(ioc, SIGINT, SIGTERM);  // the program's, as they always were
    std::optional<control_socket> controls;
    try {
        front.start();
        held.start();
        controls.emplace(
            ioc, endpoint_or_throw(control),
            [&] { return fmt::format("smtp {} tarpit {}", where(front.local_endpoints().front()),
                                     where(held.local_endpoints().front())); },
            [&]() -> asio::awaitable<void> {
                signals.cancel();
                controls->close();
                co_await front.async_stop(asio::use_awaitable);
                co_await held.async_stop(asio::use_awaitable);
            });
    } catch (const std::exception& e) {
        fmt::print(stderr, "embedded: {}\n", e.what());
        return 1;
    }
    for (const auto& ep : front.local_endpoints()) fmt::print("listening on {}\n", where(ep));
    for (const auto& ep : held.local_endpoints()) fmt::print("tarpit on {}\n", where(ep));
    fmt::print("control on {}\n", where(controls->local_endpoint()));
    std::fflush(stdout);

    // The program's signals: the same stop as the control socket's.
    signals.async_wait([&](asio::error_code ec, int) {
        if (ec) return;
        controls->close();
        front.async_stop([] {});
        held.async_stop([] {});
    });
    asio::co_spawn(ioc, controls->serve(), grey::diagnostics::reported{"control"});

    // Returns when nothing is left to do: both servers stopped and the control socket closed.
    ioc.run();
    fmt::print("stopped\n");
    return 0;
}
