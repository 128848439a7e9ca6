// examples/greylist_server/settings.hpp — greylist_server's settings: defaults, the TOML file
// (grey.toml documents every option), and checks that name the offending line.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include <grey/dns/dnsbl_site.hpp>
#include <grey/dns/settings.hpp>
#include <grey/greylist/greylisting_policy.hpp>
#include <grey/greylist/postgrey_whitelists.hpp>
#include <grey/greylist/privacy.hpp>
#include <grey/greylist/redis_settings.hpp>
#include <grey/policy/server.hpp>

#include "../common/server_options.hpp"

namespace greylist_server {

struct settings {
    /// Listening, upstreams, limits, greylisting. No upstreams (server.upstreams empty): the
    /// embedded Maildir sink.
    grey::greylist::greylist_config server;
    std::string store = "sqlite:greylist.db";
    /// [greylist.redis]: options of a redis:// store (grey.toml), under the URL's own.
    std::map<std::string, std::string> redis;
    std::string log_file;                    ///< empty: standard output
    std::string metrics;                     ///< HOST:PORT for GET /metrics; empty: none
    std::filesystem::path maildir = "Maildir";
    grey::endpoint maildir_listen{"127.0.0.1", 2526};
    grey::greylist::lists lists;
    /// Postgrey's whitelist files (greylist.whitelist_clients, --whitelist-clients; the same for
    /// recipients), read into lists.files by load_whitelist_files().
    std::vector<std::string> whitelist_clients, whitelist_recipients;
    /// Postfix policy service mode: where to listen ("inet:HOST:PORT", "unix:PATH"). When
    /// there are any, the policy service runs instead of the SMTP proxy.
    std::vector<grey::policy::listen_address> policy_listen;
    grey::policy::settings policy;
    std::filesystem::perms policy_socket_mode = std::filesystem::perms(0666);
};

/// The text of a policy answer goes on one line: no CR, LF or NUL. Empty when it is fine,
/// else what is wrong.
inline std::string bad_policy_text(std::string_view text) {
    if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
        return "must be one line (no CR, LF or NUL)";
    return {};
}

/// A configuration mistake, with the file and line it is on when there is one.
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

namespace detail {

class reader {
  public:
    reader(std::string file) : file_(std::move(file)) {}

    [[noreturn]] void fail(const toml::node& at, std::string_view what) const {
        throw config_error(fmt::format("{}:{}: {}", file_, at.source().begin.line, what));
    }

    /// Refuses keys the program does not know: a typo must not silently become a default.
    void only(const toml::table& t, std::string_view section, std::initializer_list<std::string_view> known) const {
        for (auto&& [key, value] : t) {
            bool ok = false;
            for (auto k : known) ok = ok || key.str() == k;
            if (!ok)
                fail(value, section.empty() ? fmt::format("unknown option '{}'", key.str())
                                            : fmt::format("unknown option '{}.{}'", section, key.str()));
        }
    }

    /// A duration given in whole seconds.
    template <class Rep, class Period>
    void get_seconds(const toml::table& t, std::string_view section, std::string_view key,
                     std::chrono::duration<Rep, Period>& out) const {
        auto v = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(out).count());
        get(t, section, key, v);
        out = std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(std::chrono::seconds(v));
    }

    /// One of the names in `choices`, given as a string.
    template <class T>
    void get_choice(const toml::table& t, std::string_view section, std::string_view key,
                    const std::map<std::string, T>& choices, T& out) const {
        std::string name;
        get(t, section, key, name);
        if (name.empty()) return;
        const auto found = choices.find(name);
        if (found == choices.end()) {
            std::string names;
            for (const auto& [n, v] : choices) names += (names.empty() ? "" : ", ") + n;
            fail(*t.get(key), fmt::format("'{}.{}' must be one of {}, not '{}'", section, key, names, name));
        }
        out = found->second;
    }

