// grey/greylist/checks/file_whitelists.hpp — the whitelists kept in files of their own
// (Postgrey's whitelist_clients and whitelist_recipients, postgrey_whitelists.hpp): a listed
// client, by verified name or by address, or a listed recipient passes. Postgrey's order:
// name, address, recipient; the evidence says which matched, and the file and line.
#pragma once

#include <string_view>

#include "../judgement.hpp"
#include "../lists.hpp"
#include "../pipeline.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Clients and recipients of the whitelist files pass.
struct file_whitelists {
    static constexpr std::string_view name = "file_whitelists";  ///< in the evidence

    /// whitelisted with what matched and the line that listed it ("client name,
    /// /etc/grey/whitelist_clients:12", "client address, ...", "recipient, ..."), or on with
    /// "not listed", or "no files" when the lists have none.
    check_answer operator()(const inquiry& in) const {
        const whitelist_files* files = in.lists.files.get();
        if (!files) return {"no files"};
        const question& q = in.question;
        // The name only when the client has a verified one: "" would match nothing anyway.
        if (!q.client_name.empty())
            if (const auto* e = files->client_name_listed(q.client_name))
                return {"client name, " + e->where(), finding::whitelisted};
        if (const auto* e = files->client_address_listed(q.client_address))
            return {"client address, " + e->where(), finding::whitelisted};
        if (const auto* e = files->recipient_listed(q.recipient)) return {"recipient, " + e->where(), finding::whitelisted};
        return {"not listed"};
    }
};

/// @}
} // namespace grey::greylist
