#include <grey/redis/slot.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace grey::redis;

namespace {
reply integer(long long n) { return {REDIS_REPLY_INTEGER, n, {}, {}}; }
reply text(std::string s) { return {REDIS_REPLY_STRING, 0, std::move(s), {}}; }
reply array(std::vector<reply> elements) { return {REDIS_REPLY_ARRAY, 0, {}, std::move(elements)}; }
reply node(std::string host, long long port) { return array({text(std::move(host)), integer(port), text("0123abcd")}); }
} // namespace

TEST_CASE("A key's slot is CRC16-XMODEM of the key, or of its hash tag, modulo 16384") {
    // The check value of CRC-16/XMODEM, and slots Redis's own documentation gives (CLUSTER KEYSLOT).
    static_assert(crc16("123456789") == 0x31c3);
    CHECK(key_slot("somekey") == 11058);
    CHECK(key_slot("foo{hash_tag}") == 2515);
    CHECK(key_slot("bar{hash_tag}") == 2515);
    CHECK(key_slot("{hash_tag}") == 2515);
    // Only the first '{' and the '}' after it count; an empty tag means the whole key.
    CHECK(hash_tag("a{b}c{d}") == "b");
    CHECK(hash_tag("a{}b{c}") == "a{}b{c}");
    CHECK(hash_tag("a}b{c") == "a}b{c");
    CHECK(hash_tag("{a{b}") == "a{b");
    CHECK(key_slot("") == 0);
}

TEST_CASE("MOVED and ASK replies are read; any other text is not a redirection") {
    const auto moved = parse_redirection("MOVED 3999 127.0.0.1:6381");
    REQUIRE(moved);
    CHECK_FALSE(moved->ask);
    CHECK(moved->slot == 3999);
    CHECK(moved->to == node_address{"127.0.0.1", 6381});
    const auto ask = parse_redirection("ASK 16383 [::1]:7000");
    REQUIRE(ask);
    CHECK(ask->ask);
    CHECK(ask->slot == 16383);
    CHECK(ask->to == node_address{"::1", 7000});
    CHECK_FALSE(parse_redirection("MOVED 16384 h:1"));
    CHECK_FALSE(parse_redirection("MOVED 12 h:0"));
    CHECK_FALSE(parse_redirection("MOVED 12 :6379"));
    CHECK_FALSE(parse_redirection("MOVED 12"));
    CHECK_FALSE(parse_redirection("CLUSTERDOWN The cluster is down"));
    CHECK_FALSE(parse_redirection("ASKING"));
}

TEST_CASE("The slot map is read from CLUSTER SLOTS, its masters only, and corrected by MOVED") {
    const node_address asked{"10.0.0.9", 7000};
    const reply slots = array({
        array({integer(0), integer(5460), node("127.0.0.1", 7000), node("127.0.0.1", 7003)}),
        array({integer(5461), integer(10922), node("", 7001)}),  // "": the node asked
        array({integer(10923), integer(16383), node("127.0.0.1", 7002), node("127.0.0.1", 7004)}),
    });
    auto m = slot_map::from_cluster_slots(slots, asked);
    REQUIRE(m);
    REQUIRE(m->master_of(0));
    CHECK(*m->master_of(0) == node_address{"127.0.0.1", 7000});
    CHECK(*m->master_of(5460) == node_address{"127.0.0.1", 7000});
    CHECK(*m->master_of(5461) == node_address{"10.0.0.9", 7001});
    CHECK(*m->master_of(16383) == node_address{"127.0.0.1", 7002});
    CHECK(m->serving().size() == 3);  // replicas are never named

    m->moved(5461, {"127.0.0.1", 7000});
    CHECK(*m->master_of(5461) == node_address{"127.0.0.1", 7000});
    for (std::uint16_t s = 5462; s <= 10922; ++s) m->moved(s, {"127.0.0.1", 7002});
    CHECK(m->serving().size() == 2);  // 7001 serves nothing any more
}

TEST_CASE("A slot map with holes leaves them unknown; a reply that is no map is refused") {
    const node_address asked{"127.0.0.1", 7000};
    auto half = slot_map::from_cluster_slots(array({array({integer(0), integer(8191), node("127.0.0.1", 7000)}),
                                                    array({integer(8192), integer(16383), node("?", 7001)})}),
                                             asked);
    REQUIRE(half);
    CHECK(half->master_of(100));
    CHECK_FALSE(half->master_of(9000));  // "?": no endpoint known

    CHECK_FALSE(slot_map::from_cluster_slots(array({}), asked));
    CHECK_FALSE(slot_map::from_cluster_slots(text("ERR This instance has cluster support disabled"), asked));
    CHECK_FALSE(slot_map::from_cluster_slots(array({array({integer(5), integer(4), node("h", 1)})}), asked));
    CHECK_FALSE(slot_map::from_cluster_slots(array({array({integer(0), integer(16384), node("h", 1)})}), asked));
    CHECK_FALSE(slot_map::from_cluster_slots(array({array({integer(0), integer(1), node("h", 0)})}), asked));
    CHECK_FALSE(slot_map::from_cluster_slots(array({array({integer(0), integer(1)})}), asked));
}
