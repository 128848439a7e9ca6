// SPF records and macros with no I/O (RFC 7208 §4.5, §4.6, §5, §6, §7): what parses, what is a
// permerror, and §7.4's expansion examples.
#include <doctest/doctest.h>

#include <string>

#include <grey/dns/spf_record.hpp>

using namespace grey::dns::spf;

namespace {
record parse(std::string_view text) {
    auto p = parse_record(text);
    INFO(text, " ", p.error);
    REQUIRE(p);
    return *p.value;
}

bool rejected(std::string_view text) {
    const auto p = parse_record(text);
    INFO(text);
    CHECK(!p.error.empty());
    return !p;
}

// §7.4's sender, addresses and domain.
macro_values example(const char* ip = "192.0.2.3") {
    macro_values v;
    v.sender = "strong-bad@email.example.com";
    v.local_part = "strong-bad";
    v.sender_domain = "email.example.com";
    v.domain = "email.example.com";
    v.ip = asio::ip::make_address(ip);
    v.helo = "mx.example.org";
    return v;
}

std::string expanded(std::string_view s, const macro_values& v = example()) {
    const auto out = expand(s, v, macro_context::domain);
    INFO(s);
    REQUIRE(out);
    return *out;
}
} // namespace

TEST_CASE("A TXT string is an SPF record when it starts with v=spf1, in any case, then a space or its end") {
    CHECK(is_spf_record("v=spf1"));
    CHECK(is_spf_record("v=spf1 -all"));
    CHECK(is_spf_record("V=SpF1 -all"));
    CHECK_FALSE(is_spf_record("v=spf10 -all"));
    CHECK_FALSE(is_spf_record("v=spf1\t-all"));
    CHECK_FALSE(is_spf_record(" v=spf1 -all"));
    CHECK_FALSE(is_spf_record("spf2.0/pra -all"));
    CHECK_FALSE(is_spf_record(""));
}

TEST_CASE("Mechanisms are read with their qualifiers, names in any case, terms separated by one or more spaces") {
    const record r = parse("v=spf1  +a -MX ~ptr ?Include:_spf.example.com exists:%{i}.bl.example.org all  ");
    REQUIRE(r.mechanisms.size() == 6);
    CHECK(r.mechanisms[0].kind == mechanism_kind::a);
    CHECK(r.mechanisms[0].q == qualifier::pass);
    CHECK(r.mechanisms[1].kind == mechanism_kind::mx);
    CHECK(r.mechanisms[1].q == qualifier::fail);
    CHECK(r.mechanisms[2].kind == mechanism_kind::ptr);
    CHECK(r.mechanisms[2].q == qualifier::softfail);
    CHECK(r.mechanisms[3].kind == mechanism_kind::include);
    CHECK(r.mechanisms[3].q == qualifier::neutral);
    CHECK(r.mechanisms[3].domain_spec == "_spf.example.com");
    CHECK(r.mechanisms[4].kind == mechanism_kind::exists);
    CHECK(r.mechanisms[5].kind == mechanism_kind::all);
    CHECK(r.mechanisms[5].q == qualifier::pass);
    CHECK(r.has_all());
    CHECK(r.mechanisms[1].text == "-MX");
    CHECK(parse("v=spf1").mechanisms.empty());
    CHECK_FALSE(parse("v=spf1 a").has_all());
}

TEST_CASE("ip4 and ip6 take a network and an optional prefix length") {
    const record r = parse("v=spf1 ip4:192.0.2.1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ip6:2001:db8::1 ip4:0.0.0.0/0 ip6:::/0");
    REQUIRE(r.mechanisms.size() == 6);
    CHECK(r.mechanisms[0].network == asio::ip::make_address("192.0.2.1"));
    CHECK(r.mechanisms[0].cidr4 == 32);
    CHECK(r.mechanisms[1].cidr4 == 24);
    CHECK(r.mechanisms[2].network == asio::ip::make_address("2001:db8::"));
    CHECK(r.mechanisms[2].cidr6 == 32);
    CHECK(r.mechanisms[3].cidr6 == 128);
    CHECK(r.mechanisms[4].cidr4 == 0);
    CHECK(r.mechanisms[5].cidr6 == 0);

    SUBCASE("An address left incomplete, with leading zeros, or of the other family is a syntax error") {
        CHECK(rejected("v=spf1 ip4:192.0.2"));
        CHECK(rejected("v=spf1 ip4:192.0.2.01"));
        CHECK(rejected("v=spf1 ip4:192.0.2.256"));
        CHECK(rejected("v=spf1 ip4:2001:db8::1"));
        CHECK(rejected("v=spf1 ip6:192.0.2.1"));
        CHECK(rejected("v=spf1 ip4"));
        CHECK(rejected("v=spf1 ip4:"));
        CHECK(rejected("v=spf1 ip6:fe80::1%eth0"));
    }
    SUBCASE("A prefix length beyond the family's, with a leading zero, or a dual one is a syntax error") {
        CHECK(rejected("v=spf1 ip4:192.0.2.0/33"));
        CHECK(rejected("v=spf1 ip4:192.0.2.0/024"));
        CHECK(rejected("v=spf1 ip4:192.0.2.0/"));
        CHECK(rejected("v=spf1 ip6:2001:db8::/129"));
        CHECK(rejected("v=spf1 ip4:192.0.2.0/24//64"));
    }
}

