// grey/greylist/memory_store.hpp — greylist state in this process's memory: for tests and for
// small sites that accept losing the greylist on restart. A mutex makes each check atomic; it
// is held for a map look-up and an insert, never across a suspension.
#pragma once

#include <map>
#include <mutex>
#include <tuple>

#include "store.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Greylist state in a map: lost on restart, and not shared between processes.
class memory_store final : public store {
  public:
    asio::awaitable<result<decision>> check(const triplet& t, const timing& timing,
                                            clock::time_point now) override {
        std::lock_guard lock(mutex_);
        const auto it = triplets_.find(t);
        const decision d = decide(timing, it == triplets_.end() ? std::nullopt : std::optional(it->second), now);
        triplets_.insert_or_assign(t, d.updated);
        co_return d;
    }

    asio::awaitable<result<std::optional<client_record>>> client(const std::string& group) override {
        std::lock_guard lock(mutex_);
        const auto it = clients_.find(group);
        co_return it == clients_.end() ? std::nullopt : std::optional(it->second);
    }

    asio::awaitable<result<void>> count_pass(const std::string& group, const timing& timing,
                                             clock::time_point now) override {
        std::lock_guard lock(mutex_);
        const auto it = clients_.find(group);
        clients_.insert_or_assign(
            group, count_client_pass(it == clients_.end() ? std::nullopt : std::optional(it->second), timing, now));
        co_return result<void>{};
    }

    asio::awaitable<result<std::vector<entry>>> find(std::string needle) override {
        std::lock_guard lock(mutex_);
        std::vector<entry> found;
        for (const auto& [key, value] : triplets_) {
            if (needle.empty() || key.client.find(needle) != std::string::npos ||
                key.sender.find(needle) != std::string::npos || key.recipient.find(needle) != std::string::npos)
                found.push_back({key, value});
        }
        co_return found;
    }

    asio::awaitable<result<void>> whitelist(const triplet& t, const timing&, clock::time_point now) override {
        std::lock_guard lock(mutex_);
        triplets_.insert_or_assign(t, record{now, now, now, 1, 1, true});
        co_return result<void>{};
    }

    asio::awaitable<result<bool>> remove(const triplet& t) override {
        std::lock_guard lock(mutex_);
        co_return triplets_.erase(t) > 0;
    }

    asio::awaitable<result<std::size_t>> purge(const timing& timing, clock::time_point now) override {
        std::lock_guard lock(mutex_);
        const std::size_t n = std::erase_if(triplets_, [&](const auto& kv) { return expires_at(timing, kv.second) < now; }) +
                              std::erase_if(clients_, [&](const auto& kv) { return kv.second.last_pass + timing.max_age < now; });
        co_return n;
    }

  private:
    struct triplet_less {
        bool operator()(const triplet& a, const triplet& b) const {
            return std::tie(a.client, a.sender, a.recipient) < std::tie(b.client, b.sender, b.recipient);
        }
    };
    std::mutex mutex_;
    std::map<triplet, record, triplet_less> triplets_;
    std::map<std::string, client_record> clients_;
};

/// @}
} // namespace grey::greylist
