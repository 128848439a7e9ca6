// grey/redis/client.hpp — a Redis client: connections kept open, logged in, and reopened;
// in a Redis Cluster, each command sent to the master of its key's slot.
//
// The client runs its connections on a thread of its own; a caller hands it a coroutine with
// run(), which suspends the caller instead of blocking its thread, and inside it sends
// commands with call(). As production runs it (settings.hpp): each connection logs in (AUTH,
// with an ACL user when given) and SELECTs its database before any command, all within
// connect_timeout. While a node is unreachable, calls to it fail at once with the reason of
// the last attempt, and the client tries again only after a backoff (reconnect_backoff.hpp,
// 100 ms doubling to 5 s by default): a Redis that is down costs each call no wait and Redis
// no storm of connections, and a Redis that comes back is used again without a restart.
//
// Through sentinels, each connection asks them where the master is, and checks it (ROLE). In
// a cluster, the client reads which master serves which slot (CLUSTER SLOTS, slot.hpp), sends
// each command to its key's master, follows MOVED (and reads the map again) and ASK (once,
// after ASKING), and reads the map again after a node fails or demotes. Commands never go to
// replicas: every decision writes, and a replica's answer may be older than the master's.
// Link grey::redis (hiredis) to use it.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <asio/ssl/context.hpp>

#include "../detail/asio.hpp"
#include "../diagnostics.hpp"
#include "settings.hpp"
#include "../result.hpp"
#include "../tls/context.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "reconnect_backoff.hpp"
#include "resp.hpp"
#include "slot.hpp"

namespace grey::redis {
/// @addtogroup group_greylist
/// @{

/// Connections to one Redis, to the master a set of sentinels names, or to a cluster's
/// masters, run on the client's own thread: opened when needed, logged in, and reopened
/// after a backoff when they break.
class client {
  public:
    /// Throws std::invalid_argument for settings that cannot work, std::runtime_error for a
    /// password file or TLS file that cannot be read: a client that cannot log in must not start.
    explicit client(redis_settings settings)
        : settings_(checked(std::move(settings))), tls_context_(make_tls_context(settings_)),
          main_(node_address{settings_.host, settings_.port}, new_backoff()), thread_([this] { ioc_.run(); }) {}

    /// Through sentinels or in a cluster, the longest wait between attempts: a failover ends
    /// while the attempts are backing off, and Grey should hear of it within a second, not
    /// after the doubling has reached reconnect_max.
    static constexpr std::chrono::milliseconds sentinel_longest_wait{1000};
    /// In a cluster, the shortest time between two readings of the slot map: a master that
    /// is down makes every call to it ask for one.
    static constexpr std::chrono::milliseconds slot_map_interval{100};
    /// In a cluster, how many MOVED, ASK and TRYAGAIN one call follows before it gives up.
    static constexpr int most_redirections = 5;
    /// In a cluster, how long a call waits before it tries again after TRYAGAIN: a reshard
    /// moves a slot's keys a few at a time, so a decision whose two keys were parted (one
    /// moved, one not yet) finds them together again a moment later.
    static constexpr std::chrono::milliseconds try_again_wait{20};

    /// Closes the connections, fails the calls in flight, and waits for the thread to end.
    ~client() {
        asio::post(ioc_, [this] {
            // On the thread that runs the sockets.
            close(main_);
            for (auto& [where, l] : links_) close(*l);
            work_.reset();
        });
        thread_.join();
    }

    /// Not copyable: it owns a thread and its connections.
    client(const client&) = delete;
    /// Not copyable: it owns a thread and its connections.
    client& operator=(const client&) = delete;

    /// The settings it runs with.
    const redis_settings& settings() const noexcept { return settings_; }

    /// Runs `op` on the client's thread; the caller resumes on its own executor.
    template <class T>
    asio::awaitable<T> run(asio::awaitable<T> op) {
        co_return co_await asio::co_spawn(ioc_, std::move(op), asio::use_awaitable);
    }

    /// `command` (RESP, from command()) on the master that serves `key`: the one Redis, the
    /// master the sentinels name, or in a cluster the master of the key's slot, following
    /// redirections. Redis's error replies are replies, except READONLY (a demoted master:
    /// not_master, and the next call connects again). While a node cannot be reached, the
    /// reason of the last attempt, at once. On the client's thread only: inside run().
    asio::awaitable<result<reply>> call(const std::string& key, const std::string& command) {
        if (!settings_.in_cluster()) {
            auto c = co_await acquire(main_);
            if (!c) co_return c.error();
            auto r = co_await (*c)->call(command);
            if (r && demoted(*r)) {
                // A master demoted since this connection was opened (a failover): the next
                // call connects again, and through sentinels finds the new master.
                (*c)->close();
                co_return redis_errc::not_master;
            }
            co_return r;
        }
        co_return co_await call_in_cluster(key, command);
    }

