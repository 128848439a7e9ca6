// The same behaviour asked of every store; store-specific behaviour (persistence) after.
#include <grey/config.hpp>
#include <grey/greylist/memory_store.hpp>
#include <grey/greylist/redis_settings.hpp>
#include <grey/greylist/redis_store.hpp>
#include <grey/greylist/sqlite_store.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <memory>
#include <random>
#include <thread>
#include <csignal>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "../run_to_completion.hpp"

using namespace grey::greylist;
using grey::result;
using namespace std::chrono_literals;

namespace {
using grey_test::run;

const clock::time_point t0 = clock::time_point{} + 1000 * 24h;
const triplet bob{"192.0.2.0/24", "alice@example.org", "bob@example.com"};
const triplet carol{"192.0.2.0/24", "alice@example.org", "carol@example.com"};

/// A fresh SQLite file per test, removed afterwards.
struct temp_db {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("grey-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".db");
    ~temp_db() {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    }
    static inline int counter = 0;
};

struct memory_fixture {
    memory_store s;
};
struct sqlite_fixture {
    temp_db db;
    sqlite_store s{db.path.string()};
};

/// The redis-server ctest starts (GREY_TEST_REDIS=HOST:PORT); a key prefix of its own per test.
grey::endpoint test_redis() {
    const char* where = std::getenv("GREY_TEST_REDIS");
    REQUIRE_MESSAGE(where, "GREY_TEST_REDIS must name the test redis-server (ctest sets it)");
    auto e = grey::parse_endpoint(where);
    REQUIRE(e);
    return *e;
}
std::string unique_prefix() {
    static int n = 0;
    return "grey-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ":";
}
struct redis_fixture {
    grey::endpoint where = test_redis();
    std::string prefix = unique_prefix();
    redis_store s{where.host, where.port, prefix};
};
} // namespace

TEST_CASE_TEMPLATE("A store applies each decision to the stored record", F, memory_fixture, sqlite_fixture,
                   redis_fixture) {
    F f;
    auto& s = f.s;
    const timing t = timing::postgrey();
    CHECK(run(s.check(bob, t, t0))->why == outcome::first_seen);
    CHECK(run(s.check(bob, t, t0 + 1min))->why == outcome::too_soon);
    CHECK(run(s.check(carol, t, t0 + 1min))->why == outcome::first_seen);
    CHECK(run(s.check(bob, t, t0 + 5min))->why == outcome::passed);
    CHECK(run(s.check(bob, t, t0 + 6min))->why == outcome::known);
    CHECK(run(s.check(carol, t, t0 + 2min))->why == outcome::too_soon);
}

TEST_CASE_TEMPLATE("A store finds, whitelists and removes entries", F, memory_fixture, sqlite_fixture, redis_fixture) {
    F f;
    auto& s = f.s;
    const timing t = timing::postgrey();
    (void)run(s.check(bob, t, t0));
    (void)run(s.check(carol, t, t0));
    CHECK(run(s.find(""))->size() == 2);
    CHECK(run(s.find("carol"))->size() == 1);
    CHECK(run(s.find("nobody"))->empty());

    REQUIRE(run(s.whitelist(carol, t, t0)).has_value());
    CHECK(run(s.check(carol, t, t0 + 1s))->why == outcome::known);

    CHECK(*run(s.remove(bob)) == true);
    CHECK(*run(s.remove(bob)) == false);
    CHECK(run(s.check(bob, t, t0 + 2s))->why == outcome::first_seen);
}

TEST_CASE_TEMPLATE("A store purges the records that expired", F, memory_fixture, sqlite_fixture) {
    F f;
    auto& s = f.s;
    const timing t = timing::postgrey();
    (void)run(s.check(bob, t, t0));
    (void)run(s.check(carol, t, t0));
    (void)run(s.check(carol, t, t0 + 10min));
    // bob waits (expires after the 2-day window), carol passed (expires after 35 days).
    CHECK(*run(s.purge(t, t0 + 3 * 24h)) == 1);
    CHECK(run(s.find(""))->size() == 1);
    CHECK(*run(s.purge(t, t0 + 36 * 24h)) == 1);
    CHECK(run(s.find(""))->empty());
}

TEST_CASE_TEMPLATE("A store counts passes per client group", F, memory_fixture, sqlite_fixture, redis_fixture) {
    F f;
    auto& s = f.s;
    const timing t = timing::postgrey();
    CHECK_FALSE(run(s.client("192.0.2.0/24"))->has_value());
    for (int i = 0; i < 3; ++i) REQUIRE(run(s.count_pass("192.0.2.0/24", t, t0 + i * 1min)).has_value());
    const auto c = run(s.client("192.0.2.0/24"));
    REQUIRE(c->has_value());
    CHECK((*c)->passes == 3);
    CHECK((*c)->last_pass == t0 + 2min);
}

TEST_CASE_TEMPLATE("A store screens a first sight: deferred and recorded, nothing counted", F, memory_fixture,
                   sqlite_fixture, redis_fixture) {
    F f;
    auto& s = f.s;
    const timing t = timing::postgrey();
    const auto r = run(s.screen(bob.client, bob, t, t0, 5));
    REQUIRE(r.has_value());
    REQUIRE_FALSE(r->auto_whitelisted());
    CHECK(r->checked->why == outcome::first_seen);
    CHECK_FALSE(r->uncounted);
    const auto all = run(s.find(""));
    REQUIRE(all->size() == 1);
    CHECK(all->front().value == r->checked->updated);
    CHECK_FALSE(run(s.client(bob.client))->has_value());
}

TEST_CASE_TEMPLATE("A store screens an auto-whitelisted group without checking or recording the triplet", F,
                   memory_fixture, sqlite_fixture, redis_fixture) {
    F f;
    auto& s = f.s;
    const timing t = timing::postgrey();
    for (int i = 0; i < 5; ++i) REQUIRE(run(s.count_pass(bob.client, t, t0 + i * 1min)).has_value());
    const auto r = run(s.screen(bob.client, bob, t, t0 + 10min, 5));
    REQUIRE(r.has_value());
    CHECK(r->auto_whitelisted());
    CHECK(run(s.find(""))->empty());
    CHECK((*run(s.client(bob.client)))->passes == 5);  // skipping the greylist is no pass of it
    SUBCASE("a count that lapsed no longer whitelists") {
        const auto later = run(s.screen(bob.client, bob, t, t0 + 4min + t.max_age + 1s, 5));
        REQUIRE(later.has_value());
        REQUIRE_FALSE(later->auto_whitelisted());
        CHECK(later->checked->why == outcome::first_seen);
    }
}

TEST_CASE_TEMPLATE("A store screening a pass counts it, and the group is auto-whitelisted after N passes", F,
                   memory_fixture, sqlite_fixture, redis_fixture) {
    F f;
    auto& s = f.s;
    const timing t = timing::postgrey();
    const std::string& group = bob.client;  // carol's too
    const triplet dave{group, "alice@example.org", "dave@example.com"};
    const auto screen = [&](const triplet& k, clock::time_point at) {
        auto r = run(s.screen(group, k, t, at, 2));
        REQUIRE(r.has_value());
        CHECK_FALSE(r->uncounted);
        return *r;
    };
    CHECK(screen(bob, t0).checked->why == outcome::first_seen);
    CHECK(screen(carol, t0).checked->why == outcome::first_seen);
    CHECK(screen(bob, t0 + 1min).checked->why == outcome::too_soon);
    CHECK_FALSE(run(s.client(group))->has_value());  // a deferral counts nothing

    const auto passed = screen(bob, t0 + 5min);
    REQUIRE_FALSE(passed.auto_whitelisted());
    CHECK(passed.checked->why == outcome::passed);
    CHECK(passed.checked->delayed == 300s);
    CHECK(**run(s.client(group)) == client_record{1, t0 + 5min});
    CHECK(screen(dave, t0 + 5min).checked->why == outcome::first_seen);  // 1 pass of 2: not yet

    CHECK(screen(bob, t0 + 6min).checked->why == outcome::known);
    CHECK(**run(s.client(group)) == client_record{2, t0 + 6min});
    CHECK(screen(carol, t0 + 7min).auto_whitelisted());
    CHECK(screen(dave, t0 + 7min).auto_whitelisted());
    // Neither was touched: both records are still their first sight.
    const auto all = run(s.find(""));
    REQUIRE(all->size() == 3);
    for (const entry& e : *all)
        if (e.key.recipient != bob.recipient) CHECK(e.value.last_seen == e.value.first_seen);
    CHECK((*run(s.client(group)))->passes == 2);
}

TEST_CASE_TEMPLATE("A store screening with auto-whitelisting off neither reads nor counts the group", F,
                   memory_fixture, sqlite_fixture, redis_fixture) {
    F f;
    auto& s = f.s;
    const timing t = timing::postgrey();
    for (int i = 0; i < 5; ++i) REQUIRE(run(s.count_pass(bob.client, t, t0 + i * 1min)).has_value());
    const auto first = run(s.screen(bob.client, bob, t, t0 + 10min, 0));
    REQUIRE(first.has_value());
    REQUIRE_FALSE(first->auto_whitelisted());  // 5 passes, but the look-up is off
    CHECK(first->checked->why == outcome::first_seen);
    const auto retry = run(s.screen(bob.client, bob, t, t0 + 15min, 0));
    REQUIRE(retry.has_value());
    REQUIRE_FALSE(retry->auto_whitelisted());
    CHECK(retry->checked->why == outcome::passed);
    CHECK(**run(s.client(bob.client)) == client_record{5, t0 + 4min});  // the pass was not counted
}

namespace {
/// A memory store that counts the calls screen() makes, and may fail its count_pass().
class counting_store final : public store {
  public:
    int clients = 0, checks = 0, counts = 0;
    bool counting_fails = false;

