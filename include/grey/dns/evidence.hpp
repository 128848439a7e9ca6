// grey/dns/evidence.hpp — what the reputation checks (fcrdns.hpp, helo_check.hpp, dnsbl.hpp)
// find, as types with no I/O, so that what judges the evidence (greylist/assessment.hpp) and
// what carries it need no resolver; and the short word a log line gives for a look-up that
// settled nothing. A look-up that
// failed is evidence "unknown", never a pass (DESIGN §9), and the log says which failure it was,
// so that an operator can tell a slow list from a broken resolver. No I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address_v4.hpp>

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

/// How a forward-confirmed reverse DNS check ended.
enum class fcrdns_status {
    ok,       ///< a name of the address resolves back to it
    fail,     ///< the address has no name, or none of its names resolves back to it
    unknown,  ///< a look-up failed for now: no evidence either way
};

/// A forward-confirmed reverse DNS check's result.
struct fcrdns_result {
    fcrdns_status status = fcrdns_status::unknown;  ///< how it ended
    std::string name;                 ///< when ok: the confirmed name, lowercase
    std::vector<std::string> names;   ///< the address's names considered (PTR), lowercase
    std::string why;                  ///< when not ok: "no-ptr", "not-confirmed", or the look-up and its failure ("ptr:timeout")

    /// The evidence for a log line: `fcrdns=ok:mail.example.com`, `fcrdns=fail:no-ptr`,
    /// `fcrdns=fail:not-confirmed`, `fcrdns=unknown:ptr:timeout`.
    std::string reason() const {
        switch (status) {
        case fcrdns_status::ok: return "fcrdns=ok:" + name;
        case fcrdns_status::fail: return "fcrdns=fail:" + why;
        case fcrdns_status::unknown: break;
        }
        return "fcrdns=unknown:" + why;
    }
};

/// How a HELO check ended.
enum class helo_status {
    ok,          ///< the name resolves to the client's address
    ok_literal,  ///< an address literal, the client's own address
    mismatch,    ///< the name resolves, to other addresses only; or a literal of another address
    fail,        ///< the name does not exist, has no address, or is no name at all
    unknown,     ///< a look-up failed for now: no evidence either way
};

/// A HELO check's result.
struct helo_result {
    helo_status status = helo_status::unknown;  ///< how it ended
    std::string why;  ///< detail: "literal", "nxdomain", "no-address", "not-a-name", "bad-literal", a failure ("timeout")

    /// The evidence for a log line: `helo=ok`, `helo=ok-literal`, `helo=mismatch`,
    /// `helo=fail:nxdomain`, `helo=unknown:timeout`.
    std::string reason() const {
        std::string text;
        switch (status) {
        case helo_status::ok: text = "helo=ok"; break;
        case helo_status::ok_literal: text = "helo=ok-literal"; break;
        case helo_status::mismatch: text = "helo=mismatch"; break;
        case helo_status::fail: text = "helo=fail"; break;
        case helo_status::unknown: text = "helo=unknown"; break;
        }
        return why.empty() ? text : text + ":" + why;
    }
};

/// A site entry whose list counted the client.
struct dnsbl_hit {
    std::string domain;         ///< the list's domain
    asio::ip::address_v4 reply; ///< the list's reply that passed the entry's filter
    int weight = 0;             ///< the entry's weight, added to the score

    /// `dnsbl=zen.spamhaus.org:127.0.0.2`, or `dnswl=` for a negative weight (an allowlist).
    std::string reason() const { return (weight < 0 ? "dnswl=" : "dnsbl=") + domain + ":" + reply.to_string(); }
};

/// A list that gave no answer to count on.
struct dnsbl_failure {
    std::string domain;      ///< the list's domain
    std::string why;         ///< "timeout", "servfail"…, "refused:127.255.255.254", "bad-reply:192.0.2.1"
    bool allowlist = false;  ///< every entry naming the list has a negative weight

    /// `dnsbl=bl.example:unknown:timeout` (`dnswl=` for an allowlist).
    std::string reason() const { return (allowlist ? "dnswl=" : "dnsbl=") + domain + ":unknown:" + why; }
};

/// A client's score on the lists.
struct dnsbl_score {
    int total = 0;                        ///< the weights of the entries that counted, summed
    bool allowlisted = false;             ///< an entry of negative weight counted
    std::vector<dnsbl_hit> hits;          ///< the entries that counted, in the sites' order
    std::vector<dnsbl_failure> failures;  ///< the lists that failed, once each, in the sites' order

    /// Whether every list answered.
    bool complete() const noexcept { return failures.empty(); }

    /// The evidence for a log line: `dnsbl-score=3`, then each hit and failure, space-separated.
    std::string reason() const {
        std::string text = "dnsbl-score=" + std::to_string(total);
        for (const dnsbl_hit& h : hits) text += " " + h.reason();
        for (const dnsbl_failure& f : failures) text += " " + f.reason();
        return text;
    }
};

/// @}
} // namespace grey::dns
