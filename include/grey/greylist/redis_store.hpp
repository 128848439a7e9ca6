// grey/greylist/redis_store.hpp — greylist state in Redis, shared by several MX hosts.
//
// Redis is the distributed engine; Grey adds no consensus of its own. Each check reads the
// triplet's record, decides with the engine, and writes the result with a compare-and-set
// script: the write happens only if the record is still the one that was read. Two proxies
// racing on one triplet therefore store one record: the loser of the race re-reads and decides
// again on the winner's record. Records carry their expiry as a Redis TTL.
//
// Replies are parsed by hiredis's RESP reader; the socket is Asio's, run by the store's own
// thread, so a check suspends the session's coroutine instead of blocking its thread, and the
// connection lives exactly as long as the store. Commands are pipelined: concurrent checks
// share one connection, their commands leave in one write and their replies come back in
// order, so Redis and the store make one system call for many commands. Link grey::redis
// (hiredis) to use it.
#pragma once

#include <hiredis/hiredis.h>

#include <charconv>
#include <deque>
#include <chrono>
#include <memory>
#include <thread>
#include <tuple>
#include <string>
#include <string_view>
#include <vector>

#include "store.hpp"

namespace grey::greylist {

class redis_store final : public store {
  public:
    redis_store(std::string host, std::uint16_t port, std::string prefix = "grey:")
        : host_(std::move(host)), port_(port), prefix_(std::move(prefix)), thread_([this] { ioc_.run(); }) {}