    /// A connection to each master: the one Redis's, or one to each master of the cluster,
    /// for commands that every master must answer (SCAN). On the client's thread only.
    asio::awaitable<result<std::vector<std::shared_ptr<connection>>>> masters() {
        std::vector<std::shared_ptr<connection>> all;
        if (!settings_.in_cluster()) {
            auto c = co_await acquire(main_);
            if (!c) co_return c.error();
            all.push_back(std::move(*c));
            co_return all;
        }
        co_await read_slot_map_when_due();
        if (slots_.empty()) co_return map_error_;
        const std::vector<node_address> serving = serving_;  // named: the loop suspends
        for (const node_address& m : serving) {
            auto c = co_await acquire(link_to(m));
            if (!c) co_return c.error();
            all.push_back(std::move(*c));
        }
        co_return all;
    }

    /// In a cluster: why a master that serves slots cannot be reached, while the others can;
    /// empty when every master answers (or Redis is not a cluster). Calls for the other
    /// masters' slots still succeed, so an outage of one master must be said by this, not by
    /// their outcomes. Safe to call from any thread.
    std::error_code master_down() const {
        if (!master_down_flag_.load(std::memory_order_relaxed)) return {};
        const std::lock_guard lock(master_down_mutex_);
        return master_down_;
    }

  private:
    // One node's connection, with its own backoff: the one Redis (or the sentinels' master),
    // or one of a cluster's nodes.
    struct link {
        link(node_address at, reconnect_backoff b) : where(std::move(at)), backoff(b) {}
        node_address where;
        reconnect_backoff backoff;
        std::shared_ptr<connection> current;     // working or broken
        std::shared_ptr<connection> connecting;  // the one being opened
        std::shared_ptr<asio::steady_timer> attempt;  // while connecting: cancelled when done
        std::error_code last_error;                   // why the latest attempt failed
        std::error_code down;                         // why it failed, until it answers again
    };

    reconnect_backoff new_backoff() const {
        const bool followed = settings_.via_sentinels() || settings_.in_cluster();
        return {settings_.reconnect_min, followed ? std::min(settings_.reconnect_max, sentinel_longest_wait)
                                                  : settings_.reconnect_max};
    }

    static void close(link& l) {
        if (l.current) l.current->close();
        if (l.connecting) l.connecting->abort(false);
    }

    static bool demoted(const reply& r) { return r.type == REDIS_REPLY_ERROR && r.text.starts_with("READONLY"); }

    link& link_to(const node_address& at) {
        auto& l = links_[at.text()];
        if (!l) l = std::make_unique<link>(at, new_backoff());
        return *l;
    }

    /// The link's connection, opened if there is none; while its node cannot be reached, the
    /// reason of the last attempt, at once, until the backoff lets the next call try again.
    asio::awaitable<result<std::shared_ptr<connection>>> acquire(link& l) {
        if (l.current && !l.current->broken()) co_return l.current;
        if (l.attempt) {
            // Another call is connecting: share its outcome rather than open a second one.
            const std::shared_ptr<asio::steady_timer> attempt = l.attempt;
            co_await attempt->async_wait(grey::detail::use_nothrow);
            if (l.current && !l.current->broken()) co_return l.current;
            co_return l.last_error ? l.last_error : std::error_code(redis_errc::connection_lost);
        }
        if (!l.backoff.may_try(std::chrono::steady_clock::now())) co_return l.last_error;
        l.attempt = std::make_shared<asio::steady_timer>(ioc_, asio::steady_timer::time_point::max());
        auto c = std::make_shared<connection>(ioc_.get_executor(), settings_.command_timeout);
        l.connecting = c;
        const std::error_code ec = co_await open_connection(l, c);
        l.connecting.reset();
        const std::shared_ptr<asio::steady_timer> attempt = std::move(l.attempt);
        l.attempt.reset();
        if (ec) {
            l.last_error = ec;
            l.current.reset();
            l.backoff.failed(std::chrono::steady_clock::now());
        } else {
            l.current = c;
            l.backoff.succeeded();
        }
        mark(l, ec);
        attempt->cancel();  // wakes the calls that waited for this attempt
        if (ec) co_return ec;
        co_return c;
    }

