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
        CHECK(normalise_sender("btv1==760cdc7c545==bob@example.com", {.unwrap_batv = false, .fold_digits = false}) ==
              "btv1==760cdc7c545==bob@example.com");
    }
}

TEST_CASE("A prvs tag of another length than the draft's ten is removed") {
    const normalisation n{.fold_digits = false};
    // Cisco IronPort signs with nine hex digits, a new tag each message.
    CHECK(normalise_sender("prvs=4451fe355=alistair.francis@wdc.com", n) == "alistair.francis@wdc.com");
    CHECK(normalise_sender("prvs=38990af3b=alistair.francis@wdc.com", n) == "alistair.francis@wdc.com");
    CHECK(normalise_sender("prvs=6700ee1bd8=volodymyr@epam.com", n) == "volodymyr@epam.com");
    CHECK(normalise_sender("prvs=abc123=bob@example.com", n) == "bob@example.com");  // six: the shortest
    CHECK(normalise_sender("prvs=" + std::string(64, 'f') + "=bob@example.com", n) == "bob@example.com");
    CHECK(normalise_sender("prvs=" + std::string(65, 'f') + "=bob@example.com", n) ==
          "prvs=" + std::string(65, 'f') + "=bob@example.com");
    CHECK(normalise_sender("prvs=abc12=bob@example.com", n) == "prvs=abc12=bob@example.com");  // five: too short
}

TEST_CASE("The reversed prvs=local=TAG form is removed when the tag is last") {
    const normalisation n{.fold_digits = false};
    CHECK(normalise_sender("prvs=bob=0123456789@example.com", n) == "bob@example.com");
    CHECK(normalise_sender("Prvs=alice.smith=1234abcdef@example.com", n) == "alice.smith@example.com");
    SUBCASE("the draft's order wins when both parts could be tags") {
        CHECK(normalise_sender("prvs=0123456789=abcdef@example.com", n) == "abcdef@example.com");
    }
    SUBCASE("nothing tag-like on either side is kept") {
        CHECK(normalise_sender("prvs=bob=alice@example.com", n) == "prvs=bob=alice@example.com");
        CHECK(normalise_sender("prvs=a=b=0123456789@example.com", n) == "prvs=a=b=0123456789@example.com");
    }
}

TEST_CASE("SparkPost's msprvs1 tag is removed") {
    const normalisation n{.fold_digits = false};
    CHECK(normalise_sender("msprvs1=17582Z2TKy0DK=bounces-9178@spmailt.com", n) == "bounces-9178@spmailt.com");
    CHECK(normalise_sender("msprvs1=20681k-oj8lAL=bounces-274689@example.com", n) == "bounces-274689@example.com");
    CHECK(normalise_sender("MSPRVS1=18883y34fz1VM=bounces-12801-6@eu.sparkpostmail1.com", n) ==
          "bounces-12801-6@eu.sparkpostmail1.com");
    CHECK(normalise_sender("msprvs1=x=bounces@example.com", n) == "msprvs1=x=bounces@example.com");
}

TEST_CASE("Barracuda's btv1 tag with doubled equals signs is removed") {
    const normalisation n{.fold_digits = false};
    CHECK(normalise_sender("btv1==760cdc7c545==julian.burellaperez@heig-vd.ch", n) == "julian.burellaperez@heig-vd.ch");
    CHECK(normalise_sender("BTV1==34826e458e2==Ryan.Carmichael@Dynetics.com", n) == "Ryan.Carmichael@dynetics.com");
    CHECK(normalise_sender("btv1==760cdc7c545=julian@heig-vd.ch", n) == "btv1==760cdc7c545=julian@heig-vd.ch");
    CHECK(normalise_sender("btv1==ab==julian@heig-vd.ch", n) == "btv1==ab==julian@heig-vd.ch");
}

TEST_CASE("The sub-address form local+prvs=TAG is removed even with extensions kept") {
    const normalisation n{.strip_extension = false, .fold_digits = false};
    CHECK(normalise_sender("me+prvs=2987A7B7C7@example.com", n) == "me@example.com");
    CHECK(normalise_sender("me+prvs=xyz@example.com", n) == "me+prvs=xyz@example.com");
}

