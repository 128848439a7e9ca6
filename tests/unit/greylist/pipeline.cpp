// The pipeline of checks (greylist/pipeline.hpp) and judge() over it: the default order and its
// evidence, the first decision winning, what a check sees of the checks before it, and a check
// of one's own reaching both fronts, the proxy (GreyListingPolicy over ServerCore, on loopback)
// and the Postfix policy server's responder, with the in-memory store.
#include <grey/greylist/greylisting_policy.hpp>
#include <grey/greylist/judge.hpp>
#include <grey/greylist/memory_store.hpp>
#include <grey/policy/session.hpp>
#include <grey/server_core.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../run_to_completion.hpp"

using namespace grey;
using namespace grey::greylist;
using namespace std::chrono_literals;

namespace {

using grey_test::run;

/// A configuration with the in-memory store and a clock the test moves.
struct fixture {
    clock::time_point now = clock::time_point{} + 20000 * 24h;
    greylist_config config;
    greylist::lists lists;

    fixture() {
        config.timing.delay = 300s;
        config.auto_whitelist_after = 0;
        config.servername = "mx.example";
        config.store = std::make_shared<memory_store>();
        config.now = [this] { return now; };
        config.report = {};
    }

    judgement judge(const question& q) { return run(greylist::judge(config, lists, q)); }
    judgement run_pipeline(const pipeline& p, const question& q) { return run(p.run(config, config.metrics, lists, q)); }
    std::size_t stored() {
        auto found = run(config.store->find(""));
        REQUIRE(found);
        return found->size();
    }
};

/// alice@example.org at 192.0.2.7, HELO client.example, to `recipient` of example.com.
question to(std::string_view recipient = "bob@example.com") {
    return question{"192.0.2.7", "client.example", "alice@example.org", recipient, "example.com"};
}

/// A check that decides `f`, saying `said`, and counts its calls.
check deciding(std::string_view name, finding f, std::string said, std::shared_ptr<int> calls) {
    return check(name, [f, said, calls](const inquiry&) {
        ++*calls;
        return check_answer{said, f};
    });
}

/// A check that passes on, saying `said`, and counts its calls.
check passing(std::string_view name, std::string said, std::shared_ptr<int> calls) {
    return check(name, [said, calls](const inquiry&) {
        ++*calls;
        return check_answer{said};
    });
}

std::vector<std::string_view> names(const pipeline& p) {
    std::vector<std::string_view> out;
    for (const auto& c : p.checks) out.push_back(c.name());
    return out;
}

} // namespace

TEST_CASE("The default pipeline is relay control, the whitelists, the whitelist files, judging first, then the store") {
    CHECK(names(default_pipeline()) ==
          std::vector<std::string_view>{"relay_control", "whitelists", "file_whitelists", "reputation", "store_screen"});
}

TEST_CASE("judge() records what each check said, in order, up to the one that decided") {
    fixture f;
    const judgement first = f.judge(to());
    CHECK(first.why == finding::greylisted);
    CHECK(first.wait == 300s);
    CHECK(first.evidence == std::vector<evidence>{{"relay_control", "relayed"},
                                                  {"whitelists", "not listed"},
                                                  {"file_whitelists", "no files"},
                                                  {"reputation", "unjudged"},
                                                  {"store_screen", "first seen"}});
    CHECK(first.reasons() == "relay_control=relayed whitelists=not listed file_whitelists=no files reputation=unjudged "
                             "store_screen=first seen");
    CHECK(first.explain() == "first seen");

    f.now += 301s;
    const judgement passed = f.judge(to());
    CHECK(passed.why == finding::passed);
    CHECK(passed.delayed == 301s);
    CHECK(passed.reasons().ends_with("store_screen=passed"));

    SUBCASE("a whitelisted triple stops before the store, which never hears of it") {
        f.lists.whitelisted_triples = {{"192.0.2.7", "alice@example.org", "carol@example.com"}};
        const judgement j = f.judge(to("carol@example.com"));
        CHECK(j.why == finding::whitelisted);
        CHECK(j.reasons() == "relay_control=relayed whitelists=listed");
        CHECK(f.stored() == 1);  // bob's triplet only
    }
    SUBCASE("an allowed sender stops at the first check") {
        f.lists.allowed_senders = {"192.0.2.7"};
        CHECK(f.judge(to()).reasons() == "relay_control=allowed sender");
    }
}

