// grey/greylist/checks/whitelists.hpp — the seed's whitelists, from the configuration: a
// whitelisted triple (client address, sender, recipient) or non-standard triple (HELO name,
// address prefix, recipient) passes, never greylisted. For big senders whose retries would
// otherwise wait, or come from another address of their pool.
#pragma once

#include <string_view>

#include "../judgement.hpp"
#include "../lists.hpp"
#include "../pipeline.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Whitelisted triples and non-standard triples pass.
struct whitelists {
    static constexpr std::string_view name = "whitelists";  ///< in the evidence

    /// whitelisted ("listed"), or on with "not listed".
    check_answer operator()(const inquiry& in) const {
        const question& q = in.question;
        if (in.lists.whitelisted(q.client_address, q.helo_name, q.sender, q.recipient))
            return {"listed", finding::whitelisted};
        return {"not listed"};
    }
};

/// @}
} // namespace grey::greylist
