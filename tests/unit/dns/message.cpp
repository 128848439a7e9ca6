// The DNS message parser, fed packets built here: whole, cut short at every octet, with
// compressed names, pointer loops, CNAME chains, split TXT records and negative answers.
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <grey/dns/cache.hpp>
#include <grey/dns/message.hpp>

using namespace grey::dns;

namespace {

// A response, written octet by octet.
struct packet {
    std::vector<unsigned char> b;
    void u8(unsigned v) { b.push_back(static_cast<unsigned char>(v)); }
    void u16(unsigned v) { u8(v >> 8 & 0xFF); u8(v & 0xFF); }
    void u32(std::uint32_t v) { u16(v >> 16); u16(v & 0xFFFF); }
    void name(std::string_view n) {  // uncompressed, "a.b" → 1a1b0
        while (!n.empty()) {
            const auto dot = n.find('.');
            const auto label = n.substr(0, dot);
            u8(static_cast<unsigned>(label.size()));
            b.insert(b.end(), label.begin(), label.end());
            n = dot == std::string_view::npos ? std::string_view{} : n.substr(dot + 1);
        }
        u8(0);
    }
    void pointer(unsigned offset) { u16(0xC000 | offset); }
    void header(unsigned rcode, unsigned an, unsigned ns) {
        u16(0x1234); u16(0x8180 | rcode); u16(1); u16(an); u16(ns); u16(0);
    }
    void question(std::string_view n, rr_type t) { name(n); u16(static_cast<unsigned>(t)); u16(1); }
    // An RR owned by the question's name (a pointer to offset 12), RDATA to follow.
    void rr_at_question(rr_type t, std::uint32_t ttl, unsigned rdlength) {
        pointer(12); u16(static_cast<unsigned>(t)); u16(1); u32(ttl); u16(rdlength);
    }
    std::optional<message> parse() const { return parse_message(b); }
};

} // namespace

TEST_CASE("An A answer gives its addresses and the least TTL") {
    packet p;
    p.header(0, 2, 0);
    p.question("host.test", rr_type::a);
    p.rr_at_question(rr_type::a, 300, 4);
    for (unsigned v : {192, 0, 2, 10}) p.u8(v);
    p.rr_at_question(rr_type::a, 60, 4);
    for (unsigned v : {192, 0, 2, 11}) p.u8(v);
    const auto m = p.parse();
    REQUIRE(m);
    CHECK(m->question == "host.test");
    REQUIRE(m->answers.size() == 2);
    CHECK(m->answers[0].data == std::string("\xC0\x00\x02\x0A", 4));
    CHECK(m->answer_ttl == 60);

    SUBCASE("cut short anywhere, it is malformed, never read past its end") {
        for (std::size_t n = 0; n < p.b.size(); ++n) {
            const std::vector<unsigned char> prefix(p.b.begin(), p.b.begin() + static_cast<std::ptrdiff_t>(n));
            CHECK(!parse_message(prefix));
        }
    }
    SUBCASE("an A record of the wrong length is malformed") {
        p.b[p.b.size() - 5] = 5;  // its RDLENGTH's low octet
        p.u8(0);
        CHECK(!p.parse());
    }
}

TEST_CASE("MX and PTR names are decompressed; a pointer forwards or into a loop is malformed") {
    packet p;
    p.header(0, 1, 0);
    p.question("test", rr_type::mx);  // "test" at offset 12
    p.rr_at_question(rr_type::mx, 300, 2 + 5 + 2);
    p.u16(10);
    p.u8(4);
    for (char c : std::string_view("mail")) p.u8(static_cast<unsigned char>(c));
    p.pointer(12);
    const auto m = p.parse();
    REQUIRE(m);
    REQUIRE(m->answers.size() == 1);
    CHECK(m->answers[0].preference == 10);
    CHECK(m->answers[0].data == "mail.test");

    packet loop;
    loop.header(0, 1, 0);
    loop.question("test", rr_type::ptr);
    loop.rr_at_question(rr_type::ptr, 300, 2);
    loop.pointer(static_cast<unsigned>(loop.b.size()));  // points at itself
    CHECK(!loop.parse());
}

