// grey/redis/slot.hpp — where a key lives in a Redis Cluster, without I/O.
//
// A cluster cuts the key space into 16,384 slots, each served by one master. A key's slot is
// the CRC16 (XMODEM) of the key, or of its hash tag: the text between the first '{' and the
// next '}', when that is not empty. Keys with the same tag share a slot, so one script may
// touch them all. The map from slots to masters comes from CLUSTER SLOTS; a node that no
// longer serves a slot answers "MOVED SLOT HOST:PORT" (the slot has a new owner: read the map
// again) or "ASK SLOT HOST:PORT" (the slot is being moved: ask there, once, after ASKING).
// The Redis Cluster specification defines all three.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "resp.hpp"
#include "settings.hpp"

namespace grey::redis {
/// @addtogroup group_greylist
/// @{

/// How many slots a Redis Cluster has.
inline constexpr std::size_t cluster_slots = 16384;

namespace detail {
constexpr std::array<std::uint16_t, 256> crc16_table() {
    std::array<std::uint16_t, 256> t{};
    for (unsigned i = 0; i < 256; ++i) {
        std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
        for (int b = 0; b < 8; ++b) crc = static_cast<std::uint16_t>(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
        t[i] = crc;
    }
    return t;
}
inline constexpr auto crc16_xmodem = crc16_table();
} // namespace detail

/// CRC16-XMODEM (polynomial 0x1021, initial 0), as Redis Cluster uses it.
constexpr std::uint16_t crc16(std::string_view bytes) noexcept {
    std::uint16_t crc = 0;
    for (char c : bytes)
        crc = static_cast<std::uint16_t>((crc << 8) ^ detail::crc16_xmodem[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xff]);
    return crc;
}

/// The part of `key` that chooses its slot: its hash tag, or the whole key.
constexpr std::string_view hash_tag(std::string_view key) noexcept {
    const auto open = key.find('{');
    if (open == std::string_view::npos) return key;
    const auto close = key.find('}', open + 1);
    if (close == std::string_view::npos || close == open + 1) return key;
    return key.substr(open + 1, close - open - 1);
}

/// The slot `key` lives in.
constexpr std::uint16_t key_slot(std::string_view key) noexcept {
    return static_cast<std::uint16_t>(crc16(hash_tag(key)) % cluster_slots);
}

/// A MOVED or ASK error reply, read.
struct redirection {
    bool ask = false;      ///< ASK: this once, after ASKING; MOVED: from now on
    std::uint16_t slot = 0;  ///< the slot it is about
    node_address to;       ///< the node that serves it
};

/// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 [::1]:6381"; nothing for any other text.
inline std::optional<redirection> parse_redirection(std::string_view text) {
    redirection r;
    if (text.starts_with("MOVED ")) text.remove_prefix(6);
    else if (text.starts_with("ASK ")) text.remove_prefix(4), r.ask = true;
    else return std::nullopt;
    const auto space = text.find(' ');
    std::uint64_t slot = 0, port = 0;
    if (space == std::string_view::npos || !detail::parse_number(text.substr(0, space), cluster_slots - 1, slot))
        return std::nullopt;
    const std::string_view where = text.substr(space + 1);
    const auto colon = where.rfind(':');
    if (colon == std::string_view::npos || !detail::parse_number(where.substr(colon + 1), 65535, port) || port == 0)
        return std::nullopt;
    std::string_view host = where.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) return std::nullopt;
    r.slot = static_cast<std::uint16_t>(slot);
    r.to = node_address{std::string(host), static_cast<std::uint16_t>(port)};
    return r;
}

/// Which master serves each slot: read from CLUSTER SLOTS, corrected by MOVED.
class slot_map {
  public:
    /// No slot known yet.
    slot_map() { owner_.fill(none); }

    /// From a CLUSTER SLOTS reply, asked of `asked` (Redis leaves a node's own address empty
    /// when it does not know which one its clients use). Nothing when the reply is not one,
    /// or names no master.
    static std::optional<slot_map> from_cluster_slots(const reply& r, const node_address& asked) {
        if (r.type != REDIS_REPLY_ARRAY) return std::nullopt;
        slot_map m;
        for (const reply& range : r.elements) {
            if (range.type != REDIS_REPLY_ARRAY || range.elements.size() < 3) return std::nullopt;
            const reply &first = range.elements[0], &last = range.elements[1], &master = range.elements[2];
            if (first.type != REDIS_REPLY_INTEGER || last.type != REDIS_REPLY_INTEGER || first.integer < 0 ||
                last.integer < first.integer || last.integer >= static_cast<long long>(cluster_slots))
                return std::nullopt;
            if (master.type != REDIS_REPLY_ARRAY || master.elements.size() < 2 ||
                master.elements[0].type != REDIS_REPLY_STRING || master.elements[1].type != REDIS_REPLY_INTEGER ||
                master.elements[1].integer <= 0 || master.elements[1].integer > 65535)
                return std::nullopt;
            // "?" is Redis 7's "no endpoint known": those slots stay unknown until asked again.
            if (master.elements[0].text == "?") continue;
            node_address at{master.elements[0].text.empty() ? asked.host : master.elements[0].text,
                            static_cast<std::uint16_t>(master.elements[1].integer)};
            const std::uint16_t n = m.index_of(at);
            for (long long s = first.integer; s <= last.integer; ++s) m.owner_[static_cast<std::size_t>(s)] = n;
        }
        if (m.masters_.empty()) return std::nullopt;
        return m;
    }

    /// Whether no slot is known.
    bool empty() const noexcept { return masters_.empty(); }
    /// The master that serves `slot`; nothing when no node does (CLUSTERDOWN is then near).
    const node_address* master_of(std::uint16_t slot) const noexcept {
        const std::uint16_t n = owner_[slot % cluster_slots];
        return n == none ? nullptr : &masters_[n];
    }
    /// The masters that serve at least one slot, each once.
    std::vector<node_address> serving() const {
        std::vector<bool> serves(masters_.size());
        for (std::uint16_t n : owner_)
            if (n != none) serves[n] = true;
        std::vector<node_address> out;
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (serves[i]) out.push_back(masters_[i]);
        return out;
    }
    /// A MOVED said that `slot` is served by `at` now.
    void moved(std::uint16_t slot, const node_address& at) { owner_[slot % cluster_slots] = index_of(at); }

  private:
    static constexpr std::uint16_t none = 0xffff;

    std::uint16_t index_of(const node_address& at) {
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (masters_[i].host == at.host && masters_[i].port == at.port) return static_cast<std::uint16_t>(i);
        masters_.push_back(at);
        return static_cast<std::uint16_t>(masters_.size() - 1);
    }

    std::array<std::uint16_t, cluster_slots> owner_;
    std::vector<node_address> masters_;
};

/// @}
} // namespace grey::redis
