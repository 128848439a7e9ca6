// What server_metrics adds to its registry beyond counting: the build.
#include <doctest/doctest.h>

#include <string>
#include <system_error>

#include <grey/metrics/server_metrics.hpp>
#include <grey/version.hpp>

using namespace grey::metrics;
using namespace std::chrono_literals;

namespace {
bool has(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }
} // namespace

TEST_CASE("grey_build_info is one series of value 1 whose label is Grey's version") {
    server_metrics m;
    const std::string text = m.registry().write();
    CHECK(has(text, "# TYPE grey_build_info gauge\n"));
    CHECK(has(text, "grey_build_info{version=\"" + std::string(grey::version) + "\"} 1\n"));
    CHECK(grey::version.find_first_not_of("0123456789.") == std::string::npos);
}
