// grey/greylist/redis_store.hpp — greylist state in Redis, shared by several MX hosts.
//
// Redis is the distributed engine; Grey adds no consensus of its own. A decision is one
// server-side script, one round trip: the client group's auto-whitelisting, the triplet's
// record, the engine's decision on it (engine.hpp's decide(), the same rules written in Lua),
// the record written back, and the pass counted. Redis runs a script alone, so two proxies
// racing on one triplet store one record, each deciding on what the other wrote. The script
// is sent once (SCRIPT LOAD) and called by its digest (EVALSHA); a Redis that has lost it (a
// restart, a failover to a replica) gets it whole again (EVAL). Records carry their expiry as
// a Redis TTL.
//
// In a Redis Cluster, every key of one client group shares a hash tag, the group: its
// auto-whitelist record and its triplets live on one master, so the script still runs there
// alone. One busy client group's decisions all go to that master; the groups spread over all.
// A single Redis, or one behind sentinels, keeps the keys without tags, as it always had.
//
// This header is the greylist's part: the key layout, the records' format and the scripts.
// Talking to Redis (connections over TCP, TLS or a unix socket, pipelining, AUTH and SELECT,
// timeouts, reconnecting with a backoff) is grey::redis::client's (grey/redis/client.hpp),
// run on its own thread, so a check suspends the session's coroutine instead of blocking its
// thread. Link grey::redis (hiredis) to use it.
#pragma once

