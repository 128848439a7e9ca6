// grey/dns/answer.hpp — what a look-up gives: the records, or which kind of "no" it was. The
// kinds matter to the checks that read them: NXDOMAIN and NODATA are facts about the name, a
// temporary failure is no fact at all (DESIGN §9: evidence "unknown", never a pass).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "message.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// How a look-up ended.
enum class outcome {
    found,              ///< records of the type asked
    nxdomain,           ///< the name does not exist (RCODE 3)
    nodata,             ///< the name exists, with no record of the type asked
    temporary_failure,  ///< no answer for now: see answer::failure
    malformed,          ///< an answer came that does not parse
};

/// Why a look-up ended in outcome::temporary_failure.
enum class failure {
    none,       ///< it did not fail
    server,     ///< SERVFAIL, REFUSED or another error RCODE, or DNSSEC found it bogus
    timeout,    ///< the query's timeout or the decision's budget ran out first
    resolver,   ///< libunbound refused the query or failed to run it
    aborted,    ///< the resolver was destroyed while the query was in flight
};

/// A look-up's result, its records decoded (message.hpp).
struct answer {
    outcome status = outcome::temporary_failure;  ///< how it ended
    failure why = failure::none;                  ///< why, for a temporary failure
    std::vector<record> records;                  ///< when found: the records of the type asked
    std::uint32_t ttl = 0;                        ///< seconds the answer may be kept

    /// Whether records were found.
    bool found() const noexcept { return status == outcome::found; }
};

/// A look-up's result as values of one type: addresses, names, strings, mail exchangers.
template <class T>
struct lookup {
    outcome status = outcome::temporary_failure;  ///< how it ended
    failure why = failure::none;                  ///< why, for a temporary failure
    std::vector<T> values;                        ///< when found: the values, in the answer's order

    /// Whether values were found.
    bool found() const noexcept { return status == outcome::found; }
};

/// A mail exchanger (RFC 5321 §5.1).
struct mx {
    std::uint16_t preference = 0;  ///< lower is tried first
    std::string exchange;          ///< the host's name, without the final dot

    /// Equal preference and exchange, for tests and de-duplication.
    friend bool operator==(const mx&, const mx&) = default;
};

/// @}
} // namespace grey::dns