    asio::awaitable<result<reply>> call_in_cluster(const std::string& key, const std::string& command) {
        co_await read_slot_map_when_due();
        const std::uint16_t slot = key_slot(key);
        const node_address* owner = slots_.master_of(slot);
        if (!owner) co_return map_error_ ? map_error_ : std::error_code(redis_errc::cluster_down);
        node_address target = *owner;
        bool asking = false;
        for (int hop = 0; hop <= most_redirections; ++hop) {
            link& l = link_to(target);
            auto c = co_await acquire(l);
            if (!c) {
                slots_stale_ = true;  // the slot may have a new master by now
                co_return c.error();
            }
            result<reply> r{std::error_code(redis_errc::connection_lost)};
            if (asking) {
                // ASKING and the command in one piece: the flag is for the next command only.
                const std::string asked = redis::command("ASKING") + command;
                r = co_await (*c)->call(asked, 2);
            } else {
                r = co_await (*c)->call(command);
            }
            if (!r) {
                slots_stale_ = true;
                mark(l, r.error());
                co_return r.error();
            }
            if (r->type != REDIS_REPLY_ERROR) co_return r;
            if (r->text.starts_with("TRYAGAIN") && hop < most_redirections) {
                asio::steady_timer wait(ioc_, try_again_wait);
                co_await wait.async_wait(grey::detail::use_nothrow);
                continue;
            }
            if (auto to = parse_redirection(r->text)) {
                if (!to->ask) {
                    slots_.moved(to->slot, to->to);  // at once for this slot; the rest at the next reading
                    slots_stale_ = true;
                    if (std::find(serving_.begin(), serving_.end(), to->to) == serving_.end()) {
                        serving_.push_back(to->to);
                        note_masters_down();
                    }
                }
                target = to->to;
                asking = to->ask;
                continue;
            }
            if (demoted(*r)) {
                (*c)->close();
                slots_stale_ = true;
                co_return redis_errc::not_master;
            }
            if (r->text.starts_with("CLUSTERDOWN")) slots_stale_ = true;
            co_return r;
        }
        co_return redis_errc::too_many_redirections;
    }

    /// A cluster node's link answered (`ec` empty) or failed: master_down() follows.
    void mark(link& l, std::error_code ec) {
        if (!settings_.in_cluster() || l.down == ec) return;
        l.down = ec;
        note_masters_down();
    }

    /// master_down(): the first master of the map whose link has failed since it last answered.
    void note_masters_down() {
        std::error_code why;
        for (const node_address& m : serving_) {
            const auto l = links_.find(m.text());
            if (l != links_.end() && l->second->down) {
                why = l->second->down;
                break;
            }
        }
        const std::lock_guard lock(master_down_mutex_);
        master_down_ = why;
        master_down_flag_.store(static_cast<bool>(why), std::memory_order_relaxed);
    }

    /// Reads the slot map when there is none, or when it may be stale and was not read in the
    /// last slot_map_interval: from the masters known, then the nodes the settings name.
    asio::awaitable<void> read_slot_map_when_due() {
        if (!slots_.empty() && !slots_stale_) co_return;
        const auto now = std::chrono::steady_clock::now();
        if (reading_slots_) {
            // Another call is reading it: go on with the map there is, or wait for the first.
            if (!slots_.empty()) co_return;
            const std::shared_ptr<asio::steady_timer> reading = reading_slots_;
            co_await reading->async_wait(grey::detail::use_nothrow);
            co_return;
        }
        // Without a map, the first call reads it at once; after a failed reading, calls fail
        // with its reason (map_error_) until the interval has passed.
        const bool never_read = slots_read_at_ == std::chrono::steady_clock::time_point{};
        const bool interval_passed = now - slots_read_at_ >= slot_map_interval;
        if (!never_read && !interval_passed) co_return;
        reading_slots_ = std::make_shared<asio::steady_timer>(ioc_, asio::steady_timer::time_point::max());
        slots_read_at_ = now;
        std::vector<node_address> ask = serving_;
        for (const auto& n : settings_.cluster_nodes)
            if (std::find(ask.begin(), ask.end(), n) == ask.end()) ask.push_back(n);
        std::error_code why = redis_errc::cluster_down;
        for (const node_address& at : ask) {
            auto c = co_await acquire(link_to(at));
            if (!c) {
                why = c.error();
                continue;
            }
            const std::string cluster_slots_command = redis::command("CLUSTER", "SLOTS");
            auto r = co_await (*c)->call(cluster_slots_command);
            if (!r) {
                why = r.error();
                continue;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                why = reply_error(*r);
                continue;
            }
            auto m = slot_map::from_cluster_slots(*r, at);
            if (!m) {
                why = redis_errc::unexpected_reply;
                continue;
            }
            slots_ = std::move(*m);
            serving_ = slots_.serving();
            slots_stale_ = false;
            note_masters_down();
            why = {};
            break;
        }
        map_error_ = why;
        const std::shared_ptr<asio::steady_timer> reading = std::move(reading_slots_);
        reading_slots_.reset();
        reading->cancel();
    }

