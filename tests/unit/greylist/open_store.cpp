// The store factory the programs share: each description opens a working store of its kind,
// Redis options and the password variable reach the store, and mistakes are refused with why.
#include <grey/config.hpp>
#include <grey/greylist/open_store.hpp>
#include <grey/greylist/redis_store.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <unistd.h>

#include "../run_to_completion.hpp"

using namespace grey::greylist;
using namespace std::chrono_literals;

namespace {
using grey_test::run;

const clock::time_point t0 = clock::time_point{} + 1000 * 24h;
const triplet bob{"192.0.2.0/24", "alice@example.org", "bob@example.com"};

/// A directory of its own per test, removed afterwards.
struct temp_dir {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("grey-open-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    temp_dir() { std::filesystem::create_directories(path); }
    ~temp_dir() { std::filesystem::remove_all(path); }
    static inline int counter = 0;
};

/// "redis://HOST:PORT" of the redis-server ctest starts (GREY_TEST_REDIS=HOST:PORT).
std::string test_redis_url() {
    const char* where = std::getenv("GREY_TEST_REDIS");
    REQUIRE_MESSAGE(where, "GREY_TEST_REDIS must name the test redis-server (ctest sets it)");
    return std::string("redis://") + where;
}
std::string unique_prefix() {
    static int n = 0;
    return "grey-open-store-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ":";
}

/// The outcome of checking bob, a first sighting, and again a minute later.
std::pair<outcome, outcome> check_twice(store& s) {
    const timing t = timing::postgrey();
    const outcome first = run(s.check(bob, t, t0))->why;
    const outcome second = run(s.check(bob, t, t0 + 1min))->why;
    return {first, second};
}

/// The message of the std::invalid_argument that open_store(spec, options) throws.
std::string refusal(const std::string& spec, const store_options& options = {}) {
    try {
        (void)open_store(spec, options);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    FAIL("open_store(\"" << spec << "\") did not throw std::invalid_argument");
    return {};
}
} // namespace

TEST_CASE("\"memory\" opens a memory store") {
    const auto s = open_store("memory");
    REQUIRE(s);
    CHECK(dynamic_cast<memory_store*>(s.get()) != nullptr);
    CHECK(check_twice(*s) == std::pair{outcome::first_seen, outcome::too_soon});
}

TEST_CASE("\"sqlite:PATH\" opens an SQLite file that keeps its records for the next opening") {
    temp_dir dir;
    const std::string spec = "sqlite:" + (dir.path / "greylist.db").string();
    {
        const auto s = open_store(spec);
        REQUIRE(s);
        CHECK(dynamic_cast<sqlite_store*>(s.get()) != nullptr);
        CHECK(run(s->check(bob, timing::postgrey(), t0))->why == outcome::first_seen);
    }
    CHECK(std::filesystem::exists(dir.path / "greylist.db"));
    const auto reopened = open_store(spec);
    CHECK(run(reopened->check(bob, timing::postgrey(), t0 + 5min))->why == outcome::passed);
}

TEST_CASE("An SQLite file that cannot be opened throws the store's own error") {
    CHECK_THROWS_AS((void)open_store("sqlite:/nonexistent-dir/greylist.db"), std::runtime_error);
}

TEST_CASE("A Redis URL opens a Redis store, with the options under the URL's own") {
    const std::string url_prefix = unique_prefix();
    store_options options;
    options.redis["prefix"] = "grey-open-store-never-used:";
    options.redis["command_timeout_ms"] = "2000";
    const auto s = open_store(test_redis_url() + "?prefix=" + url_prefix, options);
    REQUIRE(s);
    CHECK(dynamic_cast<redis_store*>(s.get()) != nullptr);
    CHECK(check_twice(*s) == std::pair{outcome::first_seen, outcome::too_soon});

    // The record is under the URL's prefix: a store opened with it alone sees it.
    const auto same = open_store(test_redis_url() + "?prefix=" + url_prefix);
    CHECK(run(same->find(""))->size() == 1);
    CHECK(*run(same->remove(bob)));
}

TEST_CASE("The Redis password comes from the variable only when neither the URL nor the options give one") {
    // The test redis-server has no password: one that is sent makes it refuse the login.
    CHECK(store_options{}.redis_password_variable == "GREY_REDIS_PASSWORD");  // the programs' documented one
    const std::string variable = "GREY_TEST_OPEN_STORE_PASSWORD";
    REQUIRE(::setenv(variable.c_str(), "from-the-environment", 1) == 0);
    store_options options;
    options.redis_password_variable = variable;
    const std::string url = test_redis_url() + "?prefix=" + unique_prefix();

    SUBCASE("none given: the variable's is sent") {
        const auto s = open_store(url, options);
        CHECK(run(s->check(bob, timing::postgrey(), t0)).error() == redis_errc::auth_failed);
    }
    SUBCASE("no variable named: none is sent") {
        options.redis_password_variable.clear();
        const auto s = open_store(url, options);
        CHECK(run(s->check(bob, timing::postgrey(), t0))->why == outcome::first_seen);
        CHECK(*run(s->remove(bob)));
    }
    ::unsetenv(variable.c_str());
}

TEST_CASE("A description that names no store is refused with the forms that work") {
    for (const char* spec : {"", "sqlite:", "sqlite", "postgres://localhost/grey", "Memory"}) {
        CAPTURE(spec);
        const std::string why = refusal(spec);
        CHECK(why.find("unknown store") != std::string::npos);
        CHECK(why.find(std::string(store_forms)) != std::string::npos);
    }
}

TEST_CASE("A description's kind of store is named without its path or URL") {
    CHECK(store_kind("memory") == "memory");
    CHECK(store_kind("sqlite:/var/lib/grey/greylist.db") == "sqlite");
    for (const char* spec : {"redis://:secret@127.0.0.1:6379/2", "rediss://h", "redis+unix:///run/redis.sock", "unix:///r"})
        CHECK(store_kind(spec) == "redis");
    for (const char* spec : {"", "sqlite:", "Memory", "postgres://localhost/grey"}) CHECK(store_kind(spec).empty());
}

TEST_CASE("A Redis URL or option with a mistake is refused with the reason") {
    CHECK(refusal("redis://user@localhost").find("bad Redis URL: the password goes after a colon") == 0);
    CHECK(refusal("redis://localhost?nope=1").find("bad Redis URL: unknown Redis option 'nope'") == 0);
    store_options options;
    options.redis["db"] = "not-a-number";
    CHECK(refusal("redis://localhost", options) == "'db' must be a database number, not 'not-a-number'");
}
