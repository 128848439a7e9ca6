// check_host() against the zone spf-test. served by the loopback unbound (tests/dns-zones/spf.conf):
// each mechanism and qualifier, include's table, redirect, exp, RFC 7208 §4.6.4's limits, record
// selection, macros as §7.4 writes them, IPv6, and a server that never answers.
#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <optional>
#include <string>

#include <grey/dns/spf.hpp>

#include "fixture.hpp"

using namespace grey::dns;
using namespace std::chrono_literals;
using spf::result;

namespace {

struct checked {
    spf_result r;
    resolver_stats stats;
};

// check_host() for `ip` and `domain` with a resolver of its own (an empty cache) on the fixture.
checked check_with_stats(const char* ip, std::string domain, std::string sender = {}, std::string helo = "helo.example") {
    if (sender.empty()) sender = "postmaster@" + domain;
    asio::io_context ioc;
    resolver r(ioc.get_executor(), grey_test::dns_fixture());
    std::optional<spf_result> out;
    asio::co_spawn(ioc, spf::check_host(r, asio::ip::make_address(ip), domain, sender, helo),
                   [&](std::exception_ptr e, spf_result v) {
                       if (e) std::rethrow_exception(e);
                       out = std::move(v);
                   });
    ioc.run();
    REQUIRE(out);
    INFO(domain, " for ", ip, ": ", spf::to_string(out->value), " (", out->why, ")");
    CHECK(out->domain == (domain.ends_with('.') ? domain.substr(0, domain.size() - 1) : domain));
    return {*out, r.stats()};
}

spf_result check(const char* ip, std::string domain, std::string sender = {}) {
    return check_with_stats(ip, std::move(domain), std::move(sender)).r;
}

result value(const char* ip, std::string domain, std::string sender = {}) {
    return check(ip, std::move(domain), std::move(sender)).value;
}

spf_result sender_check(const char* ip, std::string mail_from, std::string helo) {
    asio::io_context ioc;
    resolver r(ioc.get_executor(), grey_test::dns_fixture());
    std::optional<spf_result> out;
    asio::co_spawn(ioc, spf::evaluate_sender(r, asio::ip::make_address(ip), mail_from, helo),
                   [&](std::exception_ptr e, spf_result v) {
                       if (e) std::rethrow_exception(e);
                       out = std::move(v);
                   });
    ioc.run();
    REQUIRE(out);
    return *out;
}

} // namespace

TEST_CASE("ip4, ip6 and all match as written, each family only its own") {
    const spf_result pass = check("192.0.2.200", "ip.spf-test");
    CHECK(pass.value == result::pass);
    CHECK(pass.why == "ip4:192.0.2.0/24 matched in ip.spf-test");
    CHECK(pass.domain == "ip.spf-test");
    const spf_result fail = check("198.51.100.1", "ip.spf-test");
    CHECK(fail.value == result::fail);
    CHECK(fail.why == "-all matched in ip.spf-test");
    CHECK(value("2001:db8:1:ffff::1", "ip.spf-test") == result::pass);
    CHECK(value("2001:db8:2::1", "ip.spf-test") == result::fail);
    // An IPv4 client of an IPv6 socket is the IPv4 address it is.
    CHECK(value("::ffff:192.0.2.200", "ip.spf-test") == result::pass);
    CHECK(value("::ffff:198.51.100.1", "ip.spf-test") == result::fail);
}

TEST_CASE("Each qualifier gives its result; no match at all is neutral") {
    CHECK(value("192.0.2.1", "qualifiers.spf-test") == result::fail);
    CHECK(value("192.0.2.2", "qualifiers.spf-test") == result::softfail);
    CHECK(value("192.0.2.3", "qualifiers.spf-test") == result::neutral);
    CHECK(value("192.0.2.4", "qualifiers.spf-test") == result::pass);
    CHECK(value("192.0.2.5", "qualifiers.spf-test") == result::pass);
    const spf_result none_matched = check("192.0.2.6", "qualifiers.spf-test");
    CHECK(none_matched.value == result::neutral);
    CHECK(none_matched.why == "no mechanism matched in qualifiers.spf-test");
}

