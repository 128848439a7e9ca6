// grey/greylist/greylist_config.hpp — greylisting's settings, shared by the proxy
// (GreyListingPolicy) and the Postfix policy server: the greylist's timings and store, the
// lists (replaced whole on reload), and the pipeline of checks that decides each recipient;
// and the proxy's configuration, composed of an SMTP server's and greylisting's.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "../config.hpp"
#include "../diagnostics.hpp"
#include "engine.hpp"
#include "identity_listings.hpp"
#include "lists.hpp"
#include "pipeline.hpp"
#include "reputation.hpp"
#include "store.hpp"
#include "triplet.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// The lists, shared by all sessions and replaced whole on reload: a session keeps the
/// snapshot it started with.
class shared_lists {
  public:
    /// Holds `l` until the first replace().
    explicit shared_lists(lists l = {}) : current_(std::make_shared<const lists>(std::move(l))) {}
    /// The lists of this moment, as a snapshot that a later replace() leaves unchanged.
    std::shared_ptr<const lists> load() const { return current_.load(); }
    /// Puts `l` in place for every load() from now on; safe from any thread.
    void replace(lists l) { current_.store(std::make_shared<const lists>(std::move(l))); }

  private:
    std::atomic<std::shared_ptr<const lists>> current_;
};

/// What greylisting needs, whichever front asks: the proxy (in greylist_config) and the policy
/// server (beside its own policy::settings) take the same.
struct greylist_settings {
    greylist::timing timing = timing::postgrey();  ///< the greylist's delay and lifetimes
    greylist::grouping grouping{};                 ///< how client addresses are grouped
    greylist::normalisation normalisation{};       ///< how senders are normalised
    unsigned auto_whitelist_after = 5;  ///< passed deliveries before a client skips the greylist; 0: off
    bool add_header = false;            ///< prepend X-Greylist to mail that was held back
    /// Judging first: which clients are judged on what DNS says of them, and how (reputation.hpp).
    greylist::reputation_settings reputation{};
    /// What the DNS lists said of each identity's recent addresses, shared by every session
    /// of the process (identity_listings.hpp); null: an identity's listings are not kept.
    std::shared_ptr<greylist::identity_listings> identity_listings = std::make_shared<greylist::identity_listings>();
    /// Applied to each triplet (and client group) before it reaches the store; privacy mode
    /// sets it to greylist::hashed (privacy.hpp).
    std::function<triplet(triplet)> transform;
    std::shared_ptr<greylist::store> store;  ///< where the greylist lives; required
    std::shared_ptr<shared_lists> lists = std::make_shared<shared_lists>();  ///< replaced on reload
    /// The checks each recipient goes through, in order; null: default_pipeline() (judge.hpp),
    /// which is relay control, the whitelists, the whitelist files, then the store. To add a
    /// check, start from default_pipeline() and insert it; built once, never changed after.
    std::shared_ptr<const greylist::pipeline> pipeline;
    /// Receives the session's log line; none when empty.
    std::function<void(const std::string&)> log;
    /// Receives a line when the store stops answering and when it answers again (store_health):
    /// once per outage for all sessions. Standard error by default; none when empty.
    std::function<void(const std::string&)> report = [](const std::string& line) {
        diagnostics::report(line.find("available again") != std::string::npos ? diagnostics::level::notice
                                                                               : diagnostics::level::error,
                            "store", line);
    };
    /// The clock greylisting reads: replaced in tests to move time without sleeping.
    std::function<clock::time_point()> now = [] { return clock::now(); };
};

/// The greylisting proxy's configuration (GreyListingPolicy's config_type): an SMTP server's
/// and greylisting's, each read by its own side.
struct greylist_config : server_config, greylist_settings {};

/// @}
} // namespace grey::greylist