    asio::awaitable<result<decision>> check(const triplet& t, const timing& timing, clock::time_point now) override {
        ++checks;
        co_return co_await inner_.check(t, timing, now);
    }
    asio::awaitable<result<std::optional<client_record>>> client(const std::string& group) override {
        ++clients;
        co_return co_await inner_.client(group);
    }
    asio::awaitable<result<void>> count_pass(const std::string& group, const timing& timing,
                                             clock::time_point now) override {
        ++counts;
        if (counting_fails) co_return make_error_code(grey::errc::store_failed);
        co_return co_await inner_.count_pass(group, timing, now);
    }
    asio::awaitable<result<std::vector<entry>>> find(std::string needle) override {
        co_return co_await inner_.find(std::move(needle));
    }
    asio::awaitable<result<void>> whitelist(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await inner_.whitelist(t, timing, now);
    }
    asio::awaitable<result<bool>> remove(const triplet& t) override { co_return co_await inner_.remove(t); }
    asio::awaitable<result<std::size_t>> purge(const timing& timing, clock::time_point now) override {
        co_return co_await inner_.purge(timing, now);
    }

  private:
    memory_store inner_;
};
} // namespace

TEST_CASE("The default screen() makes only the calls it needs, and a failed count does not fail the decision") {
    counting_store s;
    const timing t = timing::postgrey();
    SUBCASE("auto-whitelisting off: check() alone") {
        (void)run(s.screen(bob.client, bob, t, t0, 0));
        (void)run(s.screen(bob.client, bob, t, t0 + 5min, 0));
        CHECK(s.clients == 0);
        CHECK(s.checks == 2);
        CHECK(s.counts == 0);
    }
    SUBCASE("on: a look-up each time, a count only for the pass") {
        (void)run(s.screen(bob.client, bob, t, t0, 5));
        (void)run(s.screen(bob.client, bob, t, t0 + 5min, 5));
        CHECK(s.clients == 2);
        CHECK(s.checks == 2);
        CHECK(s.counts == 1);
    }
    SUBCASE("a count that fails") {
        s.counting_fails = true;
        (void)run(s.screen(bob.client, bob, t, t0, 5));
        const auto r = run(s.screen(bob.client, bob, t, t0 + 5min, 5));
        REQUIRE(r.has_value());
        CHECK(r->checked->why == outcome::passed);
        CHECK(r->uncounted == grey::errc::store_failed);
    }
}

TEST_CASE("The SQLite store keeps its records across a restart") {
    temp_db db;
    const timing t = timing::postgrey();
    {
        sqlite_store s(db.path.string());
        CHECK(run(s.check(bob, t, t0))->why == outcome::first_seen);
    }
    sqlite_store reopened(db.path.string());
    const auto d = run(reopened.check(bob, t, t0 + 5min));
    CHECK(d->why == outcome::passed);
    CHECK(d->delayed == 300s);
}

TEST_CASE("The SQLite store has every first sighting it answered on disk when the process dies") {
    temp_db db;
    const timing t = timing::postgrey();
    constexpr int answered = 200;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Answers that were heard, then SIGKILL: no destructor, no checkpoint, no flush.
        sqlite_store s(db.path.string());
        asio::io_context ioc;
        int heard = 0;
        for (int i = 0; i < answered; ++i)
            asio::co_spawn(
                    ioc,
                    [&, i]() -> asio::awaitable<void> {
                        const triplet k{"198.51.100.0/24", "s" + std::to_string(i) + "@example.org", "r@example.com"};
                        auto d = co_await s.screen(k.client, k, t, t0, 5);
                        if (d && d->checked->why == outcome::first_seen && ++heard == answered) ::kill(::getpid(), SIGKILL);
                    },
                    asio::detached);
        ioc.run();
        ::_exit(1);  // not every answer was heard
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);
    sqlite_store reopened(db.path.string());
    const auto all = run(reopened.find(""));
    REQUIRE(all.has_value());
    CHECK(all->size() == answered);
}

