#include <grey/upstream/opening.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using grey::upstream::opening;
using namespace grey::smtp;

namespace {
extensions offering_size() {
    extensions e;
    e.add(extension::size);
    return e;
}
} // namespace

TEST_CASE("An opening on a connection left mid-transaction is RSET, XFORWARD, MAIL, RCPT") {
    mail_parameters mail;
    mail.size = 42;
    opening o;
    o.compose(true, {"XFORWARD ADDR=192.0.2.1\r\n", "XFORWARD HELO=a.example\r\n"}, "s@a.example", mail, "r@b.example",
              {"NEVER", ""}, offering_size());
    CHECK(o.wire() ==
          "RSET\r\nXFORWARD ADDR=192.0.2.1\r\nXFORWARD HELO=a.example\r\n"
          "MAIL FROM:<s@a.example> SIZE=42\r\nRCPT TO:<r@b.example> NOTIFY=NEVER\r\n");
    REQUIRE(o.mail() == 3);
    CHECK(o.command(0) == "RSET\r\n");
    CHECK(o.is_reset(0));
    CHECK(o.command(1) == "XFORWARD ADDR=192.0.2.1\r\n");
    CHECK_FALSE(o.is_reset(1));
    CHECK(o.command(2) == "XFORWARD HELO=a.example\r\n");
    CHECK(o.command(3) == "MAIL FROM:<s@a.example> SIZE=42\r\n");
    CHECK(o.command(4) == "RCPT TO:<r@b.example> NOTIFY=NEVER\r\n");
}

TEST_CASE("An opening on a clean connection is MAIL and RCPT alone, and a new one replaces the last") {
    opening o;
    o.compose(true, {"XFORWARD ADDR=192.0.2.1\r\n"}, "s@a", {}, "r@b", {}, {});
    o.compose(false, {}, "", {}, "Postmaster", {}, {});
    CHECK(o.wire() == "MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\n");
    REQUIRE(o.mail() == 0);
    CHECK_FALSE(o.is_reset(0));
    CHECK(o.command(0) == "MAIL FROM:<>\r\n");
    CHECK(o.command(1) == "RCPT TO:<Postmaster>\r\n");
}
