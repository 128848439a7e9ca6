// examples/common/server_options.hpp — the command-line flags the example servers share,
// bound to grey::server_config with CLI11, and the few lines that start a server and say where
// it listens. Copy it along with the example you start from.
#pragma once

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <grey/config.hpp>
#include <grey/server_core.hpp>
#include <grey/tls/context.hpp>

namespace examples {

inline grey::endpoint endpoint_or_throw(const std::string& text) {
    auto e = grey::parse_endpoint(text);
    if (!e) throw CLI::ValidationError(fmt::format("'{}' is not HOST:PORT", text));
    return *e;
}

/// Points `config` at `upstreams` (HOST:PORT each, at least one), in order of preference: the
/// first is also the seed's smtp_ip and smtp_port.
inline void set_upstreams(grey::server_config& config, const std::vector<std::string>& upstreams) {
    config.upstreams.clear();
    for (const auto& text : upstreams) config.upstreams.push_back(endpoint_or_throw(text));
    config.smtp_ip = config.upstreams.front().host;
    config.smtp_port = config.upstreams.front().port;
}

/// Endpoints that take the PROXY protocol from the `from` networks: every `listen` endpoint.
inline std::vector<grey::endpoint> proxy_endpoints(const std::vector<std::string>& listen,
                                                   const std::vector<std::string>& from) {
    if (listen.empty() != from.empty())
        throw CLI::ValidationError("--proxy-listen and --proxy-from go together");
    std::vector<grey::network> networks;
    for (const auto& text : from) {
        auto n = grey::network::parse(text);
        if (!n) throw CLI::ValidationError(fmt::format("'{}' is not a network in CIDR notation", text));
        networks.push_back(*n);
    }
    std::vector<grey::endpoint> endpoints;
    for (const auto& text : listen) {
        grey::endpoint e = endpoint_or_throw(text);
        e.proxy_from = networks;
        endpoints.push_back(std::move(e));
    }
    return endpoints;
}

inline const std::map<std::string, grey::tls::upstream_policy> upstream_tls_policies{
    {"none", grey::tls::upstream_policy::none}, {"may", grey::tls::upstream_policy::may},
    {"encrypt", grey::tls::upstream_policy::encrypt}, {"verify", grey::tls::upstream_policy::verify}};

inline const std::map<std::string, grey::upstream::identity_policy> identity_policies{
    {"auto", grey::upstream::identity_policy::automatic}, {"xclient", grey::upstream::identity_policy::xclient},
    {"xforward", grey::upstream::identity_policy::xforward}, {"none", grey::upstream::identity_policy::none}};

inline const std::map<std::string, grey::pipelining_policy> pipelining_policies{
    {"refuse", grey::pipelining_policy::refuse}, {"allow", grey::pipelining_policy::allow}};

/// A certificate without its key, or one that does not load, stops the program before it
/// listens, with the reason.
inline void check_tls(const grey::tls::server_settings& tls) {
    if (tls.certificate_chain_file.empty() != tls.private_key_file.empty())
        throw CLI::ValidationError("--tls-cert and --tls-key go together");
    if (tls.required && !tls.enabled()) throw CLI::ValidationError("--tls-required needs --tls-cert and --tls-key");
    if ((tls.ask_client_certificate || !tls.client_ca_file.empty()) && !tls.enabled())
        throw CLI::ValidationError("client certificates need --tls-cert and --tls-key");
    if (!tls.enabled()) return;
    try {
        grey::tls::make_server_context(tls);
    } catch (const std::exception& e) {
        throw CLI::ValidationError(e.what());
    }
}

inline void check_upstream_tls(const grey::tls::client_settings& tls) {
    if (tls.policy == grey::tls::upstream_policy::none) return;
    try {
        grey::tls::make_client_context(tls);
    } catch (const std::exception& e) {
        throw CLI::ValidationError(e.what());
    }
}

/// Flags for any server: where to listen, limits, timeouts. `relays` adds the upstream flags.
/// Call apply() after parsing.
struct server_options {
    std::vector<std::string> listen;
    std::vector<std::string> proxy_listen;
    std::vector<std::string> proxy_from;
    std::vector<std::string> upstreams;
    unsigned upstream_retry_seconds = 0;
    bool with_upstream = false;  // add_to() was told the server relays
    unsigned command_timeout = 0;
    unsigned upstream_timeout = 0;
    unsigned greet_pause_ms = 0;
    unsigned drain_seconds = 30;
    unsigned upstream_idle_seconds = 0;
    unsigned tls_handshake_timeout = 30;

