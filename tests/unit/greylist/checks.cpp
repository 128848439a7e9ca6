// Each check of the default pipeline alone (greylist/checks/): what it decides, what it passes
// on, and the word it records as evidence; the store's with the in-memory store and a clock the
// test moves.
#include <grey/greylist/checks/file_whitelists.hpp>
#include <grey/greylist/checks/relay_control.hpp>
#include <grey/greylist/checks/store_screen.hpp>
#include <grey/greylist/checks/whitelists.hpp>
#include <grey/greylist/memory_store.hpp>
#include <grey/greylist/postgrey_whitelists.hpp>
#include <grey/metrics/server_metrics.hpp>

#include <doctest/doctest.h>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../run_to_completion.hpp"

using namespace grey;
using namespace grey::greylist;
using namespace std::chrono_literals;

namespace {

using grey_test::run;

/// A store whose every call fails, as Redis or SQLite do while they are down: no real store
/// fails on demand.
class down_store final : public store {
    static std::error_code down() { return make_error_code(errc::store_failed); }

  public:
    asio::awaitable<result<decision>> check(const triplet&, const timing&, clock::time_point) override {
        co_return down();
    }
    asio::awaitable<result<std::optional<client_record>>> client(const std::string&) override { co_return down(); }
    asio::awaitable<result<void>> count_pass(const std::string&, const timing&, clock::time_point) override {
        co_return down();
    }
    asio::awaitable<result<std::vector<entry>>> find(std::string) override { co_return down(); }
    asio::awaitable<result<void>> whitelist(const triplet&, const timing&, clock::time_point) override {
        co_return down();
    }
    asio::awaitable<result<bool>> remove(const triplet&) override { co_return down(); }
    asio::awaitable<result<std::size_t>> purge(const timing&, clock::time_point) override { co_return down(); }
};

/// The in-memory store with a part that can be down, as a Redis Cluster's master: its calls
/// answer, and part_down() says what is missing.
class partly_down_store final : public store {
  public:
    std::error_code missing;  ///< what part_down() says

    std::error_code part_down() const override { return missing; }
    asio::awaitable<result<decision>> check(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await whole_.check(t, timing, now);
    }
    asio::awaitable<result<std::optional<client_record>>> client(const std::string& group) override {
        co_return co_await whole_.client(group);
    }
    asio::awaitable<result<void>> count_pass(const std::string& group, const timing& timing,
                                             clock::time_point now) override {
        co_return co_await whole_.count_pass(group, timing, now);
    }
    asio::awaitable<result<std::vector<entry>>> find(std::string needle) override {
        co_return co_await whole_.find(std::move(needle));
    }
    asio::awaitable<result<void>> whitelist(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await whole_.whitelist(t, timing, now);
    }
    asio::awaitable<result<bool>> remove(const triplet& t) override { co_return co_await whole_.remove(t); }
    asio::awaitable<result<std::size_t>> purge(const timing& timing, clock::time_point now) override {
        co_return co_await whole_.purge(timing, now);
    }

  private:
    memory_store whole_;
};

/// A configuration with the in-memory store and a clock the test moves, and the lists a check
/// reads.
struct fixture {
    clock::time_point now = clock::time_point{} + 20000 * 24h;
    std::vector<std::string> reported;
    greylist_config config;
    greylist::lists lists;

    fixture() {
        config.timing.delay = 300s;
        config.auto_whitelist_after = 0;
        config.store = std::make_shared<memory_store>();
        config.now = [this] { return now; };
        config.report = [this](const std::string& line) { reported.push_back(line); };
    }

    template <class Check>
    check_answer ask(const Check& c, const question& q) {
        const inquiry in{config, lists, q, {}, config.metrics};
        if constexpr (immediate_check<Check>)
            return c(in);
        else
            return run(c(in));
    }
};

/// alice@example.org at 192.0.2.7, HELO client.example, to `recipient` of `domain`.
question to(std::string_view recipient = "bob@example.com", std::string_view domain = "example.com") {
    return question{"192.0.2.7", "client.example", "alice@example.org", recipient, domain};
}

} // namespace

