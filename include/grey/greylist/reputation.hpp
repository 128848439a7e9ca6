// grey/greylist/reputation.hpp — judging first, as configuration and as a source of evidence:
// which clients are judged (all but the local networks, as Postfix's mynetworks are spared),
// which DNS lists count and how much, where the tiers begin, and how long a decision may spend
// on DNS; and the interface through which a check asks a front for what DNS says of the client
// and sender of one question. The proxy gathers once per connection, starting at connect; the
// policy server per request, keeping what it found per client address (reputation_gathering.hpp
// has both). No I/O here, so the pipeline and its tests need no resolver.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "../detail/asio.hpp"
#include "../dns/dnsbl_site.hpp"
#include "../dns/settings.hpp"
#include "../network.hpp"
#include "assessment.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

struct question;  // judgement.hpp

/// How clients are judged before they are greylisted (DESIGN §10).
struct reputation_settings {
    /// Off: every client is greylisted alike, as without DNS.
    bool enabled = true;
    /// How the resolver asks: from the root by default, or through the servers named.
    dns::resolver_settings resolver{};
    /// The DNS lists and their weights, postscreen_dnsbl_sites' syntax (dns/dnsbl_site.hpp);
    /// none by default: the client is judged on its names, its HELO and SPF.
    std::vector<dns::dnsbl_site> dnsbl_sites{};
    /// Where the tiers begin, and Grey's own weights.
    greylist::tier_settings tiers{};
    /// Clients never judged, greylisted as without DNS: the host itself by default, as
    /// Postfix's mynetworks_style = host. Private ranges are judged unless listed here.
    std::vector<network> local_networks{*network::parse("127.0.0.0/8"), *network::parse("::1/128")};
    /// All the look-ups of one decision together; what has not answered by then is unknown.
    std::chrono::milliseconds budget{3000};
    bool check_helo = true;  ///< whether the HELO name is checked against the client
    bool check_spf = true;   ///< whether SPF is checked for the sender (or the HELO's, for the null sender)

    /// Whether `address` is in one of the local networks.
    bool local(const asio::ip::address& address) const {
        const asio::ip::address a = unmapped(address);
        for (const network& n : local_networks)
            if (n.contains(a)) return true;
        return false;
    }
};

/// What DNS said of the client and the sender of one question.
struct reputation_evidence {
    client_evidence client{};               ///< of the client
    std::optional<sender_evidence> sender{};  ///< of the sender; none when SPF is not checked
};

/// A front's way of answering what DNS says of a question's client and sender. The proxy's
/// gathers once per connection and answers every recipient from it; the policy server's
/// gathers per request. Gathering never fails: a look-up that did not answer within the
/// budget is evidence "unknown".
class evidence_source {
  public:
    /// The evidence for `q`, which outlives the call.
    virtual asio::awaitable<reputation_evidence> evidence(const question& q) = 0;

  protected:
    ~evidence_source() = default;  // not owned through this interface
};

/// @}
} // namespace grey::greylist
