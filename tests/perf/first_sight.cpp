// first_sight — first-sight deferrals per second of a greylisting server: many sessions at once,
// each as a bulk sender makes it (greeting, EHLO, then MAIL and RCPT for a triplet never seen
// before and QUIT in one write, as PIPELINING allows: EHLO must end its group, RFC 2920 §3.1),
// each expected to end in 451 at RCPT.
// Prints the rate, and how many sessions ended otherwise (a run with any is not a figure).
//
//   first_sight --port 2525 [--seconds 3] [--concurrency 64]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

#include <fmt/format.h>

#include <grey/detail/asio.hpp>

namespace {

using grey::detail::tcp;
using grey::detail::use_nothrow;
using steady = std::chrono::steady_clock;

struct tally {
    std::size_t deferred = 0;
    std::size_t other = 0;
};

/// The code of the last complete reply line in `text` that the `index`th reply starts with:
/// replies are counted by their final lines ("NNN " rather than "NNN-").
int nth_reply_code(std::string_view text, int index) {
    int seen = 0;
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t end = text.find("\r\n", at);
        if (end == std::string_view::npos) break;
        const std::string_view line = text.substr(at, end - at);
        if (line.size() >= 4 && line[3] == ' ' && seen++ == index) return std::atoi(std::string(line.substr(0, 3)).c_str());
        at = end + 2;
    }
    return 0;
}

asio::awaitable<void> sessions(tcp::endpoint server, steady::time_point until, const std::string& run,
                               std::size_t worker, tally& t) {
    auto ex = co_await asio::this_coro::executor;
    std::string received;
    for (std::size_t n = 0; steady::now() < until; ++n) {
        tcp::socket s(ex);
        auto [ec] = co_await s.async_connect(server, use_nothrow);
        if (ec) {
            ++t.other;
            continue;
        }
        received.clear();
        char buffer[4096];
        int written = 0;  // 1: EHLO, after the greeting; 2: the rest, after EHLO's reply
        for (;;) {
            auto [rec, got] = co_await s.async_read_some(asio::buffer(buffer), use_nothrow);
            if (rec) break;
            received.append(buffer, got);
            std::string commands;
            if (written == 0 && nth_reply_code(received, 0)) {
                commands = fmt::format("EHLO bench{}.example\r\n", n);
            } else if (written == 1 && nth_reply_code(received, 1)) {
                commands = fmt::format("MAIL FROM:<s{0}.{1}.{2}@sender.example>\r\n"
                                       "RCPT TO:<r{0}.{1}.{2}@example.com>\r\nQUIT\r\n",
                                       n, worker, run);
            }
            if (commands.empty()) continue;
            auto [wec, sent] = co_await asio::async_write(s, asio::buffer(commands), use_nothrow);
            if (wec) break;
            ++written;
        }
        // Replies: greeting, EHLO, MAIL, RCPT, QUIT.
        if (nth_reply_code(received, 3) == 451) ++t.deferred;
        else ++t.other;
    }
}

} // namespace

int main(int argc, char** argv) {
    unsigned short port = 0;
    double seconds = 3;
    std::size_t concurrency = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--port") port = static_cast<unsigned short>(std::stoul(argv[i + 1]));
        else if (a == "--seconds") seconds = std::stod(argv[i + 1]);
        else if (a == "--concurrency") concurrency = std::stoul(argv[i + 1]);
    }
    if (!port) {
        fmt::print(stderr, "usage: first_sight --port PORT [--seconds S] [--concurrency N]\n");
        return 2;
    }
    asio::io_context ioc;
    tally t;
    const tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
    const auto start = steady::now();
    const auto until = start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
    const std::string run = fmt::format("{}x{}", ::getpid(), start.time_since_epoch().count());
    for (std::size_t w = 0; w < concurrency; ++w) asio::co_spawn(ioc, sessions(server, until, run, w, t), asio::detached);
    ioc.run();
    const double elapsed = std::chrono::duration<double>(steady::now() - start).count();
    fmt::print("deferred {} other {} seconds {:.3f} rate {:.0f}\n", t.deferred, t.other, elapsed,
               double(t.deferred) / elapsed);
    return t.other ? 1 : 0;
}