TEST_CASE("Relay control denies a recipient outside allowed_domains and passes the rest on") {
    fixture f;
    f.lists.allowed_domains = {"example.com"};
    const check_answer denied = f.ask(relay_control{}, to("bob@example.net", "example.net"));
    CHECK(denied.decides == finding::relay_denied);
    CHECK(denied.said == "denied");

    const check_answer relayed = f.ask(relay_control{}, to("bob@Example.COM", "Example.COM"));
    CHECK_FALSE(relayed.decides);
    CHECK(relayed.said == "relayed");

    SUBCASE("<Postmaster> has no domain, and is taken") {
        const check_answer a = f.ask(relay_control{}, to("Postmaster", ""));
        CHECK_FALSE(a.decides);
        CHECK(a.said == "no domain");
    }
    SUBCASE("a question without relay control (Postfix's) is passed on") {
        question q = to("bob@example.net", "example.net");
        q.relay_control = false;
        const check_answer a = f.ask(relay_control{}, q);
        CHECK_FALSE(a.decides);
        CHECK(a.said == "off");
    }
}

TEST_CASE("Relay control lets an allowed sender relay anywhere, with relay control or without") {
    fixture f;
    f.lists.allowed_domains = {"example.com"};
    SUBCASE("by address") { f.lists.allowed_senders = {"192.0.2.7"}; }
    SUBCASE("by network") { f.lists.allowed_sender_nets = {*network::parse("192.0.2.0/24")}; }
    question q = to("bob@example.net", "example.net");
    const check_answer a = f.ask(relay_control{}, q);
    CHECK(a.decides == finding::relays_anywhere);
    CHECK(a.said == "allowed sender");
    q.relay_control = false;
    CHECK(f.ask(relay_control{}, q).decides == finding::relays_anywhere);
}

TEST_CASE("The whitelists pass a whitelisted triple or non-standard triple, and pass the rest on") {
    fixture f;
    SUBCASE("a triple") { f.lists.whitelisted_triples = {{"192.0.2.7", "Alice@Example.ORG", "bob@example.com"}}; }
    SUBCASE("a non-standard triple") {
        f.lists.whitelisted_nonstandard_triples = {{"CLIENT.example", "192.0.2.", "bob@example.com"}};
    }
    const check_answer listed = f.ask(whitelists{}, to());
    CHECK(listed.decides == finding::whitelisted);
    CHECK(listed.said == "listed");
    const check_answer other = f.ask(whitelists{}, to("carol@example.com"));
    CHECK_FALSE(other.decides);
    CHECK(other.said == "not listed");
}

TEST_CASE("The whitelist files pass a listed client name, client address or recipient, and say which, with its line") {
    fixture f;
    CHECK(f.ask(file_whitelists{}, to()).said == "no files");
    CHECK_FALSE(f.ask(file_whitelists{}, to()).decides);

    auto files = std::make_shared<postgrey_whitelists>();
    CHECK(files->add_clients("# a comment\nmail.example.org\n\n198.51.100.0/24\n", "whitelist_clients").empty());
    CHECK(files->add_recipients("postmaster@\n", "whitelist_recipients").empty());
    f.lists.files = files;

    question q = to();
    CHECK(f.ask(file_whitelists{}, q).said == "not listed");
    CHECK_FALSE(f.ask(file_whitelists{}, q).decides);

    q.client_name = "smtp.mail.example.org";
    CHECK(f.ask(file_whitelists{}, q).said == "client name, whitelist_clients:2");
    CHECK(f.ask(file_whitelists{}, q).decides == finding::whitelisted);

    q.client_name = {};
    q.client_address = "198.51.100.9";
    CHECK(f.ask(file_whitelists{}, q).said == "client address, whitelist_clients:4");
    CHECK(f.ask(file_whitelists{}, q).decides == finding::whitelisted);

    const check_answer postmaster = f.ask(file_whitelists{}, to("postmaster@example.com"));
    CHECK(postmaster.said == "recipient, whitelist_recipients:1");
    CHECK(postmaster.decides == finding::whitelisted);
}

