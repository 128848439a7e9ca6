// grey/metrics/server_metrics.hpp — what Grey's own components count: the server (connections,
// sessions), the SMTP session (refused commands, TLS), the relay (messages, bytes, upstream
// connections, replies, the pool), greylisting (verdicts, store latency and health), the
// policy server's answers and the DNS resolver's queries; and the build. A program makes one,
// points server_config::metrics at it, and serves registry() (http_endpoint.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "../version.hpp"
#include "registry.hpp"

namespace grey::metrics {
/// @addtogroup group_metrics
/// @{

/// Why a connection was refused before its session began: the values of
/// grey_connections_refused_total's "reason" label, in the same order.
enum class refusal : std::size_t { connection_limit, per_address_limit, shutting_down, proxy_untrusted, proxy_header };
/// What became of a recipient: the values of grey_recipients_total's "verdict" label, in the
/// same order.
enum class verdict_kind : std::size_t {
    accepted,
    greylisted,
    refused,
    relay_denied,
    store_unavailable,
    upstream_unavailable,  ///< accepted by Grey, then deferred: the upstream could not be reached or failed
    upstream_refused,      ///< accepted by Grey, refused by the upstream (an unknown user, say)
};

/// Everything Grey's own components count, each metric registered under its grey_* name as
/// this is made. Counted into from any thread; neither copied nor moved, since the registry
/// refers to its members.
struct server_metrics {
    /// grey_connections_accepted_total: client connections accepted.
    counter connections_accepted;
    /// grey_connections_refused_total: client connections refused, by reason (refusal).
    labeled<5> connections_refused{"reason", {"connection_limit", "per_address_limit", "shutting_down",
                                              "proxy_untrusted", "proxy_header"}};
    /// grey_sessions_open: SMTP sessions open now.
    gauge sessions_open;
    /// Commands refused, by the reply code they got (500 syntax, 503 sequence, 554 policy…).
    labeled<10> commands_refused{"code", {"500", "501", "502", "503", "530", "550", "552", "553", "554", "555"}};
    /// grey_recipients_total: recipients, by verdict (verdict_kind).
    labeled<7> recipients{"verdict", {"accepted", "greylisted", "refused", "relay_denied", "store_unavailable",
                                      "upstream_unavailable", "upstream_refused"}};
    /// grey_decisions_total: greylisting decisions, by reason (decision_reason() in
    /// greylist/judge.hpp).
    labeled<13> decisions{"reason", {"relays_anywhere", "relay_denied", "whitelisted", "whitelist_file",
                                     "auto_whitelisted", "trusted", "reputation_refused", "first_seen", "early_retry",
                                     "restarted", "passed", "known", "store_unavailable"}};
    /// grey_reputation_decisions_total: clients judged first, by the tier they were given
    /// (greylist::tier's order).
    labeled<4> reputation_tiers{"tier", {"trusted", "normal", "suspicious", "refused"}};
    /// grey_reputation_reasons_total: the evidence judged clients were found with, by kind
    /// (reputation_reason's order); one judgement counts each kind it holds.
    labeled<18> reputation_reasons{"reason", {"fcrdns_ok", "fcrdns_fail", "fcrdns_unknown", "generic_name",
                                              "helo_ok", "helo_mismatch", "helo_fail", "helo_unknown", "dnsbl_listed",
                                              "dnswl_listed", "dnsbl_unknown", "spf_pass", "spf_fail", "spf_softfail",
                                              "spf_neutral", "spf_none", "spf_permerror", "spf_temperror"}};
    /// grey_dns_query_seconds: time of a DNS query the resolver sent (not one answered from its
    /// cache), by type, timeouts included.
    labeled_histograms<5> dns_seconds{"type", {"A", "AAAA", "PTR", "TXT", "MX"}};
    /// grey_dns_timeouts_total: DNS queries the resolver sent that got no answer in their time
    /// (their timeout, or their decision's budget), or got SERVFAIL, which is how libunbound
    /// answers when the servers it asks do not.
    counter dns_timeouts;
    /// grey_dns_cache_hits_total: DNS questions answered from the resolver's cache.
    counter dns_cache_hits;
    /// grey_dns_cache_misses_total: DNS questions the cache did not answer: sent, or failed at
    /// once while DNS is held unreachable or the decision's budget is spent.
    counter dns_cache_misses;
    /// grey_policy_requests_total: policy requests answered, by the action's word (the values
    /// of policy_action(), in its order); a PREPEND or DEFER_IF_PERMIT's text is not a label.
    labeled<5> policy_requests{"action", {"DUNNO", "DEFER_IF_PERMIT", "PREPEND", "550", "other"}};
    /// grey_policy_request_seconds: from a policy request read whole to its answer written.
    histogram policy_request_seconds = latency_histogram();
    /// grey_messages_relayed_total: messages the upstream accepted.
    counter messages_relayed;
    /// grey_messages_failed_total: messages the upstream refused, or that failed on the way.
    counter messages_failed;
    /// grey_relayed_bytes_total: octets of message text relayed upstream.
    counter bytes_relayed;
    /// grey_upstream_connects_total: upstream connections opened (greeting and EHLO answered).
    counter upstream_connects;
    /// grey_upstream_connect_failures_total: upstream connections that could not be opened.
    counter upstream_connect_failures;
    /// Upstreams marked down (upstream/failover.hpp), by upstream ("host:port"): counted when
    /// one that was up fails, not at each later failure while it stays down.
    dynamic_labeled upstreams_marked_down{"upstream"};
    /// Upstreams marked down now.
    gauge upstreams_down;
    /// grey_upstream_pool_hits_total: sessions that reused a pooled upstream connection.
    counter pool_hits;
    /// grey_upstream_pool_misses_total: sessions that found no pooled upstream connection.
    counter pool_misses;
    /// grey_tls_handshakes_total: STARTTLS handshakes with clients that succeeded, by whether
    /// they resumed an earlier session ("yes") or were full ones ("no").
    labeled<2> tls_handshakes{"resumed", {"no", "yes"}};
    /// grey_tls_handshake_failures_total: STARTTLS handshakes with clients that failed.
    counter tls_handshake_failures;
    /// grey_upstream_tls_handshakes_total: TLS handshakes with the upstream that succeeded.
    counter upstream_tls_handshakes;
    /// grey_upstream_tls_handshake_failures_total: TLS handshakes with the upstream that failed.
    counter upstream_tls_handshake_failures;
    /// grey_upstream_reply_seconds: time from a command to the upstream's reply.
    histogram upstream_reply_seconds = latency_histogram();
    /// grey_store_seconds: time of a greylist store call.
    histogram store_seconds = latency_histogram();
    /// grey_greylist_first_seen_total: triplets seen for the first time (new greylist records).
    counter greylist_first_seen;
    /// grey_greylist_delay_seconds: how long mail that passed greylisting was held back, from
    /// its triplet's first sight to the retry that passed: 1 minute to 2 days.
    histogram greylist_delay_seconds{60, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400, 172800};