    void add_to(CLI::App& app, grey::server_config& config, bool relays) {
        with_upstream = relays;
        app.add_option("--listen", listen, "Address to listen on, repeatable (default 127.0.0.1:"
                                           + std::to_string(config.port) + ")")
            ->type_name("HOST:PORT");
        app.add_option("--proxy-listen", proxy_listen,
                       "Address to listen on for a load balancer that opens each connection with a PROXY "
                       "protocol header (v1 or v2), repeatable; needs --proxy-from")
            ->type_name("HOST:PORT");
        app.add_option("--proxy-from", proxy_from,
                       "Network allowed to send the PROXY header, repeatable; others are closed unanswered")
            ->type_name("CIDR");
        if (relays) {
            app.add_option("--upstream", upstreams,
                           "The real SMTP server to relay to; repeated, the servers in order of preference "
                           "(failover: one that is down is skipped for --upstream-retry)")
                ->type_name("HOST:PORT")
                ->default_str(grey::format_endpoint(config.smtp_ip, config.smtp_port));
            upstream_retry_seconds = static_cast<unsigned>(
                std::chrono::duration_cast<std::chrono::seconds>(config.upstream_retry).count());
            app.add_option("--upstream-retry", upstream_retry_seconds,
                           "Seconds an upstream that failed is skipped before it is tried again")
                ->type_name("SECONDS")
                ->capture_default_str();
            app.add_option("--upstream-timeout", upstream_timeout,
                           "Seconds to wait for each upstream answer (default: RFC 5321's)");
            app.add_option("--upstream-pool", config.upstream_pool_size,
                           "Idle upstream connections kept for reuse, per thread; they greet the upstream as "
                           "--servername (0: a connection per session, greeting with the client's HELO name)")
                ->capture_default_str();
            app.add_option("--upstream-tls", config.upstream_tls.policy,
                           "TLS to the upstream: none, may (STARTTLS when offered), encrypt (required), "
                           "verify (required, certificate checked)")
                ->transform(CLI::CheckedTransformer(upstream_tls_policies, CLI::ignore_case).description(""))
                ->type_name("none|may|encrypt|verify")
                ->default_str("none");
            app.add_option("--upstream-ca", config.upstream_tls.ca_file,
                           "PEM CA bundle for --upstream-tls verify (default: the system's)")
                ->check(CLI::ExistingFile);
            app.add_option("--upstream-identity", config.upstream_identity,
                           "Tell the upstream the client's identity: auto (XCLIENT if offered with ADDR, else "
                           "XFORWARD), xclient, xforward, none")
                ->transform(CLI::CheckedTransformer(identity_policies, CLI::ignore_case).description(""))
                ->type_name("auto|xclient|xforward|none")
                ->default_str("auto");
            app.add_option("--upstream-tls-name", config.upstream_tls.server_name,
                           "Name the upstream's certificate must carry, sent as SNI (default: the --upstream host)");
            upstream_idle_seconds = static_cast<unsigned>(
                std::chrono::duration_cast<std::chrono::seconds>(config.upstream_idle_timeout).count());
            app.add_option("--upstream-idle-seconds", upstream_idle_seconds,
                           "Seconds a pooled upstream connection may stay idle before it is closed")
                ->capture_default_str();
        }
        app.add_option("--tls-cert", config.tls.certificate_chain_file,
                       "PEM certificate chain: STARTTLS is offered to clients (reloaded on SIGHUP)")
            ->check(CLI::ExistingFile);
        app.add_option("--tls-key", config.tls.private_key_file, "PEM private key of --tls-cert")
            ->check(CLI::ExistingFile);
        app.add_flag("--tls-required", config.tls.required, "Refuse MAIL before STARTTLS (530 5.7.0)");
        app.add_option("--tls-handshake-timeout", tls_handshake_timeout, "Seconds a client has to finish the TLS handshake")
            ->capture_default_str();
        app.add_flag("--tls-ask-client-cert", config.tls.ask_client_certificate,
                     "Ask clients for a certificate (none is still accepted); hooks see its subject");
        app.add_option("--tls-client-ca", config.tls.client_ca_file,
                       "PEM CA bundle that client certificates are verified against (asks for them)")
            ->check(CLI::ExistingFile);
        app.add_option("--servername", config.servername, "Name used in greetings and replies")
            ->capture_default_str();
        app.add_option("--threads", config.threads, "Worker threads (0: one per core)")->capture_default_str();
        app.add_option("--max-connections", config.limits.max_connections)->capture_default_str();
        app.add_option("--max-connections-per-ip", config.limits.max_connections_per_ip)->capture_default_str();
        app.add_option("--max-message-size", config.limits.max_message_size, "Bytes")->capture_default_str();
        app.add_option("--max-recipients", config.limits.max_recipients)->capture_default_str();
        app.add_option("--command-timeout", command_timeout,
                       "Seconds to wait for the client's next command or data (default: 300)");
        app.add_option("--greet-pause-ms", greet_pause_ms,
                       "Wait before the greeting; clients that talk first are refused")
            ->capture_default_str();
        app.add_option("--improper-pipelining", config.improper_pipelining,
                       "Commands or text sent ahead where RFC 2920 forbids it: refuse (554 5.5.0) or allow")
            ->transform(CLI::CheckedTransformer(pipelining_policies, CLI::ignore_case).description(""))
            ->type_name("refuse|allow")
            ->default_str("refuse");
        app.add_option("--drain-seconds", drain_seconds,
                       "On SIGTERM, how long open transactions may take to finish")
            ->capture_default_str();
    }

