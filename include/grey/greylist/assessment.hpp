// grey/greylist/assessment.hpp — judging first (DESIGN §10): from what DNS said of a client and
// its sender, a tier (trusted, normal, suspicious, refused), a score, the identity its triplets
// are kept under, and the reasons, with no I/O.
//
// The score is postscreen's: the weights of the DNS lists that count the client (negative for
// allowlists), plus Grey's own weights for the signs of a host that is not a mail server: no
// forward-confirmed name, a name that looks like an ISP's pool, a HELO name that does not exist,
// SPF fail or softfail. Evidence that could not be had ("unknown": a timeout, a SERVFAIL) adds
// nothing and trusts nothing: a client is trusted only on what was answered, so a look-up
// failure never lets mail through unjudged, and the decision falls back to plain greylisting
// (only what the DNS lists answered still moves it).
//
// The identity is the ladder of DESIGN §10: the registered domain SPF authorises when SPF
// passes; else the registered domain of a forward-confirmed name that does not look generic;
// else none, and the store groups the address (/24, /64) as before. A big sender whose retry
// comes from another address of its pool is then the same client, and the auto-whitelist
// learns the sender's domain, not one of its addresses.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

#include "../dns/evidence.hpp"
#include "../dns/generic_name.hpp"
#include "../dns/spf_result.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

using namespace std::chrono_literals;

/// What a decision does with a client.
enum class tier {
    trusted,     ///< not greylisted: an allowlist counts it, or its score is at or under the allow threshold
    normal,      ///< greylisted with the configured delay
    suspicious,  ///< greylisted longer
    refused,     ///< refused with 5xx (only when a refuse threshold is set)
};

/// The tier's name in log lines and metrics.
constexpr std::string_view to_string(tier t) noexcept {
    switch (t) {
    case tier::trusted: return "trusted";
    case tier::normal: return "normal";
    case tier::suspicious: return "suspicious";
    case tier::refused: return "refused";
    }
    return "normal";
}

/// Grey's own weights for what DNS says of a client, added to the DNS lists' score.
struct evidence_weights {
    int no_fcrdns = 1;      ///< no name, or no name that resolves back to the address
    int generic_name = 1;   ///< its confirmed name looks like an ISP's pool's
    int helo_unknown = 1;   ///< the HELO name does not exist, has no address, or is no name
    int spf_fail = 2;       ///< SPF fail for the sender
    int spf_softfail = 1;   ///< SPF softfail for the sender
    /// SPF pass for the sender: with a confirmed name that is no pool's, the score of a mail
    /// server, trusted at the default allow threshold, so that its first message does not wait.
    int spf_pass = -1;
};

/// Where the tiers begin. Defaults that need no DNS list: a client with one sign against it
/// (no confirmed name, a pool name) is greylisted longer; a mail server (a confirmed name
/// that is no pool's, SPF passing for its sender) or an allowlisted client is trusted.
struct tier_settings {
    int allow_threshold = -1;      ///< a score at or under this: trusted
    int suspicious_threshold = 1;  ///< a score at or over this: suspicious
    std::optional<int> refuse_threshold{};  ///< the DNS lists' score at or over this: refused; none by default
    std::chrono::seconds suspicious_delay = 20min;  ///< the delay of a suspicious client
    evidence_weights weights{};   ///< Grey's own weights
};

/// What DNS said of a client, for the connection (or, in policy mode, for its address). A
/// check that did not run is empty.
struct client_evidence {
    std::optional<dns::fcrdns_result> fcrdns;          ///< forward-confirmed reverse DNS
    std::optional<dns::generic_name_result> generic;   ///< of the confirmed name, when there is one
    std::optional<std::string> name_domain;            ///< the confirmed name's registered domain
    std::optional<dns::helo_result> helo;              ///< the HELO name against the address
    std::optional<dns::dnsbl_score> lists;             ///< the DNS lists' score
    /// When the lists did not count the client but count most of its identity's recent
    /// addresses (identity_listings.hpp): the weight it inherits, and the identity.
    std::optional<std::pair<std::string, int>> identity_listed{};
};

/// What SPF said of one sender (the HELO's, for the null sender), with the registered domain
/// of the domain it checked.
struct sender_evidence {
    dns::spf_result spf;                       ///< RFC 7208's result
    std::optional<std::string> spf_domain;     ///< the registered domain of spf.domain
};

