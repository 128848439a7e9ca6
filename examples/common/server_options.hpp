// examples/common/server_options.hpp — the command-line flags the example servers share,
// bound to grey::server_config with CLI11, and the few lines that start a server and say where
// it listens. Copy it along with the example you start from.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
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

/// The longest a TLS session may be resumed for: TLS 1.3 tickets live at most 7 days (RFC 8446
/// §4.6.1).
inline constexpr unsigned max_session_lifetime = 7 * 24 * 3600;

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

/// The flags for any server, each declared here once: where to listen, where to relay, TLS,
/// limits and timeouts. A program declares the groups it offers (add_to(): all of them),
/// parses, then calls apply(), which changes only what the given flags name: a program that
/// reads a configuration file after parsing (greylist_server) has the command line win over
/// the file, and defaults stay the configuration's. The flags bind to this object, so it stays
/// where it is (no copy, no move) while the App lives.
class server_options {
  public:
    server_options() = default;
    /// Shows `defaults` as the flags' defaults (add_to() takes them from its `config`).
    explicit server_options(const grey::server_config& defaults) : values_(defaults) {}
    server_options(const server_options&) = delete;
    server_options& operator=(const server_options&) = delete;

    /// Every flag; `relays` adds the upstream ones.
    void add_to(CLI::App& app, const grey::server_config& config, bool relays) {
        values_ = config;
        add_listen(app);
        if (relays) {
            add_upstreams(app);
            add_upstream_connections(app);
            add_upstream_tls(app);
        }
        add_tls(app);
        add_client_certificates(app);
        add_limits(app);
    }

    /// --listen, --proxy-listen, --proxy-from. Any of them replaces every listening address.
    void add_listen(CLI::App& app) {
        auto* l = app.add_option("--listen", listen_,
                                 "Address to listen on, repeatable (default 127.0.0.1:" + std::to_string(values_.port) + ")")
                      ->type_name("HOST:PORT");
        auto* pl = app.add_option("--proxy-listen", proxy_listen_,
                                  "Address to listen on for a load balancer that opens each connection with a PROXY "
                                  "protocol header (v1 or v2), repeatable; needs --proxy-from")
                       ->type_name("HOST:PORT");
        auto* pf = app.add_option("--proxy-from", proxy_from_,
                                  "Network allowed to send the PROXY header, repeatable; others are closed unanswered")
                       ->type_name("CIDR");
        on_given({l, pl, pf}, [this](grey::server_config& c) {
            c.listen.clear();
            for (const auto& text : listen_) c.listen.push_back(endpoint_or_throw(text));
            for (auto& e : proxy_endpoints(proxy_listen_, proxy_from_)) c.listen.push_back(std::move(e));
        });
    }

    /// --upstream, --upstream-retry. `when_none` says what the server does with no --upstream
    /// (default: relay to the configuration's smtp_ip:smtp_port).
    void add_upstreams(CLI::App& app, std::string when_none = {}) {
        if (when_none.empty()) when_none = grey::format_endpoint(values_.smtp_ip, values_.smtp_port);
        auto* u = app.add_option("--upstream", upstreams_,
                                 "The real SMTP server to relay to; repeated, the servers in order of preference "
                                 "(failover: one that is down is skipped for --upstream-retry)")
                      ->type_name("HOST:PORT")
                      ->default_str(when_none);
        on_given({u}, [this](grey::server_config& c) { set_upstreams(c, upstreams_); });
        upstream_retry_seconds_ = seconds(values_.upstream_retry);
        auto* r = app.add_option("--upstream-retry", upstream_retry_seconds_,
                                 "Seconds an upstream that failed is skipped before it is tried again")
                      ->type_name("SECONDS")
                      ->capture_default_str();
        on_given({r}, [this](grey::server_config& c) { c.upstream_retry = std::chrono::seconds(upstream_retry_seconds_); });
    }