TEST_CASE("Odd octets in a name are escaped, so a name read cannot forge a separator") {
    packet p;
    p.header(0, 1, 0);
    p.question("x.test", rr_type::ptr);
    p.rr_at_question(rr_type::ptr, 300, 6 + 6);
    p.u8(5);
    for (unsigned char c : {'a', '.', 'b', '\n', '\\'}) p.u8(c);
    p.name("test");
    const auto m = p.parse();
    REQUIRE(m);
    CHECK(m->answers.at(0).data == "a\\.b\\010\\\\.test");
}

TEST_CASE("A TXT record's strings are concatenated; a string past the RDATA is malformed") {
    packet p;
    p.header(0, 1, 0);
    p.question("spf.test", rr_type::txt);
    p.rr_at_question(rr_type::txt, 300, 4 + 3);
    p.u8(3); p.u8('a'); p.u8('b'); p.u8('c');
    p.u8(2); p.u8('d'); p.u8('e');
    const auto m = p.parse();
    REQUIRE(m);
    CHECK(m->answers.at(0).data == "abcde");
    p.b[p.b.size() - 3] = 3;  // the second string now claims an octet more than there is
    CHECK(!p.parse());
}

TEST_CASE("A CNAME chain is followed to the records of the type asked") {
    packet p;
    p.header(0, 2, 0);
    p.question("alias.test", rr_type::a);
    p.rr_at_question(rr_type::cname, 100, 11);
    const auto target = p.b.size();
    p.name("host.test");
    p.pointer(static_cast<unsigned>(target));
    p.u16(1); p.u16(1); p.u32(300); p.u16(4);
    for (unsigned v : {192, 0, 2, 10}) p.u8(v);
    const auto m = p.parse();
    REQUIRE(m);
    REQUIRE(m->answers.size() == 1);
    CHECK(m->answers[0].type == rr_type::a);
    CHECK(m->answer_ttl == 100);  // the chain's TTL bounds the answer's
}

TEST_CASE("A negative answer lives as long as its SOA's TTL and MINIMUM, the lesser") {
    packet p;
    p.header(3, 0, 1);
    p.question("missing.test", rr_type::a);
    p.name("test");
    p.u16(6); p.u16(1); p.u32(3600);
    const auto rdlength_at = p.b.size();
    p.u16(0);
    const auto start = p.b.size();
    p.name("ns.test");
    p.name("hostmaster.test");
    for (std::uint32_t v : {1u, 3600u, 600u, 86400u, 30u}) p.u32(v);
    const auto rdlength = p.b.size() - start;
    p.b[rdlength_at + 1] = static_cast<unsigned char>(rdlength);
    const auto m = p.parse();
    REQUIRE(m);
    CHECK(m->rcode == 3);
    CHECK(m->answers.empty());
    CHECK(m->negative_ttl == 30u);
}

TEST_CASE("A query, or a response to several questions, is not an answer") {
    packet p;
    p.header(0, 0, 0);
    p.question("host.test", rr_type::a);
    p.b[2] = 0x01;  // QR clear
    CHECK(!p.parse());
}

TEST_CASE("The cache keeps answers for their TTL, bounded, the least recently used going first") {
    using clock = answer_cache::clock;
    answer_cache cache(2);
    const auto now = clock::now();
    answer a;
    a.status = outcome::found;
    cache.put(answer_cache::key("A.test.", rr_type::a), a, std::chrono::seconds(10), now);
    CHECK(cache.find(answer_cache::key("a.test", rr_type::a), now));
    CHECK(!cache.find(answer_cache::key("a.test", rr_type::aaaa), now));
    CHECK(!cache.find(answer_cache::key("a.test", rr_type::a), now + std::chrono::seconds(10)));
    cache.put("x", a, std::chrono::seconds(10), now);
    cache.put("y", a, std::chrono::seconds(10), now);
    CHECK(cache.find("x", now));  // x used last: y goes first
    cache.put("z", a, std::chrono::seconds(10), now);
    CHECK(cache.size() == 2);
    CHECK(cache.find("x", now));
    CHECK(!cache.find("y", now));
    cache.put("w", a, std::chrono::seconds(0), now);
    CHECK(!cache.find("w", now));
}