TEST_CASE("a and mx take a domain-spec and a dual prefix length, both optional") {
    const record r = parse("v=spf1 a a/24 a//64 a/24//64 a:example.com a:example.com/28//96 mx:mail.example.com//48 mx/30");
    REQUIRE(r.mechanisms.size() == 8);
    CHECK((r.mechanisms[0].cidr4 == 32 && r.mechanisms[0].cidr6 == 128 && r.mechanisms[0].domain_spec.empty()));
    CHECK((r.mechanisms[1].cidr4 == 24 && r.mechanisms[1].cidr6 == 128));
    CHECK((r.mechanisms[2].cidr4 == 32 && r.mechanisms[2].cidr6 == 64));
    CHECK((r.mechanisms[3].cidr4 == 24 && r.mechanisms[3].cidr6 == 64));
    CHECK(r.mechanisms[4].domain_spec == "example.com");
    CHECK((r.mechanisms[5].domain_spec == "example.com" && r.mechanisms[5].cidr4 == 28 && r.mechanisms[5].cidr6 == 96));
    CHECK((r.mechanisms[6].domain_spec == "mail.example.com" && r.mechanisms[6].cidr6 == 48));
    CHECK((r.mechanisms[7].kind == mechanism_kind::mx && r.mechanisms[7].cidr4 == 30));
    CHECK(rejected("v=spf1 a/33"));
    CHECK(rejected("v=spf1 a//129"));
    CHECK(rejected("v=spf1 a/24/64"));
    CHECK(rejected("v=spf1 a:"));
    CHECK(rejected("v=spf1 mx:"));
    CHECK(rejected("v=spf1 ptr/24"));
}

TEST_CASE("A domain-spec ends in a top-level label or a macro (§7.1's toplabel rule)") {
    CHECK(parse("v=spf1 a:example.com a:example.com. a:xn--p1ai.example a:host.123-4 a:%{d} exists:%{ir}.%{v}.%{d2}").mechanisms.size() == 6);
    CHECK(rejected("v=spf1 a:museum"));
    CHECK(rejected("v=spf1 a:museum."));
    CHECK(rejected("v=spf1 a:111.222.33.44"));
    CHECK(rejected("v=spf1 a:example.-com"));
    CHECK(rejected("v=spf1 a:example.com-"));
    CHECK(rejected("v=spf1 include:"));
    CHECK(rejected("v=spf1 include"));
    CHECK(rejected("v=spf1 exists"));
    CHECK(rejected("v=spf1 a:exa mple.com"));
}

TEST_CASE("all takes nothing, and unknown mechanisms are syntax errors") {
    CHECK(rejected("v=spf1 all:example.com"));
    CHECK(rejected("v=spf1 all/24"));
    CHECK(rejected("v=spf1 foo"));
    CHECK(rejected("v=spf1 foo:example.com"));
    CHECK(rejected("v=spf1 ip5:192.0.2.1"));
    CHECK(rejected("v=spf1 +redirect=example.com"));
    CHECK(rejected("v=spf1 -"));
    CHECK(rejected("v=spf1 =example.com"));
}

TEST_CASE("redirect and exp are read once each; other modifiers are checked and ignored") {
    const record r = parse("v=spf1 mx Redirect=_spf.example.com EXP=explain.%{d} moo=bar.%{c} x.y-z_1=");
    CHECK(r.mechanisms.size() == 1);
    CHECK(r.redirect == "_spf.example.com");
    CHECK(r.explanation == "explain.%{d}");
    CHECK(rejected("v=spf1 redirect=a.example.com redirect=b.example.com"));
    CHECK(rejected("v=spf1 exp=a.example.com exp=b.example.com"));
    CHECK(rejected("v=spf1 redirect="));
    CHECK(rejected("v=spf1 exp="));
    CHECK(rejected("v=spf1 redirect=museum"));
    CHECK(rejected("v=spf1 moo=%"));
    CHECK(rejected("v=spf1 moo=%{x}"));
}

TEST_CASE("Control characters and octets beyond ASCII are syntax errors") {
    CHECK(rejected("v=spf1 a\t-all"));
    CHECK(rejected("v=spf1 a:caf\xc3\xa9.example -all"));
    CHECK(rejected(std::string("v=spf1 a\0 -all", 14)));
    CHECK(rejected("v=spf1 a:example.com\x7f"));
}

TEST_CASE("Reasons quote the term at fault, cut short") {
    const auto p = parse_record("v=spf1 -bogus:" + std::string(200, 'x') + ".com");
    REQUIRE_FALSE(p);
    CHECK(p.error.find("unknown mechanism") == 0);
    CHECK(p.error.size() < 100);
}

