// Judging first (greylist/assessment.hpp): tiers, scores and identities from evidence, with no DNS.
#include <grey/greylist/assessment.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace grey;
using greylist::assess;
using greylist::client_evidence;
using greylist::sender_evidence;
using greylist::tier;

namespace {

dns::fcrdns_result confirmed(std::string name) {
    dns::fcrdns_result r;
    r.status = dns::fcrdns_status::ok;
    r.name = std::move(name);
    return r;
}

dns::fcrdns_result no_name() {
    dns::fcrdns_result r;
    r.status = dns::fcrdns_status::fail;
    r.why = "no-ptr";
    return r;
}

dns::fcrdns_result timed_out() {
    dns::fcrdns_result r;
    r.status = dns::fcrdns_status::unknown;
    r.why = "ptr:timeout";
    return r;
}

client_evidence mail_server(std::string name = "mail.example.net", std::string domain = "example.net") {
    client_evidence c;
    c.fcrdns = confirmed(std::move(name));
    c.generic = dns::generic_name_result{false, {}};
    c.name_domain = std::move(domain);
    c.helo = dns::helo_result{dns::helo_status::ok, {}};
    return c;
}

sender_evidence spf(dns::spf::result r, std::string domain = "example.com") {
    sender_evidence s;
    s.spf.value = r;
    s.spf.domain = domain;
    s.spf_domain = std::move(domain);
    return s;
}

dns::dnsbl_score listed(int weight, std::string domain = "bl.example") {
    dns::dnsbl_score s;
    s.total = weight;
    s.allowlisted = weight < 0;
    s.hits.push_back({std::move(domain), asio::ip::make_address_v4("127.0.0.2"), weight});
    return s;
}

} // namespace

TEST_CASE("A mail server with a confirmed name is greylisted as usual, under its name's domain") {
    const auto a = assess(mail_server(), nullptr, {});
    CHECK(a.tier == tier::normal);
    CHECK(a.score == 0);
    CHECK(a.identity == "rdns:example.net");
    CHECK(a.complete);
    CHECK(a.describe() == "tier=normal score=0 fcrdns=ok:mail.example.net");
}

TEST_CASE("SPF pass gives the identity of the authorising domain, above the name's, and trusts a mail server") {
    const sender_evidence s = spf(dns::spf::result::pass, "example.com");
    auto a = assess(mail_server(), &s, {});
    CHECK(a.identity == "spf:example.com");
    CHECK(a.tier == tier::trusted);  // a confirmed name and SPF pass: its first message does not wait
    CHECK(a.describe() == "tier=trusted score=-1 fcrdns=ok:mail.example.net spf=pass:example.com");

    greylist::tier_settings t;
    t.weights.spf_pass = 0;  // a site that greylists mail servers too
    a = assess(mail_server(), &s, t);
    CHECK(a.tier == tier::normal);
    CHECK(a.identity == "spf:example.com");

    client_evidence nameless;  // SPF pass without a confirmed name is no mail server's
    nameless.fcrdns = dns::fcrdns_result{dns::fcrdns_status::fail, {}, {}, "no-ptr"};
    a = assess(nameless, &s, {});
    CHECK(a.score == 0);
    CHECK(a.tier == tier::normal);
}

TEST_CASE("No confirmed name, or a pool name, makes a client suspicious and gives it no identity") {
    client_evidence none;
    none.fcrdns = no_name();
    auto a = assess(none, nullptr, {});
    CHECK(a.tier == tier::suspicious);
    CHECK(a.score == 1);
    CHECK(a.identity.empty());

    client_evidence pool = mail_server("c-198-51-100-7.hsd1.ca.isp.example", "isp.example");
    pool.generic = dns::generic_name_result{true, "address"};
    a = assess(pool, nullptr, {});
    CHECK(a.tier == tier::suspicious);
    CHECK(a.identity.empty());  // a pool's domain says nothing of who sends
    CHECK(a.describe().find("generic=yes:address") != std::string::npos);
}

