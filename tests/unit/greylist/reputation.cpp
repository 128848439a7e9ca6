// Judging first as a check of the pipeline (greylist/checks/reputation.hpp) and the fronts'
// sources of evidence (greylist/reputation_sources.hpp), against the tests' unbound and its
// zones (tests/dns-zones/identity.conf, reputation.conf), with the in-memory store: a pool's
// retry from another address is the same client, an allowlisted client is not greylisted, a
// suspicious one waits longer, and DNS that does not answer falls back to plain greylisting
// within the budget.
#include <grey/greylist/judge.hpp>
#include <grey/greylist/memory_store.hpp>
#include <grey/greylist/reputation_sources.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "../dns/fixture.hpp"
#include "../run_to_completion.hpp"

using namespace grey;
using namespace grey::greylist;
using namespace std::chrono_literals;

namespace {

using grey_test::run;

/// Greylisting with the in-memory store, a clock the test moves, and judging first through
/// the tests' unbound.
struct fixture {
    clock::time_point now = clock::time_point{} + 20000 * 24h;
    greylist_config config;
    greylist::lists lists;

    fixture() {
        config.timing.delay = 300s;
        config.auto_whitelist_after = 0;
        config.store = std::make_shared<memory_store>();
        config.now = [this] { return now; };
        config.report = {};
        config.reputation.resolver = grey_test::dns_fixture();
        config.reputation.dnsbl_sites = {*dns::parse_dnsbl_site("bl.pool-test*2"),
                                         *dns::parse_dnsbl_site("wl.pool-test=127.0.[0..255].[1..3]*-5")};
    }

    /// The policy server's way: evidence per request, Postfix's names when it gave them.
    judgement ask(question q, std::string client_name = {}, std::string reverse_name = {}) {
        return run([&]() -> asio::awaitable<judgement> {
            request_reputation source(config.reputation, client_name, reverse_name);
            q.reputation = &source;
            co_return co_await greylist::judge(config, lists, q);
        }());
    }
};

question from(std::string_view address, std::string_view sender = "alice@big.pool-test",
              std::string_view helo = "mail-1.out.big.pool-test") {
    return question{address, helo, sender, "bob@example.com", "example.com", /*relay_control=*/false};
}

std::string said_by(const judgement& j, std::string_view check) {
    for (const auto& e : j.evidence)
        if (e.check == check) return e.said;
    return "(did not run)";
}

} // namespace

TEST_CASE("a mail server's first message is not greylisted: a confirmed name and SPF pass trust it") {
    fixture f;
    const judgement j = f.ask(from("198.18.5.1"));
    CHECK(j.why == finding::trusted);
    REQUIRE(j.assessed);
    CHECK(j.assessed->identity == "spf:big.pool-test");
    CHECK(said_by(j, "store_screen") == "(did not run)");
}

TEST_CASE("a pool's retry from another of its addresses is the same client: its SPF domain is its identity") {
    fixture f;
    f.config.reputation.tiers.weights.spf_pass = 0;  // a site that greylists mail servers too
    const judgement first = f.ask(from("198.18.5.1"));
    CHECK(first.why == finding::greylisted);
    REQUIRE(first.assessed);
    CHECK(first.assessed->identity == "spf:big.pool-test");
    CHECK(first.assessed->tier == tier::normal);
    CHECK(said_by(first, "reputation").find("spf=pass:big.pool-test") != std::string::npos);
    CHECK(said_by(first, "reputation").find("fcrdns=ok:mail-1.out.big.pool-test") != std::string::npos);
    CHECK(first.wait == 300s);

    f.now += 301s;
    // From another /24: without judging first, another client.
    const judgement retry = f.ask(from("198.18.6.1", "alice@big.pool-test", "mail-3.out.big.pool-test"));
    CHECK(retry.why == finding::passed);
}

TEST_CASE("an allowlisted client is trusted and not greylisted; Postfix's names stand for the PTR look-ups") {
    fixture f;
    const judgement j = f.ask(from("198.18.5.2"), "mail-2.out.big.pool-test", "mail-2.out.big.pool-test");
    CHECK(j.why == finding::trusted);
    CHECK(j.accepted());
    CHECK(said_by(j, "store_screen") == "(did not run)");
    CHECK(j.explain().find("dnswl=wl.pool-test:127.0.5.1") != std::string::npos);
}