    server_metrics() { register_all(); }
    server_metrics(const server_metrics&) = delete;
    server_metrics& operator=(const server_metrics&) = delete;

    /// Every metric above, to serve (registry::write, http_endpoint).
    metrics::registry& registry() noexcept { return registry_; }

    /// Counts a connection refused for `r`.
    void refused(refusal r) noexcept { connections_refused[static_cast<std::size_t>(r)].add(); }
    /// Counts a recipient's verdict.
    void recipient(verdict_kind v) noexcept { recipients[static_cast<std::size_t>(v)].add(); }
    /// Counts a decision for the reason named `reason` (a value of decisions' label).
    void decision(std::string_view reason) noexcept {
        for (std::size_t i = 0; i < decisions.size(); ++i)
            if (decisions.value_name(i) == reason) return decisions[i].add();
    }
    /// Counts a client judged first into tier number `tier` (greylist::tier).
    void judged(std::size_t tier) noexcept {
        if (tier < reputation_tiers.size()) reputation_tiers[tier].add();
    }
    /// Counts evidence of the kind named `reason` (a value of reputation_reasons' label);
    /// a name it does not list is not counted.
    void reputation_reason(std::string_view reason) noexcept {
        for (std::size_t i = 0; i < reputation_reasons.size(); ++i)
            if (reputation_reasons.value_name(i) == reason) return reputation_reasons[i].add();
    }
    /// Times a DNS query of type `type` ("A", "AAAA", "PTR", "TXT", "MX"); others are not timed.
    void dns_query(std::string_view type, std::chrono::steady_clock::duration took) noexcept {
        for (std::size_t i = 0; i < 5; ++i)
            if (dns_seconds.value_name(i) == type) return dns_seconds[i].observe(took);
    }
    /// Counts a STARTTLS handshake that succeeded, `resumed` or full.
    void tls_handshake(bool resumed) noexcept { tls_handshakes[resumed ? 1 : 0].add(); }
    /// The index in policy_requests of the action word `action` ("DEFER_IF_PERMIT"); "other"'s
    /// for a word it does not list, so that the label stays bounded.
    std::size_t policy_action(std::string_view action) const noexcept {
        std::size_t i = 0;
        while (i + 1 < policy_requests.size() && policy_requests.value_name(i) != action) ++i;
        return i;
    }
    /// Counts a policy request answered with action number `action` (policy_action()), `took`
    /// from the request read to its answer written.
    void policy_answered(std::size_t action, std::chrono::steady_clock::duration took) noexcept {
        if (action < policy_requests.size()) policy_requests[action].add();
        policy_request_seconds.observe(took);
    }
    /// Exports grey_store_up{store="`kind`"}: `up()` at each scrape, 1 while the greylist store
    /// answered its last call and 0 while it fails (greylist::store_health::available). Call
    /// once, at setup, for the program's one store; `up` must stay callable while the registry
    /// is scraped.
    void watch_store(std::string_view kind, std::function<bool()> up) {
        registry_.add_gauge("grey_store_up", "1 when the greylist store answered its last call, 0 while it fails.",
                            fmt::format("store=\"{}\"", escape_label_value(kind)),
                            [up = std::move(up)] { return up() ? 1.0 : 0.0; });
    }
    /// Counts a command refused with reply `code`; a code the label does not list is not counted.
    void command_refused(int code) noexcept {
        static constexpr int codes[] = {500, 501, 502, 503, 530, 550, 552, 553, 554, 555};
        for (std::size_t i = 0; i < std::size(codes); ++i)
            if (codes[i] == code) return commands_refused[i].add();
    }