    /// --upstream-timeout, --upstream-pool, --upstream-idle-seconds.
    void add_upstream_connections(CLI::App& app) {
        auto* t = app.add_option("--upstream-timeout", upstream_timeout_,
                                 "Seconds to wait for each upstream answer (default: RFC 5321's)");
        on_given({t}, [this](grey::server_config& c) {
            if (!upstream_timeout_) return;  // 0: RFC 5321's, as the default
            const auto s = std::chrono::seconds(upstream_timeout_);
            auto& u = c.timeouts;
            u.upstream_connect = u.upstream_greeting = u.upstream_command = s;
            u.upstream_data_init = u.upstream_data_block = u.upstream_data_term = s;
        });
        bind(app.add_option("--upstream-pool", values_.upstream_pool_size,
                            "Idle upstream connections kept for reuse, per thread; they greet the upstream as "
                            "--servername (0: a connection per session, greeting with the client's HELO name)")
                 ->capture_default_str(),
             &grey::server_config::upstream_pool_size);
        upstream_idle_seconds_ = seconds(values_.upstream_idle_timeout);
        auto* i = app.add_option("--upstream-idle-seconds", upstream_idle_seconds_,
                                 "Seconds a pooled upstream connection may stay idle before it is closed")
                      ->capture_default_str();
        on_given({i}, [this](grey::server_config& c) {
            if (upstream_idle_seconds_) c.upstream_idle_timeout = std::chrono::seconds(upstream_idle_seconds_);
        });
    }

    /// --upstream-tls, --upstream-ca, --upstream-tls-name, --upstream-identity.
    void add_upstream_tls(CLI::App& app) {
        auto* p = app.add_option("--upstream-tls", values_.upstream_tls.policy,
                                 "TLS to the upstream: none, may (STARTTLS when offered), encrypt (required), "
                                 "verify (required, certificate checked)")
                      ->transform(CLI::CheckedTransformer(upstream_tls_policies, CLI::ignore_case).description(""))
                      ->type_name("none|may|encrypt|verify")
                      ->default_str("none");
        on_given({p}, [this](grey::server_config& c) { c.upstream_tls.policy = values_.upstream_tls.policy; });
        auto* ca = app.add_option("--upstream-ca", values_.upstream_tls.ca_file,
                                  "PEM CA bundle for --upstream-tls verify (default: the system's)")
                       ->check(CLI::ExistingFile);
        on_given({ca}, [this](grey::server_config& c) { c.upstream_tls.ca_file = values_.upstream_tls.ca_file; });
        auto* n = app.add_option("--upstream-tls-name", values_.upstream_tls.server_name,
                                 "Name the upstream's certificate must carry, sent as SNI (default: the --upstream host)");
        on_given({n}, [this](grey::server_config& c) { c.upstream_tls.server_name = values_.upstream_tls.server_name; });
        bind(app.add_option("--upstream-identity", values_.upstream_identity,
                            "Tell the upstream the client's identity: auto (XCLIENT if offered with ADDR, else "
                            "XFORWARD), xclient, xforward, none")
                 ->transform(CLI::CheckedTransformer(identity_policies, CLI::ignore_case).description(""))
                 ->type_name("auto|xclient|xforward|none")
                 ->default_str("auto"),
             &grey::server_config::upstream_identity);
    }