    template <class T>
    void get(const toml::table& t, std::string_view section, std::string_view key, T& out) const {
        const toml::node* n = t.get(key);
        if (!n) return;
        const auto name = fmt::format("{}.{}", section, key);
        if constexpr (std::is_same_v<T, bool>) {
            auto v = n->value<bool>();
            if (!v) fail(*n, fmt::format("'{}' must be true or false", name));
            out = *v;
        } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
            auto v = n->value<std::int64_t>();
            if (!v || *v < std::numeric_limits<T>::min() || *v > std::numeric_limits<T>::max())
                fail(*n, fmt::format("'{}' must be a whole number from {} to {}", name, std::numeric_limits<T>::min(),
                                     std::numeric_limits<T>::max()));
            out = static_cast<T>(*v);
        } else if constexpr (std::is_integral_v<T>) {
            auto v = n->value<std::int64_t>();
            if (!v || *v < 0 || static_cast<std::uint64_t>(*v) > std::numeric_limits<T>::max())
                fail(*n, fmt::format("'{}' must be a whole number from 0 to {}", name, std::numeric_limits<T>::max()));
            out = static_cast<T>(*v);
        } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>) {
            auto v = n->value<std::string>();
            if (!v) fail(*n, fmt::format("'{}' must be a string", name));
            out = *v;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            const toml::array* a = n->as_array();
            if (!a) fail(*n, fmt::format("'{}' must be a list of strings", name));
            out.clear();
            for (const toml::node& e : *a) {
                auto v = e.value<std::string>();
                if (!v) fail(e, fmt::format("'{}' must be a list of strings", name));
                out.push_back(*v);
            }
        }
    }

    const std::string& file() const { return file_; }

  private:
    std::string file_;
};

inline grey::endpoint endpoint_at(const reader& r, const toml::node& at, std::string_view name, const std::string& text) {
    auto e = grey::parse_endpoint(text);
    if (!e) r.fail(at, fmt::format("'{}' must be HOST:PORT, not '{}'", name, text));
    return *e;
}

} // namespace detail

