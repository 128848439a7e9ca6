// The same behaviour asked of every store; store-specific behaviour (persistence) after.
#include <grey/config.hpp>
#include <grey/greylist/memory_store.hpp>
#include <grey/greylist/redis_store.hpp>
#include <grey/greylist/sqlite_store.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>
#include <unistd.h>

using namespace grey::greylist;
using grey::result;
using namespace std::chrono_literals;

namespace {
/// Runs one store call to completion on a private io_context.
template <class T>
T run(asio::awaitable<T> op) {
    asio::io_context ioc;
    std::optional<T> out;
    asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T value) {
        if (e) std::rethrow_exception(e);
        out.emplace(std::move(value));
    });
    ioc.run();
    REQUIRE(out.has_value());
    return std::move(*out);
}

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

TEST_CASE("The Redis store reports a server that is not there") {
    redis_store nowhere("127.0.0.1", 1, unique_prefix());
    const auto d = run(nowhere.check(bob, timing::postgrey(), t0));
    CHECK(d.error() == grey::errc::store_failed);
}