#include <algorithm>
#include <array>
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
#include "../redis/slot.hpp"
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
        auto s = co_await client_.run(do_screen({}, t, timing, now, 0));
        if (!s) co_return s.error();
        co_return std::move(*s->checked);
    }
    /// The whole decision in one round trip (one script): see the file's comment.
    asio::awaitable<result<screening>> screen(const std::string& group, const triplet& t, const timing& timing,
                                              clock::time_point now, unsigned auto_whitelist_after) override {
        // In a cluster, a group other than the triplet's own client may live on another master:
        // then one script cannot see both, and the three steps go one by one.
        if (auto_whitelist_after > 0 && settings().in_cluster() &&
            redis::key_slot(client_key(group)) != redis::key_slot(triplet_key(t)))
            co_return co_await store::screen(group, t, timing, now, auto_whitelist_after);
        co_return co_await client_.run(do_screen(group, t, timing, now, auto_whitelist_after));
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

    /// In a cluster, a master that cannot be reached while the others can.
    std::error_code part_down() const override { return client_.master_down(); }

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

    asio::awaitable<result<screening>> do_screen(const std::string& group, const triplet& t, const timing& timing,
                                                 clock::time_point now, unsigned auto_whitelist_after) {
        const auto seconds = [](std::chrono::seconds d) { return std::to_string(d.count()); };
        const std::string key = triplet_key(t);
        // Without auto-whitelisting the script does not read the group's key; the triplet's
        // stands in for it, so that a cluster sees one slot.
        const std::array<std::string, 8> keys_and_arguments{
                auto_whitelist_after > 0 ? client_key(group) : key, key, std::to_string(to_epoch_ms(now)),
                seconds(timing.delay), seconds(timing.retry_window), seconds(timing.max_age),
                seconds(timing.too_soon), std::to_string(auto_whitelist_after)};
        // Commands in named variables across each co_await (GCC 12: see redis/resp.hpp).
        if (screen_digest_.empty() && !loading_script_) {
            loading_script_ = true;
            const std::string load_command = redis::command("SCRIPT", "LOAD", screen_script);
            auto loaded = co_await client_.call(key, load_command);
            loading_script_ = false;
            if (!loaded) co_return loaded.error();
            if (loaded->type != REDIS_REPLY_STRING) co_return redis::reply_error(*loaded);
            screen_digest_ = loaded->text;
        }
        // While the first call loads the script, the others send it whole rather than load it
        // again each.
        const bool loaded = !screen_digest_.empty();
        const std::string by_digest = loaded ? evaluate("EVALSHA", screen_digest_, keys_and_arguments)
                                             : evaluate("EVAL", screen_script, keys_and_arguments);
        auto r = co_await client_.call(key, by_digest);
        if (!r) co_return r.error();
        if (r->type == REDIS_REPLY_ERROR && r->text.starts_with("NOSCRIPT")) {
            // Restarted, flushed, a replica promoted since the script was loaded, or another
            // master of a cluster: EVAL runs it and keeps it for the next EVALSHA.
            const std::string whole = evaluate("EVAL", screen_script, keys_and_arguments);
            r = co_await client_.call(key, whole);
            if (!r) co_return r.error();
        }
        co_return read_screening(*r);
    }

    static std::string evaluate(std::string_view verb, std::string_view script,
                                const std::array<std::string, 8>& keys_and_arguments) {
        const auto& a = keys_and_arguments;
        return redis::command(verb, script, "2", a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    }

    /// The script's answer: {-1} for an auto-whitelisted group, or {outcome, record, seconds
    /// the mail was held back}.
    static result<screening> read_screening(const redis::reply& r) {
        if (r.type != REDIS_REPLY_ARRAY || r.elements.empty() || r.elements[0].type != REDIS_REPLY_INTEGER)
            return redis::reply_error(r);
        const long long code = r.elements[0].integer;
        if (code == -1) return screening{};
        if (code < 0 || code >= outcome_codes || r.elements.size() != 3 || r.elements[1].type != REDIS_REPLY_STRING ||
            r.elements[2].type != REDIS_REPLY_INTEGER)
            return redis::reply_error(r);
        const auto stored = parse_record(r.elements[1].text);
        if (!stored) return redis::reply_error(r);
        return screening{decision{static_cast<outcome>(code), *stored, std::chrono::seconds(r.elements[2].integer)}, {}};
    }

    asio::awaitable<result<std::optional<client_record>>> do_client(const std::string& group) {
        const std::string key = client_key(group);
        const std::string r_command = redis::command("HMGET", key, "passes", "last");
        auto r = co_await client_.call(key, r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_ARRAY || r->elements.size() != 2) co_return redis::reply_error(*r);
        if (r->elements[0].type != REDIS_REPLY_STRING) co_return std::optional<client_record>{};
        co_return std::optional(client_record{to_u64(r->elements[0].text), from_epoch_ms(to_i64(r->elements[1].text))});
    }

    asio::awaitable<result<void>> do_count_pass(const std::string& group, const timing& timing, clock::time_point now) {
        const std::string key = client_key(group);
        const auto max_age = std::chrono::duration_cast<std::chrono::milliseconds>(timing.max_age).count();
        const std::string r_command = redis::command("EVAL", count_client_pass, "1", key,
                                                     std::to_string(to_epoch_ms(now)), std::to_string(max_age));
        auto r = co_await client_.call(key, r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_INTEGER) co_return redis::reply_error(*r);
        co_return result<void>{};
    }

    /// SCAN on every master (a cluster's keys are spread over them), then GET each match.
    asio::awaitable<result<std::vector<entry>>> do_find(const std::string& needle) {
        auto masters = co_await client_.masters();
        if (!masters) co_return masters.error();
        std::vector<entry> found;
        const std::string pattern = prefix() + "t:*";
        for (const auto& master : *masters) {
            std::string cursor = "0";
            do {
                const std::string r_command = redis::command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
                auto r = co_await master->call(r_command);
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
                    auto v = co_await client_.call(k.text, v_command);
                    if (!v) co_return v.error();
                    if (v->type != REDIS_REPLY_STRING) continue;  // expired meanwhile
                    if (auto rec = parse_record(v->text)) found.push_back({std::move(*t), *rec});
                }
            } while (cursor != "0");
        }
        co_return found;
    }

    asio::awaitable<result<void>> do_whitelist(const triplet& t, const timing& timing, clock::time_point now) {
        const record r{now, now, now, 1, 1, true};
        const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(expires_at(timing, r) - now);
        const std::string key = triplet_key(t);
        const std::string s_command = redis::command("SET", key, format_record(r), "PX", std::to_string(ttl.count()));
        auto s = co_await client_.call(key, s_command);
        if (!s) co_return s.error();
        if (s->type == REDIS_REPLY_ERROR) co_return redis::reply_error(*s);
        co_return result<void>{};
    }

    asio::awaitable<result<bool>> do_remove(const triplet& t) {
        const std::string key = triplet_key(t);
        const std::string r_command = redis::command("DEL", key);
        auto r = co_await client_.call(key, r_command);
        if (!r) co_return r.error();
        if (r->type != REDIS_REPLY_INTEGER) co_return redis::reply_error(*r);
        co_return r->integer > 0;
    }

    const std::string& prefix() const noexcept { return client_.settings().prefix; }

    // In a cluster the client group is the keys' hash tag: {GROUP}.
    bool tagged() const noexcept { return client_.settings().in_cluster(); }

    std::string client_key(const std::string& group) const {
        return tagged() ? prefix() + "c:{" + group + "}" : prefix() + "c:" + group;
    }

    std::string triplet_key(const triplet& t) const {
        // TAB cannot occur in a normalised address or a client group.
        std::string k = prefix() + (tagged() ? "t:{" : "t:");
        k.append(t.client);
        if (tagged()) k.push_back('}');
        k.push_back('\t');
        k.append(t.sender).push_back('\t');
        k.append(t.recipient);
        return k;
    }

    std::optional<triplet> parse_key(std::string_view k) const {
        const std::string head = prefix() + (tagged() ? "t:{" : "t:");
        if (!k.starts_with(head)) return std::nullopt;
        k.remove_prefix(head.size());
        const auto a = k.find('\t');
        const auto b = a == std::string_view::npos ? a : k.find('\t', a + 1);
        if (b == std::string_view::npos) return std::nullopt;
        std::string_view client = k.substr(0, a);
        if (tagged()) {
            if (!client.ends_with('}')) return std::nullopt;
            client.remove_suffix(1);
        }
        return triplet{std::string(client), std::string(k.substr(a + 1, b - a - 1)), std::string(k.substr(b + 1))};
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

    // A record is 28 octets: 1, then first_seen, last_seen and passed_at (milliseconds since
    // the epoch, 6 octets each, signed), attempts and passes (4 octets each) and passed (1),
    // big-endian, as the script's struct.pack('>i6i6i6I4I4B') writes them. At 28 octets Redis
    // keeps the value in the same allocation as its object (an embedded string, 48 octets):
    // the text form that Grey wrote before, "first_seen last_seen passed_at attempts passes
    // passed", took 35 to 47 octets and two allocations once passed. Both are read.
    static constexpr std::size_t record_size = 28;
    static constexpr char record_format = 1;

    static std::string format_record(const record& r) {
        std::string out(1, record_format);
        const auto put = [&out](std::uint64_t v, int octets) {
            for (int i = octets - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
        };
        const auto count = [](std::uint64_t n) { return std::min<std::uint64_t>(n, 0xffffffffu); };
        put(static_cast<std::uint64_t>(to_epoch_ms(r.first_seen)), 6);
        put(static_cast<std::uint64_t>(to_epoch_ms(r.last_seen)), 6);
        put(static_cast<std::uint64_t>(to_epoch_ms(r.passed_at)), 6);
        put(count(r.attempts), 4);
        put(count(r.passes), 4);
        put(r.passed ? 1 : 0, 1);
        return out;
    }

    static std::optional<record> parse_record(std::string_view s) {
        if (s.size() == record_size && s[0] == record_format) {
            std::size_t at = 1;
            const auto get = [&](int octets) {
                std::uint64_t v = 0;
                for (int i = 0; i < octets; ++i) v = (v << 8) | static_cast<unsigned char>(s[at++]);
                return v;
            };
            const auto time = [&] {
                // 48 bits, signed: the sign bit carried into the upper 16.
                const std::uint64_t v = get(6);
                const auto ms = static_cast<std::int64_t>(v & 0x800000000000u ? v | 0xffff000000000000u : v);
                return from_epoch_ms(ms);
            };
            const auto first = time(), last = time(), passed_at = time();
            const std::uint64_t attempts = get(4), passes = get(4);
            return record{first, last, passed_at, attempts, passes, get(1) != 0};
        }
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

    // The outcomes in engine.hpp's order, which the script returns by number.
    static constexpr int outcome_codes = 5;
    static_assert(static_cast<int>(outcome::known) == outcome_codes - 1);

    // engine.hpp's client_whitelisted(), decide(), expires_at() and count_client_pass(), in one
    // script. KEYS = client group, triplet; ARGV = now (ms); delay, retry window, max age, too
    // soon (s); auto-whitelist after (0: off). Records are written as format_record() writes
    // them, and read in both forms parse_record() reads. Seconds between two times are
    // truncated toward zero, as std::chrono::duration_cast does. Numbers go to Redis through
    // %d: Redis would write a Lua number of 13 digits in exponent form.
    static constexpr std::string_view screen_script = R"lua(
local now = tonumber(ARGV[1])
local delay, window, max_age, too_soon = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local after = tonumber(ARGV[6])
local function since(t)
  local d = now - t
  if d >= 0 then return math.floor(d / 1000) end
  return -math.floor(-d / 1000)
end
if after > 0 then
  local c = redis.call('HMGET', KEYS[1], 'passes', 'last')
  if c[1] and tonumber(c[1]) >= after and now - tonumber(c[2]) <= max_age * 1000 then return {-1} end
end
local r
local stored = redis.call('GET', KEYS[2])
if stored and #stored == 28 and string.byte(stored, 1) == 1 then
  local f, l, p, a, n, d = struct.unpack('>i6i6i6I4I4B', stored, 2)
  r = {first = f, last = l, passed_at = p, attempts = a, passes = n, passed = d ~= 0}
elseif stored then
  local f, l, p, a, n, d = string.match(stored, '^(%-?%d+) (%-?%d+) (%-?%d+) (%d+) (%d+) (%d)$')
  if f then
    r = {first = tonumber(f), last = tonumber(l), passed_at = tonumber(p), attempts = tonumber(a),
         passes = tonumber(n), passed = d ~= '0'}
  end
end
-- 0 first_seen, 1 too_soon, 2 restarted, 3 passed, 4 known
local why, waited = 0, 0
if not r or (r.passed and since(r.passed_at) > max_age) then
  r = {first = now, last = now, passed_at = 0, attempts = 1, passes = 0, passed = false}
elseif r.passed then
  r.last, r.passed_at, r.passes = now, now, r.passes + 1
  why = 4
else
  local w = since(r.first)
  if w > window then
    r = {first = now, last = now, passed_at = 0, attempts = 1, passes = 0, passed = false}
    why = 2
  elseif w < too_soon then
    r.first, r.last, r.attempts = now, now, r.attempts + 1
    why = 2
  elseif w < delay then
    r.last, r.attempts = now, r.attempts + 1
    why = 1
  else
    r.last, r.passed_at, r.attempts, r.passes, r.passed = now, now, r.attempts + 1, r.passes + 1, true
    why, waited = 3, w
  end
end
local expires = r.passed and (r.passed_at + max_age * 1000) or (r.first + window * 1000)
local most = 4294967295
local text = '\1' .. struct.pack('>i6i6i6I4I4B', r.first, r.last, r.passed_at, math.min(r.attempts, most),
                                   math.min(r.passes, most), r.passed and 1 or 0)
redis.call('SET', KEYS[2], text, 'PX', string.format('%d', math.max(expires - now, 1)))
if after > 0 and why >= 3 then
  local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
  if now - last > max_age * 1000 then
    redis.call('HSET', KEYS[1], 'passes', '1', 'last', ARGV[1])
  else
    redis.call('HINCRBY', KEYS[1], 'passes', '1')
    redis.call('HSET', KEYS[1], 'last', ARGV[1])
  end
  redis.call('PEXPIRE', KEYS[1], string.format('%d', max_age * 1000))
end
return {why, text, waited})lua";

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
    std::string screen_digest_;    // the script's SHA-1, once loaded; on client_'s thread only
    bool loading_script_ = false;  // a SCRIPT LOAD is under way; on client_'s thread only
};

/// @}
} // namespace grey::greylist
