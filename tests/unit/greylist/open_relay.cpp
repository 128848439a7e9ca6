// The refusal of an open relay: a proxy reachable from other hosts must name the domains it
// takes mail for; one that only this host reaches may take any.
#include <grey/greylist/open_relay.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using grey::endpoint;
using namespace grey::greylist;

TEST_CASE("Only loopback addresses and localhost count as loopback") {
    CHECK(loopback_only({}));
    CHECK(loopback_only({{"127.0.0.1", 2525}, {"::1", 2525}, {"127.8.9.10", 25}, {"localhost", 25}}));
    CHECK_FALSE(loopback_only({{"0.0.0.0", 25}}));
    CHECK_FALSE(loopback_only({{"::", 25}}));
    CHECK_FALSE(loopback_only({{"192.0.2.1", 25}}));
    CHECK_FALSE(loopback_only({{"mx.example.com", 25}}));       // a name may resolve anywhere
    CHECK_FALSE(loopback_only({{"127.0.0.1", 25}, {"2001:db8::1", 25}}));  // one is enough
}

TEST_CASE("A proxy reachable from other hosts with no allowed domains would be an open relay") {
    const lists any_domain;
    const std::string why = open_relay_reason({{"127.0.0.1", 2525}, {"0.0.0.0", 25}}, any_domain);
    CHECK(why.find("open relay") != std::string::npos);
    CHECK(why.find("relay.allowed_domains") != std::string::npos);
}

TEST_CASE("Allowed domains, or listening on loopback alone, make a configuration that is no open relay") {
    lists l;
    SUBCASE("loopback only, any domain") {
        CHECK(open_relay_reason({{"127.0.0.1", 2525}}, l).empty());
        CHECK(open_relay_reason({{"::1", 2525}, {"localhost", 2526}}, l).empty());
    }
    SUBCASE("every address, with allowed domains") {
        l.allowed_domains = {"example.com"};
        CHECK(open_relay_reason({{"0.0.0.0", 25}, {"::", 25}}, l).empty());
    }
}
