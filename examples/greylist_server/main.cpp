// greylist_server — the Grey application: a greylisting SMTP proxy in front of a real MTA.
//
// With no configuration at all it listens on 127.0.0.1:2525, keeps its greylist in
// ./greylist.db (SQLite), and delivers accepted mail to an embedded Maildir sink on
// 127.0.0.1:2526 (./Maildir), so greylisting can be watched with no MTA installed:
//
//   greylist_server --delay 60              # then send the same message twice, a minute apart
//   greylist_server --config grey.toml --upstream 127.0.0.1:25
//   greylist_server --upstream 192.0.2.10:25 --upstream 192.0.2.11:25   # failover, in order
//
// With --policy (or [policy] listen in grey.toml) it is a Postfix policy service instead, for
// `check_policy_service inet:127.0.0.1:10023` in Postfix's smtpd_recipient_restrictions: the
// same greylisting, store, lists and log, and no SMTP proxy or Maildir sink.
//
//   greylist_server --policy inet:127.0.0.1:10023 --policy unix:/run/grey/policy
//
// grey.toml beside this file documents every option. SIGHUP reloads the relay and whitelist
// lists from the configuration file, and Postgrey's whitelist files (--whitelist-clients,
// --whitelist-recipients) from theirs; SIGINT/SIGTERM stop gracefully. Under systemd (dist/ has
// the units) it reports readiness and reloads with sd_notify; started as root without it,
// --user NAME makes its files as NAME and gives root up once its ports are bound.
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <grey/grey.hpp>
#include <grey/greylist/greylisting_policy.hpp>
#include <grey/greylist/open_relay.hpp>
#include <grey/greylist/open_store.hpp>
#include <grey/policy/server.hpp>

#include "../common/privileges.hpp"
#include "../common/sd_notify.hpp"
#include "../common/metrics_service.hpp"
#include "../common/server_options.hpp"
#include "../maildir_sink/maildir_sink.hpp"
#include "settings.hpp"

struct GreylistHandler : grey::greylist::GreyListingPolicy<GreylistHandler> {
    using GreyListingPolicy::GreyListingPolicy;
};

namespace {

/// One line per session, to standard output or a file, whole lines even with many threads.
class session_log {
  public:
    explicit session_log(const std::string& path) {
        if (path.empty()) return;
        file_ = std::fopen(path.c_str(), "a");
        if (!file_) throw greylist_server::config_error(fmt::format("cannot open log file {}", path));
    }
    ~session_log() {
        if (file_) std::fclose(file_);
    }
    void write(const std::string& line) {
        std::lock_guard lock(mutex_);
        std::FILE* out = file_ ? file_ : stdout;
        fmt::print(out, "{}\n", line);
        std::fflush(out);
    }

  private:
    std::mutex mutex_;
    std::FILE* file_ = nullptr;
};

/// Where the lists come from, for the reload's line: the configuration file and the whitelist files.
std::string describe_sources(const std::string& config_file, const greylist_server::settings& s) {
    std::vector<std::string> from;
    if (!config_file.empty()) from.push_back(config_file);
    for (const auto* files : {&s.whitelist_clients, &s.whitelist_recipients})
        from.insert(from.end(), files->begin(), files->end());
    return from.empty() ? std::string("the defaults") : fmt::format("{}", fmt::join(from, ", "));
}

/// The Postfix policy service on s.policy_listen, until SIGINT/SIGTERM. Returns the exit code.
/// `listening` runs once it listens, before it serves; false stops it there.
int serve_policy(const greylist_server::settings& s, const examples::on_listening& listening) {
    grey::policy::server server(s.server, s.policy, s.policy_listen, s.policy_socket_mode);
    return examples::serve(server, [&server] { return server.local_addresses(); }, "policy service listening on",
                           "policy service on", listening);
}

} // namespace

