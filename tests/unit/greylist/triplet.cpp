#include <grey/greylist/triplet.hpp>

#include <doctest/doctest.h>

using namespace grey::greylist;

TEST_CASE("Client addresses are grouped by subnet, /24 and /64 by default") {
    const grouping g;
    CHECK(client_group("192.0.2.77", g) == "192.0.2.0/24");
    CHECK(client_group("2001:db8:1:2:3:4:5:6", g) == "2001:db8:1:2::/64");
    SUBCASE("other prefixes") {
        CHECK(client_group("192.0.2.77", {.ipv4_prefix = 16}) == "192.0.0.0/16");
        CHECK(client_group("192.0.2.77", {.ipv4_prefix = 28}) == "192.0.2.64/28");
        CHECK(client_group("2001:db8:1:2:3:4:5:6", {.ipv6_prefix = 48}) == "2001:db8:1::/48");
    }
    SUBCASE("grouping off keeps the exact address") {
        CHECK(client_group("192.0.2.77", {.ipv4_prefix = 32}) == "192.0.2.77");
        CHECK(client_group("::1", {.ipv6_prefix = 128}) == "::1");
    }
    SUBCASE("a string that is no address is kept as it is") { CHECK(client_group("unix", g) == "unix"); }
}

TEST_CASE("Sender domains are compared in lower case, local parts as written") {
    CHECK(normalise_sender("Alice@Example.COM", {}) == "Alice@example.com");
    CHECK(normalise_sender("Alice@Example.COM", {.lowercase_domain = false}) == "Alice@Example.COM");
}

TEST_CASE("BATV tags are removed from the sender") {
    CHECK(normalise_sender("prvs=1234abcdef=bounce@example.com", {}) == "bounce@example.com");
    CHECK(normalise_sender("PRVS=0123456789=bob@example.com", {}) == "bob@example.com");
    SUBCASE("something that only looks like BATV is kept") {
        CHECK(normalise_sender("prvs=xyz=bob@example.com", {.fold_digits = false}) == "prvs=xyz=bob@example.com");
    }
    SUBCASE("switched off") {
        CHECK(normalise_sender("prvs=1234abcdef=bob@example.com", {.unwrap_batv = false, .fold_digits = false}) ==
              "prvs=1234abcdef=bob@example.com");
    }
}

TEST_CASE("SRS-wrapped senders are unwrapped to the original sender") {
    CHECK(normalise_sender("SRS0=HHH=TT=orig.example=alice@forwarder.example", {}) == "alice@orig.example");
    CHECK(normalise_sender("SRS0+HHH=TT=Orig.Example=alice@forwarder.example", {}) == "alice@orig.example");
    CHECK(normalise_sender("SRS1=HHH=first.example==HHH=TT=orig.example=alice@second.example", {}) ==
          "alice@orig.example");
    CHECK(normalise_sender("SRS0=broken@forwarder.example", {}) == "SRS#=broken@forwarder.example");
}

TEST_CASE("Address extensions and VERP numbers are folded") {
    CHECK(normalise_sender("list+bounces@example.com", {}) == "list@example.com");
    CHECK(normalise_sender("bounce-12345-678@example.com", {}) == "bounce-#-#@example.com");
    CHECK(normalise_sender("bounce-12345@example.com", {.fold_digits = false}) == "bounce-12345@example.com");
    CHECK(normalise_sender("list+x@example.com", {.strip_extension = false}) == "list+x@example.com");
}

TEST_CASE("The null sender stays empty and recipients keep their local part") {
    CHECK(normalise_sender("", {}).empty());
    CHECK(normalise_recipient("Bob@EXAMPLE.com") == "Bob@example.com");
    CHECK(normalise_recipient("Postmaster") == "postmaster");
}

TEST_CASE("A triplet gathers the three normalised parts") {
    const triplet t = make_triplet("198.51.100.9", "prvs=1234abcdef=news+x@List.Example", "Bob@Example.org");
    CHECK(t == triplet{"198.51.100.0/24", "news@list.example", "Bob@example.org"});
}

#include <grey/greylist/privacy.hpp>

TEST_CASE("Privacy mode replaces each part of a triplet by its SHA-256") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const triplet t{"192.0.2.0/24", "alice@example.org", "bob@example.com"};
    const triplet h = hashed(t);
    CHECK(h.client == sha256_hex("192.0.2.0/24"));
    CHECK(h.sender == sha256_hex("alice@example.org"));
    CHECK(h.recipient == sha256_hex("bob@example.com"));
    CHECK(h.sender.find('@') == std::string::npos);
    CHECK(hashed(t) == h);  // equality is all greylisting needs
}
