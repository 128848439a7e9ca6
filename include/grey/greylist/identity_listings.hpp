// grey/greylist/identity_listings.hpp — what the DNS lists said, lately, of the addresses each
// identity (an SPF-authorised or confirmed domain: assessment.hpp) sent from. A snowshoe
// sender spreads its mail over many addresses under one domain, and the lists catch most of
// them, never all: its unlisted addresses look like any mail server's. When most of an
// identity's recent addresses are listed, its unlisted ones count as listed too. A big
// provider, one address of which a list counts now and then, is far from that share. Kept in
// memory by each process, shared by its threads. No I/O.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// When an identity's unlisted addresses count as listed (identity_listings).
struct identity_listing_settings {
    std::size_t min_listed = 5;                            ///< at least this many of its addresses listed
    double share = 0.5;                                    ///< and at least this share of those seen
    std::chrono::seconds window = std::chrono::hours(24);  ///< seen within this long
    std::size_t addresses_kept = 64;                       ///< the most recent addresses kept per identity
    std::size_t max_identities = 100000;                   ///< all are forgotten when more are seen
};

/// The listings of each identity's recent addresses; see the header's comment. Safe to share
/// between threads.
class identity_listings {
  public:
    /// Empty, with `s`.
    explicit identity_listings(identity_listing_settings s = {}) : settings_(s) {}

    /// Notes that `identity` sent from `address` at `now`, which the DNS lists counted with
    /// `weight` (0 or less: not listed).
    void note(std::string_view identity, std::string_view address, int weight, clock::time_point now) {
        std::lock_guard lock(mutex_);
        if (identities_.size() >= settings_.max_identities && !identities_.contains(std::string(identity)))
            identities_.clear();
        std::vector<seen>& addresses = identities_[std::string(identity)];
        const auto found = std::find_if(addresses.begin(), addresses.end(), [&](const seen& s) { return s.address == address; });
        if (found != addresses.end()) addresses.erase(found);
        if (addresses.size() >= settings_.addresses_kept) addresses.erase(addresses.begin());
        addresses.push_back(seen{std::string(address), std::max(weight, 0), now});
    }

    /// The weight an unlisted address of `identity` inherits at `now`: the highest weight of
    /// its listed addresses, when they are at least min_listed and at least `share` of those
    /// seen within `window`; 0 otherwise.
    int inherited(std::string_view identity, clock::time_point now) const {
        std::lock_guard lock(mutex_);
        const auto found = identities_.find(std::string(identity));
        if (found == identities_.end()) return 0;
        std::size_t recent = 0, listed = 0;
        int weight = 0;
        for (const seen& s : found->second) {
            if (now - s.when > settings_.window) continue;
            ++recent;
            if (s.weight > 0) {
                ++listed;
                weight = std::max(weight, s.weight);
            }
        }
        if (listed < settings_.min_listed || static_cast<double>(listed) < settings_.share * static_cast<double>(recent))
            return 0;
        return weight;
    }

  private:
    struct seen {
        std::string address;
        int weight = 0;
        clock::time_point when{};
    };
    identity_listing_settings settings_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::vector<seen>> identities_;
};

/// @}
} // namespace grey::greylist