    /// --tls-cert, --tls-key, --tls-required, --tls-resumption, --tls-session-lifetime:
    /// STARTTLS for clients.
    void add_tls(CLI::App& app) {
        auto* cert = app.add_option("--tls-cert", values_.tls.certificate_chain_file,
                                    "PEM certificate chain: STARTTLS is offered to clients (reloaded on SIGHUP)")
                         ->check(CLI::ExistingFile);
        on_given({cert}, [this](grey::server_config& c) { c.tls.certificate_chain_file = values_.tls.certificate_chain_file; });
        auto* key = app.add_option("--tls-key", values_.tls.private_key_file, "PEM private key of --tls-cert")
                        ->check(CLI::ExistingFile);
        on_given({key}, [this](grey::server_config& c) { c.tls.private_key_file = values_.tls.private_key_file; });
        auto* required = app.add_flag("--tls-required", values_.tls.required, "Refuse MAIL before STARTTLS (530 5.7.0)");
        on_given({required}, [this](grey::server_config& c) { c.tls.required = values_.tls.required; });
        tls_resumption_ = values_.tls.resumption ? "on" : "off";
        auto* resumption = app.add_option("--tls-resumption", tls_resumption_,
                                          "Let a returning client resume its TLS session (tickets, TLS 1.2 session "
                                          "IDs): an abbreviated handshake")
                               ->check(CLI::IsMember({"on", "off"}).description(""))
                               ->type_name("on|off")
                               ->capture_default_str();
        on_given({resumption}, [this](grey::server_config& c) { c.tls.resumption = tls_resumption_ == "on"; });
        tls_session_seconds_ = seconds(values_.tls.session_lifetime);
        auto* lifetime = app.add_option("--tls-session-lifetime", tls_session_seconds_,
                                        "Seconds a TLS session may be resumed; the session ticket keys change as often")
                             ->check(CLI::Range(1u, max_session_lifetime))
                             ->type_name("SECONDS")
                             ->capture_default_str();
        on_given({lifetime}, [this](grey::server_config& c) {
            c.tls.session_lifetime = std::chrono::seconds(tls_session_seconds_);
        });
    }

    /// --tls-handshake-timeout, --tls-ask-client-cert, --tls-client-ca.
    void add_client_certificates(CLI::App& app) {
        tls_handshake_seconds_ = seconds(values_.tls.handshake_timeout);
        auto* h = app.add_option("--tls-handshake-timeout", tls_handshake_seconds_,
                                 "Seconds a client has to finish the TLS handshake")
                      ->capture_default_str();
        on_given({h}, [this](grey::server_config& c) { c.tls.handshake_timeout = std::chrono::seconds(tls_handshake_seconds_); });
        auto* ask = app.add_flag("--tls-ask-client-cert", values_.tls.ask_client_certificate,
                                 "Ask clients for a certificate (none is still accepted); hooks see its subject");
        on_given({ask}, [this](grey::server_config& c) { c.tls.ask_client_certificate = values_.tls.ask_client_certificate; });
        auto* ca = app.add_option("--tls-client-ca", values_.tls.client_ca_file,
                                  "PEM CA bundle that client certificates are verified against (asks for them)")
                       ->check(CLI::ExistingFile);
        on_given({ca}, [this](grey::server_config& c) { c.tls.client_ca_file = values_.tls.client_ca_file; });
    }

    /// --servername, --threads, the limits, --command-timeout, --greet-pause-ms,
    /// --improper-pipelining, --drain-seconds.
    void add_limits(CLI::App& app) {
        bind(app.add_option("--servername", values_.servername, "Name used in greetings and replies")->capture_default_str(),
             &grey::server_config::servername);
        bind(app.add_option("--threads", values_.threads, "Worker threads (0: one per core)")->capture_default_str(),
             &grey::server_config::threads);
        auto& limits = values_.limits;
        auto* mc = app.add_option("--max-connections", limits.max_connections)->capture_default_str();
        auto* mi = app.add_option("--max-connections-per-ip", limits.max_connections_per_ip)->capture_default_str();
        auto* ms = app.add_option("--max-message-size", limits.max_message_size, "Bytes")->capture_default_str();
        auto* mr = app.add_option("--max-recipients", limits.max_recipients)->capture_default_str();
        on_given({mc}, [this](grey::server_config& c) { c.limits.max_connections = values_.limits.max_connections; });
        on_given({mi}, [this](grey::server_config& c) { c.limits.max_connections_per_ip = values_.limits.max_connections_per_ip; });
        on_given({ms}, [this](grey::server_config& c) { c.limits.max_message_size = values_.limits.max_message_size; });
        on_given({mr}, [this](grey::server_config& c) { c.limits.max_recipients = values_.limits.max_recipients; });
        auto* ct = app.add_option("--command-timeout", command_timeout_,
                                  "Seconds to wait for the client's next command or data (default: 300)");
        on_given({ct}, [this](grey::server_config& c) {
            if (!command_timeout_) return;  // 0: RFC 5321's, as the default
            c.timeouts.command = c.timeouts.data_block = std::chrono::seconds(command_timeout_);
        });
        greet_pause_ms_ = static_cast<unsigned>(values_.greet_pause.count());
        auto* gp = app.add_option("--greet-pause-ms", greet_pause_ms_, "Wait before the greeting; clients that talk first are refused")
                       ->capture_default_str();
        on_given({gp}, [this](grey::server_config& c) { c.greet_pause = std::chrono::milliseconds(greet_pause_ms_); });
        bind(app.add_option("--improper-pipelining", values_.improper_pipelining,
                            "Commands or text sent ahead where RFC 2920 forbids it: refuse (554 5.5.0) or allow")
                 ->transform(CLI::CheckedTransformer(pipelining_policies, CLI::ignore_case).description(""))
                 ->type_name("refuse|allow")
                 ->default_str("refuse"),
             &grey::server_config::improper_pipelining);
        drain_seconds_ = seconds(values_.drain);
        auto* d = app.add_option("--drain-seconds", drain_seconds_, "On SIGTERM, how long open transactions may take to finish")
                      ->capture_default_str();
        on_given({d}, [this](grey::server_config& c) { c.drain = std::chrono::seconds(drain_seconds_); });
    }

