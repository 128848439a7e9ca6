#include <grey/policy/request.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

using grey::policy::error;
using grey::policy::request;
using grey::policy::request_limits;
using grey::policy::request_parser;

namespace {

/// Postfix 3.x's request for one RCPT, as SMTPD_POLICY_README lists its attributes.
const std::string postfix_rcpt =
    "request=smtpd_access_policy\n"
    "protocol_state=RCPT\n"
    "protocol_name=ESMTP\n"
    "helo_name=client.example\n"
    "queue_id=\n"
    "sender=alice@example.org\n"
    "recipient=bob@example.com\n"
    "recipient_count=0\n"
    "client_address=192.0.2.7\n"
    "client_name=mx.client.example\n"
    "reverse_client_name=mx.client.example\n"
    "instance=1a2b.3c4d5e6f.12345.0\n"
    "sasl_method=\n"
    "sasl_username=\n"
    "sasl_sender=\n"
    "size=0\n"
    "ccert_subject=\n"
    "ccert_issuer=\n"
    "ccert_fingerprint=\n"
    "encryption_protocol=\n"
    "encryption_cipher=\n"
    "encryption_keysize=0\n"
    "etrn_domain=\n"
    "stress=\n"
    "ccert_pubkey_fingerprint=\n"
    "client_port=40312\n"
    "policy_context=\n"
    "server_address=127.0.0.1\n"
    "server_port=25\n"
    "compatibility_level=3.6\n"
    "mail_version=3.7.11\n"
    "\n";

struct outcome {
    std::vector<request> requests;
    std::error_code error;
    bool pending = false;  // part of a request left over
};

/// Feeds `input` in pieces of the given sizes (cycled), taking every request as it completes.
outcome feed(std::string_view input, const std::vector<std::size_t>& pieces, request_limits limits = {}) {
    request_parser p(limits);
    outcome o;
    std::size_t at = 0, piece = 0;
    while (at < input.size()) {
        const std::size_t n = std::min(pieces[piece++ % pieces.size()], input.size() - at);
        std::string_view in = input.substr(at, n);
        at += n;
        while (!in.empty()) {
            auto next = p.consume(in);
            if (!next) {
                o.error = next.error();
                return o;
            }
            if (!*next) {
                CHECK(in.empty());  // "more is needed" only once all was taken
                break;
            }
            o.requests.push_back(std::move(**next));
        }
    }
    o.pending = p.in_request();
    return o;
}

bool same(const request& a, const request& b) {
    return a.request == b.request && a.protocol_state == b.protocol_state && a.protocol_name == b.protocol_name &&
           a.helo_name == b.helo_name && a.queue_id == b.queue_id && a.sender == b.sender &&
           a.recipient == b.recipient && a.client_address == b.client_address && a.client_name == b.client_name &&
           a.instance == b.instance && a.attributes == b.attributes;
}

/// Whole, byte by byte, and in random pieces: the same requests, or the same error.
outcome feed_every_way(std::string_view input, request_limits limits = {}) {
    const outcome whole = feed(input, {input.size() + 1}, limits);
    const outcome bytes = feed(input, {1}, limits);
    CHECK(bytes.error == whole.error);
    REQUIRE(bytes.requests.size() == whole.requests.size());
    for (std::size_t i = 0; i < whole.requests.size(); ++i) CHECK(same(bytes.requests[i], whole.requests[i]));
    std::mt19937 rng(12345);
    for (int round = 0; round < 20; ++round) {
        std::vector<std::size_t> pieces;
        for (int i = 0; i < 16; ++i) pieces.push_back(std::uniform_int_distribution<std::size_t>(1, 64)(rng));
        const outcome split = feed(input, pieces, limits);
        CHECK(split.error == whole.error);
        REQUIRE(split.requests.size() == whole.requests.size());
        for (std::size_t i = 0; i < whole.requests.size(); ++i) CHECK(same(split.requests[i], whole.requests[i]));
    }
    return whole;
}

std::string attribute_line(std::size_t octets) {  // "x=vvv…\n", `octets` long with its LF
    REQUIRE(octets >= 3);
    return "x=" + std::string(octets - 3, 'v') + "\n";
}

} // namespace

