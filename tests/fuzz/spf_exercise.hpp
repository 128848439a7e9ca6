// exercise_spf(input): the fuzz checks of dns/spf_record.hpp and dns/spf_macro.hpp, for a
// libFuzzer entry to call. The input is read as an SPF record (as it is, and behind "v=spf1 "
// so that the fuzzer reaches the terms), and as a macro-string expanded with values of which
// the local part is the input too. Any broken invariant aborts:
// - parsing and expanding are deterministic: the same input gives the same answer twice;
// - a record that parses holds only visible ASCII and spaces, has prefix lengths within their
//   family's, networks of the mechanism's family, and domain-specs that are valid and expand;
// - an expansion is bounded: at most three octets (URL escaping) per octet of the longest
//   value for each macro, plus the literal text; an expanded domain is at most 253 octets.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>

#include <grey/dns/spf_macro.hpp>
#include <grey/dns/spf_record.hpp>

namespace grey_fuzz_spf {

inline void require(bool ok) {
    if (!ok) std::abort();
}

inline void check_record(std::string_view text) {
    using namespace grey::dns::spf;
    const parsed_record p = parse_record(text);
    const parsed_record again = parse_record(text);
    require(bool(p) == bool(again) && p.error == again.error);
    if (!p) {
        require(!p.error.empty() && p.error.size() < 200);
        return;
    }
    require(is_spf_record(text));
    for (const char c : text) require(c >= 0x20 && c < 0x7F);
    require(again.value->mechanisms.size() == p.value->mechanisms.size());
    std::string why;
    for (const mechanism& m : p.value->mechanisms) {
        require(!m.text.empty() && m.cidr4 <= 32 && m.cidr6 <= 128);
        if (m.kind == mechanism_kind::ip4) require(m.network.is_v4());
        if (m.kind == mechanism_kind::ip6) require(m.network.is_v6());
        if (!m.domain_spec.empty()) {
            require(valid_domain_spec(m.domain_spec, why));
            require(expand(m.domain_spec, macro_values{}, macro_context::domain).has_value());
        }
        if (m.kind == mechanism_kind::include || m.kind == mechanism_kind::exists) require(!m.domain_spec.empty());
    }
    if (p.value->redirect) require(valid_domain_spec(*p.value->redirect, why));
    if (p.value->explanation) require(valid_domain_spec(*p.value->explanation, why));
}

inline void check_expansion(std::string_view s, const grey::dns::spf::macro_values& v, grey::dns::spf::macro_context ctx) {
    using namespace grey::dns::spf;
    const auto out = expand(s, v, ctx);
    const auto again = expand(s, v, ctx);
    require(out.has_value() == again.has_value());
    std::string why;
    if (ctx == macro_context::domain && valid_domain_spec(s, why)) require(out.has_value());
    if (!out) return;
    require(*out == *again);
    // The longest value a letter stands for: the sender's parts, the HELO name, an IPv6
    // address as 63 octets of nibbles, a timestamp.
    const std::size_t longest = std::max({v.sender.size(), v.local_part.size(), v.sender_domain.size(), v.domain.size(),
                                          v.helo.size(), v.receiver.size(), std::size_t(63), std::size_t(20)});
    const std::size_t macros = static_cast<std::size_t>(std::count(s.begin(), s.end(), '%'));
    require(out->size() <= s.size() + 2 * macros + macros * 3 * longest);
    if (ctx == macro_context::domain) {
        const auto name = expand_domain(s, v);
        require(name && name->size() <= max_domain_length);
    }
}

inline void exercise_spf(std::string_view input) {
    using namespace grey::dns::spf;
    check_record(input);
    check_record("v=spf1 " + std::string(input));

    // The input as the local part too: transformers split whatever it holds.
    macro_values v;
    v.local_part = input.substr(0, 300);
    const std::string sender = std::string(v.local_part) + "@example.com";
    v.sender = sender;
    v.sender_domain = "example.com";
    v.domain = "mail.example.com";
    v.helo = "mx.example.org";
    v.ip = asio::ip::make_address_v6("2001:db8::cb01");
    v.now = 1700000000;
    check_expansion(input, v, macro_context::domain);
    check_expansion(input, v, macro_context::explanation);
    v.ip = asio::ip::make_address_v4("192.0.2.3");
    check_expansion(input, v, macro_context::domain);
}

} // namespace grey_fuzz_spf

using grey_fuzz_spf::exercise_spf;
