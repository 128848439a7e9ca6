// examples/greylist_server/command_line.hpp — greylist_server's flags: those every example
// server shares (../common/server_options.hpp, declared there once) and its own. They are read
// over the configuration file: a flag that is given wins over the file, one that is not leaves
// the file's value, so the file is read after parsing and the flags applied after it.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <grey/policy/server.hpp>

#include "../common/server_options.hpp"
#include "settings.hpp"

namespace greylist_server {

class command_line {
  public:
    std::string config_file;  ///< --config; empty: none
    std::string user, group;  ///< --user, --group: who to become once listening

    /// Declares the flags on `app` in the order --help lists them, with the defaults in `s`.
    /// --log and --maildir write into `s` itself, so a [log] or [maildir] in the file wins
    /// over them, as it always has.
    command_line(CLI::App& app, settings& s) : shared_(s.server) {
        app.add_option("--config", config_file, "TOML configuration file (see grey.toml)")->check(CLI::ExistingFile);
        shared_.add_listen(app);
        shared_.add_upstreams(app, "the embedded Maildir sink");
        app.add_option("--store", store_,
                       "memory, sqlite:PATH or a Redis URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss://..., "
                       "redis+unix:///PATH, redis-sentinel://HOST:PORT,.../MASTERNAME, redis-cluster://HOST:PORT,... "
                       "(default sqlite:greylist.db)");
        delay_ = app.add_option("--delay", delay_seconds_, "Seconds before a retry passes (default 300)");
        app.add_option("--log", s.log_file, "Session log file (default: standard output)");
        app.add_option("--metrics", metrics_, "Serve Prometheus metrics at http://HOST:PORT/metrics")->type_name("HOST:PORT");
        app.add_option("--maildir", s.maildir, "Maildir of the embedded sink")->capture_default_str();
        shared_.add_tls(app);
        shared_.add_upstream_tls(app);
        app.add_option("--policy", policy_listen_,
                       "Be a Postfix policy service on this address, repeatable, instead of an SMTP proxy")
            ->type_name("inet:HOST:PORT|unix:PATH");
        app.add_option("--greylist-text", greylist_text_,
                       "Policy service: the text of a deferral (%r: recipient domain, %s: seconds to wait)");
        app.add_option("--whitelist-clients", whitelist_clients_,
                       "Postgrey's whitelist_clients file (names, /regex/ on the name, addresses, networks), "
                       "repeatable; reloaded on SIGHUP")
            ->type_name("FILE");
        app.add_option("--whitelist-recipients", whitelist_recipients_,
                       "Postgrey's whitelist_recipients file (user@domain, user@, domain, /regex/), repeatable; "
                       "reloaded on SIGHUP")
            ->type_name("FILE");
        app.add_option("--reputation", reputation_, "Judge clients first on what DNS says of them (default on)")
            ->check(CLI::IsMember({"on", "off"}))
            ->type_name("on|off");
        app.add_option("--resolver", resolvers_,
                       "Send every DNS query to this server, repeatable (default: resolve from the root)")
            ->type_name("IP:PORT");
        app.add_option("--dnsbl", dnsbl_sites_,
                       "A DNS list and its weight, postscreen's syntax, repeatable; a negative weight for an allowlist")
            ->type_name("SITE[=FILTER][*WEIGHT]");
        app.add_option("--local-network", local_networks_,
                       "Clients never judged, greylisted as without DNS, repeatable (default 127.0.0.0/8 and ::1)")
            ->type_name("CIDR");
        app.add_option("--allow-threshold", allow_threshold_, "A score at or under this: trusted, not greylisted (default -1)");
        app.add_option("--suspicious-threshold", suspicious_threshold_,
                       "A score at or over this: suspicious, greylisted longer (default 1)");
        app.add_option("--refuse-threshold", refuse_threshold_, "The DNS lists' score at or over this: refused with 5xx (default: never)");
        app.add_option("--suspicious-delay", suspicious_delay_, "Seconds before a suspicious client's retry passes (default 1200)");
        app.add_option("--dns-budget", dns_budget_ms_, "Milliseconds all DNS look-ups of one decision may take (default 3000)");
        app.add_option("--user", user, "Started as root: make files at start as this user, and become it once listening")
            ->type_name("NAME");
        app.add_option("--group", group, "With --user: this group instead of the user's own")->type_name("NAME");
    }
    command_line(const command_line&) = delete;  // the flags write into it
    command_line& operator=(const command_line&) = delete;