TEST_CASE("Postfix's RCPT request is parsed into the attributes greylisting reads") {
    const outcome o = feed_every_way(postfix_rcpt);
    CHECK_FALSE(o.error);
    CHECK_FALSE(o.pending);
    REQUIRE(o.requests.size() == 1);
    const request& r = o.requests[0];
    CHECK(r.request == "smtpd_access_policy");
    CHECK(r.protocol_state == "RCPT");
    CHECK(r.protocol_name == "ESMTP");
    CHECK(r.helo_name == "client.example");
    CHECK(r.queue_id.empty());
    CHECK(r.sender == "alice@example.org");
    CHECK(r.recipient == "bob@example.com");
    CHECK(r.recipient_domain() == "example.com");
    CHECK(r.client_address == "192.0.2.7");
    CHECK(r.client_name == "mx.client.example");
    CHECK(r.instance == "1a2b.3c4d5e6f.12345.0");
    CHECK(r.attributes == 31);  // those ignored are counted against the limit
}

TEST_CASE("Pipelined requests come out one at a time, in order, the rest left for the next call") {
    std::string two = postfix_rcpt;
    two += "request=smtpd_access_policy\nprotocol_state=DATA\nrecipient=carol@example.com\n\n";
    SUBCASE("in every split") {
        const outcome o = feed_every_way(two);
        REQUIRE(o.requests.size() == 2);
        CHECK(o.requests[0].recipient == "bob@example.com");
        CHECK(o.requests[1].protocol_state == "DATA");
        CHECK(o.requests[1].recipient == "carol@example.com");
        CHECK(o.requests[1].sender.empty());  // not sent: empty, as the null sender
    }
    SUBCASE("one call leaves the second request's bytes") {
        request_parser p;
        std::string_view in = two;
        auto first = p.consume(in);
        REQUIRE(first);
        REQUIRE(*first);
        CHECK(in == two.substr(postfix_rcpt.size()));
        CHECK_FALSE(p.in_request());
        auto second = p.consume(in);
        REQUIRE(second);
        REQUIRE(*second);
        CHECK(in.empty());
    }
}

TEST_CASE("A request cut anywhere waits for the rest") {
    for (std::size_t cut = 1; cut < postfix_rcpt.size(); ++cut) {
        request_parser p;
        std::string_view in = std::string_view(postfix_rcpt).substr(0, cut);
        auto first = p.consume(in);
        REQUIRE(first);
        CHECK_FALSE(*first);
        CHECK(in.empty());
        CHECK(p.in_request());
        std::string_view rest = std::string_view(postfix_rcpt).substr(cut);
        auto second = p.consume(rest);
        REQUIRE(second);
        REQUIRE(*second);
        CHECK((*second)->recipient == "bob@example.com");
    }
}

TEST_CASE("Attributes: CRLF ends a line too, the last of a repeated name wins, a value may hold '='") {
    const outcome o = feed_every_way(
        "request=smtpd_access_policy\r\nrecipient=a@example.com\nrecipient=b@example.com\n"
        "sender=prvs=1234567890=ann@example.org\nclient_address=\n\r\n");
    REQUIRE(o.requests.size() == 1);
    CHECK(o.requests[0].request == "smtpd_access_policy");
    CHECK(o.requests[0].recipient == "b@example.com");
    CHECK(o.requests[0].sender == "prvs=1234567890=ann@example.org");
    CHECK(o.requests[0].client_address.empty());
    CHECK(o.requests[0].attributes == 5);
}