TEST_CASE("The store screen greylists a first sight, passes a retry after the delay, then knows the triplet") {
    fixture f;
    metrics::server_metrics m;
    f.config.metrics = &m;

    const check_answer first = f.ask(store_screen{}, to());
    CHECK(first.decides == finding::greylisted);
    CHECK(first.said == "first seen");
    CHECK(first.wait == 300s);
    CHECK(m.greylist_first_seen.value() == 1);

    f.now += 100s;
    const check_answer early = f.ask(store_screen{}, to());
    CHECK(early.decides == finding::greylisted);
    CHECK(early.said == "early retry (200 s missing)");
    CHECK(early.wait == 200s);

    f.now += 201s;
    const check_answer passed = f.ask(store_screen{}, to());
    CHECK(passed.decides == finding::passed);
    CHECK(passed.said == "passed after 301 s");
    CHECK(passed.delayed == 301s);

    const check_answer known = f.ask(store_screen{}, to());
    CHECK(known.decides == finding::known);
    CHECK(known.said == "known");
    CHECK(m.greylist_first_seen.value() == 1);
    CHECK(f.reported.empty());
}

TEST_CASE("The store screen passes a client group that has passed often enough") {
    fixture f;
    f.config.auto_whitelist_after = 1;
    f.ask(store_screen{}, to());
    f.now += 301s;
    CHECK(f.ask(store_screen{}, to()).decides == finding::passed);
    // Another recipient, another address of the same /24: the group has passed once.
    question q = to("carol@example.com");
    q.client_address = "192.0.2.99";
    const check_answer a = f.ask(store_screen{}, q);
    CHECK(a.decides == finding::auto_whitelisted);
    CHECK(a.said == "auto-whitelisted client");
}

TEST_CASE("The store screen gives store_unavailable when the store does not answer, reported once") {
    fixture f;
    f.config.store = std::make_shared<down_store>();
    const check_answer a = f.ask(store_screen{}, to());
    CHECK(a.decides == finding::store_unavailable);
    CHECK(a.said == "unavailable");
    CHECK(f.ask(store_screen{}, to("carol@example.com")).decides == finding::store_unavailable);
    CHECK(f.reported.size() == 1);
}

TEST_CASE("A part of the store down is one outage, however many calls the rest answers") {
    fixture f;
    auto partly = std::make_shared<partly_down_store>();
    f.config.store = partly;
    partly->missing = make_error_code(std::errc::connection_refused);
    // The calls for the parts that answer decide as ever; the outage is said once.
    CHECK(f.ask(store_screen{}, to()).decides == finding::greylisted);
    CHECK(f.ask(store_screen{}, to("carol@example.com")).decides == finding::greylisted);
    REQUIRE(f.reported.size() == 1);
    CHECK(f.reported[0].starts_with("greylist store unavailable: "));
    CHECK_FALSE(partly->health().available());
    partly->missing = {};
    CHECK(f.ask(store_screen{}, to("dave@example.com")).decides == finding::greylisted);
    REQUIRE(f.reported.size() == 2);
    CHECK(f.reported[1] == "greylist store available again");
}

TEST_CASE("The store screen stores what the transform makes of the triplet") {
    fixture f;
    f.config.transform = [](triplet t) {
        t.recipient = "someone@example.com";
        return t;
    };
    f.ask(store_screen{}, to());
    auto found = run(f.config.store->find(""));
    REQUIRE(found);
    REQUIRE(found->size() == 1);
    CHECK(found->front().key.recipient == "someone@example.com");
}
