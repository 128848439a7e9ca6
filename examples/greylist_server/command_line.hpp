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
                       "redis+unix:///PATH (default sqlite:greylist.db)");
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
        if (greylist_text_) {
            if (auto bad = bad_policy_text(*greylist_text_); !bad.empty())
                throw CLI::ValidationError("--greylist-text " + bad);
            s.policy.greylist_text = *greylist_text_;
        }
    }

  private:
    examples::server_options shared_;
    std::string store_, metrics_;
    unsigned delay_seconds_ = 0;
    CLI::Option* delay_ = nullptr;
    std::vector<std::string> policy_listen_, whitelist_clients_, whitelist_recipients_;
    std::optional<std::string> greylist_text_;
};

} // namespace greylist_server
