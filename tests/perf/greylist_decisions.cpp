// greylist_decisions — how many greylisting decisions per second the engine makes, alone and
// through each store (memory, SQLite, Redis), with many checks in flight at once as a busy
// server has. Prints a table; the median of three runs per row. For scale, the SQLite row has
// a twin: the same table, statements and settings driven through SQLite's C API alone, in
// transactions of as many checks as are in flight, which is the most the store could reach.
//
//   greylist_decisions [--redis 127.0.0.1:6379] [--count 200000] [--concurrency 64]
//                      [--store URL]... [--only-stores] [--fill N]
//
// --store URL (repeatable) adds a row for any store open_store() opens (memory, sqlite:PATH,
// redis://, redis-sentinel://, redis-cluster://...): decisions per second and each decision's
// latency, p50 and p99, over `count` triplets each checked twice (2 x count decisions); each
// figure the median of three runs. A Redis URL is opened with a key prefix of its own for each
// run (`prefix=` appended to its query), so that no run finds another's records; a SQLite file
// is used as it is, with what earlier runs left in it.
// --only-stores leaves out the engine, memory and SQLite rows.
// --fill N writes N first sightings (distinct triplets, concurrency as given) into each
// --store as its URL says, prefix included (grey: by default), and leaves them there: for
// measuring the records' memory. Nothing else is run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <sqlite3.h>

#include <grey/config.hpp>
#include <grey/greylist/memory_store.hpp>
#include <grey/greylist/open_store.hpp>
#include <grey/greylist/redis_store.hpp>
#include <grey/greylist/sqlite_store.hpp>

using namespace grey::greylist;
using clock_type = std::chrono::steady_clock;