TEST_CASE("a listed client with a pool name is suspicious and waits the longer delay; refused only over a threshold") {
    fixture f;
    const judgement j = f.ask(from("198.18.5.200", "spam@forged.pool-test", "bot.pool-test"));
    CHECK(j.why == finding::greylisted);
    REQUIRE(j.assessed);
    CHECK(j.assessed->tier == tier::suspicious);
    CHECK(j.assessed->identity.empty());  // SPF fails, and a pool name identifies nobody
    CHECK(j.wait == f.config.reputation.tiers.suspicious_delay);
    const std::string why = j.explain();
    CHECK(why.find("dnsbl=bl.pool-test:127.0.0.2") != std::string::npos);
    CHECK(why.find("generic") != std::string::npos);
    CHECK(why.find("spf=fail") != std::string::npos);

    f.config.reputation.tiers.refuse_threshold = 2;  // the lists' score: bl.pool-test*2
    const judgement refused = f.ask(from("198.18.5.200", "spam@forged.pool-test", "bot.pool-test"));
    INFO(refused.explain());
    CHECK(refused.why == finding::reputation_refused);
    CHECK_FALSE(refused.accepted());
}

TEST_CASE("an unlisted address of a sender most of whose addresses are listed counts as listed (snowshoe)") {
    fixture f;
    f.config.reputation.tiers.refuse_threshold = 2;
    const auto host = [](int i) { return "198.18.7." + std::to_string(i); };
    for (int i = 1; i <= 5; ++i) {
        const judgement listed = f.ask(from(host(i), "news@snow.pool-test", "mx" + std::to_string(i) + ".snow.pool-test"));
        CHECK(listed.why == finding::reputation_refused);
    }
    const judgement unlisted = f.ask(from(host(6), "news@snow.pool-test", "mx6.snow.pool-test"));
    CHECK(unlisted.why == finding::reputation_refused);
    CHECK(unlisted.explain().find("identity-listed=spf:snow.pool-test") != std::string::npos);

    // With fewer listed addresses than identity_listings asks, an unlisted one is its own.
    fixture fresh;
    fresh.config.reputation.tiers.refuse_threshold = 2;
    (void)fresh.ask(from(host(1), "news@snow.pool-test", "mx1.snow.pool-test"));
    const judgement alone = fresh.ask(from(host(7), "news@snow.pool-test", "mx7.snow.pool-test"));
    CHECK(alone.why == finding::trusted);  // a confirmed name and SPF pass
}

TEST_CASE("identity_listings: most of an identity's recent addresses listed, at least min_listed of them") {
    identity_listings seen({.min_listed = 3, .share = 0.5, .window = 1h});
    const clock::time_point t0 = clock::time_point{} + 20000 * 24h;
    seen.note("spf:snow.example", "192.0.2.1", 3, t0);
    seen.note("spf:snow.example", "192.0.2.2", 3, t0);
    CHECK(seen.inherited("spf:snow.example", t0) == 0);  // two listed: not enough
    seen.note("spf:snow.example", "192.0.2.3", 4, t0);
    CHECK(seen.inherited("spf:snow.example", t0) == 4);  // the highest weight
    seen.note("spf:snow.example", "192.0.2.2", 3, t0);   // seen again: counted once
    for (int i = 10; i < 14; ++i) seen.note("spf:snow.example", "192.0.2." + std::to_string(i), 0, t0);
    CHECK(seen.inherited("spf:snow.example", t0) == 0);  // 3 of 7: under half
    CHECK(seen.inherited("spf:other.example", t0) == 0);
    // A big sender with one listed address among many is never counted as listed.
    for (int i = 0; i < 60; ++i) seen.note("spf:big.example", "198.51.100." + std::to_string(i), i == 7 ? 3 : 0, t0);
    CHECK(seen.inherited("spf:big.example", t0) == 0);
    // Old sightings lapse.
    identity_listings lapsing({.min_listed = 1, .share = 0.5, .window = 1h});
    lapsing.note("rdns:snow.example", "192.0.2.1", 2, t0);
    CHECK(lapsing.inherited("rdns:snow.example", t0 + 30min) == 2);
    CHECK(lapsing.inherited("rdns:snow.example", t0 + 2h) == 0);
}

