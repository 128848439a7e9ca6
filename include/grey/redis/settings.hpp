// grey/redis/settings.hpp — what a Redis client (and so the Redis store) is told: where Redis is (TCP, TLS or
// a unix socket), who to log in as, which database and key prefix, how long to wait, how fast
// to retry; and the URL form Redis users already know, parsed without I/O:
//
//   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTION=VALUE&...]
//   rediss://...                                        the same over TLS
//   redis+unix://[[USER]:PASSWORD@]/PATH/TO/SOCKET[?db=N&...]   (also unix://)
//   redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTERNAME[/DB][?...]
//   rediss-sentinel://...                               sentinels and data nodes over TLS
//   redis-cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][?...]
//   rediss-cluster://...                                the same over TLS
//
// With sentinels, the hosts are Redis Sentinels (port 26379 by default), asked in turn for the
// master of the set MASTERNAME; the user and password are the data nodes', and the sentinels'
// own (when they want one) are the options sentinel_user and sentinel_password. With a
// cluster, the hosts are some of its nodes (port 6379 by default), asked in turn which master
// serves which slot; a cluster has database 0 only.
//
// User, password, path and option values are percent-decoded, so a password may hold '@', ':'
// or '/' written as %40, %3A, %2F. The options (apply_redis_option) are the same words as
// greylist_server's [greylist.redis] keys.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace grey::redis {
/// @addtogroup group_greylist
/// @{

/// A Redis node's or a Redis Sentinel's address.
struct node_address {
    std::string host;           ///< a name or an address (IPv6 without brackets)
    std::uint16_t port = 6379;  ///< its TCP port

    /// "HOST:PORT", with brackets around an IPv6 address.
    std::string text() const {
        return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
    }
    /// The same host text and port.
    friend bool operator==(const node_address&, const node_address&) = default;
};

/// A Redis Sentinel's address (Sentinel's own port is 26379).
using sentinel_address = node_address;

/// How redis_store reaches Redis and how long it waits; parse_redis_url fills it from a URL.
struct redis_settings {
    std::string host = "127.0.0.1";  ///< a name or an address (IPv6 without brackets)
    std::uint16_t port = 6379;       ///< TCP port
    std::string unix_socket;  ///< a socket path: used instead of host and port (no TLS)
    std::string user;         ///< ACL user (Redis 6+); "" = AUTH with the password alone
    std::string password;     ///< "" = no AUTH, unless password_file names one
    /// A file whose first line is the password, read at each (re)connection: the password is
    /// not on a command line, and a rotated one needs no restart. Wins over `password`.
    std::string password_file;
    unsigned database = 0;        ///< SELECTed on each connection; 0 is Redis's default
    std::string prefix = "grey:";  ///< before every key; MX hosts sharing a greylist share it
    /// Resolve, connect, TLS, AUTH and SELECT must all be done within this.
    std::chrono::milliseconds connect_timeout{2000};
    /// A command unanswered this long ends its connection (pipelined replies come in order,
    /// so the ones behind it cannot be matched either): all of its calls fail.
    std::chrono::milliseconds command_timeout{2000};
    /// After a failed connection attempt calls fail at once, without trying, for
    /// `reconnect_min`; each further failure doubles the wait, up to `reconnect_max`. The
    /// first call after the wait tries again; a success resets it.
    std::chrono::milliseconds reconnect_min{100};
    /// The longest wait between attempts; through sentinels, at most 1000 ms, so that a
    /// failover is followed within a second of its end.
    std::chrono::milliseconds reconnect_max{5000};
    bool tls = false;              ///< rediss://: TLS 1.2 or 1.3 on the TCP connection
    bool tls_verify = true;        ///< check Redis's certificate (chain and name)
    std::string tls_ca_file;       ///< PEM bundle; "" = the system's trusted CAs
    std::string tls_server_name;   ///< the name its certificate carries; "" = host
    std::string tls_certificate;   ///< a client certificate (PEM) for tls-auth-clients
    std::string tls_key;           ///< its private key (PEM)

    /// When not empty: host and port are not used; these sentinels are asked, in turn, where
    /// the master of `master_name` is, at each connection.
    std::vector<sentinel_address> sentinels;
    std::string master_name;        ///< the set the sentinels monitor (their `sentinel monitor NAME`)
    std::string sentinel_user;      ///< the sentinels' ACL user; "" = AUTH with the password alone
    std::string sentinel_password;  ///< the sentinels' own requirepass; "" = no AUTH to them

    /// When not empty: a Redis Cluster, of which these are some nodes, asked in turn for the
    /// map of slots to masters; host and port are not used.
    std::vector<node_address> cluster_nodes;

