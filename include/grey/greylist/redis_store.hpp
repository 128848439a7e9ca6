// grey/greylist/redis_store.hpp — greylist state in Redis, shared by several MX hosts.
//
// Redis is the distributed engine; Grey adds no consensus of its own. Each check reads the
// triplet's record, decides with the engine, and writes the result with a compare-and-set
// script: the write happens only if the record is still the one that was read. Two proxies
// racing on one triplet therefore store one record: the loser of the race re-reads and decides
// again on the winner's record. Records carry their expiry as a Redis TTL.
//
// This header is the greylist's part: the key layout, the records' format and the scripts.
// Talking to Redis (connections over TCP, TLS or a unix socket, pipelining, AUTH and SELECT,
// timeouts, reconnecting with a backoff) is grey::redis::client's (grey/redis/client.hpp),
// run on its own thread, so a check suspends the session's coroutine instead of blocking its
// thread. Link grey::redis (hiredis) to use it.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../redis/client.hpp"
#include "../redis/error.hpp"
#include "../redis/reconnect_backoff.hpp"
#include "../redis/resp.hpp"
#include "redis_settings.hpp"
#include "store.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Why the Redis store could not answer (grey/redis/error.hpp), under its older name.
using redis::redis_errc;
/// The category of redis_errc ("grey.redis"), under its older name.
using redis::redis_category;
/// When the Redis store tries to connect again (grey/redis/reconnect_backoff.hpp).
using redis::reconnect_backoff;

/// Greylist state in Redis, shared by several MX hosts; records expire by TTL.
class redis_store final : public store {
  public:
    /// Throws std::invalid_argument for settings that cannot work, std::runtime_error for a
    /// password file or TLS file that cannot be read: a store that cannot log in must not start.
    explicit redis_store(redis_settings settings) : client_(std::move(settings)) {}

    /// Redis at `host`:`port` over plain TCP, with `prefix` before every key.
    redis_store(std::string host, std::uint16_t port, std::string prefix = "grey:")
        : redis_store(plain(std::move(host), port, std::move(prefix))) {}

    redis_store(const redis_store&) = delete;
    redis_store& operator=(const redis_store&) = delete;

    /// The settings it runs with.
    const redis_settings& settings() const noexcept { return client_.settings(); }

    asio::awaitable<result<decision>> check(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await client_.run(do_check(t, timing, now));
    }
    asio::awaitable<result<std::optional<client_record>>> client(const std::string& group) override {
        co_return co_await client_.run(do_client(group));
    }
    asio::awaitable<result<void>> count_pass(const std::string& group, const timing& timing, clock::time_point now) override {
        co_return co_await client_.run(do_count_pass(group, timing, now));
    }
    asio::awaitable<result<std::vector<entry>>> find(std::string needle) override {
        co_return co_await client_.run(do_find(needle));
    }
    asio::awaitable<result<void>> whitelist(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await client_.run(do_whitelist(t, timing, now));
    }
    asio::awaitable<result<bool>> remove(const triplet& t) override { co_return co_await client_.run(do_remove(t)); }

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

    asio::awaitable<result<decision>> do_check(const triplet& t, const timing& timing, clock::time_point now) {
        auto c = co_await client_.acquire();
        if (!c) co_return c.error();
        const std::string key = triplet_key(t);
        // A bounded number of rounds: each lost round means another proxy stored a newer
        // record, so the loop ends as soon as the contention does.
        for (int round = 0; round < 16; ++round) {
            const std::string current_command = redis::command("GET", key);
            auto current = co_await (*c)->call(current_command);
            if (!current) co_return current.error();
            if (current->type != REDIS_REPLY_STRING && current->type != REDIS_REPLY_NIL)
                co_return redis::reply_error(*current);
            std::optional<record> stored;
            if (current->type == REDIS_REPLY_STRING) stored = parse_record(current->text);
            const decision d = decide(timing, stored, now);
            const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(expires_at(timing, d.updated) - now);
            const std::string set_command = redis::command("EVAL", compare_and_set, "1", key,
                                            current->type == REDIS_REPLY_STRING ? current->text : std::string(),
                                            format_record(d.updated), std::to_string(std::max<std::int64_t>(ttl.count(), 1)));
            auto set = co_await (*c)->call(set_command);
            if (!set) co_return set.error();
            if (set->type != REDIS_REPLY_INTEGER) co_return redis::reply_error(*set);
            if (set->integer == 1) co_return d;
        }
        co_return errc::store_failed;
    }

