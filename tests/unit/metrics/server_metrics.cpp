// What server_metrics adds to its registry beyond counting: the build, the store's health read
// at each scrape, policy answers by their action's word, the DNS resolver's counts.
#include <doctest/doctest.h>

#include <string>
#include <system_error>

#include <grey/greylist/store_health.hpp>
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

TEST_CASE("grey_store_up follows the store's health at each scrape, labelled with the store's kind") {
    server_metrics m;
    CHECK(!has(m.registry().write(), "grey_store_up"));  // no store watched, no series
    grey::greylist::store_health health;
    m.watch_store("redis", [&] { return health.available(); });
    CHECK(has(m.registry().write(), "# TYPE grey_store_up gauge\ngrey_store_up{store=\"redis\"} 1\n"));
    (void)health.note(std::make_error_code(std::errc::connection_refused));
    CHECK(has(m.registry().write(), "grey_store_up{store=\"redis\"} 0\n"));
    (void)health.note({});
    CHECK(has(m.registry().write(), "grey_store_up{store=\"redis\"} 1\n"));
}

TEST_CASE("Policy answers are counted by their action's word, any other word as other, and timed") {
    server_metrics m;
    CHECK(m.policy_action("DUNNO") == 0);
    CHECK(m.policy_action("DEFER_IF_PERMIT") == 1);
    CHECK(m.policy_action("PREPEND") == 2);
    CHECK(m.policy_action("550") == 3);
    CHECK(m.policy_action("REJECT") == 4);
    CHECK(m.policy_action("") == 4);
    m.policy_answered(m.policy_action("DEFER_IF_PERMIT"), 2ms);
    m.policy_answered(m.policy_action("DEFER_IF_PERMIT"), 3ms);
    m.policy_answered(m.policy_action("WHATEVER"), 1ms);
    const std::string text = m.registry().write();
    CHECK(has(text, "grey_policy_requests_total{action=\"DUNNO\"} 0\n"
                    "grey_policy_requests_total{action=\"DEFER_IF_PERMIT\"} 2\n"
                    "grey_policy_requests_total{action=\"PREPEND\"} 0\n"
                    "grey_policy_requests_total{action=\"550\"} 0\n"
                    "grey_policy_requests_total{action=\"other\"} 1\n"));
    CHECK(has(text, "grey_policy_request_seconds_count 3\n"));
    CHECK(has(text, "grey_policy_request_seconds_bucket{le=\"0.0025\"} 2\n"));
}

TEST_CASE("The DNS resolver's timeouts and cache hits and misses are exported as counters") {
    server_metrics m;
    m.dns_timeouts.add(2);
    m.dns_cache_hits.add(3);
    m.dns_cache_misses.add();
    const std::string text = m.registry().write();
    CHECK(has(text, "# TYPE grey_dns_timeouts_total counter\ngrey_dns_timeouts_total 2\n"));
    CHECK(has(text, "# TYPE grey_dns_cache_hits_total counter\ngrey_dns_cache_hits_total 3\n"));
    CHECK(has(text, "# TYPE grey_dns_cache_misses_total counter\ngrey_dns_cache_misses_total 1\n"));
}
