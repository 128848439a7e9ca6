#include <grey/proxy_protocol.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

using grey::errc;
using grey::proxy::command;
using grey::proxy::family;
using grey::proxy::header;
using grey::proxy::parse_header;
using asio::ip::make_address;
using endpoint = asio::ip::tcp::endpoint;

namespace {

/// What the parser decided when it stopped asking for more: an error, a header, or neither
/// (still waiting at the end of the input).
struct outcome {
    std::error_code error;
    std::optional<header> parsed;
    std::size_t decided_at = 0;  // octets received when the parser decided
    bool waiting() const { return !error && !parsed; }
};

bool same_header(const header& a, const header& b) {
    return a.version == b.version && a.command == b.command && a.family == b.family && a.source == b.source &&
           a.destination == b.destination && a.length == b.length && a.v2_family_octet == b.v2_family_octet;
}

/// Calls the parser as a session would: with everything received so far, each time more
/// arrives at `cuts` (ascending offsets), then with the whole input.
outcome feed(std::string_view input, const std::vector<std::size_t>& cuts,
             std::size_t cap = grey::proxy::default_max_v2_length) {
    outcome o;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(input.size());
    for (const std::size_t end : ends) {
        const auto r = parse_header(input.substr(0, end), cap);
        o.decided_at = end;
        if (!r) {
            o.error = r.error();
            return o;
        }
        if (*r) {
            o.parsed = **r;
            CHECK(o.parsed->length <= end);
            return o;
        }
    }
    return o;
}

/// The outcome of `input` whole, after checking that it is the same however the input is
/// split: byte by byte, cut once at every offset, in random pieces. Fed byte by byte, the
/// parser also decides at the earliest octet it can, which every other split must agree with.
outcome every_split(std::string_view input, std::size_t cap = grey::proxy::default_max_v2_length) {
    const outcome whole = feed(input, {}, cap);
    std::vector<std::size_t> every;
    for (std::size_t i = 0; i < input.size(); ++i) every.push_back(i);
    const outcome bytewise = feed(input, every, cap);
    const auto agrees = [&](const outcome& o) {
        CHECK(o.error == whole.error);
        REQUIRE(o.parsed.has_value() == whole.parsed.has_value());
        if (o.parsed) CHECK(same_header(*o.parsed, *whole.parsed));
    };
    agrees(bytewise);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        CAPTURE(cut);
        const outcome o = feed(input, {cut}, cap);
        agrees(o);
        // Decided before the cut exactly when byte by byte decided by then.
        if (!o.waiting()) CHECK((o.decided_at == cut) == (bytewise.decided_at <= cut));
    }
    std::mt19937 random(static_cast<unsigned>(input.size()));
    for (int round = 0; round < 20; ++round) {
        std::vector<std::size_t> cuts;
        for (std::size_t at = 0; at < input.size(); at += 1 + random() % 9) cuts.push_back(at);
        agrees(feed(input, cuts, cap));
    }
    // Octets past the decision change nothing.
    if (!whole.waiting()) {
        const std::string longer = std::string(input) + std::string("EHLO x\r\n\0\xff", 10);
        agrees(feed(longer, {}, cap));
    }
    return bytewise;
}

std::string v2(std::uint8_t version_command, std::uint8_t family_octet, std::string_view body) {
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h.push_back(static_cast<char>(version_command));
    h.push_back(static_cast<char>(family_octet));
    h.push_back(static_cast<char>(body.size() >> 8));
    h.push_back(static_cast<char>(body.size() & 0xFF));
    h.append(body);
    return h;
}

std::string tlv(std::uint8_t type, std::string_view value) {
    std::string t;
    t.push_back(static_cast<char>(type));
    t.push_back(static_cast<char>(value.size() >> 8));
    t.push_back(static_cast<char>(value.size() & 0xFF));
    t.append(value);
    return t;
}

// 192.0.2.1:56324 -> 198.51.100.25:25, as the v2 address block for TCP over IPv4.
const std::string ipv4_block("\xC0\x00\x02\x01\xC6\x33\x64\x19\xDC\x04\x00\x19", 12);
// 2001:db8::1:56324 -> 2001:db8::25:25
const std::string ipv6_block(std::string("\x20\x01\x0d\xb8", 4) + std::string(11, '\0') + "\x01" +
                             std::string("\x20\x01\x0d\xb8", 4) + std::string(11, '\0') + "\x25" +
                             std::string("\xDC\x04\x00\x19", 4));