TEST_CASE("The SQLite store answers screens from several threads, reading auto-whitelisted clients beside them") {
    temp_db db;
    sqlite_store s(db.path.string());
    const timing t = timing::postgrey();
    // One client group made auto-whitelisted: two passes of bob.
    (void)run(s.screen(bob.client, bob, t, t0, 2));
    REQUIRE(run(s.screen(bob.client, bob, t, t0 + 5min, 2))->checked->why == outcome::passed);
    REQUIRE(run(s.screen(bob.client, bob, t, t0 + 6min, 2))->checked->why == outcome::known);

    asio::io_context ioc;
    std::atomic<int> whitelisted{0}, first_seen{0}, failed{0};
    constexpr int per_thread = 300;
    for (int w = 0; w < 4; ++w)
        asio::co_spawn(
                ioc,
                [&, w]() -> asio::awaitable<void> {
                    for (int i = 0; i < per_thread; ++i) {
                        const triplet stranger{"203.0.113." + std::to_string(w) + "/32", "s" + std::to_string(i) + "@example.org",
                                               "r@example.com"};
                        const bool known_group = i % 2 == 0;
                        const triplet& k = known_group ? carol : stranger;
                        auto d = co_await s.screen(k.client, k, t, t0 + 7min, 2);
                        if (!d) ++failed;
                        else if (d->auto_whitelisted()) ++whitelisted;
                        else if (d->checked->why == outcome::first_seen) ++first_seen;
                    }
                },
                asio::detached);
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) threads.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& th : threads) th.join();
    CHECK(failed == 0);
    CHECK(whitelisted == 4 * per_thread / 2);
    CHECK(first_seen == 4 * per_thread / 2);
    // The auto-whitelisted group's triplet was never written; every stranger's was.
    CHECK(run(s.find(""))->size() == 1 + 4 * per_thread / 2);
}

TEST_CASE("The SQLite store purges a table larger than one slice of its walk") {
    temp_db db;
    sqlite_store s(db.path.string());
    const timing t = timing::postgrey();
    // 5,000 first sightings, every third of them retried (and so passed) later: the first
    // sightings never retried expire with their retry window, the passed ones live on.
    constexpr int n = 5000;
    const auto key = [](int i) {
        return triplet{"198.51.100.0/24", "s" + std::to_string(i) + "@example.org", "r@example.com"};
    };
    asio::io_context ioc;
    asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                for (int i = 0; i < n; ++i) (void)co_await s.check(key(i), t, t0);
                for (int i = 0; i < n; i += 3) (void)co_await s.check(key(i), t, t0 + 10min);
            },
            asio::detached);
    ioc.run();
    const auto removed = run(s.purge(t, t0 + 10min + t.retry_window + 1s));
    REQUIRE(removed.has_value());
    CHECK(*removed == std::size_t(n - (n + 2) / 3));
    const auto left = run(s.find(""));
    REQUIRE(left->size() == std::size_t((n + 2) / 3));
    for (const entry& e : *left) CHECK(e.value.passed);
}