    /// Whether Redis is reached over a unix socket rather than TCP.
    bool is_unix() const noexcept { return !unix_socket.empty(); }
    /// Whether the master is found through sentinels.
    bool via_sentinels() const noexcept { return !sentinels.empty(); }
    /// Whether Redis is a cluster: each key goes to the master of its slot.
    bool in_cluster() const noexcept { return !cluster_nodes.empty(); }
};

namespace detail {

inline int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// RFC 3986 §2.1 percent-decoding; false on a '%' not followed by two hex digits.
inline bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return false;
        const int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return true;
}

/// A whole number up to `max`, digits only.
inline bool parse_number(std::string_view s, std::uint64_t max, std::uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + std::uint64_t(c - '0');
    }
    if (v > max) return false;
    out = v;
    return true;
}

/// "HOST[:PORT][,HOST[:PORT]...]", IPv6 addresses in brackets, into `out`; "" or what is wrong.
inline std::string parse_host_list(std::string_view hosts, std::uint16_t default_port, std::vector<node_address>& out) {
    out.clear();
    while (true) {
        const auto comma = hosts.find(',');
        const std::string_view one = hosts.substr(0, comma);
        node_address a{{}, default_port};
        std::string_view port;
        if (!one.empty() && one.front() == '[') {
            const auto close = one.find(']');
            if (close == std::string_view::npos) return "an IPv6 address needs its closing ']'";
            a.host = std::string(one.substr(1, close - 1));
            const std::string_view after = one.substr(close + 1);
            if (!after.empty() && (after.front() != ':' || after.size() == 1)) return "expected ':PORT' after ']'";
            if (!after.empty()) port = after.substr(1);
        } else {
            const auto colon = one.find(':');
            a.host = std::string(one.substr(0, colon));
            if (colon != std::string_view::npos) {
                port = one.substr(colon + 1);
                if (port.empty()) return "an empty port";
            }
        }
        if (a.host.empty()) return "an empty address in the list HOST:PORT,HOST:PORT";
        std::uint64_t p = 0;
        if (!port.empty() && (!parse_number(port, 65535, p) || p == 0)) return "'" + std::string(port) + "' is not a port number";
        if (!port.empty()) a.port = static_cast<std::uint16_t>(p);
        out.push_back(std::move(a));
        if (comma == std::string_view::npos) return {};
        hosts.remove_prefix(comma + 1);
    }
}

} // namespace detail

/// Sets one option by name, as a URL's query or [greylist.redis] gives it: db, prefix,
/// user, password, password_file, connect_timeout_ms, command_timeout_ms, reconnect_min_ms,
/// reconnect_max_ms, tls_verify, tls_ca_file, tls_server_name, tls_certificate, tls_key,
/// sentinel_user, sentinel_password.
/// Returns "" or what is wrong.
inline std::string apply_redis_option(redis_settings& s, std::string_view name, std::string_view value) {
    using ms = std::chrono::milliseconds;
    std::uint64_t n = 0;
    auto milliseconds = [&](ms& out, std::uint64_t min) -> std::string {
        if (!detail::parse_number(value, 24ull * 3600 * 1000, n) || n < min)
            return "'" + std::string(name) + "' must be a whole number of milliseconds from " + std::to_string(min) +
                   ", not '" + std::string(value) + "'";
        out = ms(n);
        return {};
    };
    if (name == "db") {
        // Redis's `databases` is an int; SELECT refuses numbers beyond it, at connection time.
        if (!detail::parse_number(value, 2147483647, n))
            return "'db' must be a database number, not '" + std::string(value) + "'";
        s.database = static_cast<unsigned>(n);
        return {};
    }
    if (name == "prefix") return s.prefix = value, std::string();
    if (name == "user") return s.user = value, std::string();
    if (name == "password") return s.password = value, std::string();
    if (name == "password_file") return s.password_file = value, std::string();
    if (name == "connect_timeout_ms") return milliseconds(s.connect_timeout, 1);
    if (name == "command_timeout_ms") return milliseconds(s.command_timeout, 1);
    if (name == "reconnect_min_ms") return milliseconds(s.reconnect_min, 1);
    if (name == "reconnect_max_ms") return milliseconds(s.reconnect_max, 1);
    if (name == "tls_verify") {
        if (value == "true" || value == "yes" || value == "1") s.tls_verify = true;
        else if (value == "false" || value == "no" || value == "0") s.tls_verify = false;
        else return "'tls_verify' must be true or false, not '" + std::string(value) + "'";
        return {};
    }
    if (name == "tls_ca_file") return s.tls_ca_file = value, std::string();
    if (name == "tls_server_name") return s.tls_server_name = value, std::string();
    if (name == "tls_certificate") return s.tls_certificate = value, std::string();
    if (name == "tls_key") return s.tls_key = value, std::string();
    if (name == "sentinel_user") return s.sentinel_user = value, std::string();
    if (name == "sentinel_password") return s.sentinel_password = value, std::string();
    return "unknown Redis option '" + std::string(name) + "'";
}

