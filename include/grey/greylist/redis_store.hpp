// grey/greylist/redis_store.hpp — greylist state in Redis, shared by several MX hosts.
//
// Redis is the distributed engine; Grey adds no consensus of its own. Each check reads the
// triplet's record, decides with the engine, and writes the result with a compare-and-set
// script: the write happens only if the record is still the one that was read. Two proxies
// racing on one triplet therefore store one record: the loser of the race re-reads and decides
// again on the winner's record. Records carry their expiry as a Redis TTL.
//
// Replies are parsed by hiredis's RESP reader; the socket is Asio's (TCP, TLS through Grey's
// own stream, or a unix socket), run by the store's own thread, so a check suspends the
// session's coroutine instead of blocking its thread. Commands are pipelined: concurrent
// checks share one connection, their commands leave in one write and their replies come back
// in order. Link grey::redis (hiredis) to use it.
//
// As production runs it (redis_settings.hpp): each connection logs in (AUTH, with an ACL
// user when given) and SELECTs its database before any command, all within connect_timeout.
// A command unanswered within command_timeout, or a connection that breaks, fails every call
// in flight on it: none waits for ever. While Redis is unreachable calls fail at once with
// the reason of the last attempt, and the store tries again only after a backoff (100 ms
// doubling to 5 s by default): a Redis that is down costs each recipient no wait and Redis no
// storm of connections, and a Redis that comes back is used again without a restart.
#pragma once

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include <asio/ssl/context.hpp>

#include "../diagnostics.hpp"
#include "../stream.hpp"
#include "../tls/context.hpp"
#include "redis_settings.hpp"
#include "store.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Why the Redis store could not answer, beyond the system's own codes (connection refused,
/// host not found, no such socket), which it passes on as they are. The message is what
/// the outage report says (`grey: greylist store unavailable: <message>`).
enum class redis_errc {
    auth_failed = 1,   ///< AUTH refused: wrong user or password, or the user is disabled
    auth_required,     ///< Redis wants AUTH (NOAUTH) and no password was configured
    select_failed,     ///< SELECT refused: the database number is beyond Redis's `databases`
    password_file,     ///< the password file could not be read
    tls_failed,        ///< the TLS handshake failed, or Redis's certificate did not verify
    connect_timeout,   ///< no usable connection within connect_timeout
    command_timeout,   ///< a command unanswered within command_timeout
    connection_lost,   ///< the connection broke: Redis stopped or restarted, or the network
    unexpected_reply,  ///< an error reply (OOM, READONLY...) or a reply of the wrong type
    protocol_error,    ///< bytes that are not RESP, or a reply no command asked for
};

namespace detail {
class redis_category : public std::error_category {
  public:
    const char* name() const noexcept override { return "grey.redis"; }
    std::string message(int ev) const override {
        switch (static_cast<redis_errc>(ev)) {
        case redis_errc::auth_failed: return "Redis refused AUTH: wrong user or password, or the user is disabled";
        case redis_errc::auth_required: return "Redis requires AUTH (NOAUTH) and no password is configured";
        case redis_errc::select_failed: return "Redis refused SELECT: no such database";
        case redis_errc::password_file: return "cannot read the Redis password file";
        case redis_errc::tls_failed: return "TLS handshake with Redis failed (or its certificate did not verify)";
        case redis_errc::connect_timeout: return "no connection to Redis within connect_timeout";
        case redis_errc::command_timeout: return "Redis did not answer within command_timeout";
        case redis_errc::connection_lost: return "connection to Redis lost";
        case redis_errc::unexpected_reply: return "Redis answered with an error or an unexpected reply";
        case redis_errc::protocol_error: return "Redis sent bytes that answer no command";
        }
        return "unknown Redis error";
    }
};
} // namespace detail

/// The category of redis_errc ("grey.redis").
inline const std::error_category& redis_category() noexcept {
    static const detail::redis_category category;
    return category;
}