TEST_CASE("The SQLite store refuses a path it cannot open") {
    CHECK_THROWS_AS(sqlite_store("/nonexistent-dir/grey.db"), std::runtime_error);
}

TEST_CASE("Two proxies sharing a Redis see one greylist") {
    const grey::endpoint where = test_redis();
    const std::string prefix = unique_prefix();
    redis_store mx1(where.host, where.port, prefix), mx2(where.host, where.port, prefix);
    const timing t = timing::postgrey();
    CHECK(run(mx1.check(bob, t, t0))->why == outcome::first_seen);
    CHECK(run(mx2.check(bob, t, t0 + 1min))->why == outcome::too_soon);
    CHECK(run(mx2.check(bob, t, t0 + 5min))->why == outcome::passed);
    CHECK(run(mx1.check(bob, t, t0 + 6min))->why == outcome::known);
}

TEST_CASE("Concurrent first sightings of one triplet in Redis store one record") {
    const grey::endpoint where = test_redis();
    redis_store shared(where.host, where.port, unique_prefix());
    const timing t = timing::postgrey();
    constexpr int racers = 16;
    asio::io_context ioc;
    std::atomic<int> first{0}, deferred{0}, failed{0};
    for (int i = 0; i < racers; ++i) {
        asio::co_spawn(asio::make_strand(ioc), shared.check(bob, t, t0), [&](std::exception_ptr e, result<decision> d) {
            if (e || !d) ++failed;
            else if (d->why == outcome::first_seen) ++first;
            else if (d->why == outcome::too_soon) ++deferred;
        });
    }
    std::thread helper([&] { ioc.run(); });
    ioc.run();
    helper.join();
    CHECK(failed == 0);
    CHECK(first == 1);
    CHECK(deferred == racers - 1);
    const auto all = run(shared.find(""));
    REQUIRE(all->size() == 1);
    CHECK(all->front().value.attempts == racers);
}

TEST_CASE("The Redis store's one-script screen decides as the engine does, over random histories") {
    // The script is engine.hpp's rules written again in Lua: the memory store, which runs the
    // engine itself through store::screen's three calls, is the reference.
    const grey::endpoint where = test_redis();
    redis_store redis(where.host, where.port, unique_prefix());
    memory_store reference;
    std::mt19937 random(20261207);
    const std::vector<triplet> triplets{bob, carol, {"192.0.2.0/24", "dave@example.org", "bob@example.com"},
                                        {"198.51.100.0/24", "alice@example.org", "bob@example.com"}};
    const std::vector<std::string> groups{"192.0.2.0/24", "198.51.100.0/24"};
    // Short times, so that random steps cross every limit: too soon, the delay, the retry
    // window, the maximum age, and the auto-whitelist's lapse.
    const timing t{std::chrono::seconds(300), std::chrono::seconds(3000), std::chrono::seconds(20000),
                   std::chrono::seconds(60)};
    std::uniform_int_distribution<int> pick(0, 3), step_kind(0, 9);
    std::uniform_int_distribution<std::int64_t> small_ms(0, 400'000), large_ms(0, 30'000'000);
    clock::time_point now = t0;
    int outcomes_seen[5] = {};
    int auto_whitelisted = 0;
    for (int i = 0; i < 3000; ++i) {
        // Whole milliseconds, as Redis keeps them; now and then a step back (another MX host's
        // clock a little behind).
        const int kind = step_kind(random);
        const std::int64_t ms = kind == 0 ? -small_ms(random) / 40 : kind < 8 ? small_ms(random) : large_ms(random);
        now += std::chrono::milliseconds(ms);
        const std::size_t k = static_cast<std::size_t>(pick(random));
        const triplet& key = triplets[k];
        const std::string& group = groups[k == 3 ? 1 : 0];
        const unsigned after = i % 7 == 0 ? 0 : 3;
        const auto expected = run(reference.screen(group, key, t, now, after));
        const auto got = run(redis.screen(group, key, t, now, after));
        REQUIRE(expected);
        REQUIRE(got);
        INFO("step ", i, " triplet ", k, " auto-whitelist after ", after);
        REQUIRE(got->auto_whitelisted() == expected->auto_whitelisted());
        CHECK(!got->uncounted);
        if (expected->auto_whitelisted()) {
            ++auto_whitelisted;
            continue;
        }
        const decision& e = *expected->checked;
        const decision& g = *got->checked;
        REQUIRE(static_cast<int>(g.why) == static_cast<int>(e.why));
        CHECK(g.updated == e.updated);
        CHECK(g.delayed == e.delayed);
        ++outcomes_seen[static_cast<int>(e.why)];
    }
    // The history went everywhere the rules go.
    for (const int n : outcomes_seen) CHECK(n > 10);
    CHECK(auto_whitelisted > 10);
}

TEST_CASE("A Redis that has lost the screen script (restarted, flushed, failed over) is sent it whole again") {
    const grey::endpoint where = test_redis();
    redis_store s(where.host, where.port, unique_prefix());
    const timing t = timing::postgrey();
    CHECK(run(s.screen("192.0.2.0/24", bob, t, t0, 3))->checked->why == outcome::first_seen);
    const std::string flush = "redis-cli -h " + where.host + " -p " + std::to_string(where.port) + " SCRIPT FLUSH >/dev/null";
    REQUIRE(std::system(flush.c_str()) == 0);
    const auto again = run(s.screen("192.0.2.0/24", bob, t, t0 + 1min, 3));
    REQUIRE(again);
    CHECK(again->checked->why == outcome::too_soon);
    CHECK(run(s.check(bob, t, t0 + 5min))->why == outcome::passed);
}

TEST_CASE("A record in the earlier text form is read, and written back in 28 octets") {
    const grey::endpoint where = test_redis();
    const std::string prefix = unique_prefix();
    redis_store s(where.host, where.port, prefix);
    const timing t = timing::postgrey();
    const auto ms = [](clock::time_point p) { return std::to_string(to_epoch_ms(p)); };
    const std::string cli = "redis-cli -h " + where.host + " -p " + std::to_string(where.port);
    const std::string key = "\"$(printf '" + prefix + "t:%s\\t%s\\t%s' '" + bob.client + "' '" + bob.sender + "' '" +
                            bob.recipient + "')\"";
    // Seen once, 6 minutes before: the retry now passes, as engine.hpp decides from that record.
    const std::string seen = ms(t0) + " " + ms(t0) + " 0 1 0 0";
    REQUIRE(std::system((cli + " SET " + key + " '" + seen + "' >/dev/null").c_str()) == 0);
    const auto d = run(s.check(bob, t, t0 + 6min));
    REQUIRE(d);
    CHECK(d->why == outcome::passed);
    CHECK(d->delayed == 6min);
    FILE* out = popen((cli + " STRLEN " + key).c_str(), "r");
    REQUIRE(out);
    char line[32] = {};
    CHECK(std::fgets(line, sizeof line, out) != nullptr);
    pclose(out);
    CHECK(std::string(line) == "28\n");
    const auto listed = run(s.find(bob.sender));
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->front().value.first_seen == d->updated.first_seen);
    CHECK(listed->front().value.passed_at == t0 + 6min);
    CHECK(listed->front().value.attempts == 2);
    CHECK(listed->front().value.passed);
}