TEST_CASE("Two senders that differ only in their BATV tag are the same triplet") {
    CHECK(make_triplet("192.0.2.1", "prvs=4451fe355=a@wdc.com", "b@example.org") ==
          make_triplet("192.0.2.9", "prvs=0530a50c4=a@wdc.com", "b@example.org"));
    CHECK(make_triplet("192.0.2.1", "msprvs1=17582Z2TKy0DK=bounces-9178@s.example", "b@example.org") ==
          make_triplet("192.0.2.1", "msprvs1=17583aB9cdEfG=bounces-9178@s.example", "b@example.org"));
    CHECK(make_triplet("192.0.2.1", "btv1==760cdc7c545==j@heig-vd.ch", "b@example.org") ==
          make_triplet("192.0.2.1", "btv1==1086afe1179==j@heig-vd.ch", "b@example.org"));
}

TEST_CASE("Local parts with equals signs that are no BATV are kept") {
    const normalisation n{.fold_digits = false};
    for (const char* sender : {"a=b@example.com", "foo=bar=baz@example.com", "prvs@example.com", "prvs=@example.com",
                               "prvs==bob@example.com", "prvs=0123456789=@example.com", "=0123456789=bob@example.com",
                               "xprvs=0123456789=bob@example.com", "btv1=0123456789=bob@example.com",
                               "msprvs1=0123456789@example.com", "bob=0123456789@example.com"}) {
        CAPTURE(sender);
        CHECK(normalise_sender(sender, n) == sender);
    }
}

TEST_CASE("SRS-wrapped senders are unwrapped to the original sender") {
    CHECK(normalise_sender("SRS0=HHH=TT=orig.example=alice@forwarder.example", {}) == "alice@orig.example");
    CHECK(normalise_sender("SRS0+HHH=TT=Orig.Example=alice@forwarder.example", {}) == "alice@orig.example");
    CHECK(normalise_sender("SRS1=HHH=first.example==HHH=TT=orig.example=alice@second.example", {}) ==
          "alice@orig.example");
    CHECK(normalise_sender("SRS0=broken@forwarder.example", {}) == "SRS0=broken@forwarder.example");
}

TEST_CASE("A BATV tag inside SRS, or SRS inside a BATV tag, is removed too") {
    const normalisation n{.fold_digits = false};
    CHECK(normalise_sender("SRS0=LB9Y=TN=citrix.com=prvs=0530a50c4=roger.pau@srs-se1.example", n) ==
          "roger.pau@citrix.com");
    CHECK(normalise_sender("SRS0=OTTw=ED=citrix.com=prvs=587dba071=roger.pau@srs-se1.example", n) ==
          "roger.pau@citrix.com");
    CHECK(normalise_sender("SRS1=HHH=first.example==HHH=TT=orig.example=btv1==760cdc7c545==alice@second.example",
                           n) == "alice@orig.example");
    CHECK(normalise_sender("prvs=0123456789=SRS0=HHH=TT=orig.example=alice@forwarder.example", n) ==
          "alice@orig.example");
    SUBCASE("with SRS off the tag inside stays") {
        CHECK(normalise_sender("SRS0=HHH=TT=orig.example=prvs=0530a50c4=alice@fwd.example",
                               {.unwrap_srs = false, .fold_digits = false}) ==
              "SRS0=HHH=TT=orig.example=prvs=0530a50c4=alice@fwd.example");
    }
}

TEST_CASE("Address extensions and VERP numbers are folded") {
    CHECK(normalise_sender("list+bounces@example.com", {}) == "list@example.com");
    CHECK(normalise_sender("bounce-12345-678@example.com", {}) == "bounce-#-#@example.com");
    CHECK(normalise_sender("bounce-12345@example.com", {.fold_digits = false}) == "bounce-12345@example.com");
    // Only numbers standing alone, as Postgrey's s/\b\d+\b/#/g: digits in a word stay.
    CHECK(normalise_sender("12345@example.com", {}) == "#@example.com");
    CHECK(normalise_sender("a.2024.b@example.com", {}) == "a.#.b@example.com");
    CHECK(normalise_sender("s1@example.com", {}) == "s1@example.com");
    CHECK(normalise_sender("s1@example.com", {}) != normalise_sender("s9@example.com", {}));
    CHECK(normalise_sender("user_12@example.com", {}) == "user_12@example.com");
    CHECK(normalise_sender("12abc-34@example.com", {}) == "12abc-#@example.com");
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
