#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <grey/upstream/failover.hpp>

using grey::endpoint;
using grey::upstream::failover;
using namespace std::chrono_literals;

namespace {

/// Three upstreams, a clock the test moves, the diagnostics lines and the metrics.
struct fixture {
    failover::clock::time_point now{};
    std::vector<std::string> lines;
    grey::diagnostics::reporter reporter{{100, 1min}, [this](std::string_view l) { lines.emplace_back(l); },
                                         [this] { return now; }};
    grey::metrics::server_metrics metrics;
    failover upstreams{{endpoint{"127.0.0.1", 2525}, endpoint{"::1", 2526}, endpoint{"mx.example", 25}},
                       30s, &metrics, [this] { return now; }, &reporter};
};

using order = std::vector<std::size_t>;

} // namespace

TEST_CASE("Upstreams are tried in the order given while none has failed") {
    fixture f;
    CHECK(f.upstreams.size() == 3);
    CHECK(f.upstreams.order() == order{0, 1, 2});
    CHECK(f.upstreams.name(0) == "127.0.0.1:2525");
    CHECK(f.upstreams.name(1) == "[::1]:2526");
    CHECK(f.upstreams.at(2).host == "mx.example");
    f.upstreams.succeeded(0);  // up already: nothing said
    CHECK(f.lines.empty());
}

TEST_CASE("An upstream that failed is skipped for the retry time, then tried again in its place") {
    fixture f;
    f.upstreams.failed(0, "greeting: 421 4.3.2 busy");
    CHECK(f.upstreams.skipped(0));
    CHECK(f.upstreams.marked_down(0));
    CHECK(f.upstreams.order() == order{1, 2});
    f.now += 29s;
    CHECK(f.upstreams.order() == order{1, 2});
    f.now += 1s;
    CHECK_FALSE(f.upstreams.skipped(0));
    CHECK(f.upstreams.marked_down(0));  // until it answers
    CHECK(f.upstreams.order() == order{0, 1, 2});
    f.upstreams.succeeded(0);
    CHECK_FALSE(f.upstreams.marked_down(0));
}

TEST_CASE("A failure at the retry of an upstream still down moves its retry time, and says nothing more") {
    fixture f;
    f.upstreams.failed(1, "greeting: upstream timeout");
    f.now += 31s;
    CHECK(f.upstreams.order() == order{0, 1, 2});
    f.upstreams.failed(1, "greeting: upstream timeout");
    CHECK(f.upstreams.order() == order{0, 2});
    f.now += 29s;
    CHECK(f.upstreams.order() == order{0, 2});
    CHECK(f.lines.size() == 1);
    CHECK(f.metrics.upstreams_marked_down.at("[::1]:2526").value() == 1);
}

TEST_CASE("When every upstream is marked down, all are tried in order rather than none") {
    fixture f;
    f.upstreams.failed(2, "a");
    f.upstreams.failed(0, "b");
    CHECK(f.upstreams.order() == order{1});
    f.upstreams.failed(1, "c");
    CHECK(f.upstreams.order() == order{0, 1, 2});
    CHECK(f.lines.back().find("every upstream is down") != std::string::npos);
    f.upstreams.succeeded(1);
    CHECK(f.upstreams.order() == order{1});
}

TEST_CASE("Marking down and using again write one line each and are counted, by upstream") {
    fixture f;
    f.upstreams.failed(0, "greeting: Connection refused");
    f.upstreams.failed(0, "greeting: Connection refused");  // another session, at the same time
    REQUIRE(f.lines.size() == 1);
    CHECK(f.lines[0] == "grey: warning: upstream 127.0.0.1:2525 marked down for 30s: greeting: Connection refused\n");
    CHECK(f.metrics.upstreams_down.value() == 1);
    f.upstreams.succeeded(0);
    f.upstreams.succeeded(0);
    REQUIRE(f.lines.size() == 2);
    CHECK(f.lines[1] == "grey: notice: upstream 127.0.0.1:2525 used again\n");
    CHECK(f.metrics.upstreams_down.value() == 0);

    const std::string text = f.metrics.registry().write();
    CHECK(text.find("# TYPE grey_upstream_marked_down_total counter\n") != std::string::npos);
    CHECK(text.find("grey_upstream_marked_down_total{upstream=\"127.0.0.1:2525\"} 1\n") != std::string::npos);
    CHECK(text.find("grey_upstream_marked_down_total{upstream=\"[::1]:2526\"} 0\n") != std::string::npos);
    CHECK(text.find("grey_upstreams_down 0\n") != std::string::npos);
}

TEST_CASE("One upstream alone is always tried, down or not") {
    failover::clock::time_point now{};
    grey::diagnostics::reporter quiet({}, [](std::string_view) {}, [&] { return now; });
    failover one({endpoint{"127.0.0.1", 25}}, 30s, nullptr, [&] { return now; }, &quiet);
    one.failed(0, "x");
    CHECK(one.order() == order{0});
}

TEST_CASE("A failure is described by its stage and the error or the reply") {
    using grey::upstream::failure_text;
    CHECK(failure_text("greeting", grey::smtp::reply{421, "4.3.2", "busy"}) == "greeting: 421 4.3.2 busy");
    CHECK(failure_text("EHLO", grey::smtp::reply{554, "", "no"}) == "EHLO: 554 no");
    CHECK(failure_text("greeting", grey::result<grey::smtp::reply>(grey::errc::upstream_timeout)) ==
          "greeting: upstream timeout");
}
