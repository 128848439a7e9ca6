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
#include <optional>
#include <thread>

#include <grey/grey.hpp>
#include <grey/greylist/greylisting_policy.hpp>
#include <grey/greylist/open_relay.hpp>
#include <grey/greylist/open_store.hpp>
#include <grey/line_log.hpp>
#include <grey/policy/server.hpp>

#include "../common/privileges.hpp"
#include "../common/sd_notify.hpp"
#include "../common/metrics_service.hpp"
#include "../common/server_options.hpp"
#include "../maildir_sink/maildir_sink.hpp"
#include "command_line.hpp"
#include "settings.hpp"

struct GreylistHandler : grey::greylist::GreyListingPolicy<GreylistHandler> {
    using GreyListingPolicy::GreyListingPolicy;
};

namespace {

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
    // The service takes the server's settings that apply to it: [server] threads and drain,
    // the name in X-Greylist, the metrics.
    grey::policy::settings policy = s.policy;
    policy.servername = s.server.servername;
    policy.threads = s.server.threads;
    policy.drain = s.server.drain;
    policy.metrics = s.server.metrics;
    grey::policy::server server(s.server, std::move(policy), s.policy_listen, s.policy_socket_mode);
    return examples::serve(server, [&server] { return server.local_addresses(); }, "policy service listening on",
                           "policy service on", listening,
                           "(Postgrey's policy service listens on 10023 too: stop it, or give --policy another address)");
}

/// Whether accepted mail goes to the Maildir sink in this process: no upstream, and an SMTP
/// proxy rather than a policy service.
bool embedded_sink(const greylist_server::settings& s) { return s.server.upstreams.empty() && s.policy_listen.empty(); }

} // namespace

int main(int argc, char** argv) {
    greylist_server::settings s;
    s.server.port = 2525;
    CLI::App app{"greylist_server: a greylisting SMTP proxy"};
    const greylist_server::command_line flags(app, s);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ValidationError& e) {
        // A value that will not do (a file that does not exist): a configuration error, said
        // as the file's are. Usage errors keep CLI11's answer and its hint.
        fmt::print(stderr, "greylist_server: {}\n", e.what());
        return 1;
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }

    std::optional<grey::line_log> log;
    std::optional<examples::metrics_service> metrics;
    std::shared_ptr<grey::greylist::shared_lists> lists;
    std::optional<examples::privileges> privs;
    try {
        privs.emplace(flags.user, flags.group);
        flags.configure(s);
        // In policy mode Postfix decides relaying (smtpd_relay_restrictions) before it asks.
        if (s.policy_listen.empty())
            if (auto why = grey::greylist::open_relay_reason(s.server.listen_endpoints(), s.lists); !why.empty())
                throw greylist_server::config_error("refusing to start: " + why);
        if (s.server.upstreams.empty()) {
            s.server.smtp_ip = s.maildir_listen.host;
            s.server.smtp_port = s.maildir_listen.port;
        }
        privs->as_user();  // the store, the log and the Maildir are --user's
        s.server.store = grey::greylist::open_store(s.store, {.redis = s.redis});
        if (!s.metrics.empty()) {
            metrics.emplace(examples::endpoint_or_throw(s.metrics));
            s.server.metrics = &metrics->metrics();
            s.server.reputation.resolver.metrics = s.server.metrics;
            s.server.metrics->watch_store(grey::greylist::store_kind(s.store),
                                          [store = s.server.store] { return store->health().available(); });
            fmt::print("metrics on http://{}/metrics\n", grey::ServerCore<GreylistHandler>::format(metrics->local_endpoint()));
        }
        log.emplace(s.log_file);  // whole lines from every thread, written in batches when busy
        s.server.log = [&log](const std::string& line) { log->write(line); };
        lists = std::make_shared<grey::greylist::shared_lists>(s.lists);
        s.server.lists = lists;
        if (embedded_sink(s)) make_maildir(s.maildir);
        privs->as_root();  // to bind
    } catch (const CLI::Error& e) {
        // A flag's value that will not do (a certificate that does not load): a configuration
        // error, said as the file's are, not a usage error.
        fmt::print(stderr, "greylist_server: {}\n", e.what());
        return 1;
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
    if (embedded_sink(s)) {
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
                flags.read_files(fresh);
                lists->replace(fresh.lists);
                fmt::print(stderr, "greylist_server: lists reloaded from {}\n", describe_sources(flags.config_file, fresh));
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