    asio::awaitable<result<std::optional<client_record>>> do_client(const std::string& group) {
        auto c = co_await client_.acquire();
        if (!c) co_return c.error();
        const std::string r_command = redis::command("HMGET", prefix() + "c:" + group, "passes", "last");
        auto r = co_await (*c)->call(r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_ARRAY || r->elements.size() != 2) co_return redis::reply_error(*r);
        if (r->elements[0].type != REDIS_REPLY_STRING) co_return std::optional<client_record>{};
        co_return std::optional(client_record{to_u64(r->elements[0].text), from_epoch_ms(to_i64(r->elements[1].text))});
    }

    asio::awaitable<result<void>> do_count_pass(const std::string& group, const timing& timing, clock::time_point now) {
        auto c = co_await client_.acquire();
        if (!c) co_return c.error();
        const auto max_age = std::chrono::duration_cast<std::chrono::milliseconds>(timing.max_age).count();
        const std::string r_command = redis::command("EVAL", count_client_pass, "1", prefix() + "c:" + group,
                                      std::to_string(to_epoch_ms(now)), std::to_string(max_age));
        auto r = co_await (*c)->call(r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_INTEGER) co_return redis::reply_error(*r);
        co_return result<void>{};
    }

    asio::awaitable<result<std::vector<entry>>> do_find(const std::string& needle) {
        auto c = co_await client_.acquire();
        if (!c) co_return c.error();
        std::vector<entry> found;
        std::string cursor = "0";
        do {
            const std::string r_command = redis::command("SCAN", cursor, "MATCH", prefix() + "t:*", "COUNT", "1000");
            auto r = co_await (*c)->call(r_command);
            if (!r) co_return r.error();
            if (r->type != REDIS_REPLY_ARRAY || r->elements.size() != 2) co_return redis::reply_error(*r);
            cursor = r->elements[0].text;
            for (const auto& k : r->elements[1].elements) {
                auto t = parse_key(k.text);
                if (!t) continue;
                if (!needle.empty() && t->client.find(needle) == std::string::npos &&
                    t->sender.find(needle) == std::string::npos && t->recipient.find(needle) == std::string::npos)
                    continue;
                const std::string v_command = redis::command("GET", k.text);
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
        auto c = co_await client_.acquire();
        if (!c) co_return c.error();
        const std::string s_command =
            redis::command("SET", triplet_key(t), format_record(r), "PX", std::to_string(ttl.count()));
        auto s = co_await (*c)->call(s_command);
        if (!s) co_return s.error();
        if (s->type == REDIS_REPLY_ERROR) co_return redis::reply_error(*s);
        co_return result<void>{};
    }

    asio::awaitable<result<bool>> do_remove(const triplet& t) {
        auto c = co_await client_.acquire();
        if (!c) co_return c.error();
        const std::string r_command = redis::command("DEL", triplet_key(t));
        auto r = co_await (*c)->call(r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_INTEGER) co_return redis::reply_error(*r);
        co_return r->integer > 0;
    }

    const std::string& prefix() const noexcept { return client_.settings().prefix; }

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
        return std::to_string(to_epoch_ms(r.first_seen)) + ' ' + std::to_string(to_epoch_ms(r.last_seen)) + ' ' +
               std::to_string(to_epoch_ms(r.passed_at)) + ' ' + std::to_string(r.attempts) + ' ' +
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
        return record{from_epoch_ms(v[0]), from_epoch_ms(v[1]), from_epoch_ms(v[2]), static_cast<std::uint64_t>(v[3]),
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

    // Runs this store's calls on its thread; its destructor ends that thread.
    redis::client client_;
};

/// @}
} // namespace grey::greylist