/// Reads `path` over the defaults already in `s`. Throws config_error.
inline void load_file(const std::string& path, settings& s) {
    toml::table root;
    try {
        root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        if (e.source().begin.line == 0) throw config_error(fmt::format("cannot read {}: {}", path, e.description()));
        throw config_error(fmt::format("{}:{}: {}", path, e.source().begin.line, e.description()));
    }
    const detail::reader r(path);
    r.only(root, "", {"server", "tls", "upstream_tls", "greylist", "relay", "whitelist", "whitelist_nonstandard", "log", "maildir",
                      "policy", "dns", "reputation"});
    auto section = [&](std::string_view name) -> const toml::table* {
        const toml::node* n = root.get(name);
        if (!n) return nullptr;
        if (!n->is_table()) r.fail(*n, fmt::format("'{}' must be a section", name));
        return n->as_table();
    };

    grey::server_config& c = s.server;
    if (const toml::table* t = section("server")) {
        r.only(*t, "server", {"listen", "upstream", "servername", "threads", "greet_pause_ms", "drain_seconds",
                              "max_connections", "max_connections_per_ip", "max_message_size", "max_recipients",
                              "command_timeout", "upstream_timeout", "upstream_pool", "upstream_idle_seconds", "upstream_retry",
                              "improper_pipelining", "upstream_identity", "proxy_listen", "proxy_from", "metrics"});
        std::vector<std::string> listen;
        r.get(*t, "server", "listen", listen);
        if (!listen.empty()) {
            c.listen.clear();
            for (const auto& l : listen) c.listen.push_back(detail::endpoint_at(r, *t->get("listen"), "server.listen", l));
        }
        std::vector<std::string> proxy_listen, proxy_from;
        r.get(*t, "server", "proxy_listen", proxy_listen);
        r.get(*t, "server", "proxy_from", proxy_from);
        try {
            for (auto& e : examples::proxy_endpoints(proxy_listen, proxy_from)) c.listen.push_back(std::move(e));
        } catch (const CLI::ValidationError& e) {
            r.fail(*t, fmt::format("'server.proxy_listen', 'server.proxy_from': {}", e.what()));
        }
        r.get(*t, "server", "metrics", s.metrics);
        if (!s.metrics.empty()) detail::endpoint_at(r, *t->get("metrics"), "server.metrics", s.metrics);
        // One upstream as a string, or several in order of preference as a list of strings.
        if (const toml::node* n = t->get("upstream")) {
            std::vector<std::string> upstreams;
            if (n->is_string()) {
                std::string one;
                r.get(*t, "server", "upstream", one);
                if (!one.empty()) upstreams.push_back(one);
            } else if (n->is_array()) {
                r.get(*t, "server", "upstream", upstreams);
            } else {
                r.fail(*n, "'server.upstream' must be a string or a list of strings");
            }
            for (const auto& u : upstreams) detail::endpoint_at(r, *n, "server.upstream", u);
            if (upstreams.empty()) c.upstreams.clear();
            else examples::set_upstreams(c, upstreams);
        }
        r.get(*t, "server", "servername", c.servername);
        r.get(*t, "server", "threads", c.threads);
        unsigned greet_ms = 0, drain = 30;
        r.get(*t, "server", "greet_pause_ms", greet_ms);
        r.get(*t, "server", "drain_seconds", drain);
        c.greet_pause = std::chrono::milliseconds(greet_ms);
        c.drain = std::chrono::seconds(drain);
        r.get(*t, "server", "max_connections", c.limits.max_connections);
        r.get(*t, "server", "max_connections_per_ip", c.limits.max_connections_per_ip);
        r.get(*t, "server", "max_message_size", c.limits.max_message_size);
        r.get(*t, "server", "max_recipients", c.limits.max_recipients);
        // Seconds; 0: RFC 5321's.
        unsigned command_timeout = 0, upstream_timeout = 0;
        r.get(*t, "server", "command_timeout", command_timeout);
        r.get(*t, "server", "upstream_timeout", upstream_timeout);
        if (command_timeout) c.timeouts.command = c.timeouts.data_block = std::chrono::seconds(command_timeout);
        if (upstream_timeout) {
            auto& u = c.timeouts;
            u.upstream_connect = u.upstream_greeting = u.upstream_command = u.upstream_data_init =
                u.upstream_data_block = u.upstream_data_term = std::chrono::seconds(upstream_timeout);
        }
        r.get(*t, "server", "upstream_pool", c.upstream_pool_size);
        r.get_seconds(*t, "server", "upstream_idle_seconds", c.upstream_idle_timeout);
        r.get_seconds(*t, "server", "upstream_retry", c.upstream_retry);
        r.get_choice(*t, "server", "improper_pipelining", examples::pipelining_policies, c.improper_pipelining);
        r.get_choice(*t, "server", "upstream_identity", examples::identity_policies, c.upstream_identity);
    }

    if (const toml::table* t = section("tls")) {
        r.only(*t, "tls", {"certificate", "key", "required", "handshake_timeout", "ciphers", "tls13_suites", "resumption",
                           "session_lifetime", "session_cache_size"});
        grey::tls::server_settings& tls = c.tls;
        r.get(*t, "tls", "certificate", tls.certificate_chain_file);
        r.get(*t, "tls", "key", tls.private_key_file);
        // A file that cannot be read is named with its line here; one that does not load as a
        // certificate or key is named when TLS is set up, before the server listens.
        for (auto [key, file] : {std::pair{"certificate", &tls.certificate_chain_file}, std::pair{"key", &tls.private_key_file}}) {
            if (file->empty()) continue;
            std::FILE* f = std::fopen(file->c_str(), "rb");
            if (!f) r.fail(*t->get(key), fmt::format("'tls.{}': cannot read {}: {}", key, *file, std::strerror(errno)));
            std::fclose(f);
        }
        r.get(*t, "tls", "required", tls.required);
        r.get_seconds(*t, "tls", "handshake_timeout", tls.handshake_timeout);
        r.get(*t, "tls", "ciphers", tls.ciphers);
        r.get(*t, "tls", "tls13_suites", tls.tls13_suites);
        r.get(*t, "tls", "resumption", tls.resumption);
        r.get_seconds(*t, "tls", "session_lifetime", tls.session_lifetime);
        if (tls.session_lifetime < std::chrono::seconds(1) ||
            tls.session_lifetime > std::chrono::seconds(examples::max_session_lifetime))
            r.fail(*t->get("session_lifetime"),
                   fmt::format("'tls.session_lifetime' must be at least 1 second and at most {} (7 days)",
                               examples::max_session_lifetime));
        r.get(*t, "tls", "session_cache_size", tls.session_cache_size);
    }

    if (const toml::table* t = section("upstream_tls")) {
        r.only(*t, "upstream_tls", {"policy", "ca_file", "server_name"});
        r.get_choice(*t, "upstream_tls", "policy", examples::upstream_tls_policies, c.upstream_tls.policy);
        r.get(*t, "upstream_tls", "ca_file", c.upstream_tls.ca_file);
        r.get(*t, "upstream_tls", "server_name", c.upstream_tls.server_name);
    }

    grey::greylist::greylist_config& g = s.server;
    if (const toml::table* t = section("greylist")) {
        r.only(*t, "greylist", {"store", "preset", "delay", "retry_window", "max_age", "too_soon", "ipv4_prefix",
                                "ipv6_prefix", "auto_whitelist_after", "add_header", "privacy", "normalise", "redis",
                                "whitelist_clients", "whitelist_recipients"});
        r.get(*t, "greylist", "store", s.store);
        std::string preset;
        r.get(*t, "greylist", "preset", preset);
        if (preset == "kamaelia") g.timing = grey::greylist::timing::kamaelia();
        else if (preset == "postgrey" || preset.empty()) g.timing = grey::greylist::timing::postgrey();
        else r.fail(*t->get("preset"), fmt::format("'greylist.preset' must be \"postgrey\" or \"kamaelia\", not '{}'", preset));
        auto seconds = [&](std::string_view key, std::chrono::seconds& out) { r.get_seconds(*t, "greylist", key, out); };
        seconds("delay", g.timing.delay);
        seconds("retry_window", g.timing.retry_window);
        seconds("max_age", g.timing.max_age);
        seconds("too_soon", g.timing.too_soon);
        r.get(*t, "greylist", "ipv4_prefix", g.grouping.ipv4_prefix);
        r.get(*t, "greylist", "ipv6_prefix", g.grouping.ipv6_prefix);
        if (g.grouping.ipv4_prefix > 32) r.fail(*t->get("ipv4_prefix"), "'greylist.ipv4_prefix' must be 0 to 32");
        if (g.grouping.ipv6_prefix > 128) r.fail(*t->get("ipv6_prefix"), "'greylist.ipv6_prefix' must be 0 to 128");
        r.get(*t, "greylist", "auto_whitelist_after", g.auto_whitelist_after);
        r.get(*t, "greylist", "add_header", g.add_header);
        r.get(*t, "greylist", "whitelist_clients", s.whitelist_clients);
        r.get(*t, "greylist", "whitelist_recipients", s.whitelist_recipients);
        bool privacy = false;
        r.get(*t, "greylist", "privacy", privacy);
        if (privacy) g.transform = grey::greylist::hashed;
        if (const toml::node* n = t->get("normalise")) {
            const toml::table* nt = n->as_table();
            if (!nt) r.fail(*n, "'greylist.normalise' must be a section");
            r.only(*nt, "greylist.normalise",
                   {"lowercase_domain", "unwrap_batv", "unwrap_srs", "strip_extension", "fold_digits"});
            r.get(*nt, "greylist.normalise", "lowercase_domain", g.normalisation.lowercase_domain);
            r.get(*nt, "greylist.normalise", "unwrap_batv", g.normalisation.unwrap_batv);
            r.get(*nt, "greylist.normalise", "unwrap_srs", g.normalisation.unwrap_srs);
            r.get(*nt, "greylist.normalise", "strip_extension", g.normalisation.strip_extension);
            r.get(*nt, "greylist.normalise", "fold_digits", g.normalisation.fold_digits);
        }
        if (const toml::node* n = t->get("redis")) {
            const toml::table* rt = n->as_table();
            if (!rt) r.fail(*n, "'greylist.redis' must be a section");
            // The same words as a redis:// URL's query, checked now so that a mistake names its line.
            grey::greylist::redis_settings check;
            s.redis.clear();
            for (auto&& [key, value] : *rt) {
                std::string text;
                if (auto v = value.value<std::string>(); v && value.is_string()) text = *v;
                else if (auto b = value.value<bool>(); b && value.is_boolean()) text = *b ? "true" : "false";
                else if (auto i = value.value<std::int64_t>(); i && value.is_integer() && *i >= 0) text = std::to_string(*i);
                else r.fail(value, fmt::format("'greylist.redis.{}' must be a string, a whole number or true/false", key.str()));
                if (auto e = grey::greylist::apply_redis_option(check, key.str(), text); !e.empty())
                    r.fail(value, fmt::format("'greylist.redis': {}", e));
                s.redis[std::string(key.str())] = text;
            }
            if (auto e = grey::greylist::check_redis_settings(check); !e.empty()) r.fail(*n, fmt::format("'greylist.redis': {}", e));
        }
    }

    grey::greylist::reputation_settings& rep = g.reputation;
    if (const toml::table* t = section("dns")) {
        r.only(*t, "dns", {"resolvers", "query_timeout_ms", "budget_ms"});
        std::vector<std::string> resolvers;
        r.get(*t, "dns", "resolvers", resolvers);
        for (std::size_t i = 0; i < resolvers.size(); ++i)
            if (!grey::dns::unbound_server(resolvers[i]))
                r.fail((*t->get("resolvers")->as_array())[i],
                       fmt::format("'dns.resolvers': '{}' is not IP:PORT or [IPv6]:PORT", resolvers[i]));
        if (t->get("resolvers")) rep.resolver.servers = resolvers;
        unsigned timeout_ms = static_cast<unsigned>(rep.resolver.query_timeout.count());
        unsigned budget_ms = static_cast<unsigned>(rep.budget.count());
        r.get(*t, "dns", "query_timeout_ms", timeout_ms);
        r.get(*t, "dns", "budget_ms", budget_ms);
        if (timeout_ms == 0) r.fail(*t->get("query_timeout_ms"), "'dns.query_timeout_ms' must be at least 1");
        if (budget_ms == 0) r.fail(*t->get("budget_ms"), "'dns.budget_ms' must be at least 1");
        rep.resolver.query_timeout = std::chrono::milliseconds(timeout_ms);
        rep.budget = std::chrono::milliseconds(budget_ms);
    }
    if (const toml::table* t = section("reputation")) {
        r.only(*t, "reputation", {"enabled", "dnsbl_sites", "local_networks", "allow_threshold", "suspicious_threshold",
                                  "refuse_threshold", "suspicious_delay", "identity_whitelist_after", "check_helo",
                                  "check_spf", "weights"});
        r.get(*t, "reputation", "enabled", rep.enabled);
        r.get(*t, "reputation", "check_helo", rep.check_helo);
        r.get(*t, "reputation", "identity_whitelist_after", rep.identity_whitelist_after);
        r.get(*t, "reputation", "check_spf", rep.check_spf);
        std::vector<std::string> sites;
        r.get(*t, "reputation", "dnsbl_sites", sites);
        if (t->get("dnsbl_sites")) rep.dnsbl_sites.clear();
        for (std::size_t i = 0; i < sites.size(); ++i) {
            auto site = grey::dns::parse_dnsbl_site(sites[i]);
            if (!site)
                r.fail((*t->get("dnsbl_sites")->as_array())[i],
                       fmt::format("'reputation.dnsbl_sites': '{}' is not DOMAIN[=FILTER][*WEIGHT]", sites[i]));
            rep.dnsbl_sites.push_back(*site);
        }
        std::vector<std::string> nets;
        r.get(*t, "reputation", "local_networks", nets);
        if (t->get("local_networks")) rep.local_networks.clear();
        for (std::size_t i = 0; i < nets.size(); ++i) {
            auto n = grey::network::parse(nets[i]);
            if (!n)
                r.fail((*t->get("local_networks")->as_array())[i],
                       fmt::format("'reputation.local_networks': '{}' is not a network in CIDR notation", nets[i]));
            rep.local_networks.push_back(*n);
        }
        grey::greylist::tier_settings& tiers = rep.tiers;
        r.get(*t, "reputation", "allow_threshold", tiers.allow_threshold);
        r.get(*t, "reputation", "suspicious_threshold", tiers.suspicious_threshold);
        if (t->get("refuse_threshold")) {
            int refuse = 0;
            r.get(*t, "reputation", "refuse_threshold", refuse);
            tiers.refuse_threshold = refuse;
        }
        r.get_seconds(*t, "reputation", "suspicious_delay", tiers.suspicious_delay);
        if (const toml::node* n = t->get("weights")) {
            const toml::table* wt = n->as_table();
            if (!wt) r.fail(*n, "'reputation.weights' must be a table");
            r.only(*wt, "reputation.weights", {"no_fcrdns", "generic_name", "helo_unknown", "spf_fail", "spf_softfail",
                                                       "spf_pass"});
            grey::greylist::evidence_weights& w = tiers.weights;
            r.get(*wt, "reputation.weights", "no_fcrdns", w.no_fcrdns);
            r.get(*wt, "reputation.weights", "generic_name", w.generic_name);
            r.get(*wt, "reputation.weights", "helo_unknown", w.helo_unknown);
            r.get(*wt, "reputation.weights", "spf_fail", w.spf_fail);
            r.get(*wt, "reputation.weights", "spf_softfail", w.spf_softfail);
            r.get(*wt, "reputation.weights", "spf_pass", w.spf_pass);
        }
        if (tiers.allow_threshold >= tiers.suspicious_threshold)
            r.fail(*t, "'reputation.allow_threshold' must be below 'reputation.suspicious_threshold'");
        if (tiers.refuse_threshold && *tiers.refuse_threshold <= tiers.allow_threshold)
            r.fail(*t->get("refuse_threshold"), "'reputation.refuse_threshold' must be above 'reputation.allow_threshold'");
    }

    grey::greylist::lists& l = s.lists;
    if (const toml::table* t = section("relay")) {
        r.only(*t, "relay", {"allowed_domains", "allowed_senders", "allowed_sender_nets"});
        r.get(*t, "relay", "allowed_domains", l.allowed_domains);
        r.get(*t, "relay", "allowed_senders", l.allowed_senders);
        std::vector<std::string> nets;
        r.get(*t, "relay", "allowed_sender_nets", nets);
        l.allowed_sender_nets.clear();
        std::size_t i = 0;
        for (const auto& text : nets) {
            auto n = grey::greylist::network::parse(text);
            if (!n) r.fail((*t->get("allowed_sender_nets")->as_array())[i], fmt::format("'relay.allowed_sender_nets': '{}' is not a network in CIDR notation", text));
            l.allowed_sender_nets.push_back(*n);
            ++i;
        }
    }
    auto each_entry = [&](std::string_view name, auto&& take) {
        const toml::node* n = root.get(name);
        if (!n) return;
        const toml::array* a = n->as_array();
        if (!a) r.fail(*n, fmt::format("'{}' must be a list of entries ([[{}]])", name, name));
        for (const toml::node& e : *a) {
            const toml::table* t = e.as_table();
            if (!t) r.fail(e, fmt::format("'{}' entries must be tables", name));
            take(*t);
        }
    };
    l.whitelisted_triples.clear();
    each_entry("whitelist", [&](const toml::table& t) {
        r.only(t, "whitelist", {"peer", "sender", "recipient"});
        grey::greylist::whitelisted_triple w;
        r.get(t, "whitelist", "peer", w.peer);
        r.get(t, "whitelist", "sender", w.sender);
        r.get(t, "whitelist", "recipient", w.recipient);
        if (w.peer.empty() || w.recipient.empty()) r.fail(t, "a [[whitelist]] entry needs peer and recipient");
        l.whitelisted_triples.push_back(std::move(w));
    });
    l.whitelisted_nonstandard_triples.clear();
    each_entry("whitelist_nonstandard", [&](const toml::table& t) {
        r.only(t, "whitelist_nonstandard", {"helo", "address_prefix", "recipient"});
        grey::greylist::whitelisted_nonstandard_triple w;
        r.get(t, "whitelist_nonstandard", "helo", w.helo);
        r.get(t, "whitelist_nonstandard", "address_prefix", w.address_prefix);
        r.get(t, "whitelist_nonstandard", "recipient", w.recipient);
        if (w.helo.empty() || w.recipient.empty()) r.fail(t, "a [[whitelist_nonstandard]] entry needs helo and recipient");
        l.whitelisted_nonstandard_triples.push_back(std::move(w));
    });

    if (const toml::table* t = section("policy")) {
        r.only(*t, "policy", {"listen", "greylist_text", "unavailable_text", "refused_text", "socket_mode", "idle_timeout",
                              "request_timeout", "max_connections", "max_line", "max_attributes", "max_request"});
        grey::policy::settings& p = s.policy;
        std::vector<std::string> listen;
        r.get(*t, "policy", "listen", listen);
        if (t->get("listen")) s.policy_listen.clear();
        for (std::size_t i = 0; i < listen.size(); ++i) {
            auto a = grey::policy::parse_listen_address(listen[i]);
            if (!a)
                r.fail((*t->get("listen")->as_array())[i],
                       fmt::format("'policy.listen': '{}' is not inet:HOST:PORT or unix:PATH", listen[i]));
            s.policy_listen.push_back(*a);
        }
        for (auto [key, text] : {std::pair{"greylist_text", &p.greylist_text}, std::pair{"unavailable_text", &p.unavailable_text},
                                  std::pair{"refused_text", &p.refused_text}}) {
            r.get(*t, "policy", key, *text);
            if (auto bad = bad_policy_text(*text); !bad.empty()) r.fail(*t->get(key), fmt::format("'policy.{}' {}", key, bad));
        }
        std::string mode;
        r.get(*t, "policy", "socket_mode", mode);
        if (!mode.empty()) {
            unsigned bits = 0;
            bool ok = mode.size() >= 3 && mode.size() <= 4;
            for (char c : mode) {
                ok = ok && c >= '0' && c <= '7';
                bits = bits * 8 + unsigned(c - '0');
            }
            if (!ok || bits > 0777)
                r.fail(*t->get("socket_mode"), fmt::format("'policy.socket_mode' must be octal permissions such as \"0666\", not '{}'", mode));
            s.policy_socket_mode = std::filesystem::perms(bits);
        }
        r.get_seconds(*t, "policy", "idle_timeout", p.idle_timeout);
        r.get_seconds(*t, "policy", "request_timeout", p.request_timeout);
        r.get(*t, "policy", "max_connections", p.max_connections);
        r.get(*t, "policy", "max_line", p.limits.max_line);
        r.get(*t, "policy", "max_attributes", p.limits.max_attributes);
        r.get(*t, "policy", "max_request", p.limits.max_request);
        if (p.limits.max_line < 16) r.fail(*t->get("max_line"), "'policy.max_line' must be at least 16");
        if (p.limits.max_request < p.limits.max_line)
            r.fail(t->get("max_request") ? *t->get("max_request") : *t, "'policy.max_request' must be at least 'policy.max_line'");
        if (p.max_connections == 0) r.fail(*t->get("max_connections"), "'policy.max_connections' must be at least 1");
    }

    if (const toml::table* t = section("log")) {
        r.only(*t, "log", {"file"});
        r.get(*t, "log", "file", s.log_file);
    }
    if (const toml::table* t = section("maildir")) {
        r.only(*t, "maildir", {"path", "listen"});
        r.get(*t, "maildir", "path", s.maildir);
        std::string listen;
        r.get(*t, "maildir", "listen", listen);
        if (!listen.empty()) s.maildir_listen = detail::endpoint_at(r, *t->get("listen"), "maildir.listen", listen);
    }
}

/// Reads the Postgrey whitelist files that `s` names into s.lists.files (none named: none).
/// Throws config_error naming every line it could not take, with its file and line: an entry
/// that Postgrey would have skipped with a warning must not go unnoticed.
inline void load_whitelist_files(settings& s) {
    std::vector<std::filesystem::path> clients(s.whitelist_clients.begin(), s.whitelist_clients.end());
    std::vector<std::filesystem::path> recipients(s.whitelist_recipients.begin(), s.whitelist_recipients.end());
    std::vector<grey::greylist::whitelist_error> errors;
    s.lists.files = grey::greylist::read_postgrey_whitelists(clients, recipients, errors);
    if (errors.empty()) return;
    std::string what;
    for (const auto& e : errors) what += (what.empty() ? "" : "\n") + e.message();
    throw config_error(what);
}

} // namespace greylist_server