namespace {

std::vector<triplet> make_triplets(std::size_t n) {
    std::vector<triplet> v;
    v.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
        v.push_back({fmt::format("198.51.{}.0/24", i % 251), fmt::format("sender{}@example.org", i),
                     fmt::format("rcpt{}@example.com", i % 1000)});
    return v;
}

/// Decisions per second of `count` checks spread over `concurrency` coroutines. Every triplet
/// is checked twice, a first sighting and a retry, as in real traffic; with `rounds` 1, only
/// the first sighting. With `latencies`, each check's duration in microseconds goes there, one
/// element per check. The first failure's reason goes to `first_error`, when given.
double run_store(store& s, const std::vector<triplet>& triplets, std::size_t concurrency,
                 std::vector<double>* latencies = nullptr, int rounds = 2, std::string* first_error = nullptr) {
    asio::io_context ioc;
    const timing t = timing::postgrey();
    const auto now = clock::now();
    std::atomic<std::size_t> failures{0};
    const std::size_t per = triplets.size() / concurrency;
    if (latencies) latencies->assign(per * concurrency * std::size_t(rounds), 0.0);
    const auto start = clock_type::now();
    for (std::size_t w = 0; w < concurrency; ++w) {
        asio::co_spawn(
            ioc,
            [&, w]() -> asio::awaitable<void> {
                for (int round = 0; round < rounds; ++round)
                    for (std::size_t i = w * per; i < (w + 1) * per; ++i) {
                        const auto asked = clock_type::now();
                        auto d = co_await s.check(triplets[i], t, now + std::chrono::seconds(round * 400));
                        if (latencies)
                            (*latencies)[std::size_t(round) * per * concurrency + i] =
                                std::chrono::duration<double, std::micro>(clock_type::now() - asked).count();
                        if (!d && failures++ == 0 && first_error) *first_error = d.error().message();
                    }
            },
            asio::detached);
    }
    ioc.run();
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    if (failures) fmt::print(stderr, "{} checks failed\n", failures.load());
    return failures ? 0.0 : double(per * concurrency * std::size_t(rounds)) / seconds;
}

/// The `q` quantile (0..1) of `v`, nearest rank; reorders `v`. 0 for none.
double quantile(std::vector<double>& v, double q) {
    if (v.empty()) return 0.0;
    const auto k = std::min(v.size() - 1, static_cast<std::size_t>(q * double(v.size())));
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
    return v[k];
}

double run_engine(std::size_t count) {
    const timing t = timing::postgrey();
    const auto now = clock::now();
    std::optional<record> r;
    std::size_t passes = 0;
    const auto start = clock_type::now();
    for (std::size_t i = 0; i < count; ++i) {
        const decision d = decide(t, (i % 2) ? r : std::nullopt, now + std::chrono::seconds(i % 2 * 400));
        r = d.updated;
        passes += d.pass();
    }
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    if (passes != count / 2) fmt::print(stderr, "unexpected: {} passes\n", passes);
    return double(count) / seconds;
}

/// SQLite alone: sqlite_store's schema, settings and statements, one thread, no event loop,
/// `batch` read-then-write checks per transaction. Its checkpoints run inline, as SQLite runs
/// them by itself (the store's run on a thread of their own).
double run_bare_sqlite(const std::string& path, const std::vector<triplet>& triplets, std::size_t batch) {
    sqlite3* db = nullptr;
    if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return 0.0;
    const auto exec = [db](const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; };
    for (const char* sql :
         {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA mmap_size=268435456",
          "PRAGMA cache_size=-65536", "PRAGMA wal_autocheckpoint=16384",
          "CREATE TABLE triplets (client TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,"
          " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, passed_at INTEGER NOT NULL,"
          " attempts INTEGER NOT NULL, passes INTEGER NOT NULL, passed INTEGER NOT NULL, expires INTEGER NOT NULL,"
          " PRIMARY KEY (client, sender, recipient)) WITHOUT ROWID"})
        exec(sql);
    sqlite3_stmt* select = nullptr;
    sqlite3_stmt* upsert = nullptr;
    sqlite3_prepare_v2(db,
                       "SELECT first_seen, last_seen, passed_at, attempts, passes, passed FROM triplets"
                       " WHERE client = ?1 AND sender = ?2 AND recipient = ?3",
                       -1, &select, nullptr);
    sqlite3_prepare_v2(db,
                       "INSERT INTO triplets (client, sender, recipient, first_seen, last_seen,"
                       " passed_at, attempts, passes, passed, expires) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
                       " ON CONFLICT DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen,"
                       " passed_at = excluded.passed_at, attempts = excluded.attempts, passes = excluded.passes,"
                       " passed = excluded.passed, expires = excluded.expires",
                       -1, &upsert, nullptr);
    const auto bind_triplet = [](sqlite3_stmt* st, const triplet& t) {
        sqlite3_bind_text(st, 1, t.client.data(), int(t.client.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, t.sender.data(), int(t.sender.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, t.recipient.data(), int(t.recipient.size()), SQLITE_TRANSIENT);
    };
    std::size_t done = 0, failures = 0;
    const auto start = clock_type::now();
    for (int round = 0; round < 2; ++round)
        for (const triplet& t : triplets) {
            if (done % batch == 0 && !exec("BEGIN IMMEDIATE")) ++failures;
            bind_triplet(select, t);
            const int found = sqlite3_step(select);
            sqlite3_reset(select);
            bind_triplet(upsert, t);
            for (int column = 4; column <= 10; ++column) sqlite3_bind_int64(upsert, column, round + column);
            if ((found != SQLITE_ROW && found != SQLITE_DONE) || sqlite3_step(upsert) != SQLITE_DONE) ++failures;
            sqlite3_reset(upsert);
            if (++done % batch == 0 && !exec("COMMIT")) ++failures;
        }
    if (done % batch != 0 && !exec("COMMIT")) ++failures;
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    sqlite3_finalize(select);
    sqlite3_finalize(upsert);
    sqlite3_close(db);
    if (failures) fmt::print(stderr, "{} bare SQLite checks failed\n", failures);
    return failures ? 0.0 : double(done) / seconds;
}

double median3(const std::function<double()>& f) {
    double v[3] = {f(), f(), f()};
    std::sort(v, v + 3);
    return v[1];
}

/// A URL as it may be shown: without the user and password between "://" and "@", and without
/// a query that names a password.
std::string shown(std::string url) {
    if (const auto query = url.find('?'); query != std::string::npos && url.find("password", query) != std::string::npos)
        url.erase(query);
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const auto at = url.find('@', scheme + 3);
    const auto path = url.find_first_of("/?", scheme + 3);
    if (at == std::string::npos || (path != std::string::npos && at > path)) return url;
    return url.substr(0, scheme + 3) + url.substr(at + 1);
}

bool is_redis_url(const std::string& url) {
    return std::any_of(std::begin(redis_schemes), std::end(redis_schemes),
                       [&](std::string_view scheme) { return url.starts_with(scheme); });
}

/// `url` with `prefix=` in its query.
std::string with_prefix(const std::string& url, const std::string& prefix) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + "prefix=" + prefix;
}

/// One row of the --store table.
struct store_row {
    double rate = 0;    ///< decisions/s
    double p50_us = 0;  ///< latency of one decision, microseconds
    double p99_us = 0;
};

/// Median rate, median p50 and median p99 of three runs (each figure on its own) through the
/// store `url` opens; a Redis store under a prefix of its own each run.
store_row measure_store(const std::string& url, const std::vector<triplet>& triplets, std::size_t concurrency) {
    std::vector<store_row> runs;
    std::vector<double> latencies;
    for (int run = 0; run < 3; ++run) {
        const std::string spec =
            is_redis_url(url) ? with_prefix(url, fmt::format("grey-bench-{}-{}:", ::getpid(), run)) : url;
        std::string error;
        store_row r;
        {
            const std::shared_ptr<store> s = open_store(spec);
            r.rate = run_store(*s, triplets, concurrency, &latencies, 2, &error);
        }
        if (!error.empty()) fmt::print(stderr, "{}: {}\n", shown(url), error);
        r.p50_us = quantile(latencies, 0.50);
        r.p99_us = quantile(latencies, 0.99);
        runs.push_back(r);
    }
    const auto median = [&](double store_row::*field) {
        std::vector<double> v;
        for (const auto& r : runs) v.push_back(r.*field);
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    return {median(&store_row::rate), median(&store_row::p50_us), median(&store_row::p99_us)};
}

} // namespace

int main(int argc, char** argv) {
    std::size_t count = 200000, concurrency = 64, fill = 0;
    bool only_stores = false;
    std::string redis;
    std::vector<std::string> stores;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--only-stores") {
            only_stores = true;
            continue;
        }
        if (i + 1 >= argc) break;
        if (a == "--count") count = std::stoul(argv[i + 1]);
        else if (a == "--concurrency") concurrency = std::stoul(argv[i + 1]);
        else if (a == "--redis") redis = argv[i + 1];
        else if (a == "--store") stores.push_back(argv[i + 1]);
        else if (a == "--fill") fill = std::stoul(argv[i + 1]);
        ++i;
    }
    if (concurrency == 0) concurrency = 1;
    if (fill > 0) {
        const auto triplets = make_triplets(fill);
        int status = 0;
        for (const std::string& url : stores) {
            std::string error;
            double rate = 0;
            try {
                const std::shared_ptr<store> s = open_store(url);
                rate = run_store(*s, triplets, concurrency, nullptr, 1, &error);
            } catch (const std::exception& e) {
                error = e.what();
            }
            if (!error.empty()) fmt::print(stderr, "{}: {}\n", shown(url), error);
            if (rate == 0) status = 1;
            fmt::print("filled {} first sightings into {} at {:.0f}/s\n", fill / concurrency * concurrency, shown(url), rate);
        }
        return status;
    }
    const auto triplets = make_triplets(count);
    if (!only_stores) {
        fmt::print("{:<28} {:>16}\n", "greylist decisions", "decisions/s");
        fmt::print("{:<28} {:>16.0f}\n", "engine (pure function)", median3([&] { return run_engine(count * 10); }));
        fmt::print("{:<28} {:>16.0f}\n", "memory store", median3([&] {
                       memory_store s;
                       return run_store(s, triplets, concurrency);
                   }));
        const auto db = std::filesystem::temp_directory_path() / fmt::format("grey-bench-{}.db", ::getpid());
        fmt::print("{:<28} {:>16.0f}\n", "sqlite store", median3([&] {
                       double r;
                       {
                           sqlite_store s(db.string());
                           r = run_store(s, std::vector(triplets.begin(), triplets.begin() + std::min<std::size_t>(count, 20000)), concurrency);
                       }
                       for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix);
                       return r;
                   }));
        fmt::print("{:<28} {:>16.0f}\n", "sqlite alone (reference)", median3([&] {
                       const double r = run_bare_sqlite(
                           db.string(), std::vector(triplets.begin(), triplets.begin() + std::min<std::size_t>(count, 20000)),
                           concurrency);
                       for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db.string() + suffix);
                       return r;
                   }));
    }
    if (!redis.empty()) {
        const auto where = grey::parse_endpoint(redis);
        if (!where) return 2;
        int run = 0;
        fmt::print("{:<28} {:>16.0f}\n", "redis store", median3([&] {
                       redis_store s(where->host, where->port, fmt::format("grey-bench-{}-{}:", ::getpid(), run++));
                       return run_store(s, std::vector(triplets.begin(), triplets.begin() + std::min<std::size_t>(count, 20000)), concurrency);
                   }));
    } else if (!only_stores) {
        fmt::print("{:<28} {:>16}\n", "redis store", "skipped (--redis HOST:PORT)");
    }
    if (stores.empty()) return 0;
    // Every triplet checked twice: 2 x count decisions per run, `concurrency` in flight.
    fmt::print("\n{:<48} {:>8} {:>12} {:>10} {:>10}\n", "store", "in flight", "decisions/s", "p50 us", "p99 us");
    int status = 0;
    for (const std::string& url : stores) {
        try {
            const store_row r = measure_store(url, triplets, concurrency);
            fmt::print("{:<48} {:>8} {:>12.0f} {:>10.1f} {:>10.1f}\n", shown(url), concurrency, r.rate, r.p50_us, r.p99_us);
            if (r.rate == 0) status = 1;
        } catch (const std::exception& e) {
            fmt::print("{:<48} {:>8} {:>12}\n", shown(url), concurrency, "failed");
            fmt::print(stderr, "{}: {}\n", shown(url), e.what());
            status = 1;
        }
    }
    return status;
}