/// Checks what options cannot check one at a time. Returns "" or what is wrong.
inline std::string check_redis_settings(const redis_settings& s) {
    if (s.reconnect_max < s.reconnect_min) return "'reconnect_max_ms' must be at least 'reconnect_min_ms'";
    if (s.tls && s.is_unix()) return "TLS is for TCP connections, not unix sockets";
    if (s.via_sentinels() && s.master_name.empty()) return "the sentinels need the name of the master set: /MASTERNAME";
    if (s.in_cluster() && s.via_sentinels()) return "a Redis Cluster fails over by itself: no sentinels with it";
    if (s.in_cluster() && s.database != 0) return "a Redis Cluster has database 0 only";
    // A brace in the prefix would become every key's hash tag: the whole greylist in one slot.
    if (s.in_cluster() && s.prefix.find_first_of("{}") != std::string::npos)
        return "'prefix' must not hold { or } with a Redis Cluster (they mark hash tags)";
    if (s.tls_certificate.empty() != s.tls_key.empty()) return "'tls_certificate' and 'tls_key' go together";
    if (s.prefix.find_first_of("*?[]\\") != std::string::npos)
        return "'prefix' must not hold *, ?, [, ] or \\ (they are SCAN pattern characters)";
    return {};
}

/// A parsed URL: the settings, or what is wrong with it.
struct redis_url {
    redis_settings settings;  ///< the base, with what the URL gives in place
    std::string error;        ///< "" when the URL is good

    /// True when the URL is good.
    explicit operator bool() const noexcept { return error.empty(); }
};