TEST_CASE("A client judged first is greylisted under its identity, and a suspicious one waits longer") {
    fixture f;
    // Stands in for the reputation check: the same identity whatever the address (a big
    // sender's pool), suspicious for the mail of one sender.
    pipeline p = default_pipeline();
    p.checks.insert(p.find("store_screen"), check("judged", [](const inquiry& in) {
                        assessment a;
                        a.identity = "spf:pool.example";
                        if (in.question.sender == "sloppy@example.org") {
                            a.tier = tier::suspicious;
                            a.delay = 1200s;
                        }
                        return check_answer{a.describe(), {}, {}, {}, a};
                    }));
    f.config.pipeline = std::make_shared<const pipeline>(std::move(p));

    const judgement first = f.judge(to());
    CHECK(first.why == finding::greylisted);
    CHECK(first.wait == 300s);
    REQUIRE(first.assessed);
    CHECK(first.assessed->identity == "spf:pool.example");

    // The retry comes from another address of the pool, in another /24: the same client.
    f.now += 301s;
    question retry = to();
    retry.client_address = "198.51.100.200";
    const judgement passed = f.judge(retry);
    CHECK(passed.why == finding::passed);
    CHECK(passed.delayed == 301s);

    // Suspicious: the tier's delay, not the greylist's, and a retry after 301 s is too soon.
    question sloppy = to();
    sloppy.sender = "sloppy@example.org";
    const judgement held = f.judge(sloppy);
    CHECK(held.why == finding::greylisted);
    CHECK(held.wait == 1200s);
    f.now += 301s;
    CHECK(f.judge(sloppy).why == finding::greylisted);
    f.now += 900s;
    CHECK(f.judge(sloppy).why == finding::passed);
}

TEST_CASE("judge() counts each recipient's verdict in the metrics") {
    fixture f;
    metrics::server_metrics m;
    f.config.metrics = &m;
    f.lists.allowed_domains = {"example.net"};
    CHECK(f.judge(to()).why == finding::relay_denied);
    f.lists.allowed_domains.clear();
    CHECK(f.judge(to()).why == finding::greylisted);
    CHECK(m.recipients[static_cast<std::size_t>(metrics::verdict_kind::relay_denied)].value() == 1);
    CHECK(m.recipients[static_cast<std::size_t>(metrics::verdict_kind::greylisted)].value() == 1);
    CHECK(m.greylist_first_seen.value() == 1);
}

TEST_CASE("The first check that decides has the last word, and the checks after it do not run") {
    fixture f;
    f.lists.whitelisted_triples = {{"192.0.2.7", "alice@example.org", "bob@example.com"}};
    auto denier_calls = std::make_shared<int>(0), later_calls = std::make_shared<int>(0);

    SUBCASE("a denial before the whitelists wins over them") {
        const pipeline p{{deciding("house_rule", finding::relay_denied, "refused", denier_calls), whitelists{},
                          passing("later", "ran", later_calls)}};
        const judgement j = f.run_pipeline(p, to());
        CHECK(j.why == finding::relay_denied);
        CHECK(j.reasons() == "house_rule=refused");
        CHECK(*later_calls == 0);
    }
    SUBCASE("the whitelists before the denial win over it") {
        const pipeline p{{whitelists{}, deciding("house_rule", finding::relay_denied, "refused", denier_calls),
                          passing("later", "ran", later_calls)}};
        const judgement j = f.run_pipeline(p, to());
        CHECK(j.why == finding::whitelisted);
        CHECK(j.reasons() == "whitelists=listed");
        CHECK(*denier_calls == 0);
        CHECK(*later_calls == 0);
    }
}

TEST_CASE("A check sees what the checks before it said") {
    fixture f;
    auto calls = std::make_shared<int>(0);
    std::vector<evidence> seen;
    const pipeline p{{relay_control{}, passing("first", "one", calls),
                      check("reader", [&seen](const inquiry& in) {
                          seen.assign(in.so_far.begin(), in.so_far.end());
                          return check_answer{"read", finding::known};
                      })}};
    const judgement j = f.run_pipeline(p, to());
    CHECK(seen == std::vector<evidence>{{"relay_control", "relayed"}, {"first", "one"}});
    CHECK(j.evidence.size() == 3);
    CHECK(j.why == finding::known);
}

TEST_CASE("A check may wait for I/O, as the store's does") {
    fixture f;
    const pipeline p{{check("slow", [](const inquiry& in) -> asio::awaitable<check_answer> {
        asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
        co_await t.async_wait(asio::use_awaitable);
        co_return check_answer{std::string(in.question.helo_name), finding::whitelisted};
    })}};
    const judgement j = f.run_pipeline(p, to());
    CHECK(j.why == finding::whitelisted);
    CHECK(j.reasons() == "slow=client.example");
}

