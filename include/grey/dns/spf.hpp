// grey/dns/spf.hpp — Grey's own SPF evaluator (RFC 7208): check_host() over the asynchronous
// resolver, and evaluate_sender() for the MAIL FROM identity as an SMTP server sees it (§2.4).
// Records are read by spf_record.hpp, macros expanded by spf_macro.hpp; this file does the
// look-ups and applies §4-§6's rules. Every limit is RFC 7208's (§4.6.4): ten terms that ask
// the DNS, two void look-ups, ten mail exchangers per "mx", ten names per "ptr". They also end
// include and redirect loops, whose recursion is therefore at most eleven deep. Every look-up
// spends the decision's budget; a DNS failure is a temperror with its reason, never a throw.
// Link grey::dns (libunbound) to use it.
//
// Why it is longer than a header should be: each mechanism's look-ups and the limits they
// share are one evaluation's state (check_state), which the terms update in turn; split over
// files, the count of look-ups that ends a loop would have no single owner.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/asio.hpp"
#include "answer.hpp"
#include "budget.hpp"
#include "resolver.hpp"
#include "spf_macro.hpp"
#include "spf_record.hpp"
#include "spf_result.hpp"

namespace grey::dns::spf {
/// @addtogroup group_dns
/// @{

/// DNS-querying terms a check may evaluate (§4.6.4).
inline constexpr int max_dns_terms = 10;
/// Look-ups of those terms that may find nothing (NXDOMAIN or no records) (§4.6.4).
inline constexpr int max_void_lookups = 2;
/// Mail exchangers an "mx" may name (§4.6.4).
inline constexpr std::size_t max_mx_names = 10;
/// Names of a "ptr" look-up considered; the rest are ignored (§4.6.4).
inline constexpr std::size_t max_ptr_names = 10;
/// The longest explanation kept: it ends up in a reply or a log line.
inline constexpr std::size_t max_explanation = 512;

namespace detail {

// What one record's evaluation concludes, and which exp= explains a fail.
struct verdict {
    result value = result::none;
    std::string why;
    std::string exp_spec;    // the exp= of the record that failed, unexpanded
    std::string exp_domain;  // that record's domain, %{d} in its expansion
};

// The state of one check_host() call: its inputs and the counts its limits apply to.
struct check_state {
    resolver& dns;
    budget b;
    asio::ip::address ip;  // an IPv4-mapped address as the IPv4 address it is
    std::string sender, local_part, sender_domain, helo;
    int dns_terms = 0;
    int voids = 0;

