#include <grey/greylist/engine.hpp>

#include <doctest/doctest.h>

using namespace grey::greylist;
using namespace std::chrono_literals;

namespace {
const clock::time_point t0 = clock::time_point{} + 1000 * 24h;

/// Applies decide() the way a store does: the new record replaces the old.
struct triplet_state {
    timing t;
    std::optional<record> stored{};
    decision attempt(clock::time_point now) {
        decision d = decide(t, stored, now);
        stored = d.updated;
        return d;
    }
};
} // namespace

TEST_CASE("A triplet seen for the first time is deferred and remembered") {
    triplet_state s{timing::postgrey()};
    const decision d = s.attempt(t0);
    CHECK(d.why == outcome::first_seen);
    CHECK_FALSE(d.pass());
    CHECK(d.updated.first_seen == t0);
    CHECK(d.updated.attempts == 1);
    CHECK_FALSE(d.updated.passed);
}

TEST_CASE("A retry before the delay is deferred without restarting the delay") {
    triplet_state s{timing::postgrey()};
    s.attempt(t0);
    const decision d = s.attempt(t0 + 299s);
    CHECK(d.why == outcome::too_soon);
    CHECK(d.updated.first_seen == t0);
    CHECK(d.updated.attempts == 2);
}

TEST_CASE("A retry inside the window after the delay passes and reports how long it was held") {
    triplet_state s{timing::postgrey()};
    s.attempt(t0);
    SUBCASE("exactly at the delay") {
        const decision d = s.attempt(t0 + 300s);
        CHECK(d.why == outcome::passed);
        CHECK(d.delayed == 300s);
    }
    SUBCASE("at the end of the window") {
        const decision d = s.attempt(t0 + 48h);
        CHECK(d.why == outcome::passed);
        CHECK(d.updated.passed);
        CHECK(d.updated.passes == 1);
    }
}

TEST_CASE("A retry after the window starts over as a first sight") {
    triplet_state s{timing::postgrey()};
    s.attempt(t0);
    const decision d = s.attempt(t0 + 48h + 1s);
    CHECK(d.why == outcome::restarted);
    CHECK_FALSE(d.pass());
    CHECK(d.updated.first_seen == t0 + 48h + 1s);
    CHECK(s.attempt(t0 + 48h + 1s + 300s).why == outcome::passed);
}

TEST_CASE("A passed triplet passes at once and each pass refreshes it") {
    triplet_state s{timing::postgrey()};
    s.attempt(t0);
    s.attempt(t0 + 10min);
    const decision later = s.attempt(t0 + 30 * 24h);
    CHECK(later.why == outcome::known);
    CHECK(later.updated.passed_at == t0 + 30 * 24h);
    CHECK(later.updated.passes == 2);
    // 35 days after the latest pass, not after the first: still known.
    CHECK(s.attempt(t0 + 60 * 24h).why == outcome::known);
}

TEST_CASE("A passed triplet not seen for longer than max_age expires") {
    triplet_state s{timing::postgrey()};
    s.attempt(t0);
    s.attempt(t0 + 10min);
    const decision d = s.attempt(t0 + 10min + 35 * 24h + 1s);
    CHECK(d.why == outcome::first_seen);
    CHECK_FALSE(d.updated.passed);
}

TEST_CASE("The seed's preset restarts the hour when a retry comes within 180 seconds") {
    triplet_state s{timing::kamaelia()};
    s.attempt(t0);
    const decision hammer = s.attempt(t0 + 179s);
    CHECK(hammer.why == outcome::restarted);
    CHECK(hammer.updated.first_seen == t0 + 179s);
    CHECK(s.attempt(t0 + 179s + 181s).why == outcome::too_soon);
    CHECK(s.attempt(t0 + 179s + 3599s).why == outcome::too_soon);
    CHECK(s.attempt(t0 + 179s + 3600s).why == outcome::passed);
}

TEST_CASE("The seed's preset gives up on a retry after 25000 seconds") {
    triplet_state s{timing::kamaelia()};
    s.attempt(t0);
    CHECK(s.attempt(t0 + 25001s).why == outcome::restarted);
}

TEST_CASE("Records expire when the store may forget them") {
    const timing t = timing::postgrey();
    const record waiting{t0, t0, {}, 1, 0, false};
    CHECK(expires_at(t, waiting) == t0 + 48h);
    const record passed{t0, t0 + 1h, t0 + 1h, 2, 1, true};
    CHECK(expires_at(t, passed) == t0 + 1h + 35 * 24h);
}

TEST_CASE("A client is auto-whitelisted after N passed deliveries, and not before") {
    const timing t = timing::postgrey();
    std::optional<client_record> c;
    for (int i = 0; i < 4; ++i) {
        c = count_client_pass(c, t, t0 + i * 1h);
        CHECK_FALSE(client_whitelisted(5, c, t, t0 + i * 1h));
    }
    c = count_client_pass(c, t, t0 + 4h);
    CHECK(c->passes == 5);
    CHECK(client_whitelisted(5, c, t, t0 + 5h));
    SUBCASE("0 turns auto-whitelisting off") { CHECK_FALSE(client_whitelisted(0, c, t, t0 + 5h)); }
    SUBCASE("it lapses after max_age without a pass") {
        CHECK_FALSE(client_whitelisted(5, c, t, t0 + 4h + 35 * 24h + 1s));
        CHECK(count_client_pass(c, t, t0 + 4h + 35 * 24h + 1s).passes == 1);
    }
}

TEST_CASE("Stores keep times as whole milliseconds since the epoch, finer parts dropped") {
    CHECK(to_epoch_ms(clock::time_point{}) == 0);
    CHECK(to_epoch_ms(t0) == 1000LL * 24 * 3600 * 1000);
    CHECK(from_epoch_ms(to_epoch_ms(t0)) == t0);
    CHECK(from_epoch_ms(1234) == clock::time_point{} + 1234ms);
    CHECK(from_epoch_ms(-1) == clock::time_point{} - 1ms);
    // A time between two milliseconds comes back as the earlier one (after the epoch).
    const auto finer = t0 + 1ms + std::chrono::duration_cast<clock::duration>(std::chrono::microseconds(999));
    CHECK(to_epoch_ms(finer) == to_epoch_ms(t0) + 1);
    CHECK(from_epoch_ms(to_epoch_ms(finer)) == t0 + 1ms);
}
