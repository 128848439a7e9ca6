// dns/dnsbl.hpp: scores against the tests' unbound (bl.rep-test., bl2.rep-test., wl.rep-test.
// in tests/dns-zones/reputation.conf), and against a server that answers each query late, to
// see that the lists are asked at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grey/dns/dnsbl.hpp>

#include "fixture.hpp"

using namespace grey::dns;
using namespace std::chrono_literals;
using grey_test::dns_fixture;
using grey_test::with_resolver;

namespace {

std::vector<dnsbl_site> sites(std::initializer_list<const char*> texts) {
    std::vector<dnsbl_site> out;
    for (const char* t : texts) out.push_back(*parse_dnsbl_site(t));
    return out;
}

asio::ip::address ip(const char* text) { return asio::ip::make_address(text); }

// A DNS server on loopback, on a thread of its own, that answers each A query with 127.0.0.2
// `delay` after it came, and records how many it held at once. Stopped when destroyed.
class slow_server {
  public:
    explicit slow_server(std::chrono::milliseconds delay) : delay_(delay) {
        receive();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~slow_server() {
        ioc_.stop();
        thread_.join();
    }
    std::string where() const { return "127.0.0.1:" + std::to_string(socket_.local_endpoint().port()); }
    std::size_t most_held() {
        std::lock_guard lock(mutex_);
        return most_held_;
    }
    std::set<std::string> names() {
        std::lock_guard lock(mutex_);
        return names_;
    }

  private:
    void receive() {
        socket_.async_receive_from(asio::buffer(buffer_), from_, [this](asio::error_code ec, std::size_t n) {
            if (ec) return;
            hold(std::string(buffer_, n), from_);
            receive();
        });
    }

    void hold(std::string query, asio::ip::udp::endpoint peer) {
        // The question: header, then labels up to the root, then type and class.
        std::size_t end = 12;
        std::string name;
        while (end < query.size() && query[end] != 0) {
            const auto len = static_cast<unsigned char>(query[end]);
            name += query.substr(end + 1, len) + ".";
            end += 1 + len;
        }
        end += 5;
        if (end > query.size()) return;
        {
            std::lock_guard lock(mutex_);
            names_.insert(name);
            most_held_ = std::max(most_held_, ++held_);
        }
        auto timer = std::make_shared<asio::steady_timer>(ioc_, delay_);
        timer->async_wait([this, timer, query, peer, end](asio::error_code) {
            const bool a = query[end - 4] == 0 && query[end - 3] == 1;
            std::string reply = query.substr(0, end);
            reply[2] = static_cast<char>(0x81);  // a response, recursion desired
            reply[3] = static_cast<char>(0x80);  // recursion available, NOERROR
            const char counts[] = {0, 1, 0, static_cast<char>(a ? 1 : 0), 0, 0, 0, 0};
            reply.replace(4, 8, counts, 8);
            if (a) reply += std::string("\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x02", 16);
            {
                std::lock_guard lock(mutex_);
                --held_;
            }
            asio::error_code ignored;
            socket_.send_to(asio::buffer(reply), peer, 0, ignored);
        });
    }

    std::chrono::milliseconds delay_;
    asio::io_context ioc_;
    asio::ip::udp::socket socket_{ioc_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    asio::ip::udp::endpoint from_;
    char buffer_[512];
    std::mutex mutex_;
    std::size_t held_ = 0, most_held_ = 0;
    std::set<std::string> names_;
    std::thread thread_;
};

} // namespace

TEST_CASE("A listed client scores the weights of the lists that list it") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto s = sites({"bl.rep-test*2", "bl2.rep-test", "wl.rep-test=127.0.[0..255].[1..3]*-5"});
        const auto listed = co_await score(r, ip("198.19.7.2"), s);
        CHECK(listed.total == 3);
        CHECK_FALSE(listed.allowlisted);
        CHECK(listed.complete());
        REQUIRE(listed.hits.size() == 2);
        CHECK(listed.hits[0].domain == "bl.rep-test");
        CHECK(listed.hits[0].reply == asio::ip::make_address_v4("127.0.0.2"));
        CHECK(listed.hits[0].weight == 2);
        CHECK(listed.hits[1].reason() == "dnsbl=bl2.rep-test:127.0.0.4");
        CHECK(listed.reason() == "dnsbl-score=3 dnsbl=bl.rep-test:127.0.0.2 dnsbl=bl2.rep-test:127.0.0.4");