    macro_values values(std::string_view domain) const {
        macro_values v;
        v.sender = sender;
        v.local_part = local_part;
        v.sender_domain = sender_domain;
        v.domain = domain;
        v.ip = ip;
        v.helo = helo;
        v.now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        return v;
    }
};

inline asio::ip::address unmapped(const asio::ip::address& ip) {
    if (ip.is_v6() && ip.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, ip.to_v6());
    return ip;
}

// §4.3: a fully qualified domain, so several labels and a top-level label that is not a number
// (which also turns away a domain literal such as "[192.0.2.1]").
inline bool checkable_domain(std::string_view d) {
    if (!valid_domain_name(d, true)) return false;
    if (d.back() == '.') d.remove_suffix(1);
    return is_toplabel(d.substr(d.rfind('.') + 1));
}

inline bool same_name(std::string_view a, std::string_view b) {
    if (!a.empty() && a.back() == '.') a.remove_suffix(1);
    if (!b.empty() && b.back() == '.') b.remove_suffix(1);
    return iequals(a, b);
}

// Whether `name` is `domain` or a name under it (§5.5).
inline bool within(std::string_view name, std::string_view domain) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    if (domain.empty()) return false;  // a target that expanded to nothing holds no name
    if (same_name(name, domain)) return true;
    return name.size() > domain.size() && name[name.size() - domain.size() - 1] == '.' &&
           iequals(name.substr(name.size() - domain.size()), domain);
}

// Whether `ip` lies in `network`/`length`; addresses of the other family never do.
inline bool in_network(const asio::ip::address& ip, const asio::ip::address& network, unsigned length) {
    if (ip.is_v4() != network.is_v4()) return false;
    const auto bytes = [](const asio::ip::address& a) {
        std::vector<unsigned char> b;
        if (a.is_v4()) {
            const auto v4 = a.to_v4().to_bytes();
            b.assign(v4.begin(), v4.end());
        } else {
            const auto v6 = a.to_v6().to_bytes();
            b.assign(v6.begin(), v6.end());
        }
        return b;
    };
    const auto x = bytes(ip), y = bytes(network);
    for (std::size_t i = 0; i < x.size() && length > 0; ++i) {
        const unsigned bits = length >= 8 ? 8 : length;
        const auto mask = static_cast<unsigned char>(0xFF00u >> bits);
        if ((x[i] & mask) != (y[i] & mask)) return false;
        length -= bits;
    }
    return true;
}

template <class T>
std::string dns_error(std::string_view type, std::string_view name, const lookup<T>& l) {
    std::string_view what = "DNS failure";
    if (l.status == outcome::malformed) what = "malformed DNS answer";
    else if (l.why == failure::timeout) what = "DNS timeout";
    else if (l.why == failure::server) what = "DNS server failure";
    else if (l.why == failure::aborted) what = "DNS resolver stopped";
    return std::string(what) + " for " + std::string(type) + " " + std::string(name);
}

template <class T>
bool failed(const lookup<T>& l) {
    return l.status == outcome::temporary_failure || l.status == outcome::malformed;
}

// What one term came to: no match, a match, or an end of the whole check (an error).
struct term_outcome {
    enum { no_match, match, stop } kind = no_match;
    verdict end;      // when stop
    std::string why;  // when match, if the term has a better reason than "matched"
};

inline term_outcome stop(result r, std::string why) {
    term_outcome t;
    t.kind = term_outcome::stop;
    t.end.value = r;
    t.end.why = std::move(why);
    return t;
}

// §4.6.4: NXDOMAIN or an empty answer for a term's look-up; the third ends the check.
inline std::optional<term_outcome> count_void(check_state& s) {
    if (++s.voids > max_void_lookups) return stop(result::permerror, "more than 2 void lookups");
    return std::nullopt;
}

inline asio::awaitable<lookup<asio::ip::address>> addresses_of(check_state& s, std::string_view name) {
    if (s.ip.is_v4()) co_return co_await s.dns.lookup_a(name, s.b);
    co_return co_await s.dns.lookup_aaaa(name, s.b);
}

inline asio::awaitable<verdict> evaluate(check_state& s, std::string domain, bool explains);

// The target name of a/mx/ptr/include/exists: the domain-spec expanded, or the current domain.
inline std::string target_of(const check_state& s, const mechanism& m, std::string_view domain) {
    if (m.domain_spec.empty()) return std::string(domain);
    return expand_domain(m.domain_spec, s.values(domain)).value_or(std::string());
}

// §5.2: what the included record's result means to the including one.
inline asio::awaitable<term_outcome> include(check_state& s, const std::string& target) {
    const verdict inner = co_await evaluate(s, target, false);
    term_outcome t;
    switch (inner.value) {
    case result::pass:
        t.kind = term_outcome::match;
        t.why = inner.why;
        break;
    case result::fail:
    case result::softfail:
    case result::neutral:
        break;
    case result::temperror:
    case result::permerror:
    case result::none:
        // A loop of includes would repeat "include of" ten times: the innermost one says it.
        t = stop(inner.value == result::temperror ? result::temperror : result::permerror,
                 inner.why.starts_with("include of ") ? inner.why : "include of " + target + ": " + inner.why);
        break;
    }
    co_return t;
}

// §5.3 and §5.4: whether an address of `name` is the client's, within the prefix.
inline asio::awaitable<term_outcome> address_match(check_state& s, const mechanism& m, const std::string& name, bool counts_void) {
    term_outcome t;
    if (!valid_domain_name(name)) {
        // No name to ask: it answers nothing, as NXDOMAIN would.
        if (counts_void)
            if (auto v = count_void(s)) t = std::move(*v);
        co_return t;
    }
    const auto found = co_await addresses_of(s, name);
    if (failed(found)) co_return stop(result::temperror, dns_error(s.ip.is_v4() ? "A" : "AAAA", name, found));
    if (!found.found()) {
        if (counts_void)
            if (auto v = count_void(s)) t = std::move(*v);
        co_return t;
    }
    const unsigned length = s.ip.is_v4() ? m.cidr4 : m.cidr6;
    for (const auto& a : found.values)
        if (in_network(s.ip, a, length)) t.kind = term_outcome::match;
    co_return t;
}

inline asio::awaitable<term_outcome> mx_match(check_state& s, const mechanism& m, const std::string& name) {
    term_outcome t;
    if (!valid_domain_name(name)) {
        if (auto v = count_void(s)) t = std::move(*v);
        co_return t;
    }
    const auto exchangers = co_await s.dns.lookup_mx(name, s.b);
    if (failed(exchangers)) co_return stop(result::temperror, dns_error("MX", name, exchangers));
    // No implicit MX (§5.4): a name without MX records has no exchanger to match.
    if (!exchangers.found()) {
        if (auto v = count_void(s)) t = std::move(*v);
        co_return t;
    }
    if (exchangers.values.size() > max_mx_names) co_return stop(result::permerror, "more than 10 MX names at " + name);
    for (const mx& x : exchangers.values) {
        if (x.exchange.empty()) continue;  // RFC 7505's null MX: no host
        const term_outcome one = co_await address_match(s, m, x.exchange, false);
        if (one.kind != term_outcome::no_match) co_return one;
    }
    co_return t;
}

// §5.5: the client's names that resolve back to it, and lie within `target`.
inline asio::awaitable<term_outcome> ptr_match(check_state& s, const std::string& target) {
    term_outcome t;
    const auto names = co_await s.dns.lookup_ptr(s.ip, s.b);
    if (failed(names)) co_return t;  // a failed PTR look-up is no match, not an error (§5.5)
    if (!names.found()) {
        if (auto v = count_void(s)) t = std::move(*v);
        co_return t;
    }
    const std::size_t n = std::min(names.values.size(), max_ptr_names);
    for (std::size_t i = 0; i < n; ++i) {
        const std::string& name = names.values[i];
        // Only a name within the target can match, so only such names cost a look-up.
        if (!within(name, target) || !valid_domain_name(name)) continue;
        const auto back = co_await addresses_of(s, name);
        if (!back.found()) continue;  // an error skips the name (§5.5)
        for (const auto& a : back.values)
            if (a == s.ip) t.kind = term_outcome::match;
        if (t.kind == term_outcome::match) co_return t;
    }
    co_return t;
}

inline asio::awaitable<term_outcome> exists_match(check_state& s, const std::string& name) {
    term_outcome t;
    if (!valid_domain_name(name)) {
        if (auto v = count_void(s)) t = std::move(*v);
        co_return t;
    }
    // An A look-up whatever the client's family (§5.7).
    const auto found = co_await s.dns.lookup_a(name, s.b);
    if (failed(found)) co_return stop(result::temperror, dns_error("A", name, found));
    if (found.found()) t.kind = term_outcome::match;
    else if (auto v = count_void(s)) t = std::move(*v);
    co_return t;
}

inline asio::awaitable<term_outcome> evaluate_term(check_state& s, const mechanism& m, const std::string& domain) {
    switch (m.kind) {
    case mechanism_kind::all: {
        term_outcome t;
        t.kind = term_outcome::match;
        co_return t;
    }
    case mechanism_kind::ip4:
    case mechanism_kind::ip6: {
        term_outcome t;
        if (in_network(s.ip, m.network, m.kind == mechanism_kind::ip4 ? m.cidr4 : m.cidr6)) t.kind = term_outcome::match;
        co_return t;
    }
    case mechanism_kind::include: co_return co_await include(s, target_of(s, m, domain));
    case mechanism_kind::a: co_return co_await address_match(s, m, target_of(s, m, domain), true);
    case mechanism_kind::mx: co_return co_await mx_match(s, m, target_of(s, m, domain));
    case mechanism_kind::ptr: co_return co_await ptr_match(s, target_of(s, m, domain));
    case mechanism_kind::exists: co_return co_await exists_match(s, target_of(s, m, domain));
    }
    co_return term_outcome{};
}

inline result result_of(qualifier q) {
    switch (q) {
    case qualifier::pass: return result::pass;
    case qualifier::fail: return result::fail;
    case qualifier::softfail: return result::softfail;
    case qualifier::neutral: return result::neutral;
    }
    return result::neutral;
}

inline verdict conclude(result r, std::string why) {
    verdict v;
    v.value = r;
    v.why = std::move(why);
    return v;
}

// check_host() for `domain` (§4): its record selected (§4.5), its terms in order, then
// redirect= (§6.1) or the default, neutral (§4.7). `explains`: whether this record's exp=
// may explain a fail, true but for an include's (§6.2).
inline asio::awaitable<verdict> evaluate(check_state& s, std::string domain, bool explains) {
    if (!checkable_domain(domain)) co_return conclude(result::none, "invalid domain \"" + domain.substr(0, 64) + "\"");
    if (domain.back() == '.') domain.pop_back();
    const auto txt = co_await s.dns.lookup_txt(domain, s.b);
    if (failed(txt)) co_return conclude(result::temperror, dns_error("TXT", domain, txt));
    if (txt.status == outcome::nxdomain) co_return conclude(result::none, "no such domain " + domain);
    std::vector<const std::string*> records;
    for (const std::string& t : txt.values)
        if (is_spf_record(t)) records.push_back(&t);
    if (records.empty()) co_return conclude(result::none, "no SPF record at " + domain);
    if (records.size() > 1)
        co_return conclude(result::permerror, std::to_string(records.size()) + " SPF records at " + domain);
    const parsed_record parsed = parse_record(*records.front());
    if (!parsed) co_return conclude(result::permerror, parsed.error + " at " + domain);
    const record& r = *parsed.value;

    for (const mechanism& m : r.mechanisms) {
        if (m.queries_dns() && ++s.dns_terms > max_dns_terms) co_return conclude(result::permerror, "more than 10 DNS lookups");
        const term_outcome t = co_await evaluate_term(s, m, domain);
        if (t.kind == term_outcome::stop) co_return t.end;
        if (t.kind == term_outcome::no_match) continue;
        verdict v = conclude(result_of(m.q), t.why.empty() ? m.text + " matched in " + domain : t.why);
        if (v.value == result::fail && explains && r.explanation) {
            v.exp_spec = *r.explanation;
            v.exp_domain = domain;
        }
        co_return v;
    }
    if (r.redirect && !r.has_all()) {
        if (++s.dns_terms > max_dns_terms) co_return conclude(result::permerror, "more than 10 DNS lookups");
        const std::string target = expand_domain(*r.redirect, s.values(domain)).value_or(std::string());
        verdict v = co_await evaluate(s, target, explains);
        if (v.value == result::none) co_return conclude(result::permerror, "redirect to " + target + ": " + v.why);
        co_return v;
    }
    co_return conclude(result::neutral, "no mechanism matched in " + domain);
}

// §6.2: the text that explains a fail, or "" whenever anything about it goes wrong.
inline asio::awaitable<std::string> explain(check_state& s, const std::string& spec, const std::string& domain) {
    const std::string target = expand_domain(spec, s.values(domain)).value_or(std::string());
    if (!valid_domain_name(target)) co_return std::string();
    const auto txt = co_await s.dns.lookup_txt(target, s.b);
    if (!txt.found() || txt.values.size() != 1) co_return std::string();
    std::string text = expand(txt.values.front(), s.values(domain), macro_context::explanation).value_or(std::string());
    if (text.size() > max_explanation) text.resize(max_explanation);
    co_return text;
}

// check_host() with every argument its own: the coroutine may start after its caller's
// strings are gone.
inline asio::awaitable<spf_result> run_check(resolver& dns, asio::ip::address ip, std::string domain, std::string sender,
                                             std::string helo, budget b) {
    check_state s{dns, b, unmapped(ip), sender, {}, {}, std::move(helo)};
    const std::size_t at = sender.rfind('@');
    s.local_part = at == std::string::npos || at == 0 ? "postmaster" : sender.substr(0, at);
    s.sender_domain = at == std::string::npos ? sender : sender.substr(at + 1);
    spf_result out;
    out.domain = domain;
    if (!out.domain.empty() && out.domain.back() == '.') out.domain.pop_back();
    verdict v;
    try {
        v = co_await evaluate(s, std::move(domain), true);
        if (v.value == result::fail && !v.exp_spec.empty()) out.explanation = co_await explain(s, v.exp_spec, v.exp_domain);
    } catch (const std::exception& e) {
        v = conclude(result::temperror, std::string("SPF check failed: ") + e.what());
    }
    out.value = v.value;
    out.why = std::move(v.why);
    co_return out;
}

} // namespace detail