TEST_CASE("The Redis store reports a server that is not there") {
    redis_store nowhere("127.0.0.1", 1, unique_prefix());
    const auto d = run(nowhere.check(bob, timing::postgrey(), t0));
    CHECK(d.error() == asio::error::connection_refused);  // the system's reason, passed on
}

// ---- The Redis store as production runs it: URLs, login, timeouts, reconnection ----

TEST_CASE("A Redis URL gives host, port, database, user and password") {
    SUBCASE("host alone: Redis's port, database 0, no login") {
        const auto u = parse_redis_url("redis://redis.example");
        REQUIRE(u);
        CHECK(u.settings.host == "redis.example");
        CHECK(u.settings.port == 6379);
        CHECK(u.settings.database == 0);
        CHECK(u.settings.user.empty());
        CHECK(u.settings.password.empty());
        CHECK_FALSE(u.settings.tls);
        CHECK(u.settings.prefix == "grey:");
    }
    SUBCASE("everything, with percent-encoded credentials") {
        const auto u = parse_redis_url("redis://grey%2Dmx:p%40ss%3Aw%2Fd@10.0.0.5:6380/3");
        REQUIRE(u);
        CHECK(u.settings.user == "grey-mx");
        CHECK(u.settings.password == "p@ss:w/d");
        CHECK(u.settings.host == "10.0.0.5");
        CHECK(u.settings.port == 6380);
        CHECK(u.settings.database == 3);
    }
    SUBCASE("a password with no user, and an '@' left unencoded in it") {
        const auto u = parse_redis_url("redis://:se@cret@localhost");
        REQUIRE(u);
        CHECK(u.settings.user.empty());
        CHECK(u.settings.password == "se@cret");
        CHECK(u.settings.host == "localhost");
    }
    SUBCASE("IPv6") {
        const auto u = parse_redis_url("redis://[::1]:7000/1");
        REQUIRE(u);
        CHECK(u.settings.host == "::1");
        CHECK(u.settings.port == 7000);
        CHECK(u.settings.database == 1);
        CHECK(describe(u.settings) == "redis://[::1]:7000/1");
    }
    SUBCASE("rediss:// is TLS") {
        const auto u = parse_redis_url("rediss://redis.example:6380?tls_ca_file=/etc/grey/ca.pem&tls_server_name=r.example");
        REQUIRE(u);
        CHECK(u.settings.tls);
        CHECK(u.settings.tls_verify);
        CHECK(u.settings.tls_ca_file == "/etc/grey/ca.pem");
        CHECK(u.settings.tls_server_name == "r.example");
    }
    SUBCASE("the options in the query") {
        const auto u = parse_redis_url(
            "redis://h/2?prefix=mx%3Agrey%3A&connect_timeout_ms=250&command_timeout_ms=500&reconnect_min_ms=50"
            "&reconnect_max_ms=1000&password_file=/run/secrets/redis");
        REQUIRE(u);
        CHECK(u.settings.prefix == "mx:grey:");
        CHECK(u.settings.connect_timeout == 250ms);
        CHECK(u.settings.command_timeout == 500ms);
        CHECK(u.settings.reconnect_min == 50ms);
        CHECK(u.settings.reconnect_max == 1000ms);
        CHECK(u.settings.password_file == "/run/secrets/redis");
    }
}