void check_error(std::string_view input, errc expected, std::size_t cap = grey::proxy::default_max_v2_length) {
    CAPTURE(input);
    CHECK(every_split(input, cap).error == expected);
}

header check_header(std::string_view input, std::size_t cap = grey::proxy::default_max_v2_length) {
    CAPTURE(input);
    const outcome o = every_split(input, cap);
    REQUIRE(o.parsed);
    CHECK(o.parsed->length == input.size());
    return *o.parsed;
}

} // namespace

TEST_CASE("PROXY v1 TCP4 gives the client's endpoints and the header's length") {
    const std::string line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    const header h = check_header(line);
    CHECK(h.version == 1);
    CHECK(h.command == command::proxy);
    CHECK(h.family == family::tcp4);
    CHECK(h.has_addresses());
    CHECK(h.source == endpoint(make_address("192.168.0.1"), 56324));
    CHECK(h.destination == endpoint(make_address("192.168.0.11"), 443));
    CHECK(h.length == 47);

    const header extremes = check_header("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n");
    CHECK(extremes.source == endpoint(make_address("255.255.255.255"), 65535));
    CHECK(extremes.destination == endpoint(make_address("0.0.0.0"), 0));
}

TEST_CASE("PROXY v1 leaves the octets after its CRLF to the caller") {
    const std::string input = "PROXY TCP4 192.0.2.1 198.51.100.25 1025 25\r\nEHLO client.example\r\n";
    const auto r = parse_header(input);
    REQUIRE(r);
    REQUIRE(*r);
    CHECK(std::string_view(input).substr((*r)->length) == "EHLO client.example\r\n");
}

