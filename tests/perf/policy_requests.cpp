// policy_requests — policy decisions per second of a Postfix policy server (SMTPD_POLICY_README):
// N connections, each carrying request after request as Postfix's smtpd does (one request, wait
// for its answer, the next; --pipeline K keeps K in flight instead). Every request is a RCPT
// request for a triplet never seen before, from one of many client addresses: a greylisting
// server's first-sight path, expected to answer action=DEFER_IF_PERMIT each time (--expect names
// another action: DUNNO, for a server that answers everything so).
//
// Prints the answers by action, then one line of figures; a run in which any answer was not the
// expected action, or a connection failed, is not a figure (exit status 1). The client's own CPU share
// is printed so that a run can be checked not to have measured the client.
//
//   policy_requests --port 10023 [--seconds 3] [--connections 1] [--pipeline 1] [--expect DEFER_IF_PERMIT]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

#include <grey/detail/asio.hpp>

namespace {

using grey::detail::tcp;
using grey::detail::use_nothrow;
using steady = std::chrono::steady_clock;

struct tally {
    std::map<std::string, std::size_t, std::less<>> actions;  // by the action's first word
    std::size_t answers = 0;
    std::size_t failures = 0;  // connections that failed or were cut short
    std::vector<std::string> why;
};

/// One request as Postfix 3.x sends it for RCPT, with the attributes greylisting reads (Postfix
/// sends some 35; a server is to ignore those it does not know). `n` makes the triplet new: the
/// sender and the recipient carry it, and the client address walks over 10.0.0.0/8 (only data
/// in the request: nothing connects to it).
void append_request(std::string& out, std::size_t connection, std::size_t n, std::string_view run) {
    const std::size_t host = connection * 1000003 + n;
    const unsigned a = 1 + unsigned(host >> 16) % 254, b = unsigned(host >> 8) % 256, c = 1 + unsigned(host % 254);
    fmt::format_to(std::back_inserter(out),
                   "request=smtpd_access_policy\n"
                   "protocol_state=RCPT\n"
                   "protocol_name=ESMTP\n"
                   "client_address=10.{0}.{1}.{2}\n"
                   "client_name=mx{0}-{1}-{2}.sender{3}.example\n"
                   "helo_name=mx{0}-{1}-{2}.sender{3}.example\n"
                   "sender=s{4}.{3}.{5}@sender{3}.example\n"
                   "recipient=r{4}.{3}.{5}@example.com\n"
                   "recipient_count=0\n"
                   "instance={5}.{3}.{4}\n"
                   "\n",
                   a, b, c, connection, n, run);
}

/// Takes the whole answers at the front of `pending` (each `name=value` lines ending in an empty
/// line), counting each by its action's first word. Returns how many it took.
std::size_t take_answers(std::string& pending, tally& t) {
    std::size_t taken = 0, at = 0;
    for (;;) {
        const std::size_t end = pending.find("\n\n", at);
        if (end == std::string::npos) break;
        std::string_view answer(pending.data() + at, end - at);
        std::string_view action = "no-action";
        if (answer.starts_with("action=")) {
            action = answer.substr(7);
            action = action.substr(0, std::min(action.find(' '), action.find('\n')));
        }
        auto it = t.actions.find(action);
        if (it == t.actions.end()) it = t.actions.emplace(std::string(action), 0).first;
        ++it->second;
        ++taken;
        at = end + 2;
    }
    pending.erase(0, at);
    return taken;
}

asio::awaitable<void> connection(tcp::endpoint server, steady::time_point until, std::size_t pipeline,
                                 std::size_t index, const std::string& run, std::shared_ptr<tcp::socket> s,
                                 tally& t) {
    auto [cec] = co_await s->async_connect(server, use_nothrow);
    if (cec) {
        ++t.failures;
        t.why.push_back(fmt::format("connect: {}", cec.message()));
        co_return;
    }
    s->set_option(tcp::no_delay(true));
    std::string out, pending;
    std::size_t sent = 0, answered = 0;
    char buffer[16384];
    for (;;) {
        // Keep `pipeline` requests in flight until the time is up, then collect what is owed.
        out.clear();
        while (steady::now() < until && sent - answered < pipeline) append_request(out, index, sent++, run);
        if (!out.empty()) {
            auto [wec, w] = co_await asio::async_write(*s, asio::buffer(out), use_nothrow);
            if (wec) {
                ++t.failures;
                t.why.push_back(fmt::format("write: {}", wec.message()));
                co_return;
            }
        }
        if (answered == sent) break;
        auto [rec, got] = co_await s->async_read_some(asio::buffer(buffer), use_nothrow);
        if (rec) {
            ++t.failures;
            t.why.push_back(fmt::format("read after {} answers: {}", answered, rec.message()));
            co_return;
        }
        pending.append(buffer, got);
        const std::size_t n = take_answers(pending, t);
        answered += n;
        t.answers += n;
    }
    if (!pending.empty()) {
        ++t.failures;
        t.why.push_back("bytes after the last answer");
    }
    asio::error_code ignored;
    s->shutdown(tcp::socket::shutdown_both, ignored);
    s->close(ignored);
}

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

} // namespace

