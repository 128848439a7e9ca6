// grey/greylist/judgement.hpp — the words of a greylisting decision, apart from how it is made:
// the question (one recipient of one client), the finding (why it was accepted, refused or
// deferred) and the judgement, which carries the finding, its times, and the evidence: what
// each check of the pipeline (pipeline.hpp) that ran said, for the log line and the metrics.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <optional>
#include <vector>

#include "assessment.hpp"
#include "reputation.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// One recipient of one client, as the decision needs it.
struct question {
    std::string_view client_address;    ///< the client's IP address, as text
    std::string_view helo_name;         ///< the name it gave in HELO/EHLO
    std::string_view sender;            ///< "" for the null reverse-path
    std::string_view recipient;         ///< the mailbox
    std::string_view recipient_domain;  ///< "" for `<Postmaster>`
    bool relay_control = true;          ///< apply allowed_domains (the proxy does; Postfix does its own)
    /// The client's verified host name; "" when it has none or nobody looked it up (only the
    /// whitelist files' name entries read it).
    std::string_view client_name{};
    /// Where the reputation check asks what DNS says of the client and sender; null: nobody
    /// gathers it (a local client, judging first off, or a build without the resolver).
    evidence_source* reputation = nullptr;
};

/// Why judge() accepted, refused or deferred a recipient.
enum class finding {
    relays_anywhere,    ///< an allowed sender: passes, not greylisted
    relay_denied,       ///< a recipient outside allowed_domains
    whitelisted,        ///< a whitelisted triple or non-standard triple, or in the whitelist files
    auto_whitelisted,   ///< a client group that has passed often enough
    trusted,            ///< judged first, trusted: not greylisted
    reputation_refused, ///< judged first, refused: over the refuse threshold
    greylisted,         ///< deferred: first seen, too soon, or started over
    passed,             ///< passed now, after being held back
    known,              ///< passed: a triplet that passed before
    store_unavailable,  ///< the store did not answer: deferred
};

/// What one check of the pipeline said of a question.
struct evidence {
    /// The check's name (check::name): a view of text that lives as long as the program, as a
    /// literal does, so that recording it costs nothing.
    std::string_view check;
    std::string said;  ///< what it found: "listed", "first seen", "allowed sender"

    /// Equal field by field (tests compare evidence whole).
    friend bool operator==(const evidence&, const evidence&) = default;
};

/// judge()'s answer: why, the times that go with it, and the evidence it rests on.
struct judgement {
    finding why = finding::greylisted;  ///< accepted() says whether the recipient may go on
    std::chrono::seconds delayed{};     ///< for `passed`: how long the mail was held back
    std::chrono::seconds wait{};        ///< for `greylisted`: how long until a retry can pass
    /// What each check that ran said, in the order they ran; the last one decided.
    std::vector<greylist::evidence> evidence{};
    /// What judging first concluded, when a check of the pipeline judged the client (its
    /// identity and tier then key and time the greylist: checks/store_screen.hpp).
    std::optional<greylist::assessment> assessed{};

    /// True when the recipient may go on: relays anywhere, whitelisted, passed or known.
    bool accepted() const noexcept {
        return why == finding::relays_anywhere || why == finding::whitelisted || why == finding::auto_whitelisted ||
               why == finding::trusted || why == finding::passed || why == finding::known;
    }
    /// What the seed's log line says of the recipient.
    std::string_view describe() const noexcept {
        if (accepted()) return "accepted";
        if (why == finding::store_unavailable) return "tempfail (store unavailable)";
        return why == finding::greylisted ? "greylisted" : "refused";
    }
    /// Why, in a few words for a log line: what the check that decided said ("first seen",
    /// "auto-whitelist", "listed"), then, when a check judged the client first and another
    /// decided, the assessment: "first seen; tier=suspicious score=1 fcrdns=fail:no-ptr".
    std::string explain() const {
        std::string out = evidence.empty() ? std::string() : evidence.back().said;
        if (assessed && (evidence.empty() || evidence.back().said != assessed->describe())) {
            if (!out.empty()) out += "; ";
            out += assessed->describe();
        }
        return out;
    }
    /// What a log line says of the recipient: describe(), and, for a client judged first,
    /// explain() in parentheses: "greylisted (first seen; tier=suspicious score=1 ...)".
    std::string log_text() const {
        std::string out(describe());
        if (assessed) out += " (" + explain() + ")";
        return out;
    }
    /// The evidence as one line, `check=said` for each check that ran, separated by spaces:
    /// "relay_control=relayed whitelists=not listed ...".
    std::string reasons() const {
        std::string out;
        for (const auto& e : evidence) {
            if (!out.empty()) out += ' ';
            out.append(e.check).append(1, '=').append(e.said);
        }
        return out;
    }
};

/// @}
} // namespace grey::greylist
