// ServerCore as a guest on the program's own event loop: it serves beside the program's work,
// several servers share one io_context, and a stop completes without the program's loop being
// stopped for it.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <grey/concrete_mail_handler.hpp>
#include <grey/server_core.hpp>

using namespace std::chrono_literals;

namespace {

std::mutex threads_mutex;
std::set<std::thread::id> session_threads;

/// The smallest Protocol: a greeting naming the server, then one reply per line until QUIT.
struct Banner {
    explicit Banner(grey::session_context ctx) : ctx_(ctx) {}

    asio::awaitable<void> run() {
        {
            std::lock_guard lock(threads_mutex);
            session_threads.insert(std::this_thread::get_id());
        }
        const std::string greeting = "220 " + ctx_.config.servername + "\r\n";
        auto [ec, n] = co_await asio::async_write(ctx_.socket, asio::buffer(greeting), grey::detail::use_nothrow);
        std::string in;
        while (!ec) {
            ctx_.deadline.set_idle(true);
            std::tie(ec, n) = co_await asio::async_read_until(ctx_.socket, asio::dynamic_buffer(in), "\r\n",
                                                              grey::detail::use_nothrow);
            if (ec) break;
            const bool quit = in.starts_with("QUIT");
            in.erase(0, n);
            const std::string_view reply = quit ? "221 bye\r\n" : "250 ok\r\n";
            std::tie(ec, n) = co_await asio::async_write(ctx_.socket, asio::buffer(reply), grey::detail::use_nothrow);
            if (quit) break;
        }
    }

    grey::session_context ctx_;
};
static_assert(grey::protocol<Banner>);

struct Relay : grey::ConcreteMailHandler<Relay> {
    using ConcreteMailHandler::ConcreteMailHandler;
    bool shouldWeAcceptMail() { return true; }
};
static_assert(grey::protocol<Relay>);

struct NoConstructor {
    asio::awaitable<void> run();
};
struct NoRun {
    explicit NoRun(grey::session_context);
};
struct WrongConfig {
    explicit WrongConfig(grey::session_context);
    asio::awaitable<void> run();
    struct config_type {};
};
static_assert(!grey::session_constructible<NoConstructor>);
static_assert(!grey::runs_session<NoRun>);
static_assert(!grey::configurable<WrongConfig> && !grey::protocol<WrongConfig>);

/// A client's exchange: the greeting, one command and its reply, read on `ex`.
asio::awaitable<std::string> exchange(asio::any_io_executor ex, std::uint16_t port, std::string command) {
    asio::ip::tcp::socket s(ex);
    co_await s.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
    std::string in;
    auto n = co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n", asio::use_awaitable);
    std::string seen = in.substr(0, n);
    in.erase(0, n);
    co_await asio::async_write(s, asio::buffer(command + "\r\n"), asio::use_awaitable);
    n = co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n", asio::use_awaitable);
    co_return seen + in.substr(0, n);
}

grey::server_config config(std::string name) {
    grey::server_config c;
    c.port = 0;
    c.servername = std::move(name);
    c.smtp_port = 9;  // nothing listens: the relay's probe fails at once
    return c;
}

} // namespace

TEST_CASE("Two servers are guests on the program's io_context, beside its own work, and stop without stopping it") {
    asio::io_context ioc(1);
    grey::ServerCore<Banner> first(ioc, config("first.example"));
    grey::ServerCore<Relay> second(ioc, config("second.example"));
    first.start();
    second.start();
    const auto first_port = first.local_endpoints().front().port();
    const auto second_port = second.local_endpoints().front().port();

    bool ticked = false;
    asio::steady_timer program_timer(ioc, 10ms);
    program_timer.async_wait([&](asio::error_code ec) { ticked = !ec; });

    std::string from_first, from_second;
    int stopped = 0;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        from_first = co_await exchange(ioc.get_executor(), first_port, "QUIT");
        from_second = co_await exchange(ioc.get_executor(), second_port, "NOOP");
        first.async_stop([&] { ++stopped; });
        co_await second.async_stop(asio::use_awaitable);
        ++stopped;
    }, asio::detached);

    // No work guard: the loop runs out of work only if neither server leaves anything behind.
    ioc.run_for(20s);
    CHECK(ioc.stopped());
    CHECK(ticked);
    CHECK(from_first == "220 first.example\r\n221 bye\r\n");
    CHECK(from_second.starts_with("220 second.example"));
    CHECK(from_second.find("\r\n250 ") != std::string::npos);
    CHECK(stopped == 2);
}

TEST_CASE("A stop gives an idle session its 421 and completes once the session has ended") {
    asio::io_context ioc(1);
    grey::ServerCore<Relay> server(ioc, config("guest.example"));
    server.start();
    const auto port = server.local_endpoints().front().port();

    std::string seen;
    bool completed = false;
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        asio::ip::tcp::socket s(ioc);
        co_await s.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
        std::string in;
        const auto greeting = co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n", asio::use_awaitable);
        in.erase(0, greeting);
        server.async_stop([&] { completed = true; });
        co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n", grey::detail::use_nothrow);
        seen = in;
        CHECK_FALSE(completed);  // the session was still there when its 421 came
    }, asio::detached);
    ioc.run_for(20s);
    CHECK(seen.starts_with("421 "));
    CHECK(completed);
    CHECK(ioc.stopped());

    // Stopped is stopped: another async_stop completes at once, start() serves no more.
    bool again = false;
    server.async_stop([&] { again = true; });
    ioc.restart();
    ioc.run_for(5s);
    CHECK(again);
}

TEST_CASE("A guest on one io_context per thread hands connections to each in turn") {
    {
        std::lock_guard lock(threads_mutex);
        session_threads.clear();
    }
    asio::io_context a(1), b(1);
    auto guard_a = asio::make_work_guard(a);
    auto guard_b = asio::make_work_guard(b);
    std::thread ta([&] { a.run(); }), tb([&] { b.run(); });
    const std::set expected{ta.get_id(), tb.get_id()};

    grey::ServerCore<Banner> server({a.get_executor(), b.get_executor()}, config("pair.example"));
    asio::post(a, [&] { server.start(); });
    std::atomic<bool> started = false;
    asio::post(a, [&] { started = true; });
    while (!started) std::this_thread::sleep_for(1ms);
    const auto port = server.local_endpoints().front().port();

    asio::io_context client;
    std::vector<std::string> replies;
    asio::co_spawn(client, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 4; ++i) replies.push_back(co_await exchange(client.get_executor(), port, "QUIT"));
    }, asio::detached);
    client.run_for(20s);

    std::promise<void> done;
    server.async_stop([&] { done.set_value(); });
    CHECK(done.get_future().wait_for(20s) == std::future_status::ready);
    guard_a.reset();
    guard_b.reset();
    ta.join();
    tb.join();
    REQUIRE(replies.size() == 4);
    for (const auto& r : replies) CHECK(r == "220 pair.example\r\n221 bye\r\n");
    std::lock_guard lock(threads_mutex);
    CHECK(session_threads == expected);
}

TEST_CASE("run() belongs to a stand-alone server; a guest's program runs its own loop") {
    asio::io_context ioc;
    grey::ServerCore<Banner> server(ioc, config("guest.example"));
    CHECK_THROWS_AS(server.run(), std::logic_error);
}
