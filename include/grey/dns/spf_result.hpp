// grey/dns/spf_result.hpp — what an SPF check concludes (RFC 7208 §2.6), with the reason a log
// line gives and the domain it speaks for. No I/O.
#pragma once

#include <string>
#include <string_view>

namespace grey::dns {
/// @addtogroup group_dns
/// @{

namespace spf {
/// The results of check_host() (§2.6), named as RFC 7208 and Received-SPF name them.
enum class result {
    none,       ///< no SPF record, or no valid domain to look one up for
    neutral,    ///< the domain asserts nothing about the address
    pass,       ///< the address is authorised
    fail,       ///< the address is not authorised
    softfail,   ///< probably not authorised
    temperror,  ///< a DNS failure for now: evidence "unknown"
    permerror,  ///< the domain's records cannot be interpreted
};

/// The result's name in RFC 7208's spelling: "pass", "softfail", "permerror"...
constexpr std::string_view to_string(result r) noexcept {
    switch (r) {
    case result::none: return "none";
    case result::neutral: return "neutral";
    case result::pass: return "pass";
    case result::fail: return "fail";
    case result::softfail: return "softfail";
    case result::temperror: return "temperror";
    case result::permerror: return "permerror";
    }
    return "permerror";
}
} // namespace spf

/// An SPF check's conclusion.
struct spf_result {
    spf::result value = spf::result::none;  ///< the result
    std::string why;          ///< a short reason for logs: "ip4:192.0.2.0/24 matched in example.com"
    std::string domain;       ///< the domain checked first, which a pass authorises
    std::string explanation;  ///< for a fail, the domain's exp= text when it could be had
};

/// @}
} // namespace grey::dns