    /// Writes what the given flags say into `config`, then checks its TLS settings on both legs
    /// (whichever gave them, flags or file): a certificate that does not load stops the program
    /// before it listens. Throws CLI::ValidationError.
    void apply(grey::server_config& config) const {
        for (const auto& [options, set] : given_)
            if (std::any_of(options.begin(), options.end(), [](const CLI::Option* o) { return o->count() > 0; }))
                set(config);
        check_tls(config.tls);
        check_upstream_tls(config.upstream_tls);
    }

  private:
    using setter = std::function<void(grey::server_config&)>;

    /// `set` runs in apply() when any of `options` was given.
    void on_given(std::initializer_list<CLI::Option*> options, setter set) {
        given_.emplace_back(std::vector<CLI::Option*>(options), std::move(set));
    }
    /// A flag bound to values_'s `field`, copied as it is.
    template <class T>
    void bind(CLI::Option* option, T grey::server_config::*field) {
        on_given({option}, [this, field](grey::server_config& c) { c.*field = values_.*field; });
    }
    template <class Duration>
    static unsigned seconds(Duration d) {
        return static_cast<unsigned>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
    }

    grey::server_config values_;  ///< what the flags say: the defaults, then what was given
    std::vector<std::string> listen_, proxy_listen_, proxy_from_, upstreams_;
    unsigned upstream_retry_seconds_ = 0, upstream_timeout_ = 0, upstream_idle_seconds_ = 0;
    unsigned tls_handshake_seconds_ = 0, command_timeout_ = 0, greet_pause_ms_ = 0, drain_seconds_ = 0;
    unsigned tls_session_seconds_ = 0;
    std::string tls_resumption_;
    std::vector<std::pair<std::vector<CLI::Option*>, setter>> given_;
};

/// Called once a server listens, before it serves, with where it listens; returning false
/// stops it there (greylist_server gives up root and tells systemd it is ready).
using on_listening = std::function<bool(const std::string& where)>;

/// Listens, prints `announce` and each address it listens on, serves until SIGINT/SIGTERM;
/// `listening` is told `status` and the addresses. Any server with listen(), handle_signals()
/// and run() (a ServerCore, the policy server); `addresses()` names where it listens. An
/// address already in use is reported with `in_use`, when given: who else may hold it.
/// Returns the exit code.
template <class Server, class Addresses>
int serve(Server& server, Addresses addresses, std::string_view announce, std::string_view status,
          const on_listening& listening, std::string_view in_use = {}) {
    try {
        server.listen();
    } catch (const std::system_error& e) {
        const bool taken = e.code() == asio::error::address_in_use && !in_use.empty();
        fmt::print(stderr, "error: {}{}{}\n", e.what(), taken ? " " : "", taken ? in_use : "");
        return 1;
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