TEST_CASE("Macros expand as §7.4's examples do") {
    CHECK(expanded("%{s}") == "strong-bad@email.example.com");
    CHECK(expanded("%{o}") == "email.example.com");
    CHECK(expanded("%{d}") == "email.example.com");
    CHECK(expanded("%{d4}") == "email.example.com");
    CHECK(expanded("%{d3}") == "email.example.com");
    CHECK(expanded("%{d2}") == "example.com");
    CHECK(expanded("%{d1}") == "com");
    CHECK(expanded("%{dr}") == "com.example.email");
    CHECK(expanded("%{d2r}") == "example.email");
    CHECK(expanded("%{l}") == "strong-bad");
    CHECK(expanded("%{l-}") == "strong.bad");
    CHECK(expanded("%{lr}") == "strong-bad");
    CHECK(expanded("%{lr-}") == "bad.strong");
    CHECK(expanded("%{l1r-}") == "strong");

    CHECK(expanded("%{ir}.%{v}._spf.%{d2}") == "3.2.0.192.in-addr._spf.example.com");
    CHECK(expanded("%{lr-}.lp._spf.%{d2}") == "bad.strong.lp._spf.example.com");
    CHECK(expanded("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}") == "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
    CHECK(expanded("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}") == "3.2.0.192.in-addr.strong.lp._spf.example.com");
    CHECK(expanded("%{d2}.trusted-domains.example.net") == "example.com.trusted-domains.example.net");
    CHECK(expanded("%{ir}.%{v}._spf.%{d2}", example("2001:db8::cb01")) ==
          "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
}

TEST_CASE("Macro letters, transformers and escapes follow §7.3") {
    CHECK(expanded("%{h}") == "mx.example.org");
    CHECK(expanded("%{p}") == "unknown");
    CHECK(expanded("%{i}", example("2001:db8::cb01")) == "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1");
    CHECK(expanded("%{v}", example("2001:db8::cb01")) == "ip6");
    CHECK(expanded("%%-%_-%-") == "%- -%20");
    CHECK(expanded("%{d127}") == "email.example.com");
    CHECK(expanded("%{d999999999999999999999}") == "email.example.com");
    CHECK(expanded("%{L}") == "strong-bad");
    CHECK(expanded("%{S}") == "strong-bad%40email.example.com");
    CHECK(expanded("%{lR}") == "strong-bad");
    CHECK(expanded("%{l+-}") == "strong.bad");
    macro_values v = example();
    v.local_part = "a+b=c/d,e_f";
    CHECK(expanded("%{l+=/,_}", v) == "a.b.c.d.e.f");
    CHECK(expanded("%{l2r+=/,_}", v) == "b.a");
    v.local_part = "..a..";
    CHECK(expanded("%{l}", v) == "..a..");
    CHECK(expanded("%{lr}", v) == "..a..");
    CHECK(expanded("%{l2}", v) == ".");

    SUBCASE("c, r and t stand in explanations only") {
        CHECK_FALSE(expand("%{c}", example(), macro_context::domain));
        CHECK_FALSE(expand("%{r}", example(), macro_context::domain));
        CHECK_FALSE(expand("%{t}", example(), macro_context::domain));
        v = example("2001:db8::cb01");
        v.now = 1234;
        CHECK(expand("%{c} %{r} %{t} is %{i}", v, macro_context::explanation) ==
              "2001:db8::cb01 unknown 1234 is 2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1");
        CHECK(rejected("v=spf1 exists:%{t}.example.com"));
        CHECK(rejected("v=spf1 a:%{c}.example.com"));
    }
    SUBCASE("Anything else after a percent sign, and unknown letters or a zero digit, are errors") {
        for (const char* bad : {"%", "%(ir)", "%{", "%{i", "%{x}", "%{d0}", "%{dd}", "%{d2rr}", "%{ }", "a b", "%{d-x}"})
            CHECK_FALSE(expand(bad, example(), macro_context::domain));
        CHECK(rejected("v=spf1 -exists:%(ir).sbl.example.org"));
        CHECK(rejected("v=spf1 -exists:%{q}.sbl.example.org"));
    }
}

TEST_CASE("An expanded name longer than 253 octets loses labels from the left (§7.3)") {
    macro_values v = example();
    const std::string label(60, 'x');
    const std::string local = label + "." + label + "." + label + "." + label + "." + label;  // 304 octets
    v.local_part = local;
    const auto name = expand_domain("%{l}.example.com", v);
    REQUIRE(name);
    CHECK(name->size() <= max_domain_length);
    CHECK(*name == label + "." + label + "." + label + "." + "example.com");
    CHECK(expand_domain("example.com.", v) == "example.com");
    const std::string one_label(300, 'y');
    v.local_part = one_label;
    CHECK(expand_domain("%{l}", v) == "");
    CHECK(valid_domain_name(*name));
    CHECK_FALSE(valid_domain_name(""));
    CHECK_FALSE(valid_domain_name("a..b"));
    CHECK_FALSE(valid_domain_name(std::string(64, 'a') + ".com"));
    CHECK(valid_domain_name("com"));
    CHECK_FALSE(valid_domain_name("com", true));
}
