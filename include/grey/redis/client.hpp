// grey/redis/client.hpp — a Redis client: the connection kept open, logged in, and reopened.
//
// The client runs its connections on a thread of its own; a caller hands it a coroutine with
// run(), which suspends the caller instead of blocking its thread. acquire() gives the current
// connection (connection.hpp), or opens one. As production runs it (redis_settings.hpp):
// each connection logs in (AUTH, with an ACL user when given) and SELECTs its database before
// any command, all within connect_timeout. While Redis is unreachable, acquire() fails at once
// with the reason of the last attempt, and the client tries again only after a backoff
// (reconnect_backoff.hpp, 100 ms doubling to 5 s by default): a Redis that is down costs each
// call no wait and Redis no storm of connections, and a Redis that comes back is used again
// without a restart. Link grey::redis (hiredis) to use it.
#pragma once

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <asio/ssl/context.hpp>

#include "../detail/asio.hpp"
#include "settings.hpp"
#include "../result.hpp"
#include "../tls/context.hpp"
#include "connection.hpp"
#include "error.hpp"
#include "reconnect_backoff.hpp"
#include "resp.hpp"

namespace grey::redis {
/// @addtogroup group_greylist
/// @{

/// Connections to one Redis, run on the client's own thread: opened when needed, logged in,
/// and reopened after a backoff when they break.
class client {
  public:
    /// Throws std::invalid_argument for settings that cannot work, std::runtime_error for a
    /// password file or TLS file that cannot be read: a client that cannot log in must not start.
    explicit client(redis_settings settings)
        : settings_(checked(std::move(settings))), backoff_(settings_.reconnect_min, longest_wait(settings_)),
          tls_context_(make_tls_context(settings_)), thread_([this] { ioc_.run(); }) {}

    /// Through sentinels, the longest wait between attempts: a failover ends while the
    /// attempts are backing off, and Grey should hear of it within a second, not after the
    /// doubling has reached reconnect_max. Asking sentinels is what they are there for.
    static constexpr std::chrono::milliseconds sentinel_longest_wait{1000};

    /// Closes the connection, fails the calls in flight, and waits for the thread to end.
    ~client() {
        asio::post(ioc_, [this] {
            // On the thread that runs the sockets.
            if (connection_) connection_->close();
            if (connecting_) connecting_->abort(false);
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

    /// The connection, opened if there is none; while Redis cannot be reached, the reason of
    /// the last attempt, at once, until the backoff lets the next call try again. On the
    /// client's thread only: inside run().
    asio::awaitable<result<std::shared_ptr<connection>>> acquire() {
        if (connection_ && !connection_->broken()) co_return connection_;
        if (attempt_) {
            // Another call is connecting: share its outcome rather than open a second one.
            const std::shared_ptr<asio::steady_timer> attempt = attempt_;
            co_await attempt->async_wait(grey::detail::use_nothrow);
            if (connection_ && !connection_->broken()) co_return connection_;
            co_return last_error_ ? last_error_ : std::error_code(redis_errc::connection_lost);
        }
        if (!backoff_.may_try(std::chrono::steady_clock::now())) co_return last_error_;
        attempt_ = std::make_shared<asio::steady_timer>(ioc_, asio::steady_timer::time_point::max());
        auto c = std::make_shared<connection>(ioc_.get_executor(), settings_.command_timeout);
        connecting_ = c;
        const std::error_code ec = co_await open_connection(c);
        connecting_.reset();
        const std::shared_ptr<asio::steady_timer> attempt = std::move(attempt_);
        attempt_.reset();
        if (ec) {
            last_error_ = ec;
            connection_.reset();
            backoff_.failed(std::chrono::steady_clock::now());
        } else {
            connection_ = c;
            backoff_.succeeded();
        }
        attempt->cancel();  // wakes the calls that waited for this attempt
        if (ec) co_return ec;
        co_return c;
    }

  private:
    static std::chrono::milliseconds longest_wait(const redis_settings& s) {
        return s.via_sentinels() ? std::min(s.reconnect_max, sentinel_longest_wait) : s.reconnect_max;
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
    asio::awaitable<std::error_code> open_connection(const std::shared_ptr<connection>& c) {
        redis_settings where = settings_;
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
    /// that answered last time; each sentinel within connect_timeout.
    asio::awaitable<result<sentinel_address>> ask_sentinels() {
        const auto& all = settings_.sentinels;
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
            }
            guard.cancel();
            s->close();
            if (master) {
                sentinel_ = k;
                co_return *master;
            }
        }
        co_return redis_errc::no_master;
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
    reconnect_backoff backoff_;                       // used on the client's thread only
    std::shared_ptr<asio::ssl::context> tls_context_;  // with rediss://
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
    // Used on the client's thread only:
    std::shared_ptr<connection> connection_;  // the current one, working or broken
    std::shared_ptr<connection> connecting_;  // the one being opened
    std::shared_ptr<asio::steady_timer> attempt_;  // while connecting: cancelled when done
    std::error_code last_error_;                   // why the latest attempt failed
    std::size_t sentinel_ = 0;                     // the sentinel asked first: the last that answered
    std::thread thread_;
};

/// @}
} // namespace grey::redis