        const auto vouched = co_await score(r, ip("198.19.7.1"), s);
        CHECK(vouched.total == -5);
        CHECK(vouched.allowlisted);
        CHECK(vouched.reason() == "dnsbl-score=-5 dnswl=wl.rep-test:127.0.5.1");

        const auto clean = co_await score(r, ip("198.19.7.9"), s);
        CHECK(clean.total == 0);
        CHECK(clean.hits.empty());
        CHECK(clean.complete());
        CHECK(clean.reason() == "dnsbl-score=0");
    });
}

TEST_CASE("Filters choose which replies count, and an entry counts once") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        // 198.19.7.3 is listed as 127.0.0.3 and 127.0.0.11.
        const auto s = sites({"bl.rep-test=127.0.0.[2;4;6]*100", "bl.rep-test=127.0.0.[10..12]*7", "bl.rep-test"});
        const auto got = co_await score(r, ip("198.19.7.3"), s);
        CHECK(got.total == 8);
        REQUIRE(got.hits.size() == 2);
        CHECK(got.hits[0].reply == asio::ip::make_address_v4("127.0.0.11"));
        CHECK(got.hits[0].weight == 7);
        CHECK(got.hits[1].weight == 1);
        // Three entries, one list: asked once.
        CHECK(r.stats().queries == 1);
    });
}

TEST_CASE("An IPv6 client is looked up by its nibbles; an IPv4 one seen through IPv6 as IPv4") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto s = sites({"bl.rep-test"});
        const auto v6 = co_await score(r, ip("3fff:0:0:7::2"), s);
        CHECK(v6.total == 1);
        const auto mapped = co_await score(r, ip("::ffff:198.19.7.2"), s);
        CHECK(mapped.total == 1);
    });
}

TEST_CASE("A list refusing the resolver, or replying outside 127.0.0.0/8, fails: never a listing") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto s = sites({"bl.rep-test*5", "bl2.rep-test"});
        const auto refused = co_await score(r, ip("198.19.7.4"), s);
        CHECK(refused.total == 0);
        CHECK(refused.hits.empty());
        REQUIRE(refused.failures.size() == 1);
        CHECK(refused.failures[0].domain == "bl.rep-test");
        CHECK(refused.failures[0].why == "refused:127.255.255.254");
        CHECK_FALSE(refused.complete());
        CHECK(refused.reason() == "dnsbl-score=0 dnsbl=bl.rep-test:unknown:refused:127.255.255.254");

        const auto odd = co_await score(r, ip("198.19.7.5"), s);
        CHECK(odd.total == 0);
        REQUIRE(odd.failures.size() == 1);
        CHECK(odd.failures[0].why == "bad-reply:192.0.2.1");
    });
}

TEST_CASE("A list that does not answer is unknown, named with its failure") {
    grey_test::with_silent_resolver([](resolver& r) -> asio::awaitable<void> {
        // Built before co_await: GCC 12 cannot keep an initializer_list's array in a coroutine frame.
        const auto s = sites({"bl.rep-test", "wl.rep-test*-3"});
        const auto got = co_await score(r, ip("198.19.7.2"), s);
        CHECK(got.total == 0);
        CHECK(got.hits.empty());
        REQUIRE(got.failures.size() == 2);
        CHECK(got.failures[0].reason() == "dnsbl=bl.rep-test:unknown:timeout");
        CHECK(got.failures[1].reason() == "dnswl=wl.rep-test:unknown:timeout");
    });
}

TEST_CASE("No sites: a score of 0, with no look-up") {
    with_resolver(dns_fixture(), [](resolver& r) -> asio::awaitable<void> {
        const auto got = co_await score(r, ip("198.19.7.2"), {});
        CHECK(got.total == 0);
        CHECK(got.complete());
        CHECK(r.stats().queries == 0);
    });
}

TEST_CASE("The lists are asked at once: the score waits for the slowest, not for their sum") {
    constexpr auto delay = 300ms;
    slow_server server(delay);
    resolver_settings settings;
    settings.servers = {server.where()};
    with_resolver(settings, [&](resolver& r) -> asio::awaitable<void> {
        const auto s = sites({"a.slow-test", "b.slow-test", "c.slow-test"});
        const auto started = std::chrono::steady_clock::now();
        const auto got = co_await score(r, ip("198.19.7.2"), s);
        const auto took = std::chrono::steady_clock::now() - started;
        CHECK(got.total == 3);
        CHECK(got.complete());
        // All three queries were held by the server at the same time.
        CHECK(server.names().size() == 3);
        CHECK(server.most_held() == 3);
        // One after another would take three delays at least.
        CHECK(took < delay * 5 / 2);
    });
}