TEST_CASE("PROXY v1 TCP6 takes IPv6 text as inet_ntop writes it, and in full") {
    struct form {
        std::string_view text, address;
    };
    for (const form f : {form{"2001:db8::1", "2001:db8::1"}, form{"::1", "::1"}, form{"::", "::"},
                         form{"1::", "1::"}, form{"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
                         form{"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
                         form{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
                         form{"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"}, form{"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"},
                         form{"1::8", "1::8"}, form{"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
                         form{"64:ff9b::192.0.2.33", "64:ff9b::c000:221"},
                         form{"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"}}) {
        CAPTURE(f.text);
        const std::string line = "PROXY TCP6 " + std::string(f.text) + " ::1 4000 25\r\n";
        const header h = check_header(line);
        CHECK(h.family == family::tcp6);
        CHECK(h.source == endpoint(make_address(f.address), 4000));
        CHECK(h.destination == endpoint(make_address("::1"), 25));
    }
    // The longest line §2.1 counts for TCP6: 104 octets.
    const std::string longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                "65535 65535\r\n";
    CHECK(longest.size() == 104);
    CHECK(check_header(longest).length == 104);
}

TEST_CASE("PROXY v1 UNKNOWN means the real connection's endpoints, whatever follows it") {
    for (std::string_view line :
         {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN 192.0.2.1 192.0.2.2 1 2\r\n", "PROXY UNKNOWN anything at all\r\n",
          "PROXY UNKNOWN \r\n", "PROXY UNKNOWN  two  spaces\t\x01\xff\r\n",
          // The worst case §2.1 counts: 107 octets exactly.
          "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 "
          "65535\r\n"}) {
        const header h = check_header(line);
        CHECK(h.version == 1);
        CHECK(h.family == family::unspec);
        CHECK_FALSE(h.has_addresses());
        const endpoint peer(make_address("203.0.113.9"), 40000), local(make_address("203.0.113.1"), 25);
        CHECK(h.source_or(peer) == peer);
        CHECK(h.destination_or(local) == local);
    }
}

TEST_CASE("PROXY v1 ports are decimals 0 to 65535 without sign or leading zero") {
    for (std::string_view port : {"0", "1", "25", "65535"}) {
        CAPTURE(port);
        const std::string line = "PROXY TCP4 192.0.2.1 192.0.2.2 " + std::string(port) + " 25\r\n";
        CHECK(check_header(line).source.port() == std::stoi(std::string(port)));
    }
    for (std::string_view port : {"65536", "99999", "100000", "00", "01", "025", "+1", "-1", "1e3", "0x19", ""}) {
        CAPTURE(port);
        check_error("PROXY TCP4 192.0.2.1 192.0.2.2 " + std::string(port) + " 25\r\n", errc::proxy_header_malformed);
        check_error("PROXY TCP4 192.0.2.1 192.0.2.2 25 " + std::string(port) + "\r\n", errc::proxy_header_malformed);
    }
}

TEST_CASE("PROXY v1 refuses addresses that are not the family's canonical text") {
    for (std::string_view address : {"256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1..2.3", ".1.2.3",
                                     "1.2.3.", "1.2.3.4x", "1,2,3,4", "0x1.2.3.4", "1.2.3.1000", "::1",
                                     "::ffff:1.2.3.4", "localhost", "1234.1.1.1"}) {
        CAPTURE(address);
        check_error("PROXY TCP4 " + std::string(address) + " 192.0.2.2 1 2\r\n", errc::proxy_header_malformed);
        check_error("PROXY TCP4 192.0.2.2 " + std::string(address) + " 1 2\r\n", errc::proxy_header_malformed);
    }
    for (std::string_view address :
         {"192.0.2.1", ":", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8::",
          "::1:2:3:4:5:6:7:8", ":1::", "1::2:", "1:", "::ffff:1.2.3", "::ffff:1.2.3.04", "::1.2.3.4:1",
          "1:2:3:4:5:6:7:1.2.3.4", "fe80::1%eth0", "g::1", "[::1]", "::ffff:256.0.0.1"}) {
        CAPTURE(address);
        check_error("PROXY TCP6 " + std::string(address) + " ::1 1 2\r\n", errc::proxy_header_malformed);
        check_error("PROXY TCP6 ::1 " + std::string(address) + " 1 2\r\n", errc::proxy_header_malformed);
    }
}

TEST_CASE("PROXY v1 refuses what breaks its exact syntax") {
    for (std::string_view line : {
             "PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n",      // no such protocol
             "PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n",      // capitals only
             "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
             "PROXY TCP 192.0.2.1 192.0.2.2 1 2\r\n",
             "PROXY UNKNOWNX\r\n",
             "PROXY unknown\r\n",
             "PROXY\r\n",
             "PROXYTCP4 192.0.2.1 192.0.2.2 1 2\r\n",
             "PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",     // double spaces, anywhere
             "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",
             "PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
             "PROXY TCP4 192.0.2.1 192.0.2.2  1 2\r\n",
             "PROXY TCP4 192.0.2.1 192.0.2.2 1  2\r\n",
             "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",     // trailing space or garbage
             "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",
             "PROXY TCP4 192.0.2.1 192.0.2.2 1 2x\r\n",
             "PROXY TCP4\t192.0.2.1 192.0.2.2 1 2\r\n",     // tabs are not spaces
             "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",        // a field missing
             "PROXY TCP4 192.0.2.1 192.0.2.2\r\n",
             "PROXY TCP4 192.0.2.1\r\n",
             "PROXY TCP4 \r\n",
             "PROXY TCP4\r\n",
             "PROXY TCP4 192.0.2.1 ::1 1 2\r\n",            // the other family's address
             "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
             "PROXY TCP6 ::1 192.0.2.2 1 2\r\n",
             "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",        // LF alone, CR alone
             "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX",
             "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\r\n",
             "PROXY UNKNOWN\n",
             "PROXY UNKNOWN x\ny\r\n",
             "PROXY UNKNOWN x\rx\r\n",
             "PROXY UNKNOWN\rx"}) {
        check_error(line, errc::proxy_header_malformed);
    }
    check_error(std::string("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\0\r\n", 37), errc::proxy_header_malformed);
}

TEST_CASE("PROXY v1 refuses junk at its first impossible octet, before any CRLF") {
    struct prefix {
        std::string_view input;
        std::size_t refused_at;  // octets read when refused
    };
    for (const prefix p : {prefix{"PROXY TCP4 192.0.2.1 192.0.2.2 1 2x", 35}, prefix{"PROXY TCP4 ::", 12},
                           prefix{"PROXY TCP4 1234567890123456", 27}, prefix{"PROXY TCPX", 10},
                           prefix{"PROXY X", 7}, prefix{"PROXY  ", 7}, prefix{"PROXYZ", 6},
                           prefix{"PROXY TCP6 g", 12}, prefix{"PROXY TCP4 1.2.3.4 5.6.7.8 123456", 33}}) {
        CAPTURE(p.input);
        const outcome o = every_split(p.input);
        CHECK(o.error == errc::proxy_header_malformed);
        CHECK(o.decided_at == p.refused_at);
    }
}

TEST_CASE("PROXY v1 without CRLF in 107 octets is too long") {
    // UNKNOWN with 93 octets after it: CRLF would end at octet 109.
    check_error("PROXY UNKNOWN " + std::string(93, 'x') + "\r\n", errc::proxy_header_too_long);
    check_error("PROXY UNKNOWN " + std::string(92, 'x') + "\r\n", errc::proxy_header_too_long);  // 108
    CHECK(check_header("PROXY UNKNOWN " + std::string(91, 'x') + "\r\n").length == 107);
    const outcome endless = every_split("PROXY UNKNOWN " + std::string(500, 'x'));
    CHECK(endless.error == errc::proxy_header_too_long);
    CHECK(endless.decided_at == 107);
    // Valid IPv6 text too long for a v1 line: IPv4-mapped, every group written out.
    const std::string wide = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    check_error("PROXY TCP6 " + wide + " " + wide + " 65535 65535\r\n", errc::proxy_header_too_long);
    CHECK(check_header("PROXY TCP6 " + wide + " ::1 65535 65535\r\n").family == family::tcp6);
}

TEST_CASE("PROXY headers are refused at the first octet that begins neither signature") {
    struct prefix {
        std::string_view input;
        std::size_t refused_at;
    };
    for (const prefix p : {prefix{"EHLO x\r\n", 1}, prefix{"HELO x\r\n", 1}, prefix{"GET / HTTP/1.1\r\n", 1},
                           prefix{"\x16\x03\x01\x02\x00", 1}, prefix{"proxy TCP4", 1}, prefix{"PRO\r\n", 4},
                           prefix{"PROXZ", 5}, prefix{"\r\n\r\nQUIT\r\n", 5}, prefix{"\r\n.\r\n", 3},
                           prefix{std::string_view("\r\n\r\n\0\r\nQUIT\r", 12), 12}}) {
        CAPTURE(p.input);
        const outcome o = every_split(p.input);
        CHECK(o.error == errc::proxy_header_missing);
        CHECK(o.decided_at == p.refused_at);
    }
    CHECK(parse_header("").value() == std::nullopt);
    CHECK(parse_header("PROX").value() == std::nullopt);
    CHECK(parse_header(std::string_view("\r\n\r\n\0\r\nQUIT", 11)).value() == std::nullopt);
}

TEST_CASE("PROXY v2 LOCAL means the real endpoints, whatever its family and block hold") {
    for (const std::string& input : {v2(0x20, 0x00, ""), v2(0x20, 0x11, ipv4_block), v2(0x20, 0x00, "abc"),
                                     v2(0x20, 0xFF, std::string(300, '\xff')), v2(0x20, 0x11, "")}) {
        const header h = check_header(input);
        CHECK(h.version == 2);
        CHECK(h.command == command::local);
        CHECK(h.family == family::unspec);
        CHECK_FALSE(h.has_addresses());
        const endpoint peer(make_address("203.0.113.9"), 40000);
        CHECK(h.source_or(peer) == peer);
    }
}

TEST_CASE("PROXY v2 PROXY over TCP4 and TCP6 gives the client's endpoints, TLVs or not") {
    const std::string tlvs = tlv(0x01, "smtp") + tlv(0x02, "mx.example") + tlv(0x04, "") +
                             tlv(0x05, std::string(128, '\x7f')) + tlv(0xE0, std::string(3, '\0'));
    for (const std::string& extra : {std::string(), tlvs}) {
        {
            const header h = check_header(v2(0x21, 0x11, ipv4_block + extra));
            CHECK(h.version == 2);
            CHECK(h.command == command::proxy);
            CHECK(h.family == family::tcp4);
            CHECK(h.v2_family_octet == 0x11);
            CHECK(h.source == endpoint(make_address("192.0.2.1"), 56324));
            CHECK(h.destination == endpoint(make_address("198.51.100.25"), 25));
            CHECK(h.length == 16 + 12 + extra.size());
        }
        {
            const header h = check_header(v2(0x21, 0x21, ipv6_block + extra));
            CHECK(h.family == family::tcp6);
            CHECK(h.source == endpoint(make_address("2001:db8::1"), 56324));
            CHECK(h.destination == endpoint(make_address("2001:db8::25"), 25));
            CHECK(h.length == 16 + 36 + extra.size());
        }
    }
}

TEST_CASE("PROXY v2 leaves the octets after its length to the caller") {
    const std::string input = v2(0x21, 0x11, ipv4_block + tlv(0x04, "pad")) + "EHLO x\r\n";
    const auto r = parse_header(input);
    REQUIRE(r);
    REQUIRE(*r);
    CHECK(std::string_view(input).substr((*r)->length) == "EHLO x\r\n");
}

TEST_CASE("PROXY v2 refuses a version other than 2 and commands other than LOCAL and PROXY") {
    for (const std::uint8_t version_command : {0x00, 0x01, 0x10, 0x11, 0x30, 0x31, 0xF1, 0x22, 0x2F, 0x23}) {
        CAPTURE(version_command);
        const outcome o = every_split(v2(version_command, 0x11, ipv4_block));
        CHECK(o.error == errc::proxy_header_malformed);
        CHECK(o.decided_at == 13);
    }
}

TEST_CASE("PROXY v2 refuses family and protocol octets the spec does not list") {
    for (const std::uint8_t family_octet : {0x01, 0x02, 0x10, 0x13, 0x20, 0x23, 0x30, 0x40, 0x41, 0xFF}) {
        CAPTURE(family_octet);
        const outcome o = every_split(v2(0x21, family_octet, std::string(216, '\0')));
        CHECK(o.error == errc::proxy_header_malformed);
        CHECK(o.decided_at == 14);
    }
}

TEST_CASE("PROXY v2 UDP, UNIX and UNSPEC are valid headers with no usable address") {
    struct form {
        std::uint8_t family_octet;
        std::size_t block;
    };
    for (const form f : {form{0x00, 0}, form{0x12, 12}, form{0x22, 36}, form{0x31, 216}, form{0x32, 216}}) {
        CAPTURE(f.family_octet);
        const header h = check_header(v2(0x21, f.family_octet, std::string(f.block, '\x01') + tlv(0x04, "x")));
        CHECK(h.command == command::proxy);
        CHECK(h.family == family::unspec);
        CHECK(h.v2_family_octet == f.family_octet);
        CHECK_FALSE(h.has_addresses());
        if (f.block > 0) check_error(v2(0x21, f.family_octet, std::string(f.block - 1, '\x01')), errc::proxy_header_malformed);
    }
    // UNSPEC has no address block to find TLVs after: what follows is skipped unread.
    CHECK(check_header(v2(0x21, 0x00, "\x01\xff\xff")).family == family::unspec);
}

TEST_CASE("PROXY v2 lengths that lie are refused or waited for, never believed") {
    // Shorter than the family's address block: refused as soon as the length is read.
    for (const std::size_t length : {0, 1, 11}) {
        CAPTURE(length);
        const outcome o = every_split(v2(0x21, 0x11, ipv4_block.substr(0, length)));
        CHECK(o.error == errc::proxy_header_malformed);
        CHECK(o.decided_at == 16);
    }
    {
        const outcome o = every_split(v2(0x21, 0x21, std::string(35, '\0')));
        CHECK(o.error == errc::proxy_header_malformed);
        CHECK(o.decided_at == 16);
    }
    // Longer than what was sent: the header is incomplete, so the parser waits.
    std::string promised = v2(0x21, 0x11, ipv4_block);
    promised[15] = 40;
    const outcome o = every_split(promised);
    CHECK(o.waiting());
    // Every truncation of a good header waits.
    const std::string good = v2(0x21, 0x21, ipv6_block + tlv(0x02, "mx.example"));
    for (std::size_t n = 0; n < good.size(); ++n) {
        const auto r = parse_header(std::string_view(good).substr(0, n));
        CHECK((r && !*r));
    }
}

TEST_CASE("PROXY v2 refuses TLVs that do not fit the header") {
    for (const std::string& tlvs : {
             std::string("\x01", 1),                                // a type without its length
             std::string("\x01\x00", 2),                            // a length cut short
             std::string("\x01\x00\x05" "abcd", 7),                 // a value one octet short
             std::string("\x01\xff\xff" "abc", 6),                  // a value far past the end
             tlv(0x01, "ok") + std::string("\x02\x00\x01", 3),      // the second one cut
             tlv(0x04, "") + std::string("\x04", 1),
         }) {
        CAPTURE(tlvs);
        check_error(v2(0x21, 0x11, ipv4_block + tlvs), errc::proxy_header_malformed);
        check_error(v2(0x21, 0x21, ipv6_block + tlvs), errc::proxy_header_malformed);
        check_error(v2(0x21, 0x12, ipv4_block + tlvs), errc::proxy_header_malformed);
    }
}

TEST_CASE("PROXY v2 CRC32C is checked when the sender includes one") {
    CHECK(grey::proxy::detail::crc32c("123456789") == 0xE3069283u);  // RFC 3720 B.4's check value
    const auto with_crc = [](std::string_view before, std::string_view after) {
        std::string h = v2(0x21, 0x11, ipv4_block + std::string(before) + tlv(0x03, std::string(4, '\0')) +
                                           std::string(after));
        const std::size_t field = 16 + 12 + before.size() + 3;
        const std::uint32_t crc = grey::proxy::detail::crc32c(h);
        for (int i = 0; i < 4; ++i) h[field + static_cast<std::size_t>(i)] = static_cast<char>(crc >> (24 - 8 * i));
        return h;
    };
    const std::string authority = tlv(0x02, "mx.example");
    const std::string good = with_crc(authority, tlv(0x04, "pad"));
    const std::size_t crc_type_at = 16 + 12 + authority.size();
    CHECK(check_header(good).family == family::tcp4);
    CHECK(check_header(with_crc("", "")).family == family::tcp4);
    for (std::size_t i = 0; i < good.size(); ++i) {
        // Not the length (a longer one waits) nor the CRC's type (no CRC then, nothing to check).
        if (i == 14 || i == 15 || i == crc_type_at) continue;
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x40);
        CAPTURE(i);
        CHECK_FALSE(parse_header(bad).has_value());
    }
    // A CRC of another size, or two of them, is refused.
    check_error(v2(0x21, 0x11, ipv4_block + tlv(0x03, "abc")), errc::proxy_header_malformed);
    const std::string twice = with_crc(tlv(0x03, std::string(4, '\0')), "");
    check_error(twice, errc::proxy_header_malformed);
}

TEST_CASE("PROXY v2 headers over the cap are refused as soon as their length is read") {
    const std::string big = v2(0x21, 0x11, ipv4_block + tlv(0x04, std::string(4096 - 16 - 12 - 3 + 1, 'p')));
    CHECK(big.size() == 4097);
    const outcome o = every_split(big);
    CHECK(o.error == errc::proxy_header_too_long);
    CHECK(o.decided_at == 16);
    CHECK(check_header(big, 4097).length == 4097);
    // A cap as small as TCP over IPv6 needs, and the protocol's own maximum.
    CHECK(check_header(v2(0x21, 0x21, ipv6_block), 52).length == 52);
    check_error(v2(0x21, 0x11, ipv4_block + tlv(0x04, std::string(22, 'p'))), errc::proxy_header_too_long, 52);
    const std::string largest = v2(0x21, 0x11, ipv4_block + tlv(0x04, std::string(65535 - 12 - 3, 'p')));
    CHECK(largest.size() == grey::proxy::max_v2_length);
    const auto r = parse_header(largest, grey::proxy::max_v2_length);
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->length == largest.size());
    CHECK(parse_header(largest).error() == errc::proxy_header_too_long);
    // LOCAL is capped alike: its block is skipped, but it must still be held.
    check_error(v2(0x20, 0x00, std::string(4081, '\0')), errc::proxy_header_too_long);
}
