// grey/greylist/checks/reputation.hpp — judging first, as a check of the pipeline (DESIGN §10):
// asks the question's evidence source what DNS says of the client and sender, judges it
// (assessment.hpp), and either decides (trusted: not greylisted; refused, when a refuse
// threshold is set) or hands the assessment on, so that the store keys the triplet by the
// client's identity and holds a suspicious client longer (store_screen.hpp).
//
// An identity most of whose recent addresses the DNS lists count (a snowshoe sender's domain)
// counts as listed for its unlisted addresses too (identity_listings.hpp).
//
// It runs after the whitelists, so a whitelisted client waits on no DNS. A local client, a
// question with no source (judging first is off, or the front has no resolver) and a client
// whose look-ups all failed are greylisted as without DNS: nothing unanswered is trusted.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "../../detail/asio.hpp"
#include "../../metrics/server_metrics.hpp"
#include "../assessment.hpp"
#include "../greylist_config.hpp"
#include "../judgement.hpp"
#include "../pipeline.hpp"
#include "../reputation.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Judges the client first; decides for a trusted or refused one.
struct reputation {
    static constexpr std::string_view name = "reputation";  ///< in the evidence

    /// "off", "local" or "unjudged" when it does not judge; else the assessment's
    /// describe(): "tier=trusted score=-5 dnswl=list.dnswl.org:127.0.5.1", deciding
    /// `trusted` or `reputation_refused` for those tiers.
    asio::awaitable<check_answer> operator()(const inquiry& in) const {
        const reputation_settings& r = in.settings.reputation;
        if (!r.enabled) co_return check_answer{"off"};
        asio::error_code ec;
        const auto address = asio::ip::make_address(in.question.client_address, ec);
        if (!ec && r.local(address)) co_return check_answer{"local"};
        if (!in.question.reputation) co_return check_answer{"unjudged"};
        reputation_evidence e = co_await in.question.reputation->evidence(in.question);
        assessment a = assess(e.client, e.sender ? &*e.sender : nullptr, r.tiers);
        if (!a.identity.empty() && in.settings.identity_listings) {
            // A snowshoe sender's unlisted address counts as its listed ones do.
            identity_listings& seen = *in.settings.identity_listings;
            const clock::time_point now = in.settings.now();
            const int own = listed_weight(e.client);
            seen.note(a.identity, in.question.client_address, own, now);
            if (own <= 0) {
                if (const int inherited = seen.inherited(a.identity, now); inherited > 0) {
                    e.client.identity_listed = std::pair{a.identity, inherited};
                    a = assess(e.client, e.sender ? &*e.sender : nullptr, r.tiers);
                }
            }
        }
        if (in.metrics) count(*in.metrics, e, a);
        check_answer answer{a.describe()};
        if (a.tier == tier::trusted) answer.decides = finding::trusted;
        if (a.tier == tier::refused) answer.decides = finding::reputation_refused;
        answer.assessed = std::move(a);
        co_return answer;
    }

  private:
    // What the lists counted against the client itself: its blocklists' weights.
    static int listed_weight(const client_evidence& c) {
        int weight = 0;
        if (c.lists)
            for (const dns::dnsbl_hit& h : c.lists->hits)
                if (h.weight > 0) weight += h.weight;
        return weight;
    }

    static void count(metrics::server_metrics& m, const reputation_evidence& e, const assessment& a) {
        m.judged(static_cast<std::size_t>(a.tier));
        const client_evidence& c = e.client;
        if (c.fcrdns) {
            static constexpr std::string_view kinds[] = {"fcrdns_ok", "fcrdns_fail", "fcrdns_unknown"};
            m.reputation_reason(kinds[static_cast<std::size_t>(c.fcrdns->status)]);
        }
        if (c.generic && c.generic->generic) m.reputation_reason("generic_name");
        if (c.helo) {
            switch (c.helo->status) {
            case dns::helo_status::ok:
            case dns::helo_status::ok_literal: m.reputation_reason("helo_ok"); break;
            case dns::helo_status::mismatch: m.reputation_reason("helo_mismatch"); break;
            case dns::helo_status::fail: m.reputation_reason("helo_fail"); break;
            case dns::helo_status::unknown: m.reputation_reason("helo_unknown"); break;
            }
        }
        if (c.lists) {
            for (const dns::dnsbl_hit& h : c.lists->hits) m.reputation_reason(h.weight < 0 ? "dnswl_listed" : "dnsbl_listed");
            if (!c.lists->failures.empty()) m.reputation_reason("dnsbl_unknown");
        }
        if (e.sender) m.reputation_reason("spf_" + std::string(dns::spf::to_string(e.sender->spf.value)));
    }
};

/// @}
} // namespace grey::greylist
