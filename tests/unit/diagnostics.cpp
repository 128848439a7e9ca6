#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <grey/diagnostics.hpp>

using namespace grey::diagnostics;
using namespace std::chrono_literals;

TEST_CASE("Diagnostics are one line each with their level, a few per topic per window") {
    std::vector<std::string> lines;
    reporter::clock::time_point now{};
    reporter r({3, 1min}, [&](std::string_view l) { lines.emplace_back(l); }, [&] { return now; });
    for (int i = 0; i < 10; ++i) r.report(level::error, "upstream", "upstream down");
    r.report(level::warning, "store", "slow");  // another topic has its own share
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == "grey: error: upstream down\n");
    CHECK(lines[3] == "grey: warning: slow\n");
    now += 61s;
    r.report(level::notice, "upstream", "upstream back");
    REQUIRE(lines.size() == 5);
    CHECK(lines[4] == "grey: notice: upstream back (7 more upstream lines left out)\n");
}