TEST_CASE("A pipeline in which no check decides defers the recipient as greylisted") {
    fixture f;
    auto calls = std::make_shared<int>(0);
    const pipeline p{{relay_control{}, passing("nothing", "to say", calls)}};
    const judgement j = f.run_pipeline(p, to());
    CHECK(j.why == finding::greylisted);
    CHECK_FALSE(j.accepted());
    CHECK(j.reasons() == "relay_control=relayed nothing=to say");
    CHECK(f.run_pipeline(pipeline{}, to()).why == finding::greylisted);
}

namespace {

/// The proxy, as examples/greylist_server makes it.
struct greylisting_proxy : GreyListingPolicy<greylisting_proxy> {
    using GreyListingPolicy::GreyListingPolicy;
};

/// Reads one reply, all its lines, from `s`.
asio::awaitable<std::string> reply(asio::ip::tcp::socket& s, std::string& in) {
    std::string out;
    for (;;) {
        const auto n = co_await asio::async_read_until(s, asio::dynamic_buffer(in), "\r\n", asio::use_awaitable);
        const std::string line = in.substr(0, n);
        in.erase(0, n);
        out += line;
        if (line.size() < 4 || line[3] != '-') co_return out;
    }
}

/// Sends `command` and reads its reply.
asio::awaitable<std::string> say(asio::ip::tcp::socket& s, std::string& in, std::string command) {
    co_await asio::async_write(s, asio::buffer(command + "\r\n"), asio::use_awaitable);
    co_return co_await reply(s, in);
}

} // namespace

TEST_CASE("A check of one's own in the configuration's pipeline decides for the proxy and the policy server alike") {
    fixture f;
    auto calls = std::make_shared<int>(0);
    pipeline p = default_pipeline();
    // Refuses one sender before the store: the store never hears of its mail.
    p.checks.insert(p.find("store_screen"), check("house_rule", [calls](const inquiry& in) {
                        ++*calls;
                        if (in.question.sender == "spammer@example.org") return check_answer{"refused", finding::relay_denied};
                        return check_answer{"ok"};
                    }));
    REQUIRE(p.find("nonesuch") == p.checks.end());
    f.config.pipeline = std::make_shared<const pipeline>(std::move(p));

    SUBCASE("judge()") {
        question q = to();
        q.sender = "spammer@example.org";
        const judgement j = f.judge(q);
        CHECK(j.why == finding::relay_denied);
        CHECK(j.reasons() == "relay_control=relayed whitelists=not listed file_whitelists=no files reputation=unjudged house_rule=refused");
        CHECK(f.judge(to()).reasons().ends_with("house_rule=ok store_screen=first seen"));
        CHECK(*calls == 2);
        CHECK(f.stored() == 1);
    }
    SUBCASE("the policy server") {
        policy::settings settings;
        settings.report = {};
        policy::responder r(f.config, settings, "test");
        policy::request q;
        q.request = "smtpd_access_policy";
        q.protocol_state = "RCPT";
        q.helo_name = "client.example";
        q.sender = "spammer@example.org";
        q.recipient = "bob@example.com";
        q.client_address = "192.0.2.7";
        CHECK(run(r.answer(q)).starts_with("action=DEFER_IF_PERMIT"));
        CHECK(*calls == 1);
        CHECK(f.stored() == 0);
    }
    SUBCASE("the proxy") {
        f.config.port = 0;
        f.config.smtp_port = 9;  // nothing listens: the upstream is never needed here
        asio::io_context ioc(1);
        ServerCore<greylisting_proxy> server(ioc, f.config);
        server.start();
        const auto port = server.local_endpoints().front().port();
        std::string rcpt;
        asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
            asio::ip::tcp::socket s(ioc);
            co_await s.async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
            std::string in;
            co_await reply(s, in);
            co_await say(s, in, "EHLO client.example");
            co_await say(s, in, "MAIL FROM:<spammer@example.org>");
            rcpt = co_await say(s, in, "RCPT TO:<bob@example.com>");
            co_await say(s, in, "QUIT");
            co_await server.async_stop(asio::use_awaitable);
        }, [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        ioc.run_for(20s);
        CHECK(rcpt.starts_with("550 5.7.1"));
        CHECK(*calls == 1);
        CHECK(f.stored() == 0);
    }
}