    static redis_settings checked(redis_settings s) {
        if (auto e = check_redis_settings(s); !e.empty()) throw std::invalid_argument("Redis: " + e);
        if (!s.password_file.empty() && !read_password_file(s.password_file))
            throw std::runtime_error("Redis: cannot read the password file " + s.password_file);
        return s;
    }

    static std::shared_ptr<asio::ssl::context> make_tls_context(const redis_settings& s) {
        if (!s.tls) return nullptr;
        auto ctx = tls::make_client_context(
            {s.tls_verify ? tls::upstream_policy::verify : tls::upstream_policy::encrypt, s.tls_ca_file, {}});
        if (!s.tls_certificate.empty()) {
            asio::error_code ec;
            ctx->use_certificate_chain_file(s.tls_certificate, ec);
            if (ec) throw std::runtime_error("Redis TLS: cannot load certificate " + s.tls_certificate + ": " + ec.message());
            ctx->use_private_key_file(s.tls_key, asio::ssl::context::pem, ec);
            if (ec) throw std::runtime_error("Redis TLS: cannot load key " + s.tls_key + ": " + ec.message());
        }
        return ctx;
    }

    /// The first line of `path`, without its line end; nothing when it cannot be read.
    static std::optional<std::string> read_password_file(const std::string& path) {
        std::ifstream in(path);
        if (!in) return std::nullopt;
        std::string line;
        std::getline(in, line);
        if (in.bad()) return std::nullopt;
        while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
        return line;
    }

    /// Connects, logs in and selects the database, all within connect_timeout. Through
    /// sentinels: asks them where the master is first, and checks that it is one (ROLE).
    asio::awaitable<std::error_code> open_connection(link& l, const std::shared_ptr<connection>& c) {
        redis_settings where = settings_;
        where.host = l.where.host;
        where.port = l.where.port;
        if (settings_.via_sentinels()) {
            auto master = co_await ask_sentinels();
            if (!master) co_return master.error();
            where.host = master->host;
            where.port = master->port;
        }
        asio::steady_timer guard(ioc_, settings_.connect_timeout);
        guard.async_wait([c](std::error_code ec) {
            if (!ec) c->abort(true);
        });
        std::error_code ec = co_await c->open(where, tls_context_.get());
        if (!ec) ec = co_await login(*c, settings_.user, settings_.password, settings_.password_file, settings_.database);
        if (!ec && settings_.via_sentinels()) ec = co_await check_master(*c);
        guard.cancel();
        if (c->timed_out()) ec = redis_errc::connect_timeout;
        if (ec) c->close();
        co_return ec;
    }

    /// The master's address, from the first sentinel that knows it, starting with the one
    /// that answered last time; each sentinel within connect_timeout. A sentinel that failed
    /// while another answered is reported, once for each new reason: the set works, but one
    /// of its sentinels is down or refuses Grey's login. When none answered because they
    /// refused the login, or their certificates did not verify, that is the reason given.
    asio::awaitable<result<sentinel_address>> ask_sentinels() {
        const auto& all = settings_.sentinels;
        sentinel_failures_.resize(all.size());
        std::vector<std::pair<std::size_t, std::error_code>> failed;
        for (std::size_t i = 0; i < all.size(); ++i) {
            const std::size_t k = (sentinel_ + i) % all.size();
            redis_settings at = settings_;
            at.host = all[k].host;
            at.port = all[k].port;
            auto s = std::make_shared<connection>(ioc_.get_executor(), settings_.connect_timeout);
            asio::steady_timer guard(ioc_, settings_.connect_timeout);
            guard.async_wait([s](std::error_code ec) {
                if (!ec) s->abort(true);
            });
            std::error_code ec = co_await s->open(at, tls_context_.get());
            const std::string no_password_file;  // named: GCC 12 and temporaries across co_await
            if (!ec) ec = co_await login(*s, settings_.sentinel_user, settings_.sentinel_password, no_password_file, 0);
            std::optional<sentinel_address> master;
            if (!ec) {
                const std::string ask = command("SENTINEL", "get-master-addr-by-name", settings_.master_name);
                auto r = co_await s->call(ask);
                std::uint64_t port = 0;
                if (r && r->type == REDIS_REPLY_ARRAY && r->elements.size() == 2 &&
                    r->elements[0].type == REDIS_REPLY_STRING && r->elements[1].type == REDIS_REPLY_STRING &&
                    detail::parse_number(r->elements[1].text, 65535, port) && port > 0)
                    master = sentinel_address{r->elements[0].text, static_cast<std::uint16_t>(port)};
                else ec = r ? std::error_code(redis_errc::no_master) : r.error();
            }
            if (s->timed_out()) ec = redis_errc::connect_timeout;
            guard.cancel();
            s->close();
            if (master) {
                sentinel_ = k;
                sentinel_failures_[k] = {};
                for (const auto& [which, why] : failed) report_sentinel(which, why);
                co_return *master;
            }
            failed.emplace_back(k, ec);
        }
        const auto any = [&failed](auto is) {
            return std::any_of(failed.begin(), failed.end(), [&is](const auto& f) { return is(f.second); });
        };
        if (any([](std::error_code e) { return e == redis_errc::auth_failed || e == redis_errc::auth_required; }))
            co_return redis_errc::sentinel_login;
        if (any([](std::error_code e) { return e == redis_errc::tls_failed; })) co_return redis_errc::tls_failed;
        co_return redis_errc::no_master;
    }