/// RFC 7208's check_host(): whether `ip` may send mail for `domain`, `sender` being the
/// identity checked ("local@domain"; a missing local part reads as "postmaster") and `helo`
/// the client's HELO name. An IPv4-mapped IPv6 address is checked as the IPv4 address it is.
/// Every look-up spends `b`; nothing throws: failures are results. The arguments are copied,
/// so the coroutine may be started later.
inline asio::awaitable<spf_result> check_host(resolver& dns, const asio::ip::address& ip, std::string_view domain,
                                             std::string_view sender, std::string_view helo, budget b = {}) {
    return detail::run_check(dns, ip, std::string(domain), std::string(sender), std::string(helo), b);
}

/// The SPF check of an SMTP transaction's MAIL FROM identity (§2.4): `mail_from` the
/// reverse-path's mailbox without angle brackets, "" for the null sender, which is then
/// checked as "postmaster@" the HELO name; a sender without a local part as "postmaster".
/// The arguments are copied, as check_host()'s are.
inline asio::awaitable<spf_result> evaluate_sender(resolver& dns, const asio::ip::address& ip, std::string_view mail_from,
                                                  std::string_view helo, budget b = {}) {
    std::string sender;
    const std::size_t at = mail_from.rfind('@');
    if (mail_from.empty()) sender = "postmaster@" + std::string(helo);
    else if (at == std::string_view::npos) sender = "postmaster@" + std::string(mail_from);
    else if (at == 0) sender = "postmaster" + std::string(mail_from);
    else sender = std::string(mail_from);
    std::string domain = sender.substr(sender.rfind('@') + 1);
    return detail::run_check(dns, ip, std::move(domain), std::move(sender), std::string(helo), b);
}

/// @}
} // namespace grey::dns::spf
