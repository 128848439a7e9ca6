// grey/greylist/checks/relay_control.hpp — the seed's relay control, the first check: an
// allowed sender (address or network) may relay anywhere and is not greylisted; otherwise a
// recipient outside allowed_domains is denied, when the question asks for relay control (the
// proxy does; behind Postfix, Postfix's own restrictions decide relaying).
#pragma once

#include <string_view>

#include "../judgement.hpp"
#include "../lists.hpp"
#include "../pipeline.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Allowed senders relay anywhere; a recipient outside allowed_domains is denied.
struct relay_control {
    static constexpr std::string_view name = "relay_control";  ///< in the evidence

    /// relays_anywhere ("allowed sender"), relay_denied ("denied"), or on with "relayed", "off"
    /// (relay control not asked for) or "no domain" (`<Postmaster>`).
    check_answer operator()(const inquiry& in) const {
        const question& q = in.question;
        if (in.lists.may_relay_anywhere(q.client_address)) return {"allowed sender", finding::relays_anywhere};
        if (!q.relay_control) return {"off"};
        // <Postmaster> has no domain, and every server must take it (RFC 5321 §4.5.1).
        if (q.recipient_domain.empty()) return {"no domain"};
        if (!in.lists.relays_for(q.recipient_domain)) return {"denied", finding::relay_denied};
        return {"relayed"};
    }
};

/// @}
} // namespace grey::greylist
