// grey/dns/cache.hpp — answers kept for their TTL, bounded in entries: a sender opens many
// sessions from one address, and each decision asks the same questions again. libunbound
// keeps a cache too, but asking it still costs a round trip through its worker; this one
// answers in place. No I/O; one per resolver, used from its thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "answer.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// A bounded cache of answers, by question; the least recently used goes first when full.
class answer_cache {
  public:
    /// The clock its expiries are on.
    using clock = std::chrono::steady_clock;

    /// A cache of `max_entries` answers at most (none when 0).
    explicit answer_cache(std::size_t max_entries) : max_entries_(max_entries) {}

    /// The key of a question: the name folded to lower case without a final dot (RFC 4343:
    /// names compare case-insensitively), and the type.
    static std::string key(std::string_view name, rr_type type) {
        if (!name.empty() && name.back() == '.') name.remove_suffix(1);
        std::string k;
        k.reserve(name.size() + 6);
        for (char c : name) k += c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        k += '/';
        k += std::to_string(static_cast<unsigned>(type));
        return k;
    }

    /// The answer kept for `key`, if it has not expired at `now`.
    std::optional<answer> find(const std::string& key, clock::time_point now) {
        const auto it = index_.find(key);
        if (it == index_.end()) return std::nullopt;
        if (it->second->expires <= now) {
            entries_.erase(it->second);
            index_.erase(it);
            return std::nullopt;
        }
        entries_.splice(entries_.begin(), entries_, it->second);
        return it->second->value;
    }

    /// Keeps `value` under `key` until `now + ttl`; a zero TTL keeps nothing.
    void put(const std::string& key, answer value, std::chrono::seconds ttl, clock::time_point now) {
        if (max_entries_ == 0 || ttl <= std::chrono::seconds::zero()) return;
        if (const auto it = index_.find(key); it != index_.end()) {
            entries_.erase(it->second);
            index_.erase(it);
        }
        while (entries_.size() >= max_entries_) {
            index_.erase(entries_.back().key);
            entries_.pop_back();
        }
        entries_.push_front(entry{key, std::move(value), now + ttl});
        index_.emplace(key, entries_.begin());
    }

    /// How many answers it holds, expired ones included until they are found or pushed out.
    std::size_t size() const noexcept { return entries_.size(); }

  private:
    struct entry {
        std::string key;
        answer value;
        clock::time_point expires;
    };
    std::size_t max_entries_;
    std::list<entry> entries_;  // most recently used first
    std::unordered_map<std::string, std::list<entry>::iterator> index_;
};

/// @}
} // namespace grey::dns
