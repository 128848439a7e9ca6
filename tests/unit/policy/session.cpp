// The policy decision (responder) with the in-memory store and a clock the test moves, and the
// session loop over a unix-domain socket pair: the same code the server runs over TCP.
#include <grey/greylist/memory_store.hpp>
#include <grey/greylist/postgrey_whitelists.hpp>
#include <grey/policy/session.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace grey;
using namespace std::chrono_literals;
using policy::request;

namespace {

/// A store that never answers: Redis or SQLite down.
class down_store final : public greylist::store {
    template <class T>
    static asio::awaitable<result<T>> failed() {
        co_return make_error_code(errc::store_failed);
    }

  public:
    asio::awaitable<result<greylist::decision>> check(const greylist::triplet&, const greylist::timing&,
                                                      greylist::clock::time_point) override {
        return failed<greylist::decision>();
    }
    asio::awaitable<result<std::optional<greylist::client_record>>> client(const std::string&) override {
        return failed<std::optional<greylist::client_record>>();
    }
    asio::awaitable<result<void>> count_pass(const std::string&, const greylist::timing&,
                                             greylist::clock::time_point) override {
        co_return make_error_code(errc::store_failed);
    }
    asio::awaitable<result<std::vector<greylist::entry>>> find(std::string) override {
        return failed<std::vector<greylist::entry>>();
    }
    asio::awaitable<result<void>> whitelist(const greylist::triplet&, const greylist::timing&,
                                            greylist::clock::time_point) override {
        co_return make_error_code(errc::store_failed);
    }
    asio::awaitable<result<bool>> remove(const greylist::triplet&) override { return failed<bool>(); }
    asio::awaitable<result<std::size_t>> purge(const greylist::timing&, greylist::clock::time_point) override {
        return failed<std::size_t>();
    }
};

/// A memory store that cannot count passes: auto-whitelisting's bookkeeping is down, the
/// greylist is not.
class uncounting_store final : public greylist::store {
  public:
    asio::awaitable<result<greylist::decision>> check(const greylist::triplet& t, const greylist::timing& timing,
                                                      greylist::clock::time_point now) override {
        co_return co_await inner_.check(t, timing, now);
    }
    asio::awaitable<result<std::optional<greylist::client_record>>> client(const std::string& group) override {
        co_return co_await inner_.client(group);
    }
    asio::awaitable<result<void>> count_pass(const std::string&, const greylist::timing&,
                                             greylist::clock::time_point) override {
        co_return make_error_code(errc::store_failed);
    }
    asio::awaitable<result<std::vector<greylist::entry>>> find(std::string needle) override {
        co_return co_await inner_.find(std::move(needle));
    }
    asio::awaitable<result<void>> whitelist(const greylist::triplet& t, const greylist::timing& timing,
                                            greylist::clock::time_point now) override {
        co_return co_await inner_.whitelist(t, timing, now);
    }
    asio::awaitable<result<bool>> remove(const greylist::triplet& t) override { co_return co_await inner_.remove(t); }
    asio::awaitable<result<std::size_t>> purge(const greylist::timing& timing, greylist::clock::time_point now) override {
        co_return co_await inner_.purge(timing, now);
    }

  private:
    greylist::memory_store inner_;
};

/// greylist_settings with a memory store, a clock the test moves, and what is logged and reported.
struct fixture {
    greylist::clock::time_point now = greylist::clock::time_point{} + 20000 * 24h;
    std::vector<std::string> logged, reported;
    greylist::greylist_settings config;
    policy::settings settings;

    fixture() {
        config.timing.delay = 300s;
        config.auto_whitelist_after = 0;
        settings.servername = "mx.example";
        config.store = std::make_shared<greylist::memory_store>();
        config.now = [this] { return now; };
        config.log = [this](const std::string& line) { logged.push_back(line); };
        config.report = [this](const std::string& line) { reported.push_back(line); };
        config.reputation.enabled = false;  // judging first has its own tests (greylist/reputation.cpp)
        settings.report = [this](diagnostics::level, const std::string& line) { reported.push_back(line); };
    }

    std::string ask(policy::responder& r, const request& q) {
        asio::io_context ioc;
        std::optional<std::string> out;
        asio::co_spawn(ioc, r.answer(q), [&](std::exception_ptr e, std::string answer) {
            if (e) std::rethrow_exception(e);
            out = std::move(answer);
        });
        ioc.run();
        REQUIRE(out);
        return *out;
    }
};

request rcpt(std::string recipient = "bob@example.com", std::string instance = "1.1") {
    request r;
    r.request = "smtpd_access_policy";
    r.protocol_state = "RCPT";
    r.helo_name = "client.example";
    r.sender = "alice@example.org";
    r.recipient = std::move(recipient);
    r.client_address = "192.0.2.7";
    r.instance = std::move(instance);
    return r;
}

} // namespace