TEST_CASE("a matches the domain's addresses of the client's family, within the prefix lengths") {
    CHECK(value("192.0.2.30", "a.spf-test") == result::pass);
    CHECK(value("2001:db8::30", "a.spf-test") == result::pass);
    CHECK(value("::ffff:192.0.2.30", "a.spf-test") == result::pass);
    CHECK(value("192.0.2.31", "a.spf-test") == result::fail);
    CHECK(value("2001:db8::31", "a.spf-test") == result::fail);
    // host.spf-test is 192.0.2.10 and 2001:db8::10: a/24//64 takes their networks.
    CHECK(value("192.0.2.99", "a-cidr.spf-test") == result::pass);
    CHECK(value("192.0.3.10", "a-cidr.spf-test") == result::fail);
    CHECK(value("2001:db8::ffff:1", "a-cidr.spf-test") == result::pass);
    CHECK(value("2001:db8:0:1::10", "a-cidr.spf-test") == result::fail);
}

TEST_CASE("mx matches its exchangers' addresses; a name without MX records has none") {
    CHECK(value("192.0.2.20", "mx.spf-test") == result::pass);
    CHECK(value("192.0.2.10", "mx.spf-test") == result::pass);
    CHECK(value("2001:db8::20", "mx.spf-test") == result::pass);
    CHECK(value("192.0.2.21", "mx.spf-test") == result::fail);
    CHECK(value("192.0.255.1", "mx-cidr.spf-test") == result::pass);
    CHECK(value("2001:db8:ffff::1", "mx-cidr.spf-test") == result::pass);
    CHECK(value("192.1.0.1", "mx-cidr.spf-test") == result::fail);
    // No implicit MX (§5.4): host.spf-test has an A record but no MX.
    CHECK(value("192.0.2.10", "mx-none.spf-test") == result::fail);
    CHECK(value("198.51.100.1", "mx-none.spf-test") == result::pass);
}

TEST_CASE("mx looks up ten exchangers; eleven are a permerror") {
    CHECK(value("192.0.2.60", "mx10.spf-test") == result::pass);
    const spf_result eleven = check("192.0.2.60", "mx11.spf-test");
    CHECK(eleven.value == result::permerror);
    CHECK(eleven.why == "more than 10 MX names at mx11.spf-test");
}

TEST_CASE("ptr matches a reverse name that resolves back to the client, within the domain") {
    CHECK(value("198.18.1.1", "ptr.spf-test") == result::pass);
    CHECK(value("3fff:1::1", "ptr.spf-test") == result::pass);
    CHECK(value("198.18.1.2", "ptr.spf-test") == result::fail);  // liar.spf-test is another address
    CHECK(value("198.18.1.3", "ptr.spf-test") == result::fail);  // no PTR record
    // Without a domain-spec, the names must lie within the domain checked.
    CHECK(value("198.18.1.1", "names.spf-test") == result::pass);
}

TEST_CASE("ptr considers ten of the client's names, and ignores the rest") {
    // 198.18.1.4 has eleven names under names.spf-test., none of which resolves: the TXT record, the
    // PTR records and ten address look-ups are asked, never an eleventh.
    const checked c = check_with_stats("198.18.1.4", "ptr.spf-test");
    CHECK(c.r.value == result::fail);
    CHECK(c.stats.queries == 12);
}

TEST_CASE("exists asks for an A record whatever the client's family") {
    CHECK(value("192.0.2.1", "exists.spf-test") == result::pass);
    CHECK(value("192.0.2.2", "exists.spf-test") == result::fail);
    CHECK(value("2001:db8::99", "exists-any.spf-test") == result::pass);
}

TEST_CASE("Macros expand as §7.4's examples, for IPv4 and IPv6 clients") {
    CHECK(value("192.0.2.3", "macro.spf-test", "strong-bad@macro.spf-test") == result::pass);
    CHECK(value("192.0.2.4", "macro.spf-test", "strong-bad@macro.spf-test") == result::fail);
    CHECK(value("192.0.2.3", "macro.spf-test", "weak-good@macro.spf-test") == result::fail);
    CHECK(value("2001:db8::cb01", "macro6.spf-test") == result::pass);
    CHECK(value("2001:db8::cb02", "macro6.spf-test") == result::fail);
}

