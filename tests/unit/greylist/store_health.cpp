#include <grey/error.hpp>
#include <grey/greylist/store_health.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

using grey::greylist::store_health;

namespace {
const std::error_code failed = make_error_code(grey::errc::store_failed);
const std::error_code answered{};
} // namespace

TEST_CASE("A store outage is reported once when it begins and once when it ends") {
    store_health h;
    CHECK(h.available());
    CHECK_FALSE(h.note(answered));
    const auto down = h.note(failed);
    REQUIRE(down);
    CHECK(*down == "greylist store unavailable: greylist store failed");
    CHECK_FALSE(h.available());
    CHECK_FALSE(h.note(failed));  // the next recipients, the next sessions: nothing more
    CHECK_FALSE(h.note(failed));
    const auto up = h.note(answered);
    REQUIRE(up);
    CHECK(*up == "greylist store available again");
    CHECK(h.available());
    CHECK_FALSE(h.note(answered));
    SUBCASE("a second outage is reported again") {
        CHECK(h.note(make_error_code(std::errc::connection_refused)) ==
              "greylist store unavailable: " + make_error_code(std::errc::connection_refused).message());
    }
}

TEST_CASE("Of many threads failing at once, exactly one reports the outage") {
    store_health h;
    constexpr int threads = 8, calls = 1000;
    std::atomic<int> reports{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; ++i)
        pool.emplace_back([&] {
            while (!go) std::this_thread::yield();
            for (int n = 0; n < calls; ++n)
                if (h.note(failed)) ++reports;
        });
    go = true;
    for (auto& t : pool) t.join();
    CHECK(reports == 1);
}