TEST_CASE("A first RCPT is deferred; a retry after the delay passes; then it is known") {
    fixture f;
    policy::responder r(f.config, f.settings, "test");
    CHECK(f.ask(r, rcpt()) == "action=DEFER_IF_PERMIT Greylisted, please try again later\n\n");
    f.now += 299s;
    CHECK(f.ask(r, rcpt()) == "action=DEFER_IF_PERMIT Greylisted, please try again later\n\n");
    f.now += 2s;
    CHECK(f.ask(r, rcpt()) == "action=DUNNO\n\n");  // add_header is off
    CHECK(f.ask(r, rcpt()) == "action=DUNNO\n\n");
    REQUIRE(f.logged.size() == 4);
    CHECK(f.logged[0].substr(14) == " | client.example | 192.0.2.7 | alice@example.org | bob@example.com greylisted (first seen) | policy");
    CHECK(f.logged[1].substr(14) == " | client.example | 192.0.2.7 | alice@example.org | bob@example.com greylisted (early retry (1 s missing)) | policy");
    CHECK(f.logged[2].substr(14) == " | client.example | 192.0.2.7 | alice@example.org | bob@example.com accepted (passed after 301 s) | policy");
    CHECK(f.reported.empty());
}

TEST_CASE("A message held back gets X-Greylist once, when add_header is on") {
    fixture f;
    f.config.add_header = true;
    policy::responder r(f.config, f.settings, "test");
    f.ask(r, rcpt("bob@example.com", "1.1"));
    f.ask(r, rcpt("carol@example.com", "1.1"));
    f.now += 301s;
    CHECK(f.ask(r, rcpt("bob@example.com", "2.2")) ==
          "action=PREPEND " + greylist::x_greylist_header(301s, "mx.example", f.now) + "\n\n");
    CHECK(f.ask(r, rcpt("carol@example.com", "2.2")) == "action=DUNNO\n\n");  // same message: one header
    SUBCASE("a known triplet gets none") {
        CHECK(f.ask(r, rcpt("bob@example.com", "3.3")) == "action=DUNNO\n\n");
    }
}

TEST_CASE("The header is the proxy's") {
    const auto t = greylist::clock::from_time_t(1795558364);  // Tue, 24 Nov 2026 22:12:44 UTC
    CHECK(greylist::x_greylist_header(301s, "mx.example", t) ==
          "X-Greylist: delayed 301 seconds by Grey at mx.example; Tue, 24 Nov 2026 22:12:44 +0000");
}

TEST_CASE("The deferral text is configurable, with %r and %s") {
    fixture f;
    f.settings.greylist_text = "Greylisted for %s seconds, see https://help.example/%r";
    policy::responder r(f.config, f.settings, "test");
    CHECK(f.ask(r, rcpt()) == "action=DEFER_IF_PERMIT Greylisted for 300 seconds, see https://help.example/example.com\n\n");
    f.now += 100s;
    CHECK(f.ask(r, rcpt()) == "action=DEFER_IF_PERMIT Greylisted for 200 seconds, see https://help.example/example.com\n\n");
}

TEST_CASE("Only RCPT is greylisted: every other protocol state gets DUNNO, unlogged") {
    fixture f;
    policy::responder r(f.config, f.settings, "test");
    for (const char* state : {"CONNECT", "EHLO", "HELO", "MAIL", "DATA", "END-OF-MESSAGE", "VRFY", "ETRN", ""}) {
        request q = rcpt();
        q.protocol_state = state;
        CHECK(f.ask(r, q) == "action=DUNNO\n\n");
    }
    CHECK(f.logged.empty());
    SUBCASE("rcpt in lower case is RCPT") {
        request q = rcpt();
        q.protocol_state = "rcpt";
        CHECK(f.ask(r, q).starts_with("action=DEFER_IF_PERMIT"));
    }
}

TEST_CASE("Relay control is Postfix's in this mode: allowed_domains does not refuse") {
    fixture f;
    greylist::lists only_example_net;
    only_example_net.allowed_domains = {"example.net"};
    f.config.lists = std::make_shared<greylist::shared_lists>(only_example_net);
    policy::responder r(f.config, f.settings, "test");
    CHECK(f.ask(r, rcpt("bob@example.com")).starts_with("action=DEFER_IF_PERMIT Greylisted"));
    SUBCASE("allowed senders are not greylisted") {
        greylist::lists nets;
        nets.allowed_sender_nets = {*greylist::network::parse("192.0.2.0/24")};
        f.config.lists->replace(nets);
        CHECK(f.ask(r, rcpt("dave@example.com")) == "action=DUNNO\n\n");  // each request reads the lists anew
    }
}