TEST_CASE("include follows §5.2's table") {
    // The included record gives pass for .4, fail for .1, softfail for .2, neutral for .3 and .6.
    const spf_result pass = check("192.0.2.4", "include.spf-test");
    CHECK(pass.value == result::pass);
    CHECK(pass.why == "+ip4:192.0.2.4 matched in qualifiers.spf-test");
    CHECK(pass.domain == "include.spf-test");
    for (const char* ip : {"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.6"}) {
        const spf_result no_match = check(ip, "include.spf-test");
        CHECK(no_match.value == result::fail);
        CHECK(no_match.why == "-all matched in include.spf-test");
    }
    const spf_result temp = check("192.0.2.4", "include-temp.spf-test");
    CHECK(temp.value == result::temperror);
    CHECK(temp.why.starts_with("include of refused.spf-test: DNS"));
    const spf_result perm = check("192.0.2.4", "include-perm.spf-test");
    CHECK(perm.value == result::permerror);
    CHECK(perm.why.starts_with("include of syntax.spf-test: bad IPv4 network"));
    const spf_result none = check("192.0.2.4", "include-none.spf-test");
    CHECK(none.value == result::permerror);
    CHECK(none.why == "include of norecord.spf-test: no SPF record at norecord.spf-test");
}

TEST_CASE("redirect applies when nothing matched and there is no all; a target without a record is a permerror") {
    CHECK(value("192.0.2.5", "redirect.spf-test") == result::pass);
    const spf_result redirected = check("198.51.100.7", "redirect.spf-test");
    CHECK(redirected.value == result::fail);
    CHECK(redirected.why == "-all matched in ip.spf-test");
    CHECK(redirected.domain == "redirect.spf-test");
    CHECK(value("192.0.2.5", "redirect-all.spf-test") == result::neutral);  // all wins wherever it stands
    CHECK(value("198.51.100.1", "redirect-matched.spf-test") == result::pass);
    const spf_result none = check("192.0.2.5", "redirect-none.spf-test");
    CHECK(none.value == result::permerror);
    CHECK(none.why == "redirect to nothing.spf-test: no SPF record at nothing.spf-test");
}

TEST_CASE("exp explains a fail when it can, and never changes the result") {
    const spf_result explained = check("192.0.2.9", "exp.spf-test");
    CHECK(explained.value == result::fail);
    CHECK(explained.explanation == "192.0.2.9 may not send for exp.spf-test");
    CHECK(check("192.0.2.1", "exp.spf-test").explanation.empty());  // a pass has none
    for (const char* domain : {"exp-missing.spf-test", "exp-bad.spf-test"}) {
        const spf_result r = check("192.0.2.9", domain);
        CHECK(r.value == result::fail);
        CHECK(r.explanation.empty());
    }
    // An included record's exp= is not the including one's; a redirect's target's is.
    CHECK(check("192.0.2.9", "exp-include.spf-test").explanation.empty());
    CHECK(check("192.0.2.9", "exp-redirect.spf-test").explanation == "192.0.2.9 may not send for exp.spf-test");
}

TEST_CASE("Ten DNS-querying terms are allowed, the eleventh is a permerror; ip4 terms do not count") {
    CHECK(value("192.0.2.50", "limit10.spf-test") == result::pass);
    const spf_result eleven = check("192.0.2.50", "limit11.spf-test");
    CHECK(eleven.value == result::permerror);
    CHECK(eleven.why == "more than 10 DNS lookups");
    CHECK(value("192.0.2.50", "limit10-redirect.spf-test") == result::pass);
    CHECK(value("192.0.2.50", "limit11-redirect.spf-test") == result::permerror);
    CHECK(value("192.0.2.50", "limit-ip.spf-test") == result::pass);
}

TEST_CASE("Two void look-ups are allowed, the third is a permerror") {
    CHECK(value("192.0.2.50", "void2.spf-test") == result::pass);
    const spf_result three = check("192.0.2.50", "void3.spf-test");
    CHECK(three.value == result::permerror);
    CHECK(three.why == "more than 2 void lookups");
}

TEST_CASE("Include and redirect loops end at the lookup limit") {
    const spf_result includes = check("192.0.2.50", "loop-a.spf-test");
    CHECK(includes.value == result::permerror);
    CHECK(includes.why.ends_with("more than 10 DNS lookups"));
    const spf_result redirects = check("192.0.2.50", "loop-r.spf-test");
    CHECK(redirects.value == result::permerror);
    CHECK(redirects.why.ends_with("more than 10 DNS lookups"));
}

