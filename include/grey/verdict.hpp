// grey/verdict.hpp — a policy's answer for one recipient: accept it, or refuse it with a reply.
// Converts from bool (true: accept; false: "451 4.7.1 Please try again later", the seed's
// deferral) and from a reply, so a policy reads as `return true;` or `return relay_denied;`.
#pragma once

#include <utility>

#include "smtp/reply.hpp"

namespace grey {
/// @addtogroup group_sessions
/// @{

/// What shouldWeAcceptRecipient returns: accept the recipient, or refuse it with a reply. A
/// refused recipient gets that reply from Grey and the upstream never hears of it.
class verdict {
  public:
    /// `true` accepts; `false` defers with smtp::replies::try_again_later, the seed's deferral.
    /// Implicit, so that a policy returns a bool as it is.
    verdict(bool accept) : accepted_(accept) {  // NOLINT: implicit by design
        if (!accept) reply_ = smtp::replies::try_again_later;
    }
    /// Refuses with `refusal`: a 4xx code defers the recipient, a 5xx rejects it. Implicit, so
    /// that a policy returns a reply (from the catalogue or its own) as it is.
    verdict(smtp::reply refusal) : accepted_(false), reply_(std::move(refusal)) {}  // NOLINT

    /// An accepting verdict, for when `true` would read less clearly.
    static verdict accept() { return verdict(true); }

    /// Whether the recipient is accepted, and so relayed to the upstream.
    bool accepted() const noexcept { return accepted_; }
    /// The refusal; meaningless for an accepted verdict.
    const smtp::reply& reply() const noexcept { return reply_; }

  private:
    bool accepted_;
    smtp::reply reply_;
};

/// @}
} // namespace grey