int main(int argc, char** argv) {
    greylist_server::settings s;
    s.server.port = 2525;

    CLI::App app{"greylist_server: a greylisting SMTP proxy"};
    std::string config_file, store;
    std::vector<std::string> upstreams;
    std::optional<unsigned> upstream_retry;
    std::vector<std::string> listen, proxy_listen, proxy_from;
    unsigned delay = 0;
    app.add_option("--config", config_file, "TOML configuration file (see grey.toml)")->check(CLI::ExistingFile);
    app.add_option("--listen", listen, "Address to listen on, repeatable (default 127.0.0.1:2525)")->type_name("HOST:PORT");
    app.add_option("--proxy-listen", proxy_listen,
                   "Address for a load balancer sending the PROXY protocol (v1 or v2), repeatable; needs --proxy-from")
        ->type_name("HOST:PORT");
    app.add_option("--proxy-from", proxy_from, "Network allowed to send the PROXY header, repeatable")->type_name("CIDR");
    app.add_option("--upstream", upstreams,
                   "The real SMTP server (default: the embedded Maildir sink); repeated, the servers in order "
                   "of preference (failover)")
        ->type_name("HOST:PORT");
    app.add_option("--upstream-retry", upstream_retry,
                   "Seconds an upstream that failed is skipped before it is tried again (default 30)")
        ->type_name("SECONDS");
    app.add_option("--store", store, "memory, sqlite:PATH or a Redis URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss://..., redis+unix:///PATH (default sqlite:greylist.db)");
    auto* delay_opt = app.add_option("--delay", delay, "Seconds before a retry passes (default 300)");
    app.add_option("--log", s.log_file, "Session log file (default: standard output)");
    std::string metrics_at;
    app.add_option("--metrics", metrics_at, "Serve Prometheus metrics at http://HOST:PORT/metrics")->type_name("HOST:PORT");
    app.add_option("--maildir", s.maildir, "Maildir of the embedded sink")->capture_default_str();
    std::string tls_cert, tls_key;
    bool tls_required = false;
    app.add_option("--tls-cert", tls_cert, "PEM certificate chain: STARTTLS is offered (reloaded on SIGHUP)")
        ->check(CLI::ExistingFile);
    app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert")->check(CLI::ExistingFile);
    app.add_flag("--tls-required", tls_required, "Refuse MAIL before STARTTLS (530 5.7.0)");
    std::optional<grey::tls::upstream_policy> upstream_tls;
    std::string upstream_ca, upstream_tls_name;
    app.add_option("--upstream-tls", upstream_tls, "TLS to the upstream: none, may, encrypt, verify")
        ->transform(CLI::CheckedTransformer(examples::upstream_tls_policies, CLI::ignore_case).description(""))
        ->type_name("none|may|encrypt|verify");
    app.add_option("--upstream-ca", upstream_ca, "PEM CA bundle for --upstream-tls verify (default: the system's)")
        ->check(CLI::ExistingFile);
    app.add_option("--upstream-tls-name", upstream_tls_name, "Name the upstream's certificate must carry");
    std::optional<grey::upstream::identity_policy> upstream_identity;
    app.add_option("--upstream-identity", upstream_identity,
                   "Tell the upstream the client's identity: auto, xclient, xforward, none (default auto)")
        ->transform(CLI::CheckedTransformer(examples::identity_policies, CLI::ignore_case).description(""))
        ->type_name("auto|xclient|xforward|none");
    std::vector<std::string> policy_listen;
    std::optional<std::string> greylist_text;
    app.add_option("--policy", policy_listen,
                   "Be a Postfix policy service on this address, repeatable, instead of an SMTP proxy")
        ->type_name("inet:HOST:PORT|unix:PATH");
    app.add_option("--greylist-text", greylist_text,
                   "Policy service: the text of a deferral (%r: recipient domain, %s: seconds to wait)");
    std::vector<std::string> whitelist_clients, whitelist_recipients;
    app.add_option("--whitelist-clients", whitelist_clients,
                   "Postgrey's whitelist_clients file (names, /regex/ on the name, addresses, networks), "
                   "repeatable; reloaded on SIGHUP")
        ->type_name("FILE");
    app.add_option("--whitelist-recipients", whitelist_recipients,
                   "Postgrey's whitelist_recipients file (user@domain, user@, domain, /regex/), repeatable; "
                   "reloaded on SIGHUP")
        ->type_name("FILE");
    std::string run_user, run_group;
    app.add_option("--user", run_user,
                   "Started as root: make files at start as this user, and become it once listening")
        ->type_name("NAME");
    app.add_option("--group", run_group, "With --user: this group instead of the user's own")->type_name("NAME");
    CLI11_PARSE(app, argc, argv);

    // The lists' files: the command line's instead of the configuration's, at start and reload.
    const auto read_whitelist_files = [&](greylist_server::settings& into) {
        if (!whitelist_clients.empty()) into.whitelist_clients = whitelist_clients;
        if (!whitelist_recipients.empty()) into.whitelist_recipients = whitelist_recipients;
        greylist_server::load_whitelist_files(into);
    };

    std::optional<session_log> log;
    std::optional<examples::metrics_service> metrics;
    std::shared_ptr<grey::greylist::shared_lists> lists;
    std::optional<examples::privileges> privs;
    try {
        privs.emplace(run_user, run_group);
        if (!config_file.empty()) greylist_server::load_file(config_file, s);
        read_whitelist_files(s);
        // The command line overrides the file.
        if (!listen.empty() || !proxy_listen.empty()) {
            s.server.listen.clear();
            for (const auto& l : listen) s.server.listen.push_back(examples::endpoint_or_throw(l));
            for (auto& e : examples::proxy_endpoints(proxy_listen, proxy_from)) s.server.listen.push_back(std::move(e));
        }
        if (!upstreams.empty()) s.upstreams = upstreams;
        if (upstream_retry) s.server.upstream_retry = std::chrono::seconds(*upstream_retry);
        if (!store.empty()) s.store = store;
        if (delay_opt->count()) s.server.timing.delay = std::chrono::seconds(delay);
        if (!tls_cert.empty()) s.server.tls.certificate_chain_file = tls_cert;
        if (!tls_key.empty()) s.server.tls.private_key_file = tls_key;
        if (tls_required) s.server.tls.required = true;
        examples::check_tls(s.server.tls);
        if (upstream_tls) s.server.upstream_tls.policy = *upstream_tls;
        if (!upstream_ca.empty()) s.server.upstream_tls.ca_file = upstream_ca;
        if (!upstream_tls_name.empty()) s.server.upstream_tls.server_name = upstream_tls_name;
        if (upstream_identity) s.server.upstream_identity = *upstream_identity;
        examples::check_upstream_tls(s.server.upstream_tls);
        if (!policy_listen.empty()) {
            s.policy_listen.clear();
            for (const auto& l : policy_listen) {
                auto a = grey::policy::parse_listen_address(l);
                if (!a) throw CLI::ValidationError(fmt::format("--policy: '{}' is not inet:HOST:PORT or unix:PATH", l));
                s.policy_listen.push_back(*a);
            }
        }
        if (greylist_text) {
            if (auto bad = greylist_server::bad_policy_text(*greylist_text); !bad.empty())
                throw CLI::ValidationError("--greylist-text " + bad);
            s.policy.greylist_text = *greylist_text;
        }
        const bool policy_mode = !s.policy_listen.empty();

        // In policy mode Postfix decides relaying (smtpd_relay_restrictions) before it asks.
        if (!policy_mode)
            if (auto why = grey::greylist::open_relay_reason(s.server.listen_endpoints(), s.lists); !why.empty())
                throw greylist_server::config_error("refusing to start: " + why);

        if (s.upstreams.empty()) {
            s.server.smtp_ip = s.maildir_listen.host;
            s.server.smtp_port = s.maildir_listen.port;
        } else {
            examples::set_upstreams(s.server, s.upstreams);
        }
        if (s.command_timeout) s.server.timeouts.command = s.server.timeouts.data_block = std::chrono::seconds(s.command_timeout);
        if (s.upstream_timeout) {
            auto& u = s.server.timeouts;
            u.upstream_connect = u.upstream_greeting = u.upstream_command = u.upstream_data_init =
                u.upstream_data_block = u.upstream_data_term = std::chrono::seconds(s.upstream_timeout);
        }
        privs->as_user();  // the store, the log and the Maildir are --user's
        s.server.store = grey::greylist::open_store(s.store, {.redis = s.redis});
        if (!metrics_at.empty()) s.metrics = metrics_at;
        if (!s.metrics.empty()) {
            metrics.emplace(examples::endpoint_or_throw(s.metrics));
            s.server.metrics = &metrics->metrics();
            fmt::print("metrics on http://{}/metrics\n", grey::ServerCore<GreylistHandler>::format(metrics->local_endpoint()));
        }
        log.emplace(s.log_file);
        s.server.log = [&log](const std::string& line) { log->write(line); };
        lists = std::make_shared<grey::greylist::shared_lists>(s.lists);
        s.server.lists = lists;
        if (s.upstreams.empty() && s.policy_listen.empty()) make_maildir(s.maildir);
        privs->as_root();  // to bind
    } catch (const CLI::Error& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        fmt::print(stderr, "greylist_server: {}\n", e.what());
        return 1;
    }

    // The embedded upstream: a Maildir sink in this process, a guest on an io_context and a
    // thread of its own. A guest takes no signals: SIGTERM is the proxy's, which drains into
    // the sink, and the sink is stopped after it.
    asio::io_context sink_context(1);
    std::optional<grey::ServerCore<MaildirSink>> sink;
    std::thread sink_thread;
    if (s.upstreams.empty() && s.policy_listen.empty()) {
        maildir_config mc;
        mc.listen = {s.maildir_listen};
        mc.maildir = s.maildir;
        sink.emplace(sink_context, mc);
        try {
            sink->listen();
        } catch (const std::exception& e) {
            fmt::print(stderr, "greylist_server: embedded Maildir sink: {}\n", e.what());
            return 1;
        }
        for (const auto& ep : sink->local_endpoints())
            fmt::print("delivering to the embedded Maildir sink on {} ({})\n", grey::ServerCore<MaildirSink>::format(ep),
                       s.maildir.string());
        // A sink on port 0 gets its port now: point the proxy at it.
        s.server.smtp_port = sink->local_endpoints().front().port();
    }
    // Once every port is bound: give root up (--user), start the sink, tell systemd.
    const examples::on_listening listening = [&](const std::string& where) {
        try {
            privs->drop();
        } catch (const std::exception& e) {
            fmt::print(stderr, "greylist_server: refusing to run as root: {}\n", e.what());
            return false;
        }
        if (privs->active()) fmt::print("running as user {}\n", privs->user());
        std::fflush(stdout);
        if (sink) {
            sink->start();
            sink_thread = std::thread([&] { sink_context.run(); });
        }
        examples::sd_notify("READY=1\nSTATUS=" + where);
        return true;
    };

    // SIGHUP: re-read the lists; hourly: forget expired greylist records.
    asio::io_context control;
    asio::signal_set hup(control, SIGHUP);
    std::function<void()> wait_hup = [&] {
        hup.async_wait([&](asio::error_code ec, int) {
            if (ec) return;
            examples::sd_notify(examples::sd_reloading());
            greylist_server::settings fresh;
            try {
                if (!config_file.empty()) greylist_server::load_file(config_file, fresh);
                read_whitelist_files(fresh);
                lists->replace(fresh.lists);
                fmt::print(stderr, "greylist_server: lists reloaded from {}\n", describe_sources(config_file, fresh));
            } catch (const std::exception& e) {
                fmt::print(stderr, "greylist_server: reload failed, keeping the old lists: {}\n", e.what());
            }
            examples::sd_notify("READY=1");
            wait_hup();
        });
    };
    wait_hup();
    asio::steady_timer purge_timer(control);
    std::function<void()> schedule_purge = [&] {
        purge_timer.expires_after(std::chrono::hours(1));
        purge_timer.async_wait([&](asio::error_code ec) {
            if (ec) return;
            asio::co_spawn(control, s.server.store->purge(s.server.timing, grey::greylist::clock::now()),
                           grey::diagnostics::reported{"purge"});
            schedule_purge();
        });
    };
    schedule_purge();
    std::thread control_thread([&] { control.run(); });

    int status = 0;
    if (!s.policy_listen.empty()) {
        status = serve_policy(s, listening);
    } else {
        if (!s.server.tls.enabled())
            fmt::print("STARTTLS not offered: give a certificate with --tls-cert FILE --tls-key FILE, "
                       "or in grey.toml's [tls]\n");
        grey::ServerCore<GreylistHandler> server(s.server);
        status = examples::serve(server, listening);
    }

    if (sink) sink->stop();  // the io_context runs out of work once the sink has stopped
    if (sink_thread.joinable()) sink_thread.join();
    hup.cancel();
    purge_timer.cancel();
    control_thread.join();
    return status;
}