TEST_CASE("Record selection: none when there is none, permerror for two, other TXT records ignored") {
    const spf_result two = check("192.0.2.1", "two.spf-test");
    CHECK(two.value == result::permerror);
    CHECK(two.why == "2 SPF records at two.spf-test");
    CHECK(value("192.0.2.1", "mixed.spf-test") == result::pass);
    const spf_result none = check("192.0.2.1", "norecord.spf-test");
    CHECK(none.value == result::none);
    CHECK(none.why == "no SPF record at norecord.spf-test");
    CHECK(value("192.0.2.1", "host.spf-test") == result::none);  // no TXT record at all
    const spf_result missing = check("192.0.2.1", "missing.spf-test");
    CHECK(missing.value == result::none);
    CHECK(missing.why == "no such domain missing.spf-test");
}

TEST_CASE("A syntax error anywhere, non-ASCII included, is a permerror; unknown modifiers are ignored") {
    CHECK(value("192.0.2.1", "syntax.spf-test") == result::permerror);
    const spf_result utf8 = check("192.0.2.1", "nonascii.spf-test");
    CHECK(utf8.value == result::permerror);
    CHECK(utf8.why == "non-ASCII octet in the record at nonascii.spf-test");
    CHECK(value("192.0.2.1", "unknown-modifier.spf-test") == result::pass);
}

TEST_CASE("A domain that is not a fully qualified name is none, with no look-up (§4.3)") {
    for (const char* domain : {"localhost", "[192.0.2.1]", "a..spf-test", "spf-test.123", ""}) {
        const checked c = check_with_stats("192.0.2.1", domain, "bob@example.org");
        CHECK(c.r.value == result::none);
        CHECK(c.stats.queries == 0);
    }
    CHECK(value("192.0.2.200", "ip.spf-test.") == result::pass);
}

TEST_CASE("evaluate_sender checks the MAIL FROM domain, postmaster@HELO for the null sender") {
    const spf_result from = sender_check("192.0.2.200", "alice@ip.spf-test", "mail.example.org");
    CHECK(from.value == result::pass);
    CHECK(from.domain == "ip.spf-test");
    const spf_result null_sender = sender_check("192.0.2.77", "", "helo.spf-test");
    CHECK(null_sender.value == result::pass);
    CHECK(null_sender.domain == "helo.spf-test");
    CHECK(sender_check("192.0.2.78", "", "helo.spf-test").value == result::fail);
    // A sender without a local part is postmaster (§4.3): local.spf-test lets only postmaster in.
    CHECK(sender_check("192.0.2.1", "local.spf-test", "helo.example").value == result::pass);
    CHECK(sender_check("192.0.2.1", "@local.spf-test", "helo.example").value == result::pass);
    CHECK(sender_check("192.0.2.1", "postmaster@local.spf-test", "helo.example").value == result::pass);
    CHECK(sender_check("192.0.2.1", "bob@local.spf-test", "helo.example").value == result::fail);
    CHECK(sender_check("192.0.2.1", "", "[192.0.2.1]").value == result::none);
}

TEST_CASE("A server that never answers is a temperror within the budget, with its reason") {
    asio::io_context ioc;
    grey_test::silent_server silent(ioc);
    resolver_settings s;
    s.servers = {silent.where()};
    s.query_timeout = 60s;
    resolver r(ioc.get_executor(), s);
    std::optional<spf_result> out;
    const auto started = std::chrono::steady_clock::now();
    asio::co_spawn(ioc, spf::check_host(r, asio::ip::make_address("192.0.2.1"), "ip.spf-test", "a@ip.spf-test", "h.example",
                                        budget::after(200ms)),
                   [&](std::exception_ptr e, spf_result v) {
                       if (e) std::rethrow_exception(e);
                       out = std::move(v);
                       silent.socket.close();
                   });
    ioc.run();
    REQUIRE(out);
    CHECK(out->value == result::temperror);
    CHECK(out->why == "DNS timeout for TXT ip.spf-test");
    CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("Result names are RFC 7208's") {
    CHECK(spf::to_string(result::none) == "none");
    CHECK(spf::to_string(result::neutral) == "neutral");
    CHECK(spf::to_string(result::pass) == "pass");
    CHECK(spf::to_string(result::fail) == "fail");
    CHECK(spf::to_string(result::softfail) == "softfail");
    CHECK(spf::to_string(result::temperror) == "temperror");
    CHECK(spf::to_string(result::permerror) == "permerror");
}