    ~redis_store() override {
        asio::post(ioc_, [this] {
            if (connection_) connection_->close();  // on the thread that runs the socket
            work_.reset();
        });
        thread_.join();
    }

    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

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
            if (!current) co_return errc::store_failed;
            std::optional<record> stored;
            if (current->type == REDIS_REPLY_STRING) stored = parse_record(current->text);
            const decision d = decide(timing, stored, now);
            const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(expires_at(timing, d.updated) - now);
            const std::string set_command = command("EVAL", compare_and_set, "1", key,
                                            current->type == REDIS_REPLY_STRING ? current->text : std::string(),
                                            format_record(d.updated), std::to_string(std::max<std::int64_t>(ttl.count(), 1)));
            auto set = co_await (*c)->call(set_command);
            if (!set || set->type != REDIS_REPLY_INTEGER) co_return errc::store_failed;
            if (set->integer == 1) co_return d;
        }
        co_return errc::store_failed;
    }

    asio::awaitable<result<std::optional<client_record>>> do_client(const std::string& group) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        const std::string r_command = command("HMGET", prefix_ + "c:" + group, "passes", "last");
        auto r = co_await (*c)->call(r_command);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements.size() != 2) co_return errc::store_failed;
        if (r->elements[0].type != REDIS_REPLY_STRING) co_return std::optional<client_record>{};
        co_return std::optional(client_record{to_u64(r->elements[0].text), from_ms(to_i64(r->elements[1].text))});
    }

    asio::awaitable<result<void>> do_count_pass(const std::string& group, const timing& timing, clock::time_point now) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        const auto max_age = std::chrono::duration_cast<std::chrono::milliseconds>(timing.max_age).count();
        const std::string r_command = command("EVAL", count_client_pass, "1", prefix_ + "c:" + group,
                                      std::to_string(to_ms(now)), std::to_string(max_age));
        auto r = co_await (*c)->call(r_command);
        if (!r || r->type != REDIS_REPLY_INTEGER) co_return errc::store_failed;
        co_return result<void>{};
    }

    asio::awaitable<result<std::vector<entry>>> do_find(const std::string& needle) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        std::vector<entry> found;
        std::string cursor = "0";
        do {
            const std::string r_command = command("SCAN", cursor, "MATCH", prefix_ + "t:*", "COUNT", "1000");
            auto r = co_await (*c)->call(r_command);
            if (!r || r->type != REDIS_REPLY_ARRAY || r->elements.size() != 2) co_return errc::store_failed;
            cursor = r->elements[0].text;
            for (const auto& k : r->elements[1].elements) {
                auto t = parse_key(k.text);
                if (!t) continue;
                if (!needle.empty() && t->client.find(needle) == std::string::npos &&
                    t->sender.find(needle) == std::string::npos && t->recipient.find(needle) == std::string::npos)
                    continue;
                const std::string v_command = command("GET", k.text);
                auto v = co_await (*c)->call(v_command);
                if (!v) co_return errc::store_failed;
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
        if (!s || s->type == REDIS_REPLY_ERROR) co_return errc::store_failed;
        co_return result<void>{};
    }

    asio::awaitable<result<bool>> do_remove(const triplet& t) {
        auto c = co_await acquire();
        if (!c) co_return c.error();
        const std::string r_command = command("DEL", triplet_key(t));
        auto r = co_await (*c)->call(r_command);
        if (!r || r->type != REDIS_REPLY_INTEGER) co_return errc::store_failed;
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

    /// One connection, many commands in flight. A call appends its command to the outgoing
    /// bytes and waits; one writer sends whatever has gathered, one reader hands each reply to
    /// the oldest waiter. A broken connection fails every waiter and is replaced at the next call.
    class connection : public std::enable_shared_from_this<connection> {
      public:
        explicit connection(const asio::any_io_executor& ex) : socket_(ex), reader_(redisReaderCreate()) {}
        ~connection() { redisReaderFree(reader_); }
        connection(const connection&) = delete;
        connection& operator=(const connection&) = delete;

        asio::awaitable<std::error_code> connect(const std::string& host, std::uint16_t port) {
            grey::detail::tcp::resolver resolver(socket_.get_executor());
            auto [ec, results] = co_await resolver.async_resolve(host, std::to_string(port), grey::detail::use_nothrow);
            if (ec) co_return ec;
            std::tie(ec, std::ignore) = co_await asio::async_connect(socket_, results, grey::detail::use_nothrow);
            if (!ec) socket_.set_option(grey::detail::tcp::no_delay(true), ec);
            co_return ec;
        }

        bool broken() const noexcept { return broken_; }
        void close() { fail_all(); }

        /// One command, one reply. An error reply from Redis is a reply; a broken connection
        /// or unparsable bytes are an error. `command` is RESP, made by redis_store::command.
        asio::awaitable<result<reply>> call(const std::string& command) {
            if (command.empty() || broken_) co_return errc::store_failed;
            waiter w(socket_.get_executor());
            outgoing_ += command;
            waiting_.push_back(&w);
            if (!writing_) {
                writing_ = true;
                asio::co_spawn(socket_.get_executor(), write_loop(shared_from_this()), asio::detached);
            }
            if (!reading_) {
                reading_ = true;
                asio::co_spawn(socket_.get_executor(), read_loop(shared_from_this()), asio::detached);
            }
            if (!w.done) co_await w.ready.async_wait(grey::detail::use_nothrow);
            co_return std::move(w.answer);
        }

      private:
        struct waiter {
            explicit waiter(const asio::any_io_executor& ex) : ready(ex, asio::steady_timer::time_point::max()) {}
            asio::steady_timer ready;  // cancelled when the answer is in
            result<reply> answer = errc::store_failed;
            bool done = false;
        };

        static void answer(waiter& w, result<reply> r) {
            w.answer = std::move(r);
            w.done = true;
            w.ready.cancel();
        }

        void fail_all() {
            broken_ = true;
            asio::error_code ignored;
            socket_.close(ignored);
            for (waiter* w : waiting_) answer(*w, errc::store_failed);
            waiting_.clear();
        }

        static asio::awaitable<void> write_loop(std::shared_ptr<connection> self) {
            while (!self->outgoing_.empty() && !self->broken_) {
                self->sending_.swap(self->outgoing_);
                auto [ec, n] = co_await asio::async_write(self->socket_, asio::buffer(self->sending_),
                                                          grey::detail::use_nothrow);
                self->sending_.clear();
                if (ec) self->fail_all();
            }
            self->writing_ = false;
        }

        static asio::awaitable<void> read_loop(std::shared_ptr<connection> self) {
            while (!self->waiting_.empty() && !self->broken_) {
                void* raw = nullptr;
                if (redisReaderGetReply(self->reader_, &raw) != REDIS_OK) {
                    self->fail_all();
                    break;
                }
                if (raw) {
                    std::unique_ptr<redisReply, void (*)(void*)> r(static_cast<redisReply*>(raw), freeReplyObject);
                    waiter* w = self->waiting_.front();
                    self->waiting_.pop_front();
                    answer(*w, copy(*r));
                    continue;
                }
                auto [ec, got] = co_await self->socket_.async_read_some(asio::buffer(self->buffer_),
                                                                        grey::detail::use_nothrow);
                if (ec) {
                    self->fail_all();
                    break;
                }
                redisReaderFeed(self->reader_, self->buffer_, got);
            }
            self->reading_ = false;
        }

        static reply copy(const redisReply& r) {
            reply out{r.type, r.integer, {}, {}};
            if (r.str) out.text.assign(r.str, r.len);
            for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(copy(*r.element[i]));
            return out;
        }

        grey::detail::tcp::socket socket_;
        redisReader* reader_;
        std::string outgoing_;  // commands not yet handed to the socket
        std::string sending_;   // the write in progress
        std::deque<waiter*> waiting_;
        bool writing_ = false;
        bool reading_ = false;
        bool broken_ = false;
        char buffer_[16384];
    };

    asio::awaitable<result<std::shared_ptr<connection>>> acquire() {
        if (connection_ && !connection_->broken()) co_return connection_;
        auto c = std::make_shared<connection>(ioc_.get_executor());
        const std::error_code ec = co_await c->connect(host_, port_);
        if (ec) co_return errc::store_failed;
        connection_ = c;
        co_return c;
    }

    std::string triplet_key(const triplet& t) const {
        // TAB cannot occur in a normalised address or a client group.
        std::string k = prefix_ + "t:";
        k.append(t.client).push_back('\t');
        k.append(t.sender).push_back('\t');
        k.append(t.recipient);
        return k;
    }

    std::optional<triplet> parse_key(std::string_view k) const {
        const std::string_view head = std::string_view(prefix_) ;
        if (k.substr(0, head.size() + 2) != prefix_ + "t:") return std::nullopt;
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

    std::string host_;
    std::uint16_t port_;
    std::string prefix_;
    asio::io_context ioc_;
    asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
    std::shared_ptr<connection> connection_;  // used on the store's thread only
    std::thread thread_;
};

} // namespace grey::greylist
