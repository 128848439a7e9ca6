// exercise_reputation(input): the fuzz checks of the sans-I/O reputation evidence, for a
// libFuzzer entry to call. The input is read as a postscreen_dnsbl_sites entry
// (dns/dnsbl_site.hpp) and as a host name judged generic or not (dns/generic_name.hpp), against
// addresses taken from its first octets. Any broken invariant aborts:
// - an entry that parses has a valid lowercase domain within its limit, a weight within its
//   bounds, and reads the same with its domain in upper case; the names it looks clients up
//   as end in its domain;
// - a name's verdict has a reason of the logged shape, and case and a final dot change nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>

#include <grey/dns/dnsbl_site.hpp>
#include <grey/dns/generic_name.hpp>

namespace grey_fuzz_reputation {

inline void require(bool ok) {
    if (!ok) std::abort();
}

inline std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    return out;
}

inline void exercise_site(std::string_view input, const asio::ip::address& v4, const asio::ip::address& v6) {
    using namespace grey::dns;
    const auto site = parse_dnsbl_site(input);
    if (!site) {
        require(site.error() == grey::errc::syntax_error);
        return;
    }
    require(!site->domain.empty() && site->domain.size() <= max_dnsbl_domain);
    for (char c : site->domain) require(!(c >= 'A' && c <= 'Z') && c != ' ');
    require(site->weight >= -max_dnsbl_weight && site->weight <= max_dnsbl_weight);
    const auto again = parse_dnsbl_site(upper(input));
    require(again && again->domain == site->domain && again->weight == site->weight &&
            again->filter.has_value() == site->filter.has_value());
    for (const auto& a : {v4, v6}) {
        const std::string name = dnsbl_query_name(a, site->domain);
        require(name.size() > site->domain.size() && name.size() <= 253);
        require(name.compare(name.size() - site->domain.size(), site->domain.size(), site->domain) == 0);
    }
    (void)site->matches(v4.to_v4());
}

inline void exercise_generic(std::string_view input, const asio::ip::address& a) {
    using namespace grey::dns;
    std::string_view domain;  // the last two labels, as a stand-in for a registered domain
    if (const auto last = input.rfind('.'); last != std::string_view::npos && last > 0) {
        const auto second = input.rfind('.', last - 1);
        domain = second == std::string_view::npos ? input : input.substr(second + 1);
    }
    const auto verdict = check_generic_name(input, a, domain);
    require(verdict.generic == !verdict.why.empty());
    require(verdict.reason() == (verdict.generic ? "generic=yes:" + verdict.why : std::string("generic=no")));
    const auto shouted = check_generic_name(upper(input), a, upper(domain));
    require(shouted.generic == verdict.generic && shouted.why == verdict.why);
    if (input.empty() || input.back() != '.') {
        const auto dotted = check_generic_name(std::string(input) + ".", a, domain);
        require(dotted.generic == verdict.generic);
    }
}

inline void exercise_reputation(std::string_view input) {
    if (input.size() > 512) return;  // names and entries are short; longer only slows the fuzzer
    std::array<unsigned char, 16> b{};
    for (std::size_t i = 0; i < b.size() && i < input.size(); ++i) b[i] = static_cast<unsigned char>(input[i]);
    const asio::ip::address v4 = asio::ip::address_v4({b[0], b[1], b[2], b[3]});
    const asio::ip::address v6 = asio::ip::address_v6(b);
    exercise_site(input, v4, v6);
    exercise_generic(input, v4);
    exercise_generic(input, v6);
}

} // namespace grey_fuzz_reputation

using grey_fuzz_reputation::exercise_reputation;