    /// The configuration file, then Postgrey's whitelist files (the command line's, else the
    /// file's), into `s`: what the program reads at start and again on SIGHUP. Throws
    /// config_error.
    void read_files(settings& s) const {
        if (!config_file.empty()) load_file(config_file, s);
        if (!whitelist_clients_.empty()) s.whitelist_clients = whitelist_clients_;
        if (!whitelist_recipients_.empty()) s.whitelist_recipients = whitelist_recipients_;
        load_whitelist_files(s);
    }

    /// read_files(), then the flags that were given over it. Throws config_error or
    /// CLI::ValidationError.
    void configure(settings& s) const {
        read_files(s);
        shared_.apply(s.server);
        if (!store_.empty()) s.store = store_;
        if (delay_->count()) s.server.timing.delay = std::chrono::seconds(delay_seconds_);
        if (!metrics_.empty()) s.metrics = metrics_;
        if (!policy_listen_.empty()) {
            s.policy_listen.clear();
            for (const auto& l : policy_listen_) {
                auto a = grey::policy::parse_listen_address(l);
                if (!a) throw CLI::ValidationError(fmt::format("--policy: '{}' is not inet:HOST:PORT or unix:PATH", l));
                s.policy_listen.push_back(*a);
            }
        }
        apply_reputation(s.server.reputation);
        if (greylist_text_) {
            if (auto bad = bad_policy_text(*greylist_text_); !bad.empty())
                throw CLI::ValidationError("--greylist-text " + bad);
            s.policy.greylist_text = *greylist_text_;
        }
    }

  private:
    /// The judging-first flags that were given, over the file's [dns] and [reputation].
    void apply_reputation(grey::greylist::reputation_settings& r) const {
        if (reputation_) r.enabled = *reputation_ == "on";
        for (const auto& server : resolvers_)
            if (!grey::dns::unbound_server(server))
                throw CLI::ValidationError(fmt::format("--resolver: '{}' is not IP:PORT or [IPv6]:PORT", server));
        if (!resolvers_.empty()) r.resolver.servers = resolvers_;
        if (!dnsbl_sites_.empty()) {
            r.dnsbl_sites.clear();
            for (const auto& text : dnsbl_sites_) {
                auto site = grey::dns::parse_dnsbl_site(text);
                if (!site) throw CLI::ValidationError(fmt::format("--dnsbl: '{}' is not SITE[=FILTER][*WEIGHT]", text));
                r.dnsbl_sites.push_back(*site);
            }
        }
        if (!local_networks_.empty()) {
            r.local_networks.clear();
            for (const auto& text : local_networks_) {
                auto n = grey::network::parse(text);
                if (!n) throw CLI::ValidationError(fmt::format("--local-network: '{}' is not a network in CIDR notation", text));
                r.local_networks.push_back(*n);
            }
        }
        if (allow_threshold_) r.tiers.allow_threshold = *allow_threshold_;
        if (suspicious_threshold_) r.tiers.suspicious_threshold = *suspicious_threshold_;
        if (refuse_threshold_) r.tiers.refuse_threshold = *refuse_threshold_;
        if (suspicious_delay_) r.tiers.suspicious_delay = std::chrono::seconds(*suspicious_delay_);
        if (dns_budget_ms_) {
            if (*dns_budget_ms_ == 0) throw CLI::ValidationError("--dns-budget must be at least 1");
            r.budget = std::chrono::milliseconds(*dns_budget_ms_);
        }
        if (r.tiers.allow_threshold >= r.tiers.suspicious_threshold)
            throw CLI::ValidationError("the allow threshold must be below the suspicious threshold");
        if (r.tiers.refuse_threshold && *r.tiers.refuse_threshold <= r.tiers.allow_threshold)
            throw CLI::ValidationError("the refuse threshold must be above the allow threshold");
    }

    examples::server_options shared_;
    std::optional<std::string> reputation_;
    std::vector<std::string> resolvers_, dnsbl_sites_, local_networks_;
    std::optional<int> allow_threshold_, suspicious_threshold_, refuse_threshold_;
    std::optional<unsigned> suspicious_delay_, dns_budget_ms_;
    std::string store_, metrics_;
    unsigned delay_seconds_ = 0;
    CLI::Option* delay_ = nullptr;
    std::vector<std::string> policy_listen_, whitelist_clients_, whitelist_recipients_;
    std::optional<std::string> greylist_text_;
};

} // namespace greylist_server