    void apply(grey::server_config& config) const {
        for (const auto& l : listen) config.listen.push_back(endpoint_or_throw(l));
        for (auto& e : proxy_endpoints(proxy_listen, proxy_from)) config.listen.push_back(std::move(e));
        if (!upstreams.empty()) set_upstreams(config, upstreams);
        if (with_upstream) config.upstream_retry = std::chrono::seconds(upstream_retry_seconds);
        if (command_timeout) {
            config.timeouts.command = std::chrono::seconds(command_timeout);
            config.timeouts.data_block = std::chrono::seconds(command_timeout);
        }
        if (upstream_timeout) {
            const auto t = std::chrono::seconds(upstream_timeout);
            auto& u = config.timeouts;
            u.upstream_connect = u.upstream_greeting = u.upstream_command = t;
            u.upstream_data_init = u.upstream_data_block = u.upstream_data_term = t;
        }
        if (upstream_idle_seconds) config.upstream_idle_timeout = std::chrono::seconds(upstream_idle_seconds);
        config.tls.handshake_timeout = std::chrono::seconds(tls_handshake_timeout);
        check_tls(config.tls);
        check_upstream_tls(config.upstream_tls);
        config.greet_pause = std::chrono::milliseconds(greet_pause_ms);
        config.drain = std::chrono::seconds(drain_seconds);
    }
};

/// Called once a server listens, before it serves, with where it listens; returning false
/// stops it there (greylist_server gives up root and tells systemd it is ready).
using on_listening = std::function<bool(const std::string& where)>;

/// Listens, prints `announce` and each address it listens on, serves until SIGINT/SIGTERM;
/// `listening` is told `status` and the addresses. Any server with listen(), handle_signals()
/// and run() (a ServerCore, the policy server); `addresses()` names where it listens.
/// Returns the exit code.
template <class Server, class Addresses>
int serve(Server& server, Addresses addresses, std::string_view announce, std::string_view status,
          const on_listening& listening) {
    try {
        server.listen();
    } catch (const std::exception& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    // Whoever reads the announcement may send SIGTERM at once: it must find the graceful stop.
    server.handle_signals();
    std::string where(status);
    for (const std::string& address : addresses()) {
        fmt::print("{} {}\n", announce, address);
        where += ' ';
        where += address;
    }
    std::fflush(stdout);
    if (listening && !listening(where)) return 1;
    server.run();
    return 0;
}

/// A ServerCore, announced as "listening on HOST:PORT".
template <class Handler>
int serve(grey::ServerCore<Handler>& server, const on_listening& listening = {}) {
    const auto addresses = [&server] {
        std::vector<std::string> out;
        for (const auto& ep : server.local_endpoints()) out.push_back(grey::ServerCore<Handler>::format(ep));
        return out;
    };
    return serve(server, addresses, "listening on", "listening on", listening);
}

} // namespace examples
