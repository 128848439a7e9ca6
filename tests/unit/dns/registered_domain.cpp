// dns/registered_domain.hpp: registered domains by the Public Suffix List (libpsl).
#include <doctest/doctest.h>

#include <grey/dns/registered_domain.hpp>

using grey::dns::registered_domain;

TEST_CASE("A host's registered domain is its public suffix and one label more") {
    CHECK(registered_domain("mail.example.com") == "example.com");
    CHECK(registered_domain("example.com") == "example.com");
    CHECK(registered_domain("a.b.c.example.org") == "example.org");
    CHECK(registered_domain("mail-1.example.co.uk") == "example.co.uk");
    CHECK(registered_domain("c-98-207-1-23.hsd1.ca.comcast.net") == "comcast.net");
    // A suffix where customers register: each customer is a domain of its own.
    CHECK(registered_domain("a.github.io") == "a.github.io");
}

TEST_CASE("The domain comes lowercase, without a final dot") {
    CHECK(registered_domain("Mail.Example.CO.UK.") == "example.co.uk");
    CHECK(registered_domain("MX.EXAMPLE.NET") == "example.net");
}

TEST_CASE("A public suffix, an address or a malformed name has no registered domain") {
    for (const char* none : {"com", "co.uk", "github.io", "192.0.2.1", "2001:db8::1", "[192.0.2.1]",
                             "[IPv6:2001:db8::1]", "", ".", "a..example.com", ".example.com"}) {
        CAPTURE(none);
        CHECK_FALSE(registered_domain(none));
    }
}
