#include <doctest/doctest.h>

#include <grey/upstream/identity.hpp>

using namespace grey;
using namespace grey::upstream;

namespace {
smtp::extensions offered(std::vector<std::string> lines) {
    lines.insert(lines.begin(), "upstream.example");
    return smtp::extensions::from_ehlo(smtp::reply{250, "", lines});
}

client_identity someone() {
    return {"192.0.2.1", 40001, "mx.example.org", "mx.example.org", "mx.example.org", "ESMTP"};
}
} // namespace

TEST_CASE("XCLIENT and XFORWARD are read from EHLO with the attributes they list") {
    const auto e = offered({"PIPELINING", "XCLIENT NAME ADDR PORT PROTO HELO LOGIN", "xforward name addr"});
    CHECK(e.has(smtp::extension::xclient));
    CHECK(e.has(smtp::extension::xforward));
    CHECK(e.xclient_offers(smtp::attribute::port));
    CHECK_FALSE(e.xclient_offers(smtp::attribute::reverse_name));
    CHECK(e.xforward_offers(smtp::attribute::addr));
    CHECK_FALSE(e.xforward_offers(smtp::attribute::helo));
}

TEST_CASE("auto takes XCLIENT when it can say the address, else XFORWARD") {
    CHECK(choose(identity_policy::automatic, offered({"XCLIENT NAME ADDR", "XFORWARD ADDR"})) == identity_method::xclient);
    CHECK(choose(identity_policy::automatic, offered({"XCLIENT NAME HELO", "XFORWARD ADDR"})) == identity_method::xforward);
    CHECK(choose(identity_policy::automatic, offered({"XCLIENT NAME HELO"})) == identity_method::xclient);
    CHECK(choose(identity_policy::automatic, offered({"PIPELINING"})) == identity_method::none);
    CHECK(choose(identity_policy::xforward, offered({"XCLIENT ADDR"})) == identity_method::none);
    CHECK(choose(identity_policy::xclient, offered({"XCLIENT ADDR"})) == identity_method::xclient);
    CHECK(choose(identity_policy::none, offered({"XCLIENT ADDR", "XFORWARD ADDR"})) == identity_method::none);
}

TEST_CASE("Only the attributes the upstream listed are sent, in NAME, ADDR order") {
    const auto lines = identity_commands(identity_method::xclient, someone(), offered({"XCLIENT ADDR NAME HELO"}));
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "XCLIENT NAME=mx.example.org ADDR=192.0.2.1 HELO=mx.example.org\r\n");
    const auto all = identity_commands(identity_method::xclient, someone(),
                                       offered({"XCLIENT NAME REVERSE_NAME ADDR PORT PROTO HELO"}));
    REQUIRE(all.size() == 1);
    CHECK(all[0] ==
          "XCLIENT NAME=mx.example.org ADDR=192.0.2.1 PORT=40001 PROTO=ESMTP HELO=mx.example.org "
          "REVERSE_NAME=mx.example.org\r\n");
    CHECK(identity_commands(identity_method::xclient, someone(), offered({"XFORWARD ADDR"})).empty());
}

TEST_CASE("XFORWARD never sends REVERSE_NAME, which it does not define") {
    const auto lines = identity_commands(identity_method::xforward, someone(),
                                         offered({"XFORWARD NAME ADDR PROTO HELO REVERSE_NAME"}));
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "XFORWARD NAME=mx.example.org ADDR=192.0.2.1 PROTO=ESMTP HELO=mx.example.org\r\n");
}

TEST_CASE("Values are xtext; unknown ones are the keywords, unencoded") {
    CHECK(xtext("a+b=c d") == "a+2Bb+3Dc+20d");
    CHECK(xtext("\x7f\x01") == "+7F+01");
    client_identity who = someone();
    who.name = std::string(unavailable);
    who.helo = "we+ird";
    const auto lines = identity_commands(identity_method::xclient, who, offered({"XCLIENT NAME HELO"}));
    REQUIRE(lines.size() == 1);
    CHECK(lines[0] == "XCLIENT NAME=[UNAVAILABLE] HELO=we+2Bird\r\n");
    CHECK(identity_address("2001:db8::1") == "IPV6:2001:db8::1");
    CHECK(identity_address("192.0.2.1") == "192.0.2.1");
    CHECK(identity_address("") == "[UNAVAILABLE]");
}

TEST_CASE("A command that would pass the line limit is split, each part a whole attribute") {
    client_identity who = someone();
    who.name = std::string(200, 'n') + ".example";
    who.helo = std::string(200, 'h') + ".example";
    const auto lines = identity_commands(identity_method::xclient, who, offered({"XCLIENT NAME ADDR PORT PROTO HELO"}), 300);
    REQUIRE(lines.size() == 2);
    for (const auto& line : lines) {
        CHECK(line.size() <= 300);
        CHECK(line.starts_with("XCLIENT "));
        CHECK(line.ends_with("\r\n"));
    }
    CHECK(lines[0].find("NAME=") != std::string::npos);
    CHECK(lines[1].find("HELO=") != std::string::npos);
}

TEST_CASE("The identity a connection keeps leaves out the client's port") {
    client_identity a = someone(), b = someone();
    b.port = 40002;
    CHECK(a.key() == b.key());
    b.helo = "other.example";
    CHECK(a.key() != b.key());
}