TEST_CASE("A Redis unix socket URL gives the path, the login and the database") {
    SUBCASE("redis+unix://") {
        const auto u = parse_redis_url("redis+unix:///run/redis/redis-server.sock?db=4");
        REQUIRE(u);
        CHECK(u.settings.unix_socket == "/run/redis/redis-server.sock");
        CHECK(u.settings.is_unix());
        CHECK(u.settings.database == 4);
        CHECK(describe(u.settings) == "redis+unix:///run/redis/redis-server.sock?db=4");
    }
    SUBCASE("unix:// with a user and password") {
        const auto u = parse_redis_url("unix://grey:pw%25@/var/run/r%20s.sock");
        REQUIRE(u);
        CHECK(u.settings.user == "grey");
        CHECK(u.settings.password == "pw%");
        CHECK(u.settings.unix_socket == "/var/run/r s.sock");
    }
}

TEST_CASE("A Redis URL's options win over the settings it is parsed onto") {
    redis_settings base;
    base.prefix = "site:";
    base.command_timeout = 300ms;
    base.password = "from-the-file";
    const auto u = parse_redis_url("redis://h?command_timeout_ms=900", base);
    REQUIRE(u);
    CHECK(u.settings.prefix == "site:");
    CHECK(u.settings.command_timeout == 900ms);
    CHECK(u.settings.password == "from-the-file");
}

TEST_CASE("A bad Redis URL is refused with the reason") {
    const std::pair<std::string_view, std::string_view> bad[] = {
        {"http://h", "starts with redis://"},
        {"redis://", "no host"},
        {"redis://secret@h", "after a colon"},
        {"redis://h:port", "not a port"},
        {"redis://h:0", "not a port"},
        {"redis://h:65536", "not a port"},
        {"redis://h:", "empty port"},
        {"redis://h/x", "database number"},
        {"redis://h/1?db=2", "given twice"},
        {"redis://h?nope=1", "unknown Redis option 'nope'"},
        {"redis://h?prefix", "NAME=VALUE"},
        {"redis://h?command_timeout_ms=0", "milliseconds"},
        {"redis://h?tls_verify=maybe", "true or false"},
        {"redis://:%zz@h", "percent-encoding"},
        {"redis://[::1", "closing ']'"},
        {"redis+unix://relative.sock", "absolute path"},
        {"redis://h?reconnect_min_ms=500&reconnect_max_ms=100", "at least"},
        {"rediss://h?tls_certificate=/c.pem", "go together"},
        {"redis://h?prefix=a*", "SCAN pattern"},
        {"redis-sentinel://h1,h2", "name of the master set"},
        {"redis-sentinel://h1,h2/", "name of the master set"},
        {"redis-sentinel://h1,,h2/mymaster", "empty address"},
        {"redis-sentinel://h1:0/mymaster", "not a port"},
        {"redis-sentinel://h1/mymaster/x", "database number"},
        {"redis-sentinel://h1/mymaster?sentinel_nope=1", "unknown Redis option"},
        {"redis-cluster://h1,h2/2", "database 0 only"},
        {"redis-cluster://h1?db=1", "database 0 only"},
        {"redis-cluster://h1,:7001", "empty address"},
        {"redis-cluster://h1?prefix=%7Bmx%7D:", "hash tags"},
    };
    for (auto [url, reason] : bad) {
        CAPTURE(url);
        const auto u = parse_redis_url(url);
        CHECK_FALSE(u);
        CHECK(u.error.find(reason) != std::string::npos);
    }
}

TEST_CASE("A Redis Sentinel URL names the sentinels, the master set, the logins and the database") {
    const auto u = parse_redis_url(
            "redis-sentinel://grey:s%40cret@10.0.0.1:26380,[::1],sentinel.example:26381/mymaster/3"
            "?sentinel_password=watch&sentinel_user=ops&prefix=mx:");
    REQUIRE(u);
    const auto& s = u.settings;
    CHECK(s.via_sentinels());
    REQUIRE(s.sentinels.size() == 3);
    CHECK(s.sentinels[0].host == "10.0.0.1");
    CHECK(s.sentinels[0].port == 26380);
    CHECK(s.sentinels[1].host == "::1");
    CHECK(s.sentinels[1].port == 26379);  // Sentinel's own default
    CHECK(s.sentinels[2].host == "sentinel.example");
    CHECK(s.sentinels[2].port == 26381);
    CHECK(s.master_name == "mymaster");
    CHECK(s.database == 3);
    CHECK(s.user == "grey");  // the data nodes' login
    CHECK(s.password == "s@cret");
    CHECK(s.sentinel_user == "ops");  // the sentinels' own
    CHECK(s.sentinel_password == "watch");
    CHECK(s.prefix == "mx:");
    CHECK_FALSE(s.tls);
    CHECK(describe(s) == "redis-sentinel://10.0.0.1:26380,[::1]:26379,sentinel.example:26381/mymaster/3");
    const auto tls = parse_redis_url("rediss-sentinel://127.0.0.1:26379/set");
    REQUIRE(tls);
    CHECK(tls.settings.tls);
    CHECK(tls.settings.database == 0);
    CHECK_FALSE(parse_redis_url("redis://h").settings.via_sentinels());
}

