// grey/verdict.hpp — a policy's answer for one recipient: accept it, or refuse it with a reply.
// Converts from bool (true: accept; false: "451 4.7.1 Please try again later", the seed's
// deferral) and from a reply, so a policy reads as `return true;` or `return relay_denied;`.
#pragma once

#include <utility>

#include "smtp/reply.hpp"

namespace grey {

class verdict {
  public:
    verdict(bool accept) : accepted_(accept) {  // NOLINT: implicit by design
        if (!accept) reply_ = smtp::replies::try_again_later;
    }
    verdict(smtp::reply refusal) : accepted_(false), reply_(std::move(refusal)) {}  // NOLINT

    static verdict accept() { return verdict(true); }

    bool accepted() const noexcept { return accepted_; }
    /// The refusal; meaningless for an accepted verdict.
    const smtp::reply& reply() const noexcept { return reply_; }

  private:
    bool accepted_;
    smtp::reply reply_;
};

} // namespace grey
