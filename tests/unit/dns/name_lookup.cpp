#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include <grey/dns/name_lookup.hpp>

using namespace grey::dns;

TEST_CASE("A client's names are looked up away from the session's thread, which it resumes on") {
    asio::io_context ioc(1);
    const auto loopback = asio::ip::make_address("127.0.0.1");
    std::vector<client_names> found;
    bool on_own_thread = true;
    const auto session = [&]() -> asio::awaitable<void> {
        const auto own = std::this_thread::get_id();
        found.push_back(co_await look_up_names(loopback));
        on_own_thread = on_own_thread && std::this_thread::get_id() == own;
    };
    // Several at once, as sessions of many clients start together; the second round is cached.
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 4; ++i) asio::co_spawn(ioc, session(), asio::detached);
        ioc.restart();
        ioc.run();
    }
    REQUIRE(found.size() == 8);
    CHECK(on_own_thread);
    for (const auto& names : found) {
        // /etc/hosts names 127.0.0.1 on every Debian machine; the name resolves back to it.
        CHECK(names.reverse_name == "localhost");
        CHECK(names.name == "localhost");
    }
}