/// Makes a redis_errc an std::error_code, which the system's codes compare with.
inline std::error_code make_error_code(redis_errc e) noexcept { return {static_cast<int>(e), redis_category()}; }

/// @}
} // namespace grey::greylist

/// @cond
template <>
struct std::is_error_code_enum<grey::greylist::redis_errc> : std::true_type {};
/// @endcond

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// When to try connecting again, without I/O: at once after a connection that worked; after a
/// failed attempt not before `min`, and each further failure doubles the wait up to `max`.
class reconnect_backoff {
  public:
    /// Steady time: the wall clock may jump.
    using time_point = std::chrono::steady_clock::time_point;

    /// Waits from `min` to `max`; a `max` below `min` is taken as `min`.
    reconnect_backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) noexcept
        : min_(min), max_(std::max(min, max)), delay_(min) {}

    /// Whether an attempt may be made at `now`.
    bool may_try(time_point now) const noexcept { return now >= next_; }
    /// An attempt failed at `now`: none before the current wait has gone by, and the wait doubles.
    void failed(time_point now) noexcept {
        next_ = now + delay_;
        delay_ = std::min(delay_ * 2, max_);
    }
    /// A connection worked: the next attempt may come at once, the next failure waits `min`.
    void succeeded() noexcept {
        delay_ = min_;
        next_ = time_point{};
    }
    /// The wait the next failure will impose.
    std::chrono::milliseconds next_delay() const noexcept { return delay_; }
    /// The earliest time of the next attempt.
    time_point next_attempt() const noexcept { return next_; }

  private:
    std::chrono::milliseconds min_, max_, delay_;
    time_point next_{};
};

/// Greylist state in Redis, shared by several MX hosts; records expire by TTL.
class redis_store final : public store {
  public:
    /// Throws std::invalid_argument for settings that cannot work, std::runtime_error for a
    /// password file or TLS file that cannot be read: a store that cannot log in must not start.
    explicit redis_store(redis_settings settings)
        : settings_(checked(std::move(settings))), backoff_(settings_.reconnect_min, settings_.reconnect_max),
          tls_context_(make_tls_context(settings_)), thread_([this] { ioc_.run(); }) {}

    /// Redis at `host`:`port` over plain TCP, with `prefix` before every key.
    redis_store(std::string host, std::uint16_t port, std::string prefix = "grey:")
        : redis_store(plain(std::move(host), port, std::move(prefix))) {}

    ~redis_store() override {
        asio::post(ioc_, [this] {
            // On the thread that runs the sockets.
            if (connection_) connection_->close();
            if (connecting_) connecting_->abort(false);
            work_.reset();
        });
        thread_.join();
    }

    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

    /// The settings it runs with.
    const redis_settings& settings() const noexcept { return settings_; }

    asio::awaitable<result<decision>> check(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await on_store(do_check(t, timing, now));
    }
    asio::awaitable<result<std::optional<client_record>>> client(const std::string& group) override {
        co_return co_await on_store(do_client(group));
    }
    asio::awaitable<result<void>> count_pass(const std::string& group, const timing& timing, clock::time_point now) override {
        co_return co_await on_store(do_count_pass(group, timing, now));
    }
    asio::awaitable<result<std::vector<entry>>> find(std::string needle) override {
        co_return co_await on_store(do_find(needle));
    }
    asio::awaitable<result<void>> whitelist(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await on_store(do_whitelist(t, timing, now));
    }
    asio::awaitable<result<bool>> remove(const triplet& t) override { co_return co_await on_store(do_remove(t)); }

    /// Redis forgets expired records by itself (each carries its TTL): nothing to purge.
    asio::awaitable<result<std::size_t>> purge(const timing&, clock::time_point) override { co_return std::size_t{0}; }