TEST_CASE("A Redis Cluster URL names some of its nodes, the login and the options") {
    const auto u = parse_redis_url("redis-cluster://grey:pw@10.0.0.1:7000,[::1]:7001,node.example?prefix=mx:");
    REQUIRE(u);
    const auto& s = u.settings;
    CHECK(s.in_cluster());
    CHECK_FALSE(s.via_sentinels());
    REQUIRE(s.cluster_nodes.size() == 3);
    CHECK(s.cluster_nodes[0] == grey::redis::node_address{"10.0.0.1", 7000});
    CHECK(s.cluster_nodes[1] == grey::redis::node_address{"::1", 7001});
    CHECK(s.cluster_nodes[2] == grey::redis::node_address{"node.example", 6379});  // Redis's own default
    CHECK(s.user == "grey");
    CHECK(s.password == "pw");
    CHECK(s.prefix == "mx:");
    CHECK(s.database == 0);
    CHECK(describe(s) == "redis-cluster://10.0.0.1:7000,[::1]:7001,node.example:6379");
    const auto tls = parse_redis_url("rediss-cluster://127.0.0.1:7000/0");
    REQUIRE(tls);
    CHECK(tls.settings.tls);
    CHECK(describe(tls.settings) == "rediss-cluster://127.0.0.1:7000");
    // A URL of another kind over settings that named a cluster: the URL wins.
    CHECK_FALSE(parse_redis_url("redis://h", s).settings.in_cluster());
    CHECK_FALSE(parse_redis_url("redis-sentinel://h/m", s).settings.in_cluster());
}

TEST_CASE("A Redis store in a cluster that does not answer reports why, and passes nothing") {
    redis_settings s;
    s.cluster_nodes = {{"127.0.0.1", 9}};  // nobody listens there
    s.connect_timeout = 500ms;
    redis_store store(s);
    const auto d = run(store.check(bob, timing::postgrey(), t0));
    REQUIRE_FALSE(d);
    CHECK(d.error() == asio::error::connection_refused);  // the reason, not just "no map"
    const auto again = run(store.screen("192.0.2.0/24", bob, timing::postgrey(), t0, 5));
    REQUIRE_FALSE(again);
}

TEST_CASE("A Redis store through sentinels that do not answer reports it, and no master") {
    // A port nobody listens on: the sentinel cannot be asked.
    redis_settings s;
    s.sentinels = {{"127.0.0.1", 9}};
    s.master_name = "mymaster";
    s.connect_timeout = 500ms;
    redis_store store(s);
    const auto d = run(store.check(bob, timing::postgrey(), t0));
    REQUIRE_FALSE(d);
    CHECK(d.error() == grey::redis::redis_errc::no_master);
}

TEST_CASE("Where a Redis store points is described without its password") {
    const auto u = parse_redis_url("redis://grey:hunter2@h:6390/5");
    REQUIRE(u);
    CHECK(describe(u.settings) == "redis://h:6390/5");
}

TEST_CASE("Reconnecting backs off from the minimum, doubling up to the maximum, and resets on success") {
    using sc = std::chrono::steady_clock;
    reconnect_backoff b(100ms, 1s);
    const sc::time_point t{sc::duration(1000s)};
    CHECK(b.may_try(t));
    b.failed(t);
    CHECK_FALSE(b.may_try(t + 99ms));
    CHECK(b.may_try(t + 100ms));
    b.failed(t + 100ms);  // waits 200 ms
    CHECK_FALSE(b.may_try(t + 299ms));
    CHECK(b.may_try(t + 300ms));
    for (int i = 0; i < 10; ++i) b.failed(t);
    CHECK(b.next_delay() == 1s);
    CHECK(b.next_attempt() == t + 1s);
    b.succeeded();
    CHECK(b.may_try(t));
    CHECK(b.next_delay() == 100ms);
}