/// Parses a redis://, rediss://, redis+unix://, unix://, redis-sentinel://,
/// rediss-sentinel://, redis-cluster:// or rediss-cluster:// URL over `base` (the defaults, or
/// what a configuration file said): what the URL gives wins.
inline redis_url parse_redis_url(std::string_view url, redis_settings base = {}) {
    redis_url out{std::move(base), {}};
    redis_settings& s = out.settings;
    auto fail = [&](std::string what) {
        out.error = std::move(what);
        return out;
    };
    enum class kind { node, unix_socket, sentinels, cluster };
    kind k = kind::node;
    std::string_view rest;
    static constexpr std::tuple<std::string_view, kind, bool> schemes[] = {
        {"redis://", kind::node, false},          {"rediss://", kind::node, true},
        {"redis+unix://", kind::unix_socket, false}, {"unix://", kind::unix_socket, false},
        {"redis-sentinel://", kind::sentinels, false}, {"rediss-sentinel://", kind::sentinels, true},
        {"redis-cluster://", kind::cluster, false},  {"rediss-cluster://", kind::cluster, true},
    };
    bool known = false;
    for (auto [scheme, what, tls] : schemes) {
        if (url.substr(0, scheme.size()) != scheme) continue;
        rest = url.substr(scheme.size());
        k = what;
        s.tls = tls;
        known = true;
        break;
    }
    if (!known)
        return fail("a Redis URL starts with redis://, rediss://, redis+unix://, unix://, redis-sentinel://, "
                    "rediss-sentinel://, redis-cluster:// or rediss-cluster://");

    std::string_view query;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }

    // [[USER]:PASSWORD@]: the user information ends at the last '@' before the path.
    const auto path_start = rest.find('/');
    const std::string_view authority_part = rest.substr(0, path_start);
    if (const auto at = authority_part.rfind('@'); at != std::string_view::npos) {
        const std::string_view info = authority_part.substr(0, at);
        const auto colon = info.find(':');
        if (colon == std::string_view::npos)
            return fail("the password goes after a colon: redis://:PASSWORD@HOST or redis://USER:PASSWORD@HOST");
        if (!detail::percent_decode(info.substr(0, colon), s.user) ||
            !detail::percent_decode(info.substr(colon + 1), s.password))
            return fail("bad percent-encoding in the user or password");
        rest.remove_prefix(at + 1);
    }

    std::string_view db_text;
    if (k == kind::sentinels) {
        // HOST[:PORT][,HOST[:PORT]...]/MASTERNAME[/DB]
        const auto slash = rest.find('/');
        const std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        const auto name_end = path.find('/');
        if (!detail::percent_decode(path.substr(0, name_end), s.master_name) || s.master_name.empty())
            return fail("the sentinels need the name of the master set: redis-sentinel://HOST:PORT,.../MASTERNAME");
        if (name_end != std::string_view::npos) db_text = path.substr(name_end + 1);
        if (auto e = detail::parse_host_list(rest.substr(0, slash), 26379, s.sentinels); !e.empty()) return fail(std::move(e));
        s.cluster_nodes.clear();
        s.unix_socket.clear();
        if (!db_text.empty()) {
            if (auto e = apply_redis_option(s, "db", db_text); !e.empty()) return fail(std::move(e));
        }
    } else if (k == kind::cluster) {
        // HOST[:PORT][,HOST[:PORT]...], and no database: a cluster has only the first.
        const auto slash = rest.find('/');
        if (slash != std::string_view::npos && rest.substr(slash) != "/" && rest.substr(slash) != "/0")
            return fail("a Redis Cluster has database 0 only: redis-cluster://HOST:PORT,HOST:PORT");
        if (auto e = detail::parse_host_list(rest.substr(0, slash), 6379, s.cluster_nodes); !e.empty())
            return fail(std::move(e));
        s.sentinels.clear();
        s.master_name.clear();
        s.unix_socket.clear();
        s.database = 0;
    } else if (k == kind::unix_socket) {
        if (rest.empty() || rest.front() != '/') return fail("a unix socket URL needs an absolute path: redis+unix:///run/redis/redis.sock");
        if (!detail::percent_decode(rest, s.unix_socket)) return fail("bad percent-encoding in the socket path");
        s.sentinels.clear();
        s.cluster_nodes.clear();
    } else {
        const auto slash = rest.find('/');
        std::string_view hostport = rest.substr(0, slash);
        if (slash != std::string_view::npos) db_text = rest.substr(slash + 1);
        std::string_view host, port;
        if (!hostport.empty() && hostport.front() == '[') {
            const auto close = hostport.find(']');
            if (close == std::string_view::npos) return fail("an IPv6 address needs its closing ']'");
            host = hostport.substr(1, close - 1);
            const std::string_view after = hostport.substr(close + 1);
            if (!after.empty() && after.front() != ':') return fail("expected ':PORT' after ']'");
            if (!after.empty()) port = after.substr(1);
            if (!after.empty() && port.empty()) return fail("an empty port");
        } else {
            const auto colon = hostport.find(':');
            host = hostport.substr(0, colon);
            if (colon != std::string_view::npos) {
                port = hostport.substr(colon + 1);
                if (port.empty()) return fail("an empty port");
            }
        }
        if (host.empty()) return fail("no host: redis://HOST[:PORT][/DB]");
        s.host = std::string(host);
        std::uint64_t p = 0;
        if (!port.empty() && (!detail::parse_number(port, 65535, p) || p == 0))
            return fail("'" + std::string(port) + "' is not a port number");
        if (!port.empty()) s.port = static_cast<std::uint16_t>(p);
        s.unix_socket.clear();
        s.sentinels.clear();
        s.cluster_nodes.clear();
        if (!db_text.empty()) {
            if (auto e = apply_redis_option(s, "db", db_text); !e.empty()) return fail(std::move(e));
        }
    }

    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;
        const auto eq = pair.find('=');
        if (eq == std::string_view::npos) return fail("'" + std::string(pair) + "' must be NAME=VALUE");
        std::string name, value;
        if (!detail::percent_decode(pair.substr(0, eq), name) || !detail::percent_decode(pair.substr(eq + 1), value))
            return fail("bad percent-encoding in '" + std::string(pair) + "'");
        if (name == "db") {
            if (!db_text.empty()) return fail("the database is given twice: in the path and as ?db=");
        }
        if (auto e = apply_redis_option(s, name, value); !e.empty()) return fail(std::move(e));
    }
    if (auto e = check_redis_settings(s); !e.empty()) return fail(std::move(e));
    return out;
}

/// Where the settings point, for messages: "redis://HOST:PORT/DB" or the socket's path; never
/// the password.
inline std::string describe(const redis_settings& s) {
    auto list = [](const std::vector<node_address>& nodes) {
        std::string out;
        for (const auto& a : nodes) out += (out.empty() ? "" : ",") + a.text();
        return out;
    };
    if (s.in_cluster()) return (s.tls ? "rediss-cluster://" : "redis-cluster://") + list(s.cluster_nodes);
    if (s.via_sentinels()) {
        std::string where = (s.tls ? "rediss-sentinel://" : "redis-sentinel://") + list(s.sentinels);
        where += "/" + s.master_name;
        if (s.database != 0) where += "/" + std::to_string(s.database);
        return where;
    }
    std::string where = s.is_unix() ? "redis+unix://" + s.unix_socket
                                    : std::string(s.tls ? "rediss://" : "redis://") +
                                          (s.host.find(':') != std::string::npos ? "[" + s.host + "]" : s.host) + ":" +
                                          std::to_string(s.port);
    if (s.database != 0) where += (s.is_unix() ? "?db=" : "/") + std::to_string(s.database);
    return where;
}

/// @}
} // namespace grey::redis