  private:
    static redis_settings plain(std::string host, std::uint16_t port, std::string prefix) {
        redis_settings s;
        s.host = std::move(host);
        s.port = port;
        s.prefix = std::move(prefix);
        return s;
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

    /// Runs `op` on the store's thread; the caller resumes on its own executor.
    template <class T>
    asio::awaitable<T> on_store(asio::awaitable<T> op) {
        co_return co_await asio::co_spawn(ioc_, std::move(op), asio::use_awaitable);
    }

    asio::awaitable<result<decision>> do_check(const triplet& t, const timing& timing, clock::time_point now) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        const std::string key = triplet_key(t);
        // A bounded number of rounds: each lost round means another proxy stored a newer
        // record, so the loop ends as soon as the contention does.
        for (int round = 0; round < 16; ++round) {
            const std::string current_command = command("GET", key);
            auto current = co_await (*c)->call(current_command);
            if (!current) co_return current.error();
            if (current->type != REDIS_REPLY_STRING && current->type != REDIS_REPLY_NIL) co_return unexpected(*current);
            std::optional<record> stored;
            if (current->type == REDIS_REPLY_STRING) stored = parse_record(current->text);
            const decision d = decide(timing, stored, now);
            const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(expires_at(timing, d.updated) - now);
            const std::string set_command = command("EVAL", compare_and_set, "1", key,
                                            current->type == REDIS_REPLY_STRING ? current->text : std::string(),
                                            format_record(d.updated), std::to_string(std::max<std::int64_t>(ttl.count(), 1)));
            auto set = co_await (*c)->call(set_command);
            if (!set) co_return set.error();
            if (set->type != REDIS_REPLY_INTEGER) co_return unexpected(*set);
            if (set->integer == 1) co_return d;
        }
        co_return errc::store_failed;
    }