TEST_CASE("local networks, and judging first turned off, are greylisted as without DNS") {
    fixture f;
    f.config.reputation.local_networks = {*network::parse("198.18.5.0/24")};
    const judgement local = f.ask(from("198.18.5.2"));
    CHECK(said_by(local, "reputation") == "local");
    CHECK(local.why == finding::greylisted);
    CHECK_FALSE(local.assessed);

    f.config.reputation.local_networks.clear();
    f.config.reputation.enabled = false;
    const judgement off = f.ask(from("198.18.5.2"));
    CHECK(said_by(off, "reputation") == "off");
    CHECK(off.why == finding::greylisted);

    f.config.reputation.enabled = true;
    const judgement unjudged = run(greylist::judge(f.config, f.lists, from("198.18.5.2")));
    CHECK(said_by(unjudged, "reputation") == "unjudged");
}

TEST_CASE("a DNS that never answers costs a decision its budget, not more, and falls back to plain greylisting") {
    fixture f;
    asio::io_context ioc;
    grey_test::silent_server silent(ioc);
    f.config.reputation.resolver.servers = {silent.where()};
    f.config.reputation.resolver.query_timeout = 5s;
    f.config.reputation.budget = 400ms;
    std::optional<judgement> j;
    const auto started = std::chrono::steady_clock::now();
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
        request_reputation source(f.config.reputation, {}, {});
        question q = from("198.18.5.200", "spam@forged.pool-test", "mail-9.out.big.pool-test");
        q.reputation = &source;
        j = co_await greylist::judge(f.config, f.lists, q);
        silent.socket.close();
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    ioc.run();
    const auto took = std::chrono::steady_clock::now() - started;
    REQUIRE(j);
    CHECK(took < 3s);  // the budget and a margin for a loaded machine; the timeout is 5 s
    CHECK(j->why == finding::greylisted);
    REQUIRE(j->assessed);
    CHECK_FALSE(j->assessed->complete);
    CHECK(j->assessed->tier == tier::normal);  // nothing unanswered counts, for or against
    CHECK(j->wait == 300s);
}

TEST_CASE("the proxy's evidence is asked for at connect, HELO and MAIL, and every recipient is judged on it") {
    fixture f;
    const judgement j = run([&]() -> asio::awaitable<judgement> {
        const auto ex = co_await asio::this_coro::executor;
        connection_reputation source(ex, f.config.reputation, asio::ip::make_address("198.18.5.1"));
        source.helo("mail-1.out.big.pool-test");
        source.mail("alice@big.pool-test", "mail-1.out.big.pool-test");
        question q = from("198.18.5.1");
        q.reputation = &source;
        const judgement first = co_await greylist::judge(f.config, f.lists, q);
        CHECK(first.assessed);
        const std::uint64_t asked = dns::resolver_for(ex, f.config.reputation.resolver).stats().queries;
        q.recipient = "carol@example.com";
        judgement second = co_await greylist::judge(f.config, f.lists, q);
        // The second recipient asks DNS nothing more.
        CHECK(dns::resolver_for(ex, f.config.reputation.resolver).stats().queries == asked);
        co_return second;
    }());
    REQUIRE(j.assessed);
    CHECK(j.assessed->identity == "spf:big.pool-test");
    CHECK(j.explain().find("helo=") == std::string::npos);  // a HELO that resolves to the client is no reason
}

TEST_CASE("the policy server keeps a client's evidence per address: the next request asks only for what changed") {
    fixture f;
    f.config.reputation.check_spf = false;
    f.config.reputation.check_helo = false;
    run([&]() -> asio::awaitable<int> {
        const auto ex = co_await asio::this_coro::executor;
        const dns::resolver& r = dns::resolver_for(ex, f.config.reputation.resolver);
        question q = from("198.18.5.200");
        request_reputation first(f.config.reputation, {}, {});
        q.reputation = &first;
        (void)co_await greylist::judge(f.config, f.lists, q);
        const std::uint64_t asked = r.stats().queries + r.stats().cache_hits;
        CHECK(asked > 0);
        request_reputation second(f.config.reputation, {}, {});
        q.reputation = &second;
        q.recipient = "carol@example.com";
        const judgement j = co_await greylist::judge(f.config, f.lists, q);
        CHECK(r.stats().queries + r.stats().cache_hits == asked);
        REQUIRE(j.assessed);
        CHECK(j.assessed->tier == tier::suspicious);
        co_return 0;
    }());
}
