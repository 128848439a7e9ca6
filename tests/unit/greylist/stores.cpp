// The same behaviour asked of every store; store-specific behaviour (persistence) after.
#include <grey/greylist/memory_store.hpp>
#include <grey/greylist/sqlite_store.hpp>

#include <doctest/doctest.h>

#include <filesystem>
#include <memory>
#include <unistd.h>

using namespace grey::greylist;
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
} // namespace

TEST_CASE_TEMPLATE("A store applies each decision to the stored record", F, memory_fixture, sqlite_fixture) {
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

TEST_CASE_TEMPLATE("A store finds, whitelists, removes and purges entries", F, memory_fixture, sqlite_fixture) {
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

    // bob waits (expires after the 2-day window), carol passed (expires after 35 days).
    CHECK(*run(s.purge(t, t0 + 3 * 24h)) == 1);
    CHECK(run(s.find(""))->size() == 1);
    CHECK(*run(s.purge(t, t0 + 36 * 24h)) == 1);
    CHECK(run(s.find(""))->empty());
}

TEST_CASE_TEMPLATE("A store counts passes per client group", F, memory_fixture, sqlite_fixture) {
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
