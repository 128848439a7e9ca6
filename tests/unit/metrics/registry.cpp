#include <doctest/doctest.h>

#include <grey/metrics/registry.hpp>

using namespace grey::metrics;
using namespace std::chrono_literals;

TEST_CASE("A histogram counts each observation in every bucket at or above it, as Prometheus' are cumulative") {
    histogram h{0.001, 0.01, 0.1};
    h.observe(500us);
    h.observe(5ms);
    h.observe(5ms);
    h.observe(2s);
    registry r;
    r.add("t_seconds", "Test.", h);
    const std::string text = r.write();
    CHECK(text.find("# TYPE t_seconds histogram\n") != std::string::npos);
    CHECK(text.find("t_seconds_bucket{le=\"0.001\"} 1\n") != std::string::npos);
    CHECK(text.find("t_seconds_bucket{le=\"0.01\"} 3\n") != std::string::npos);
    CHECK(text.find("t_seconds_bucket{le=\"0.1\"} 3\n") != std::string::npos);
    CHECK(text.find("t_seconds_bucket{le=\"+Inf\"} 4\n") != std::string::npos);
    CHECK(text.find("t_seconds_sum 2.0105\n") != std::string::npos);
    CHECK(text.find("t_seconds_count 4\n") != std::string::npos);
}

TEST_CASE("Counters, labeled counters and gauges are written with their HELP and TYPE") {
    counter c;
    c.add(3);
    labeled<2> l{"reason", {"a", "b"}};
    l[1].add();
    gauge g;
    g.add(5);
    g.add(-2);
    registry r;
    r.add("t_total", "Things.", c);
    r.add("t_by_reason_total", "Things by reason.", l);
    r.add("t_open", "Open things.", g);
    r.add_gauge("t_computed", "Computed at scrape time.", [] { return 1.5; });
    CHECK(r.write() ==
          "# HELP t_total Things.\n# TYPE t_total counter\nt_total 3\n"
          "# HELP t_by_reason_total Things by reason.\n# TYPE t_by_reason_total counter\n"
          "t_by_reason_total{reason=\"a\"} 0\nt_by_reason_total{reason=\"b\"} 1\n"
          "# HELP t_open Open things.\n# TYPE t_open gauge\nt_open 3\n"
          "# HELP t_computed Computed at scrape time.\n# TYPE t_computed gauge\nt_computed 1.5\n");
}

TEST_CASE("A counter family whose label values come at start writes each value added, escaped") {
    dynamic_labeled d{"upstream"};
    counter& a = d.at("127.0.0.1:25");
    d.at("odd\"name\\").add(2);
    CHECK(&d.at("127.0.0.1:25") == &a);  // the same counter for the same value
    a.add();
    registry r;
    r.add("t_total", "Test.", d);
    const std::string text = r.write();
    CHECK(text.find("# TYPE t_total counter\n") != std::string::npos);
    CHECK(text.find("t_total{upstream=\"127.0.0.1:25\"} 1\nt_total{upstream=\"odd\\\"name\\\\\"} 2\n") !=
          std::string::npos);
}

TEST_CASE("A gauge computed at scrape time may carry labels known at start") {
    double value = 0;
    registry r;
    r.add_gauge("t_up", "Up or not.", "store=\"redis\"", [&] { return value; });
    CHECK(r.write() == "# HELP t_up Up or not.\n# TYPE t_up gauge\nt_up{store=\"redis\"} 0\n");
    value = 1;
    CHECK(r.write().ends_with("t_up{store=\"redis\"} 1\n"));
}