TEST_CASE("An empty line alone is a request with no attributes") {
    const outcome o = feed_every_way("\n\n");
    REQUIRE(o.requests.size() == 2);
    CHECK(o.requests[0].attributes == 0);
    CHECK(o.requests[0].request.empty());
}

TEST_CASE("A line up to max_line octets is taken; one octet more is an error") {
    const request_limits limits{.max_line = 64, .max_attributes = 10, .max_request = 4096};
    SUBCASE("at the limit") {
        const outcome o = feed_every_way(attribute_line(64) + "\n", limits);
        CHECK_FALSE(o.error);
        CHECK(o.requests.size() == 1);
    }
    SUBCASE("over it") {
        CHECK(feed_every_way(attribute_line(65) + "\n", limits).error == error::line_too_long);
    }
    SUBCASE("over it before its LF has come: never held whole") {
        const outcome o = feed(std::string(65, 'x'), {1}, limits);
        CHECK(o.error == error::line_too_long);
    }
    SUBCASE("a CRLF line counts its CR") {
        CHECK(feed_every_way("x=" + std::string(61, 'v') + "\r\n\n", limits).error == error::line_too_long);
    }
}

TEST_CASE("Up to max_attributes lines are taken; one more is an error") {
    const request_limits limits{.max_line = 64, .max_attributes = 3, .max_request = 4096};
    CHECK(feed_every_way("a=1\nb=2\nc=3\n\n", limits).requests.size() == 1);
    CHECK(feed_every_way("a=1\nb=2\nc=3\nd=4\n\n", limits).error == error::too_many_attributes);
    SUBCASE("the count starts again with each request") {
        CHECK(feed_every_way("a=1\nb=2\nc=3\n\na=1\nb=2\nc=3\n\n", limits).requests.size() == 2);
    }
}

TEST_CASE("A request up to max_request octets is taken; one octet more is an error") {
    const request_limits limits{.max_line = 64, .max_attributes = 100, .max_request = 100};
    const std::string at_limit = attribute_line(33) + attribute_line(33) + attribute_line(33) + "\n";  // 100
    REQUIRE(at_limit.size() == 100);
    CHECK(feed_every_way(at_limit, limits).requests.size() == 1);
    const std::string over = attribute_line(33) + attribute_line(33) + attribute_line(34) + "\n";
    CHECK(feed_every_way(over, limits).error == error::request_too_large);
    SUBCASE("the size starts again with each request") {
        CHECK(feed_every_way(at_limit + at_limit, limits).requests.size() == 2);
    }
}

TEST_CASE("A line that is not name=value, or has an empty name, is an error") {
    CHECK(feed_every_way("request=smtpd_access_policy\ngarbage\n\n").error == error::malformed_attribute);
    CHECK(feed_every_way("=value\n\n").error == error::malformed_attribute);
    SUBCASE("answered requests before it stay answered") {
        const outcome o = feed_every_way(postfix_rcpt + "garbage\n\n");
        CHECK(o.requests.size() == 1);
        CHECK(o.error == error::malformed_attribute);
    }
}

TEST_CASE("A NUL byte is an error, in a name or a value") {
    CHECK(feed_every_way(std::string("sender=a\0b@example.org\n\n", 24)).error == error::nul_byte);
    CHECK(feed_every_way(std::string("na\0me=x\n\n", 9)).error == error::nul_byte);
}

TEST_CASE("Errors have messages, in their own category") {
    const std::error_code ec = make_error_code(error::line_too_long);
    CHECK(std::string(ec.category().name()) == "grey.policy");
    CHECK(ec.message() == "policy request line too long");
    CHECK(make_error_code(error::nul_byte).message() == "NUL byte in a policy request");
}

TEST_CASE("The recipient's domain follows its last '@'; <postmaster> has none") {
    request r;
    r.recipient = "\"a@b\"@example.com";
    CHECK(r.recipient_domain() == "example.com");
    r.recipient = "postmaster";
    CHECK(r.recipient_domain().empty());
}
