// A user's program: includes the umbrella header, declares the seed's handler, and hosts an
// SMTP front on its own Asio loop, as README's "Grey inside your program" shows; a client of
// its own reads the greeting, then the program stops the server. Exits 0 on success.
#include <string>

#include <grey/grey.hpp>

struct SpamMeHandler : grey::ConcreteMailHandler<SpamMeHandler> {
    using ConcreteMailHandler::ConcreteMailHandler;
    bool shouldWeAcceptMail() { return true; }
};

int main() {
    asio::io_context ioc;  // the program's loop
    grey::ServerCore<SpamMeHandler> smtp(ioc, {.port = 0, .smtp_ip = "127.0.0.1", .smtp_port = 2525});
    smtp.start();

    std::string greeting;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        asio::ip::tcp::socket s(ioc);
        co_await s.async_connect(smtp.local_endpoints().front(), asio::use_awaitable);
        co_await asio::async_read_until(s, asio::dynamic_buffer(greeting), "\r\n", asio::use_awaitable);
        co_await smtp.async_stop(asio::use_awaitable);
    }, asio::detached);
    ioc.run();  // returns once the server has stopped: it leaves no work behind

    auto cmd = grey::smtp::parse_command("MAIL FROM:<a@example.com>");
    return (greeting.starts_with("220 ") && cmd && cmd->verb == grey::smtp::verb::mail) ? 0 : 1;
}
