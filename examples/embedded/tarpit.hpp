// tarpit.hpp — a Protocol that is not a MailHandler: it refuses a client with a valid SMTP
// reply (554, which RFC 5321 §3.1 allows in place of the greeting) given one octet at a time,
// so that a sender the program has decided against is held for a while at the cost of one
// timer, not a thread. ServerCore runs it as it runs a MailHandler: one object per connection,
// built from the session_context, and its run() is the session.
#pragma once

#include <chrono>
#include <string_view>

#include <grey/protocol.hpp>

namespace embedded {

/// What the tarpit adds to the server's configuration; ServerCore takes it as `config_type`.
struct tarpit_config : grey::server_config {
    std::chrono::milliseconds drip{1000};  ///< the pause before each octet
    std::chrono::seconds hold{120};        ///< the longest a client is kept
};

class Tarpit {
  public:
    using config_type = tarpit_config;

    explicit Tarpit(grey::session_context ctx)
        : ctx_(ctx), config_(static_cast<const tarpit_config&>(ctx.config)), pause_(ctx.socket.get_executor()) {}

    asio::awaitable<void> run() {
        static constexpr std::string_view refusal = "554 5.7.1 Service unavailable\r\n";
        const auto until = std::chrono::steady_clock::now() + config_.hold;
        for (char octet : refusal) {
            // A stop ends the session at the next octet: the pause is not a socket wait the
            // server's deadline could interrupt.
            if (ctx_.deadline.shutting_down() || std::chrono::steady_clock::now() >= until) break;
            pause_.expires_after(config_.drip);
            auto [paused] = co_await pause_.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
            if (paused) break;
            ctx_.deadline.expires_after(config_.timeouts.send);  // a client that stops reading
            auto [ec, n] = co_await asio::async_write(ctx_.socket, asio::buffer(&octet, 1),
                                                      asio::experimental::as_tuple(asio::use_awaitable));
            if (ec) break;
        }
        ctx_.client_leaving();
        asio::error_code ignored;
        ctx_.socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        ctx_.socket.close(ignored);
    }

  private:
    grey::session_context ctx_;
    const tarpit_config& config_;
    asio::steady_timer pause_;
};

static_assert(grey::protocol<Tarpit>);

} // namespace embedded