    asio::awaitable<result<std::optional<client_record>>> do_client(const std::string& group) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        const std::string r_command = command("HMGET", prefix() + "c:" + group, "passes", "last");
        auto r = co_await (*c)->call(r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_ARRAY || r->elements.size() != 2) co_return unexpected(*r);
        if (r->elements[0].type != REDIS_REPLY_STRING) co_return std::optional<client_record>{};
        co_return std::optional(client_record{to_u64(r->elements[0].text), from_ms(to_i64(r->elements[1].text))});
    }

    asio::awaitable<result<void>> do_count_pass(const std::string& group, const timing& timing, clock::time_point now) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        const auto max_age = std::chrono::duration_cast<std::chrono::milliseconds>(timing.max_age).count();
        const std::string r_command = command("EVAL", count_client_pass, "1", prefix() + "c:" + group,
                                      std::to_string(to_ms(now)), std::to_string(max_age));
        auto r = co_await (*c)->call(r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_INTEGER) co_return unexpected(*r);
        co_return result<void>{};
    }

    asio::awaitable<result<std::vector<entry>>> do_find(const std::string& needle) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        std::vector<entry> found;
        std::string cursor = "0";
        do {
            const std::string r_command = command("SCAN", cursor, "MATCH", prefix() + "t:*", "COUNT", "1000");
            auto r = co_await (*c)->call(r_command);
            if (!r) co_return r.error();
            if (r->type != REDIS_REPLY_ARRAY || r->elements.size() != 2) co_return unexpected(*r);
            cursor = r->elements[0].text;
            for (const auto& k : r->elements[1].elements) {
                auto t = parse_key(k.text);
                if (!t) continue;
                if (!needle.empty() && t->client.find(needle) == std::string::npos &&
                    t->sender.find(needle) == std::string::npos && t->recipient.find(needle) == std::string::npos)
                    continue;
                const std::string v_command = command("GET", k.text);
                auto v = co_await (*c)->call(v_command);
                if (!v) co_return v.error();
                if (v->type != REDIS_REPLY_STRING) continue;  // expired meanwhile
                if (auto rec = parse_record(v->text)) found.push_back({std::move(*t), *rec});
            }
        } while (cursor != "0");
        co_return found;
    }

    asio::awaitable<result<void>> do_whitelist(const triplet& t, const timing& timing, clock::time_point now) {
        const record r{now, now, now, 1, 1, true};
        const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(expires_at(timing, r) - now);
        auto c = co_await acquire();
        if (!c) co_return c.error();
        const std::string s_command = command("SET", triplet_key(t), format_record(r), "PX", std::to_string(ttl.count()));
        auto s = co_await (*c)->call(s_command);
        if (!s) co_return s.error();
        if (s->type == REDIS_REPLY_ERROR) co_return unexpected(*s);
        co_return result<void>{};
    }

    asio::awaitable<result<bool>> do_remove(const triplet& t) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        const std::string r_command = command("DEL", triplet_key(t));
        auto r = co_await (*c)->call(r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_INTEGER) co_return unexpected(*r);
        co_return r->integer > 0;
    }

    /// A command in RESP, formatted by hiredis; empty if it cannot be. Callers keep it in a
    /// named variable across the co_await: GCC 12 mis-destroys temporaries and by-value
    /// parameters that live across a suspension.
    template <class... Args>
    static std::string command(const Args&... args) {
        const std::string_view parts[] = {std::string_view(args)...};
        const char* argv[sizeof...(Args)];
        std::size_t lengths[sizeof...(Args)];
        for (std::size_t i = 0; i < sizeof...(Args); ++i) argv[i] = parts[i].data(), lengths[i] = parts[i].size();
        char* formatted = nullptr;
        const int n = redisFormatCommandArgv(&formatted, int(sizeof...(Args)), argv, lengths);
        if (n < 0) return {};
        std::string out(formatted, static_cast<std::size_t>(n));
        redisFreeCommand(formatted);
        return out;
    }

    /// A reply, copied out of hiredis's structure.
    struct reply {
        int type = 0;
        long long integer = 0;
        std::string text;
        std::vector<reply> elements;
    };

    /// What an error reply, or a reply of the wrong type, means.
    static std::error_code unexpected(const reply& r) {
        if (r.type == REDIS_REPLY_ERROR && r.text.starts_with("NOAUTH")) return redis_errc::auth_required;
        if (r.type == REDIS_REPLY_ERROR && r.text.starts_with("WRONGPASS")) return redis_errc::auth_failed;
        return redis_errc::unexpected_reply;
    }

    /// One connection, many commands in flight. A call appends its command to the outgoing
    /// bytes and waits; one writer sends whatever has gathered, one reader (running as long as
    /// the connection, so that Redis going away is seen at once, not by the next command)
    /// hands each reply to the oldest waiter. A broken connection fails every waiter, with the
    /// reason, and is replaced at the next call.
    class connection : public std::enable_shared_from_this<connection> {
      public:
        connection(const asio::any_io_executor& ex, std::chrono::milliseconds command_timeout)
            : tcp_(ex), local_(ex), resolver_(ex), command_timeout_(command_timeout), reader_(redisReaderCreate()) {}
        ~connection() { redisReaderFree(reader_); }
        connection(const connection&) = delete;
        connection& operator=(const connection&) = delete;

        /// Connects (and shakes hands, for TLS), then starts reading.
        asio::awaitable<std::error_code> open(const redis_settings& s, asio::ssl::context* tls) {
            std::error_code ec;
            if (s.is_unix()) {
                unix_ = true;
                const asio::local::stream_protocol::endpoint where(s.unix_socket);
                std::tie(ec) = co_await local_.async_connect(where, grey::detail::use_nothrow);
                if (ec) co_return ec;
            } else {
                const std::string port = std::to_string(s.port);
                auto [resolve_ec, results] = co_await resolver_.async_resolve(s.host, port, grey::detail::use_nothrow);
                if (resolve_ec) co_return resolve_ec;
                std::tie(ec, std::ignore) = co_await asio::async_connect(tcp_, results, grey::detail::use_nothrow);
                if (ec) co_return ec;
                tcp_.set_option(grey::detail::tcp::no_delay(true), ec);
                if (tls) {
                    tls_ = std::make_unique<grey::stream>(tcp_);
                    const std::string name = s.tls_server_name.empty() ? s.host : s.tls_server_name;
                    ec = co_await tls_->handshake(*tls, grey::stream::role::client, name, s.tls_verify);
                    if (ec) co_return aborted_ ? ec : std::error_code(redis_errc::tls_failed);
                }
            }
            asio::co_spawn(tcp_.get_executor(), read_loop(shared_from_this()),
                           grey::diagnostics::reported{"redis"});
            co_return std::error_code{};
        }

        bool broken() const noexcept { return broken_; }
        bool timed_out() const noexcept { return timed_out_; }
        void close() { fail_all(redis_errc::connection_lost); }
        /// Ends a connection being opened: `timed_out` when its connect_timeout passed.
        void abort(bool timed_out) {
            aborted_ = true;
            timed_out_ = timed_out;
            resolver_.cancel();
            fail_all(timed_out ? redis_errc::connect_timeout : redis_errc::connection_lost);
        }

        /// One command, one reply. An error reply from Redis is a reply; a broken connection,
        /// a reply later than command_timeout or unparsable bytes are an error. `command` is
        /// RESP, made by redis_store::command.
        asio::awaitable<result<reply>> call(const std::string& command) {
            if (broken_) co_return failure_;
            if (command.empty()) co_return std::error_code(redis_errc::protocol_error);  // hiredis could not format it
            waiter w(tcp_.get_executor(), command_timeout_);
            outgoing_ += command;
            waiting_.push_back(&w);
            if (!writing_) {
                writing_ = true;
                asio::co_spawn(tcp_.get_executor(), write_loop(shared_from_this()),
                               grey::diagnostics::reported{"redis"});
            }
            if (!w.done) co_await w.ready.async_wait(grey::detail::use_nothrow);
            // The deadline passed: the replies behind this one can no longer be matched to
            // their commands, so the connection ends, and every call on it fails.
            if (!w.done) fail_all(redis_errc::command_timeout);
            co_return std::move(w.answer);
        }

      private:
        struct waiter {
            waiter(const asio::any_io_executor& ex, std::chrono::milliseconds timeout) : ready(ex, timeout) {}
            asio::steady_timer ready;  // expires at the deadline; cancelled when the answer is in
            result<reply> answer{std::error_code(redis_errc::connection_lost)};
            bool done = false;
        };

        static void answer(waiter& w, result<reply> r) {
            w.answer = std::move(r);
            w.done = true;
            w.ready.cancel();
        }

        void fail_all(std::error_code why) {
            if (!broken_) failure_ = why;
            broken_ = true;
            asio::error_code ignored;
            if (tls_ && tls_->is_tls()) tls_->close();
            tcp_.close(ignored);
            local_.close(ignored);
            for (waiter* w : waiting_) answer(*w, failure_);
            waiting_.clear();
        }

        asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
            if (unix_) {
                auto [ec, n] = co_await local_.async_read_some(b, grey::detail::use_nothrow);
                co_return std::tuple<std::error_code, std::size_t>{ec, n};
            }
            if (tls_) co_return co_await tls_->read_some(b);
            auto [ec, n] = co_await tcp_.async_read_some(b, grey::detail::use_nothrow);
            co_return std::tuple<std::error_code, std::size_t>{ec, n};
        }

        asio::awaitable<std::error_code> write(const std::string& bytes) {
            if (unix_) {
                auto [ec, n] = co_await asio::async_write(local_, asio::buffer(bytes), grey::detail::use_nothrow);
                co_return ec;
            }
            if (tls_) co_return co_await tls_->write(bytes);
            auto [ec, n] = co_await asio::async_write(tcp_, asio::buffer(bytes), grey::detail::use_nothrow);
            co_return ec;
        }

        static asio::awaitable<void> write_loop(std::shared_ptr<connection> self) {
            while (!self->outgoing_.empty() && !self->broken_) {
                self->sending_.swap(self->outgoing_);
                const std::error_code ec = co_await self->write(self->sending_);
                self->sending_.clear();
                if (ec) self->fail_all(redis_errc::connection_lost);
            }
            self->writing_ = false;
        }

        static asio::awaitable<void> read_loop(std::shared_ptr<connection> self) {
            while (!self->broken_) {
                void* raw = nullptr;
                if (redisReaderGetReply(self->reader_, &raw) != REDIS_OK) {
                    self->fail_all(redis_errc::protocol_error);
                    break;
                }
                if (raw) {
                    std::unique_ptr<redisReply, void (*)(void*)> r(static_cast<redisReply*>(raw), freeReplyObject);
                    if (self->waiting_.empty()) {
                        self->fail_all(redis_errc::protocol_error);
                        break;
                    }
                    waiter* w = self->waiting_.front();
                    self->waiting_.pop_front();
                    answer(*w, copy(*r));
                    continue;
                }
                auto [ec, got] = co_await self->read_some(asio::buffer(self->buffer_));
                if (ec) {
                    self->fail_all(redis_errc::connection_lost);
                    break;
                }
                redisReaderFeed(self->reader_, self->buffer_, got);
            }
        }

        static reply copy(const redisReply& r) {
            reply out{r.type, r.integer, {}, {}};
            if (r.str) out.text.assign(r.str, r.len);
            for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(copy(*r.element[i]));
            return out;
        }

        grey::detail::tcp::socket tcp_;
        asio::local::stream_protocol::socket local_;
        std::unique_ptr<grey::stream> tls_;  // over tcp_, with rediss://
        grey::detail::tcp::resolver resolver_;
        std::chrono::milliseconds command_timeout_;
        redisReader* reader_;
        std::string outgoing_;  // commands not yet handed to the socket
        std::string sending_;   // the write in progress
        std::deque<waiter*> waiting_;
        std::error_code failure_;  // why it broke
        bool unix_ = false;
        bool writing_ = false;
        bool broken_ = false;
        bool aborted_ = false;
        bool timed_out_ = false;
        char buffer_[16384];
    };

    /// The connection, opened if there is none; while Redis cannot be reached, the reason of
    /// the last attempt, at once, until the backoff lets the next call try again.
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

    /// Connects, logs in and selects the database, all within connect_timeout.
    asio::awaitable<std::error_code> open_connection(const std::shared_ptr<connection>& c) {
        asio::steady_timer guard(ioc_, settings_.connect_timeout);
        guard.async_wait([c](std::error_code ec) {
            if (!ec) c->abort(true);
        });
        std::error_code ec = co_await c->open(settings_, tls_context_.get());
        if (!ec) ec = co_await login(*c);
        guard.cancel();
        if (c->timed_out()) ec = redis_errc::connect_timeout;
        if (ec) c->close();
        co_return ec;
    }

    /// AUTH (with the ACL user when there is one) and SELECT, before any other command; then
    /// PING, so that a Redis that wants a password says so now, not at the first check.
    asio::awaitable<std::error_code> login(connection& c) {
        std::string password = settings_.password;
        if (!settings_.password_file.empty()) {
            // Read at each connection: a rotated password needs no restart.
            auto p = read_password_file(settings_.password_file);
            if (!p) co_return redis_errc::password_file;
            password = std::move(*p);
        }
        std::string auth;
        if (!settings_.user.empty()) auth = command("AUTH", settings_.user, password);
        else if (!password.empty()) auth = command("AUTH", password);
        if (!auth.empty()) {
            auto r = co_await c.call(auth);
            if (!r) co_return r.error();
            if (r->type == REDIS_REPLY_ERROR) co_return redis_errc::auth_failed;
        }
        if (settings_.database != 0) {
            const std::string select = command("SELECT", std::to_string(settings_.database));
            auto r = co_await c.call(select);
            if (!r) co_return r.error();
            if (r->type == REDIS_REPLY_ERROR)
                co_return r->text.starts_with("NOAUTH") ? redis_errc::auth_required : redis_errc::select_failed;
        }
        const std::string ping = command("PING");
        auto r = co_await c.call(ping);
        if (!r) co_return r.error();
        if (r->type == REDIS_REPLY_ERROR) co_return unexpected(*r);
        co_return std::error_code{};
    }

    const std::string& prefix() const noexcept { return settings_.prefix; }

    std::string triplet_key(const triplet& t) const {
        // TAB cannot occur in a normalised address or a client group.
        std::string k = prefix() + "t:";
        k.append(t.client).push_back('\t');
        k.append(t.sender).push_back('\t');
        k.append(t.recipient);
        return k;
    }

    std::optional<triplet> parse_key(std::string_view k) const {
        const std::string_view head = std::string_view(prefix());
        if (k.substr(0, head.size() + 2) != prefix() + "t:") return std::nullopt;
        k.remove_prefix(head.size() + 2);
        const auto a = k.find('\t');
        const auto b = a == std::string_view::npos ? a : k.find('\t', a + 1);
        if (b == std::string_view::npos) return std::nullopt;
        return triplet{std::string(k.substr(0, a)), std::string(k.substr(a + 1, b - a - 1)), std::string(k.substr(b + 1))};
    }

    static std::int64_t to_ms(clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    }
    static clock::time_point from_ms(std::int64_t ms) {
        return clock::time_point(std::chrono::duration_cast<clock::duration>(std::chrono::milliseconds(ms)));
    }
    static std::int64_t to_i64(std::string_view s) {
        std::int64_t v = 0;
        std::from_chars(s.data(), s.data() + s.size(), v);
        return v;
    }
    static std::uint64_t to_u64(std::string_view s) {
        std::uint64_t v = 0;
        std::from_chars(s.data(), s.data() + s.size(), v);
        return v;
    }

    /// "first_seen last_seen passed_at attempts passes passed", times in milliseconds.
    static std::string format_record(const record& r) {
        return std::to_string(to_ms(r.first_seen)) + ' ' + std::to_string(to_ms(r.last_seen)) + ' ' +
               std::to_string(to_ms(r.passed_at)) + ' ' + std::to_string(r.attempts) + ' ' +
               std::to_string(r.passes) + ' ' + (r.passed ? '1' : '0');
    }

    static std::optional<record> parse_record(std::string_view s) {
        std::int64_t v[6];
        const char* p = s.data();
        const char* end = s.data() + s.size();
        for (auto& x : v) {
            while (p < end && *p == ' ') ++p;
            auto [next, ec] = std::from_chars(p, end, x);
            if (ec != std::errc()) return std::nullopt;
            p = next;
        }
        return record{from_ms(v[0]), from_ms(v[1]), from_ms(v[2]), static_cast<std::uint64_t>(v[3]),
                      static_cast<std::uint64_t>(v[4]), v[5] != 0};
    }

    // KEYS[1] = triplet; ARGV = expected value ("" = absent), new value, TTL in ms.
    static constexpr std::string_view compare_and_set = R"lua(
local current = redis.call('GET', KEYS[1])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0)lua";

    // KEYS[1] = client group; ARGV = now in ms, max_age in ms. A lapsed count starts again.
    static constexpr std::string_view count_client_pass = R"lua(
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local now = tonumber(ARGV[1])
if now - last > tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'passes', 1, 'last', ARGV[1])
else
  redis.call('HINCRBY', KEYS[1], 'passes', 1)
  redis.call('HSET', KEYS[1], 'last', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1)lua";

    redis_settings settings_;
    reconnect_backoff backoff_;                       // used on the store's thread only
    std::shared_ptr<asio::ssl::context> tls_context_;  // with rediss://
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
    // Used on the store's thread only:
    std::shared_ptr<connection> connection_;  // the current one, working or broken
    std::shared_ptr<connection> connecting_;  // the one being opened
    std::shared_ptr<asio::steady_timer> attempt_;  // while connecting: cancelled when done
    std::error_code last_error_;                   // why the latest attempt failed
    std::thread thread_;
};

/// @}
} // namespace grey::greylist