TEST_CASE("A request that is not for smtpd_access_policy, or lacks what RCPT needs, gets DUNNO and a warning") {
    fixture f;
    policy::responder r(f.config, f.settings, "127.0.0.1:4000");
    request q = rcpt();
    q.request = "";
    CHECK(f.ask(r, q) == "action=DUNNO\n\n");
    q = rcpt();
    q.recipient = "";
    CHECK(f.ask(r, q) == "action=DUNNO\n\n");
    q = rcpt();
    q.client_address = "";
    CHECK(f.ask(r, q) == "action=DUNNO\n\n");
    REQUIRE(f.reported.size() == 3);
    CHECK(f.reported[0] == "policy client 127.0.0.1:4000: request type '' is not smtpd_access_policy: answered DUNNO");
    CHECK(f.logged.empty());
}

TEST_CASE("A store that does not answer defers with 4.3.0, logged as the proxy logs it, reported once") {
    fixture f;
    f.config.store = std::make_shared<down_store>();
    policy::responder r(f.config, f.settings, "test");
    CHECK(f.ask(r, rcpt()) == "action=DEFER_IF_PERMIT 4.3.0 Greylist temporarily unavailable, try again later\n\n");
    CHECK(f.ask(r, rcpt("carol@example.com")).starts_with("action=DEFER_IF_PERMIT 4.3.0 "));
    REQUIRE(f.logged.size() == 2);
    CHECK(f.logged[0].ends_with("| bob@example.com tempfail (store unavailable) | policy"));
    REQUIRE(f.reported.size() == 1);
    CHECK(f.reported[0] == "greylist store unavailable: greylist store failed");
}

// ---- The session loop, over a socket pair ----

namespace {
using local = asio::local::stream_protocol;

/// Runs a session on one end of a socket pair; `client` writes `input` (then closes its writing
/// side when `close_after`), and everything the session sends back is returned.
struct session_run {
    std::string answers;
    bool closed_by_server = false;
};

session_run converse(fixture& f, const std::string& input, bool close_after = true,
                     std::chrono::milliseconds run_for = 2000ms) {
    asio::io_context ioc;
    local::socket server_end(ioc), client_end(ioc);
    asio::local::connect_pair(server_end, client_end);
    auto s = std::make_shared<policy::session<local::socket>>(std::move(server_end), f.config, f.settings, "pair");
    asio::co_spawn(ioc, policy::session<local::socket>::run(s), asio::detached);
    s.reset();
    session_run out;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto [wec, wn] = co_await asio::async_write(client_end, asio::buffer(input), detail::use_nothrow);
            (void)wn;
            (void)wec;
            if (close_after) client_end.shutdown(local::socket::shutdown_send);
            std::array<char, 1024> buf;
            for (;;) {
                auto [ec, n] = co_await client_end.async_read_some(asio::buffer(buf), detail::use_nothrow);
                if (ec) {
                    out.closed_by_server = ec == asio::error::eof || ec == asio::error::connection_reset;
                    co_return;
                }
                out.answers.append(buf.data(), n);
            }
        },
        asio::detached);
    ioc.run_for(run_for);
    return out;
}

const std::string rcpt_request = "request=smtpd_access_policy\nprotocol_state=RCPT\nhelo_name=client.example\n"
                                 "sender=alice@example.org\nrecipient=bob@example.com\nclient_address=192.0.2.7\n\n";
const std::string data_request = "request=smtpd_access_policy\nprotocol_state=DATA\n\n";
} // namespace

TEST_CASE("A pass the store cannot count still passes, and the outage is reported") {
    fixture f;
    f.config.auto_whitelist_after = 5;
    f.config.store = std::make_shared<uncounting_store>();
    policy::responder r(f.config, f.settings, "test");
    CHECK(f.ask(r, rcpt()).starts_with("action=DEFER_IF_PERMIT Greylisted"));
    CHECK(f.reported.empty());
    f.now += 301s;
    CHECK(f.ask(r, rcpt()) == "action=DUNNO\n\n");
    REQUIRE(f.reported.size() == 1);
    CHECK(f.reported[0] == "greylist store unavailable: greylist store failed");
    CHECK(f.ask(r, rcpt("carol@example.com")).starts_with("action=DEFER_IF_PERMIT Greylisted"));
    REQUIRE(f.reported.size() == 2);  // the next call answered
    CHECK(f.reported[1] == "greylist store available again");
}