/// The outcome of judging first.
struct assessment {
    greylist::tier tier = greylist::tier::normal;  ///< what the decision does
    int score = 0;                                 ///< the weights that counted, summed
    /// The client's identity for the triplet and the auto-whitelist: "spf:example.com",
    /// "rdns:example.net"; empty: the client's address group, as without DNS.
    std::string identity;
    /// The least delay its tier asks (tier_settings::suspicious_delay); 0: the greylist's own.
    std::chrono::seconds delay{0};
    bool complete = true;              ///< every look-up answered
    std::vector<std::string> reasons;  ///< the evidence, `name=value` each

    /// The reasons as one line: `tier=suspicious score=2 fcrdns=fail:no-ptr ...`.
    std::string describe() const {
        std::string out = "tier=";
        out += to_string(tier);
        out += " score=" + std::to_string(score);
        for (const std::string& r : reasons) out += ' ' + r;
        return out;
    }
};

/// Judges a client and its sender from their evidence; `sender` may be null (no MAIL yet).
inline assessment assess(const client_evidence& client, const sender_evidence* sender, const tier_settings& t) {
    assessment a;
    const evidence_weights& w = t.weights;
    bool allowlisted = false;
    const auto note = [&a](std::string reason) { a.reasons.push_back(std::move(reason)); };

    if (client.lists) {
        a.score += client.lists->total;
        allowlisted = client.lists->allowlisted;
        if (!client.lists->complete()) a.complete = false;
        if (!client.lists->hits.empty() || !client.lists->failures.empty()) note(client.lists->reason());
    }
    bool confirmed_plain_name = false;
    if (client.fcrdns) {
        note(client.fcrdns->reason());
        switch (client.fcrdns->status) {
        case dns::fcrdns_status::ok:
            if (client.generic && client.generic->generic) {
                a.score += w.generic_name;
                note(client.generic->reason());
            } else {
                confirmed_plain_name = true;
            }
            break;
        case dns::fcrdns_status::fail: a.score += w.no_fcrdns; break;
        case dns::fcrdns_status::unknown: a.complete = false; break;
        }
    }
    if (client.helo) {
        switch (client.helo->status) {
        case dns::helo_status::fail:
            a.score += w.helo_unknown;
            note(client.helo->reason());
            break;
        case dns::helo_status::unknown:
            a.complete = false;
            note(client.helo->reason());
            break;
        default: break;  // a HELO that resolves, to the client or not, is common among good hosts
        }
    }
    if (sender) {
        const dns::spf::result r = sender->spf.value;
        std::string spf = "spf=" + std::string(dns::spf::to_string(r));
        if (r == dns::spf::result::pass && sender->spf_domain) spf += ":" + *sender->spf_domain;
        note(std::move(spf));
        if (r == dns::spf::result::fail) a.score += w.spf_fail;
        if (r == dns::spf::result::softfail) a.score += w.spf_softfail;
        if (r == dns::spf::result::pass) a.score += w.spf_pass;
        if (r == dns::spf::result::temperror) a.complete = false;
        if (r == dns::spf::result::pass && sender->spf_domain) a.identity = "spf:" + *sender->spf_domain;
    }
    if (a.identity.empty() && confirmed_plain_name && client.name_domain) a.identity = "rdns:" + *client.name_domain;

    // With a look-up unanswered, the decision falls back to plain greylisting: Grey's own
    // signs weigh only on a complete picture (a client whose HELO or SPF zone times out is not
    // held longer for its missing PTR), and a low score is no pass. What the DNS lists answered
    // still counts either way: an allowlist's answer is an answer, and a listing is not the
    // client's to hide by making its own zones slow.
    int listed = client.lists ? client.lists->total : 0;
    if (client.identity_listed && client.identity_listed->second > 0 && !allowlisted) {
        // Counted as the lists count the identity's other addresses: as listed, not as Grey's
        // own sign, so it refuses where a listing would.
        a.score += client.identity_listed->second;
        listed += client.identity_listed->second;
        note("identity-listed=" + client.identity_listed->first);
    }
    const int weighed = a.complete ? a.score : listed;
    // Only the DNS lists refuse: Grey's own signs (no name, a pool name, a bad HELO, SPF)
    // make a client wait longer, never bounce its mail.
    if (t.refuse_threshold && listed >= *t.refuse_threshold) {
        a.tier = tier::refused;
    } else if (allowlisted || (a.complete && a.score <= t.allow_threshold)) {
        a.tier = tier::trusted;
    } else if (weighed >= t.suspicious_threshold) {
        a.tier = tier::suspicious;
        a.delay = t.suspicious_delay;
    }
    if (!a.complete) a.reasons.push_back("dns=incomplete");
    return a;
}

/// @}
} // namespace grey::greylist