TEST_CASE("SPF fail and softfail weigh; the score decides the tier") {
    sender_evidence s = spf(dns::spf::result::softfail);
    auto a = assess(mail_server(), &s, {});
    CHECK(a.score == 1);
    CHECK(a.tier == tier::suspicious);
    CHECK(a.identity == "rdns:example.net");

    s = spf(dns::spf::result::fail);
    a = assess(mail_server(), &s, {});
    CHECK(a.score == 2);
    CHECK(a.tier == tier::suspicious);

    greylist::tier_settings t;
    t.suspicious_threshold = 3;
    CHECK(assess(mail_server(), &s, t).tier == tier::normal);
}

TEST_CASE("An allowlist trusts; a blocklist over the refuse threshold refuses, only when one is set") {
    client_evidence c = mail_server();
    c.lists = listed(-5, "list.dnswl.example");
    auto a = assess(c, nullptr, {});
    CHECK(a.tier == tier::trusted);
    CHECK(a.describe().find("dnswl=list.dnswl.example:127.0.0.2") != std::string::npos);

    c.lists = listed(3, "zen.example");
    CHECK(assess(c, nullptr, {}).tier == tier::suspicious);
    greylist::tier_settings t;
    t.refuse_threshold = 3;
    CHECK(assess(c, nullptr, t).tier == tier::refused);

    // Only the lists refuse: Grey's own signs, however many, make a client wait longer.
    client_evidence sloppy;
    sloppy.fcrdns = dns::fcrdns_result{dns::fcrdns_status::fail, {}, {}, "no-ptr"};
    sloppy.helo = dns::helo_result{dns::helo_status::fail, "nxdomain"};
    sloppy.lists = dns::dnsbl_score{};
    const sender_evidence failed = spf(dns::spf::result::fail);
    const greylist::assessment s = assess(sloppy, &failed, t);
    CHECK(s.score == 4);
    CHECK(s.tier == tier::suspicious);
}

TEST_CASE("A look-up that failed is no evidence: it never trusts, and the decision stays a greylisting") {
    client_evidence c;
    c.fcrdns = timed_out();
    greylist::tier_settings t;
    t.allow_threshold = 0;  // a site that trusts a clean score
    auto a = assess(c, nullptr, t);
    CHECK_FALSE(a.complete);
    CHECK(a.tier == tier::normal);
    CHECK(a.describe() == "tier=normal score=0 fcrdns=unknown:ptr:timeout dns=incomplete");

    // The same clean score, all answered, is trusted at that threshold.
    CHECK(assess(mail_server(), nullptr, t).tier == tier::trusted);

    const sender_evidence s = spf(dns::spf::result::temperror);
    a = assess(mail_server(), &s, t);
    CHECK(a.tier == tier::normal);
    CHECK_FALSE(a.complete);

    // Grey's own signs weigh only on a complete picture: no PTR, with SPF unanswered, is plain
    // greylisting; answered as none, it is suspicious.
    client_evidence no_name;
    no_name.fcrdns = dns::fcrdns_result{dns::fcrdns_status::fail, {}, {}, "no-ptr"};
    a = assess(no_name, &s, {});
    CHECK(a.score == 1);
    CHECK(a.tier == tier::normal);
    const sender_evidence none = spf(dns::spf::result::none);
    CHECK(assess(no_name, &none, {}).tier == tier::suspicious);

    // What a DNS list answered still counts.
    no_name.lists = dns::dnsbl_score{3, false, {{"bl.example", asio::ip::make_address_v4("127.0.0.2"), 3}}, {}};
    greylist::tier_settings refusing;
    refusing.refuse_threshold = 3;
    CHECK(assess(no_name, &s, refusing).tier == tier::refused);
}

TEST_CASE("A HELO name that does not exist weighs; one that resolves elsewhere does not") {
    client_evidence c = mail_server();
    c.helo = dns::helo_result{dns::helo_status::fail, "nxdomain"};
    auto a = assess(c, nullptr, {});
    CHECK(a.score == 1);
    CHECK(a.describe().find("helo=fail:nxdomain") != std::string::npos);
    c.helo = dns::helo_result{dns::helo_status::mismatch, {}};
    CHECK(assess(c, nullptr, {}).score == 0);
}