TEST_CASE("Pipelined requests are answered in order, and the session ends when the client closes") {
    fixture f;
    const session_run r = converse(f, rcpt_request + data_request + rcpt_request);
    CHECK(r.answers == "action=DEFER_IF_PERMIT Greylisted, please try again later\n\n"
                       "action=DUNNO\n\n"
                       "action=DEFER_IF_PERMIT Greylisted, please try again later\n\n");
    CHECK(r.closed_by_server);
}

TEST_CASE("A broken request closes the connection without an answer, after the answers owed") {
    fixture f;
    SUBCASE("a line that is not name=value") {
        const session_run r = converse(f, data_request + "garbage\n\n" + data_request, false);
        CHECK(r.answers == "action=DUNNO\n\n");
        CHECK(r.closed_by_server);
        REQUIRE(f.reported.size() == 1);
        CHECK(f.reported[0] ==
              "policy client pair: malformed attribute in a policy request (not name=value): connection closed");
    }
    SUBCASE("an over-long line") {
        f.settings.limits.max_line = 100;
        const session_run r = converse(f, "x=" + std::string(200, 'v'), false);
        CHECK(r.answers.empty());
        CHECK(r.closed_by_server);
        REQUIRE(f.reported.size() == 1);
        CHECK(f.reported[0] == "policy client pair: policy request line too long: connection closed");
    }
}

TEST_CASE("An idle connection and an unfinished request are closed at their timeouts") {
    fixture f;
    f.settings.idle_timeout = 100ms;
    f.settings.request_timeout = 200ms;
    SUBCASE("idle, after an answer") {
        const session_run r = converse(f, data_request, false);
        CHECK(r.answers == "action=DUNNO\n\n");
        CHECK(r.closed_by_server);
        CHECK(f.reported.empty());
    }
    SUBCASE("in the middle of a request") {
        const session_run r = converse(f, "request=smtpd_access_policy\n", false);
        CHECK(r.answers.empty());
        CHECK(r.closed_by_server);
        REQUIRE(f.reported.size() == 1);
        CHECK(f.reported[0] == "policy client pair: request not finished within request_timeout: connection closed");
    }
}

TEST_CASE("Postgrey's whitelist files pass a client by client_name, never by 'unknown'") {
    fixture f;
    auto files = std::make_shared<greylist::postgrey_whitelists>();
    CHECK(files->add_clients("/^mail\\d+\\.telekom\\.de$/\nunknown\n", "clients").empty());
    CHECK(files->add_recipients("postmaster@\n", "recipients").empty());
    greylist::lists l;
    l.files = files;
    f.config.lists->replace(l);
    policy::responder r(f.config, f.settings, "test");
    request named = rcpt();
    named.client_name = "mail7.telekom.de";
    CHECK(f.ask(r, named) == "action=DUNNO\n\n");
    CHECK(f.ask(r, rcpt("postmaster+x@example.com")) == "action=DUNNO\n\n");
    request unknown = rcpt("carol@example.com");
    unknown.client_name = "unknown";  // Postfix's word for no verified name: no name to match
    CHECK(f.ask(r, unknown) == "action=DEFER_IF_PERMIT Greylisted, please try again later\n\n");
    REQUIRE(f.logged.size() == 3);
    CHECK(f.logged[0].substr(14) == " | client.example | 192.0.2.7 | alice@example.org | bob@example.com accepted (client name, clients:1) | policy");
}

TEST_CASE("Each answer written is counted by its action and timed from its request's reading") {
    fixture f;
    grey::metrics::server_metrics m;
    f.settings.metrics = &m;
    const session_run r = converse(f, rcpt_request + data_request + rcpt_request);
    REQUIRE(r.answers.size() > 0);
    CHECK(m.policy_requests[m.policy_action("DEFER_IF_PERMIT")].value() == 2);
    CHECK(m.policy_requests[m.policy_action("DUNNO")].value() == 1);
    const std::string text = m.registry().write();
    CHECK(text.find("grey_policy_request_seconds_count 3\n") != std::string::npos);
    CHECK(text.find("grey_policy_request_seconds_bucket{le=\"10\"} 3\n") != std::string::npos);
}

TEST_CASE("The answers owed before a broken request are counted once written") {
    fixture f;
    grey::metrics::server_metrics m;
    f.settings.metrics = &m;
    const session_run r = converse(f, data_request + "garbage\n\n", false);
    CHECK(r.answers == "action=DUNNO\n\n");
    CHECK(m.policy_requests[m.policy_action("DUNNO")].value() == 1);
    CHECK(m.registry().write().find("grey_policy_request_seconds_count 1\n") != std::string::npos);
}