    void report_sentinel(std::size_t which, std::error_code why) {
        if (sentinel_failures_[which] == why) return;
        sentinel_failures_[which] = why;
        const std::string text = "Redis Sentinel " + settings_.sentinels[which].text() + " did not name the master of " +
                                 settings_.master_name + " (the others did): " + why.message();
        grey::diagnostics::report(grey::diagnostics::level::warning, "redis sentinel", text);
    }

    /// ROLE: a sentinel's answer may be a moment old, and a demoted master takes no writes.
    static asio::awaitable<std::error_code> check_master(connection& c) {
        const std::string role = command("ROLE");
        auto r = co_await c.call(role);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_ARRAY || r->elements.empty() || r->elements[0].text != "master")
            co_return redis_errc::not_master;
        co_return std::error_code{};
    }

    /// AUTH (with the ACL user when there is one) and SELECT, before any other command; then
    /// PING, so that a Redis that wants a password says so now, not at the first check.
    asio::awaitable<std::error_code> login(connection& c, const std::string& user, const std::string& configured_password,
                                           const std::string& password_file, unsigned database) {
        std::string password = configured_password;
        if (!password_file.empty()) {
            // Read at each connection: a rotated password needs no restart.
            auto p = read_password_file(password_file);
            if (!p) co_return redis_errc::password_file;
            password = std::move(*p);
        }
        std::string auth;
        if (!user.empty()) auth = command("AUTH", user, password);
        else if (!password.empty()) auth = command("AUTH", password);
        if (!auth.empty()) {
            auto r = co_await c.call(auth);
            if (!r) co_return r.error();
            if (r->type == REDIS_REPLY_ERROR) co_return redis_errc::auth_failed;
        }
        if (database != 0) {
            const std::string select = command("SELECT", std::to_string(database));
            auto r = co_await c.call(select);
            if (!r) co_return r.error();
            if (r->type == REDIS_REPLY_ERROR)
                co_return r->text.starts_with("NOAUTH") ? redis_errc::auth_required : redis_errc::select_failed;
        }
        const std::string ping = command("PING");
        auto r = co_await c.call(ping);
        if (!r) co_return r.error();
        if (r->type == REDIS_REPLY_ERROR) co_return reply_error(*r);
        co_return std::error_code{};
    }

    redis_settings settings_;
    std::shared_ptr<asio::ssl::context> tls_context_;  // with rediss://
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
    // Used on the client's thread only:
    link main_;                  // the one Redis, or the master the sentinels name
    std::size_t sentinel_ = 0;   // the sentinel asked first: the last that answered
    std::vector<std::error_code> sentinel_failures_;  // each sentinel's reported failure
    std::map<std::string, std::unique_ptr<link>> links_;  // a cluster's nodes, by "HOST:PORT"
    slot_map slots_;                                      // a cluster's masters, by slot
    std::vector<node_address> serving_;                   // the masters that serve a slot, each once
    bool slots_stale_ = false;                            // a node has failed or redirected since
    std::chrono::steady_clock::time_point slots_read_at_;  // the latest reading, or attempt
    std::shared_ptr<asio::steady_timer> reading_slots_;    // while reading: cancelled when done
    std::error_code map_error_;                            // why the latest reading failed
    // master_down(), for every thread:
    std::atomic<bool> master_down_flag_{false};
    mutable std::mutex master_down_mutex_;
    std::error_code master_down_;
    std::thread thread_;
};

/// @}
} // namespace grey::redis
