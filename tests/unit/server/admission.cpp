// Admission: the limits in total and per client address, a place given back once, and a stop
// that tells each open connection on its own executor.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include <grey/server/admission.hpp>

using grey::server::refusal;

namespace {
struct slot {
    explicit slot(asio::any_io_executor ex) : executor(std::move(ex)) {}
    void shutdown(std::chrono::steady_clock::time_point d) { told = d; }
    asio::any_io_executor executor;
    std::optional<std::chrono::steady_clock::time_point> told;
    grey::server::admission<slot>::place place{};
};
using admission = grey::server::admission<slot>;
} // namespace

TEST_CASE("Connections are admitted up to the total limit, and a released place is free again") {
    asio::io_context ioc;
    admission a({.max_connections = 2});
    auto one = std::make_shared<slot>(ioc.get_executor());
    auto two = std::make_shared<slot>(ioc.get_executor());
    auto three = std::make_shared<slot>(ioc.get_executor());
    CHECK(a.admit(one, "192.0.2.1") == refusal::none);
    CHECK(a.admit(two, "192.0.2.2") == refusal::none);
    CHECK(a.admit(three, "192.0.2.3") == refusal::connection_limit);
    CHECK(a.open() == 2);
    a.release(*one);
    a.release(*one);  // a second release does nothing
    CHECK(a.open() == 1);
    CHECK(a.admit(three, "192.0.2.3") == refusal::none);
}

TEST_CASE("One address may hold at most its share; other addresses are not held back") {
    asio::io_context ioc;
    admission a({.max_connections = 10, .max_per_address = 2});
    std::vector<std::shared_ptr<slot>> slots;
    for (int i = 0; i < 4; ++i) slots.push_back(std::make_shared<slot>(ioc.get_executor()));
    CHECK(a.admit(slots[0], "192.0.2.1") == refusal::none);
    CHECK(a.admit(slots[1], "192.0.2.1") == refusal::none);
    CHECK(a.admit(slots[2], "192.0.2.1") == refusal::per_address_limit);
    CHECK(a.admit(slots[3], "192.0.2.9") == refusal::none);
    a.release(*slots[0]);
    CHECK(a.admit(slots[2], "192.0.2.1") == refusal::none);
}

TEST_CASE("A stop refuses what comes after it and tells each open connection, once, on its executor") {
    asio::io_context ioc;
    admission a({});
    auto open = std::make_shared<slot>(ioc.get_executor());
    REQUIRE(a.admit(open, "192.0.2.1") == refusal::none);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    CHECK(a.stop(deadline));
    CHECK_FALSE(a.stop(deadline));
    CHECK(a.stopping());
    CHECK_FALSE(open->told);  // posted, not called in place
    ioc.run();
    REQUIRE(open->told);
    CHECK(*open->told == deadline);
    auto late = std::make_shared<slot>(ioc.get_executor());
    CHECK(a.admit(late, "192.0.2.2") == refusal::shutting_down);
}