namespace {
/// A loopback server playing a Redis that misbehaves: `serve` runs for each connection, on
/// the server's one thread. Stopped (and joined) when it goes out of scope.
class fake_redis {
  public:
    explicit fake_redis(std::function<void(grey::detail::tcp::socket&)> serve)
        : serve_(std::move(serve)), thread_([this] { run(); }) {}
    ~fake_redis() {
        stop_ = true;
        asio::io_context waker;
        grey::detail::tcp::socket s(waker);
        asio::error_code ignored;
        s.connect({asio::ip::make_address("127.0.0.1"), port()}, ignored);  // ends the accept
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    int accepted() const { return accepted_; }

    /// Reads until `what` has arrived; false if the client left first.
    static bool read_until(grey::detail::tcp::socket& s, std::string_view what) {
        std::string got;
        char buffer[4096];
        asio::error_code ec;
        while (got.find(what) == std::string::npos) {
            const std::size_t n = s.read_some(asio::buffer(buffer), ec);
            if (ec) return false;
            got.append(buffer, n);
        }
        return true;
    }

  private:
    void run() {
        while (!stop_) {
            grey::detail::tcp::socket s(ioc_);
            asio::error_code ec;
            acceptor_.accept(s, ec);
            if (ec || stop_) return;
            ++accepted_;
            serve_(s);
        }
    }

    asio::io_context ioc_;
    grey::detail::tcp::acceptor acceptor_{ioc_, {asio::ip::make_address("127.0.0.1"), 0}};
    std::function<void(grey::detail::tcp::socket&)> serve_;
    std::atomic<bool> stop_{false};
    std::atomic<int> accepted_{0};
    std::thread thread_;
};

redis_settings fake_at(const fake_redis& f) {
    redis_settings s;
    s.port = f.port();
    s.prefix = unique_prefix();
    return s;
}

/// `n` checks at once on one io_context; their outcomes.
std::vector<result<decision>> concurrent_checks(redis_store& s, int n) {
    asio::io_context ioc;
    std::vector<result<decision>> out;
    std::vector<triplet> keys;  // alive until the checks end: check() takes them by reference
    const timing postgrey = timing::postgrey();  // so is this
    for (int i = 0; i < n; ++i) keys.push_back({"192.0.2.0/24", "alice@example.org", "r" + std::to_string(i) + "@example.com"});
    for (const triplet& t : keys) {
        asio::co_spawn(ioc, s.check(t, postgrey, t0), [&](std::exception_ptr e, result<decision> d) {
            if (e) std::rethrow_exception(e);
            out.push_back(std::move(d));
        });
    }
    ioc.run();
    return out;
}
} // namespace

TEST_CASE("A Redis that stops answering fails every call in flight after command_timeout") {
    fake_redis silent([](grey::detail::tcp::socket& s) {
        if (!fake_redis::read_until(s, "PING\r\n")) return;
        asio::write(s, asio::buffer(std::string_view("+PONG\r\n")));
        fake_redis::read_until(s, "never sent");  // reads until the store hangs up
    });
    redis_settings settings = fake_at(silent);
    settings.command_timeout = 200ms;
    redis_store s(settings);
    const auto start = std::chrono::steady_clock::now();
    const auto outcomes = concurrent_checks(s, 8);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    REQUIRE(outcomes.size() == 8);
    for (const auto& d : outcomes) CHECK(d.error() == redis_errc::command_timeout);
}

TEST_CASE("A Redis connection that dies fails every pipelined call in flight") {
    fake_redis dying([](grey::detail::tcp::socket& s) {
        if (!fake_redis::read_until(s, "PING\r\n")) return;
        asio::write(s, asio::buffer(std::string_view("+PONG\r\n")));
        fake_redis::read_until(s, "GET");
        std::this_thread::sleep_for(50ms);  // let more commands gather behind the first
        s.close();
    });
    redis_settings settings = fake_at(dying);
    settings.command_timeout = 10s;  // the failure must come from the closed connection
    redis_store s(settings);
    const auto start = std::chrono::steady_clock::now();
    const auto outcomes = concurrent_checks(s, 8);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    REQUIRE(outcomes.size() == 8);
    for (const auto& d : outcomes) CHECK(d.error() == redis_errc::connection_lost);
}

TEST_CASE("While Redis cannot be reached, calls fail at once until the backoff lets one try again") {
    fake_redis closing([](grey::detail::tcp::socket& s) { s.close(); });
    redis_settings settings = fake_at(closing);
    settings.reconnect_min = 300ms;
    redis_store s(settings);
    CHECK(run(s.check(bob, timing::postgrey(), t0)).error() == redis_errc::connection_lost);
    CHECK(closing.accepted() == 1);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) CHECK(run(s.check(bob, timing::postgrey(), t0)).error() == redis_errc::connection_lost);
    if (std::chrono::steady_clock::now() - start < 300ms) CHECK(closing.accepted() == 1);  // no attempt during the wait
    std::this_thread::sleep_for(350ms);
    CHECK(run(s.check(bob, timing::postgrey(), t0)).error() == redis_errc::connection_lost);
    CHECK(closing.accepted() == 2);
}

TEST_CASE("A Redis that does not accept the connection in time fails with connect_timeout") {
    // A listening socket whose backlog is full accepts no more: connect() hangs. Simpler and
    // certain: a server that accepts but never answers the login.
    fake_redis mute([](grey::detail::tcp::socket& s) { fake_redis::read_until(s, "never sent"); });
    redis_settings settings = fake_at(mute);
    settings.connect_timeout = 200ms;
    settings.command_timeout = 10s;
    redis_store s(settings);
    const auto start = std::chrono::steady_clock::now();
    CHECK(run(s.check(bob, timing::postgrey(), t0)).error() == redis_errc::connect_timeout);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
}

TEST_CASE("The Redis store keeps its records in the database it is given") {
    const grey::endpoint where = test_redis();
    redis_settings in3;
    in3.host = where.host;
    in3.port = where.port;
    in3.database = 3;
    in3.prefix = unique_prefix();
    redis_settings in0 = in3;
    in0.database = 0;
    redis_store s3(in3), s0(in0);
    CHECK(run(s3.check(bob, timing::postgrey(), t0))->why == outcome::first_seen);
    CHECK(run(s3.find(""))->size() == 1);
    CHECK(run(s0.find(""))->empty());
    CHECK(*run(s3.remove(bob)));
}

TEST_CASE("The Redis store reports a database Redis does not have, and a password it does not expect") {
    const grey::endpoint where = test_redis();
    redis_settings s;
    s.host = where.host;
    s.port = where.port;
    s.prefix = unique_prefix();
    SUBCASE("no such database") {
        s.database = 100000;
        redis_store store(s);
        CHECK(run(store.check(bob, timing::postgrey(), t0)).error() == redis_errc::select_failed);
    }
    SUBCASE("a password for a Redis that has none") {
        s.password = "not-configured";
        redis_store store(s);
        CHECK(run(store.check(bob, timing::postgrey(), t0)).error() == redis_errc::auth_failed);
    }
}

TEST_CASE("The Redis store refuses settings that cannot work before it starts") {
    redis_settings s;
    s.password_file = "/nonexistent-dir/redis-password";
    CHECK_THROWS_AS(redis_store{s}, std::runtime_error);
    redis_settings t;
    t.reconnect_min = 2s;
    t.reconnect_max = 1s;
    CHECK_THROWS_AS(redis_store{t}, std::invalid_argument);
}
