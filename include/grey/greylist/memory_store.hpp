// grey/greylist/memory_store.hpp — greylist state in this process's memory: for tests and for
// small sites that accept losing the greylist on restart.
//
// The state is cut into shards by the key's hash, each with its own mutex, held for one
// look-up and one insert and never across a suspension: each check stays atomic for its
// triplet, and the server's threads, each deciding for its own connections, rarely meet on
// one lock (a single mutex made the policy server's two threads wait for each other on most
// requests).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "store.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Greylist state in hash maps: lost on restart, and not shared between processes.
class memory_store final : public store {
  public:
    asio::awaitable<result<decision>> check(const triplet& t, const timing& timing,
                                            clock::time_point now) override {
        auto& shard = shard_of(triplets_, triplet_hash{}(t));
        std::lock_guard lock(shard.mutex);
        const auto it = shard.map.find(t);
        const decision d = decide(timing, it == shard.map.end() ? std::nullopt : std::optional(it->second), now);
        shard.map.insert_or_assign(t, d.updated);
        co_return d;
    }

    asio::awaitable<result<std::optional<client_record>>> client(const std::string& group) override {
        auto& shard = shard_of(clients_, std::hash<std::string>{}(group));
        std::lock_guard lock(shard.mutex);
        const auto it = shard.map.find(group);
        co_return it == shard.map.end() ? std::nullopt : std::optional(it->second);
    }

    asio::awaitable<result<void>> count_pass(const std::string& group, const timing& timing,
                                             clock::time_point now) override {
        auto& shard = shard_of(clients_, std::hash<std::string>{}(group));
        std::lock_guard lock(shard.mutex);
        const auto it = shard.map.find(group);
        shard.map.insert_or_assign(
            group, count_client_pass(it == shard.map.end() ? std::nullopt : std::optional(it->second), timing, now));
        co_return result<void>{};
    }

    /// The triplets whose client, sender or recipient contains `needle`, in key order.
    asio::awaitable<result<std::vector<entry>>> find(std::string needle) override {
        std::vector<entry> found;
        for (auto& shard : triplets_) {
            std::lock_guard lock(shard.mutex);
            for (const auto& [key, value] : shard.map) {
                if (needle.empty() || key.client.find(needle) != std::string::npos ||
                    key.sender.find(needle) != std::string::npos || key.recipient.find(needle) != std::string::npos)
                    found.push_back({key, value});
            }
        }
        std::ranges::sort(found, [](const entry& a, const entry& b) {
            return std::tie(a.key.client, a.key.sender, a.key.recipient) <
                   std::tie(b.key.client, b.key.sender, b.key.recipient);
        });
        co_return found;
    }

    asio::awaitable<result<void>> whitelist(const triplet& t, const timing&, clock::time_point now) override {
        auto& shard = shard_of(triplets_, triplet_hash{}(t));
        std::lock_guard lock(shard.mutex);
        shard.map.insert_or_assign(t, record{now, now, now, 1, 1, true});
        co_return result<void>{};
    }

    asio::awaitable<result<bool>> remove(const triplet& t) override {
        auto& shard = shard_of(triplets_, triplet_hash{}(t));
        std::lock_guard lock(shard.mutex);
        co_return shard.map.erase(t) > 0;
    }

    asio::awaitable<result<std::size_t>> purge(const timing& timing, clock::time_point now) override {
        std::size_t n = 0;
        for (auto& shard : triplets_) {
            std::lock_guard lock(shard.mutex);
            n += std::erase_if(shard.map, [&](const auto& kv) { return expires_at(timing, kv.second) < now; });
        }
        for (auto& shard : clients_) {
            std::lock_guard lock(shard.mutex);
            n += std::erase_if(shard.map, [&](const auto& kv) { return kv.second.last_pass + timing.max_age < now; });
        }
        co_return n;
    }

  private:
    struct triplet_hash {
        std::size_t operator()(const triplet& t) const noexcept {
            const std::hash<std::string> h;
            std::size_t seed = h(t.client);
            for (const std::string* part : {&t.sender, &t.recipient})
                seed ^= h(*part) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
            return seed;
        }
    };

    template <class Map>
    struct shard {
        std::mutex mutex;
        Map map;
    };

    // A power of two, well above the thread count, so that two threads rarely pick one shard.
    static constexpr std::size_t shard_count = 64;
    template <class Map>
    using shards = std::array<shard<Map>, shard_count>;

    template <class Map>
    static shard<Map>& shard_of(shards<Map>& all, std::size_t hash) noexcept {
        return all[hash % shard_count];  // the maps inside bucket by a prime: no pattern shared
    }

    shards<std::unordered_map<triplet, record, triplet_hash>> triplets_;
    shards<std::unordered_map<std::string, client_record>> clients_;
};

/// @}
} // namespace grey::greylist
