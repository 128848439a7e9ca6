// grey/dns/evidence.hpp — what the reputation checks (fcrdns.hpp, helo_check.hpp, dnsbl.hpp)
// share: the short word a log line gives for a look-up that settled nothing. A look-up that
// failed is evidence "unknown", never a pass (DESIGN §9), and the log says which failure it was,
// so that an operator can tell a slow list from a broken resolver. No I/O.
#pragma once

#include <string_view>

#include "answer.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// Why a look-up settled nothing, as one word for a log line: "timeout", "servfail",
/// "resolver", "aborted", "malformed"; "" for an answer that is a fact (found, NXDOMAIN, NODATA).
inline std::string_view unknown_reason(outcome status, failure why) noexcept {
    if (status == outcome::malformed) return "malformed";
    if (status != outcome::temporary_failure) return {};
    switch (why) {
    case failure::timeout: return "timeout";
    case failure::server: return "servfail";
    case failure::aborted: return "aborted";
    case failure::resolver:
    case failure::none: break;
    }
    return "resolver";
}

/// unknown_reason() of a typed look-up.
template <class T>
std::string_view unknown_reason(const lookup<T>& l) noexcept {
    return unknown_reason(l.status, l.why);
}

/// @}
} // namespace grey::dns