  private:
    void register_all() {
        auto& r = registry_;
        // Prometheus' custom for what a program is: a series of value 1 whose labels say it.
        r.add_gauge("grey_build_info", "Grey's version, as the labels of a series of value 1.",
                    fmt::format("version=\"{}\"", escape_label_value(grey::version)), [] { return 1.0; });
        r.add("grey_connections_accepted_total", "Client connections accepted.", connections_accepted);
        r.add("grey_connections_refused_total", "Client connections refused, by reason.", connections_refused);
        r.add("grey_sessions_open", "SMTP sessions open now.", sessions_open);
        r.add("grey_commands_refused_total", "Client commands refused, by reply code.", commands_refused);
        r.add("grey_recipients_total", "Recipients, by verdict.", recipients);
        r.add("grey_decisions_total", "Greylisting decisions, by reason.", decisions);
        r.add("grey_greylist_delay_seconds", "How long mail that passed greylisting was held back.",
              greylist_delay_seconds);
        r.add("grey_reputation_decisions_total", "Clients judged first, by tier.", reputation_tiers);
        r.add("grey_reputation_reasons_total", "Evidence judged clients were found with, by kind.", reputation_reasons);
        r.add("grey_dns_query_seconds", "Time of a DNS query the resolver sent, by type.", dns_seconds);
        r.add("grey_dns_timeouts_total", "DNS queries sent that got no answer in their time, or SERVFAIL.",
              dns_timeouts);
        r.add("grey_dns_cache_hits_total", "DNS questions answered from the resolver's cache.", dns_cache_hits);
        r.add("grey_dns_cache_misses_total", "DNS questions the resolver's cache did not answer.", dns_cache_misses);
        r.add("grey_policy_requests_total", "Policy requests answered, by action.", policy_requests);
        r.add("grey_policy_request_seconds", "From a policy request read to its answer written.",
              policy_request_seconds);
        r.add("grey_messages_relayed_total", "Messages the upstream accepted.", messages_relayed);
        r.add("grey_messages_failed_total", "Messages the upstream refused or that failed on the way.", messages_failed);
        r.add("grey_relayed_bytes_total", "Octets of message text relayed upstream.", bytes_relayed);
        r.add("grey_upstream_connects_total", "Upstream connections opened (greeting and EHLO answered).",
              upstream_connects);
        r.add("grey_upstream_connect_failures_total", "Upstream connections that could not be opened.",
              upstream_connect_failures);
        r.add("grey_upstream_marked_down_total", "Times an upstream that was up failed and was marked down, by upstream.",
              upstreams_marked_down);
        r.add("grey_upstreams_down", "Upstreams marked down now (skipped until their retry time).", upstreams_down);
        r.add("grey_upstream_pool_hits_total", "Sessions that reused a pooled upstream connection.", pool_hits);
        r.add("grey_upstream_pool_misses_total", "Sessions that found no pooled upstream connection.", pool_misses);
        r.add("grey_tls_handshakes_total", "STARTTLS handshakes with clients that succeeded, by whether they resumed.",
              tls_handshakes);
        r.add("grey_tls_handshake_failures_total", "STARTTLS handshakes with clients that failed.",
              tls_handshake_failures);
        r.add("grey_upstream_tls_handshakes_total", "TLS handshakes with the upstream that succeeded.",
              upstream_tls_handshakes);
        r.add("grey_upstream_tls_handshake_failures_total", "TLS handshakes with the upstream that failed.",
              upstream_tls_handshake_failures);
        r.add("grey_upstream_reply_seconds", "Time from a command to the upstream's reply.", upstream_reply_seconds);
        r.add("grey_store_seconds", "Time of a greylist store call.", store_seconds);
        r.add("grey_greylist_first_seen_total", "Triplets seen for the first time (new greylist records).",
              greylist_first_seen);
    }

    metrics::registry registry_;
};

/// @}
} // namespace grey::metrics