int main(int argc, char** argv) {
    unsigned short port = 0;
    double seconds = 3;
    std::size_t connections = 1, pipeline = 1;
    std::string expect = "DEFER_IF_PERMIT";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--port") port = static_cast<unsigned short>(std::stoul(argv[i + 1]));
        else if (a == "--seconds") seconds = std::stod(argv[i + 1]);
        else if (a == "--connections") connections = std::stoul(argv[i + 1]);
        else if (a == "--pipeline") pipeline = std::stoul(argv[i + 1]);
        else if (a == "--expect") expect = argv[i + 1];
    }
    if (!port || !connections || !pipeline || connections > 10000 || seconds <= 0 || seconds > 3600) {
        fmt::print(stderr, "usage: policy_requests --port PORT [--seconds S] [--connections N] [--pipeline K] "
                           "[--expect ACTION]\n");
        return 2;
    }
    asio::io_context ioc(1);
    tally t;
    const tcp::endpoint server(asio::ip::make_address("127.0.0.1"), port);
    const auto start = steady::now();
    const auto until = start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
    const std::string run = fmt::format("{}x{}", ::getpid(), start.time_since_epoch().count() % 1000000007);
    const double cpu_before = cpu_seconds();

    // A server that stops answering must not hang the run: 10 s after the end, what is still
    // open is closed (its pending read then fails, and counts as a failure). The watchdog is
    // cancelled when the last connection ends.
    asio::steady_timer watchdog(ioc, until + std::chrono::seconds(10));
    std::vector<std::shared_ptr<tcp::socket>> sockets;
    std::size_t finished = 0;
    for (std::size_t c = 0; c < connections; ++c) {
        sockets.push_back(std::make_shared<tcp::socket>(ioc));
        asio::co_spawn(ioc, connection(server, until, pipeline, c, run, sockets.back(), t),
                       [&](std::exception_ptr e) {
                           if (e) {
                               ++t.failures;
                               t.why.push_back("a connection ended by an exception");
                           }
                           if (++finished == connections) watchdog.cancel();
                       });
    }
    watchdog.async_wait([&](asio::error_code ec) {
        if (ec) return;
        for (auto& s : sockets) {
            asio::error_code ignored;
            s->close(ignored);
        }
    });
    ioc.run();

    // The rate counts the answers got by the end of the run, those owed at `until` included:
    // the requests in flight then were sent within it.
    const double elapsed = std::chrono::duration<double>(steady::now() - start).count();
    const double cpu = cpu_seconds() - cpu_before;
    std::size_t expected = 0, other = 0;
    for (const auto& [action, n] : t.actions) {
        fmt::print("action {} {}\n", action, n);
        (action == expect ? expected : other) += n;
    }
    for (const auto& why : t.why) fmt::print(stderr, "policy_requests: {}\n", why);
    fmt::print("answers {} expected {} other {} failures {} seconds {:.3f} rate {:.0f} client_cpu {:.3f}\n",
               t.answers, expected, other, t.failures, elapsed, double(t.answers) / elapsed, cpu / elapsed);
    return other || t.failures || !t.answers ? 1 : 0;
}
