// grey/server/admission.hpp — who may come in: a server's connections under its limits, in
// total and per client address, and the list a graceful stop walks to tell each to finish.
//
// A mutex guards admission alone, never the data path: connections are admitted on the
// accepting thread (or, behind a PROXY header, on their own), and each gives its place back
// once, from whichever thread its session ends on.
#pragma once

#include <chrono>
#include <cstddef>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "../detail/asio.hpp"

namespace grey::server {
/// @addtogroup group_server
/// @{

/// Why a connection was not admitted.
enum class refusal {
    none,               ///< admitted
    shutting_down,      ///< a stop has begun
    connection_limit,   ///< max_connections are open
    per_address_limit,  ///< max_per_address are open from the client's address
};

/// The connections of one server. `Slot` is the server's own record of a connection: it has
/// `asio::any_io_executor executor`, `void shutdown(std::chrono::steady_clock::time_point)`
/// (a graceful stop, called on that executor) and `admission<Slot>::place place`.
template <class Slot>
class admission {
  public:
    using clock = std::chrono::steady_clock;  ///< for the drain deadline

    /// How many connections may be open.
    struct limits {
        std::size_t max_connections = std::numeric_limits<std::size_t>::max();  ///< in total
        std::size_t max_per_address = std::numeric_limits<std::size_t>::max();  ///< from one address
    };

  private:
    using slot_list = std::list<std::weak_ptr<Slot>>;
    using address_counts = std::map<std::string, std::size_t>;

  public:
    /// A connection's place under the limits, kept in its Slot.
    struct place {
        typename slot_list::iterator where{};          ///< in the list a stop walks
        typename address_counts::iterator address{};  ///< its address's count; valid while not 0
        bool released = false;                        ///< given back already
    };

    /// No connection yet, under `l`.
    explicit admission(limits l) : limits_(l) {}
    admission(const admission&) = delete;
    admission& operator=(const admission&) = delete;

    /// Takes `slot` in for a client at `address` (text; "" when addresses are not counted), or
    /// says why not.
    refusal admit(const std::shared_ptr<Slot>& slot, std::string address = {}) {
        std::lock_guard lock(mutex_);
        if (stopping_) return refusal::shutting_down;
        if (slots_.size() >= limits_.max_connections) return refusal::connection_limit;
        const auto counted = per_address_.try_emplace(std::move(address), 0).first;
        if (counted->second >= limits_.max_per_address) {
            if (counted->second == 0) per_address_.erase(counted);
            return refusal::per_address_limit;
        }
        ++counted->second;
        slot->place.address = counted;
        slot->place.where = slots_.insert(slots_.end(), slot);
        return refusal::none;
    }

    /// Gives `slot`'s place back: once the client has gone, which may be before its session
    /// ends. Safe from any thread; a second call does nothing.
    void release(Slot& slot) {
        std::lock_guard lock(mutex_);
        if (std::exchange(slot.place.released, true)) return;
        slots_.erase(slot.place.where);
        if (--slot.place.address->second == 0) per_address_.erase(slot.place.address);
    }

    /// A stop begins: no more connections are admitted, and each open one is told, on its own
    /// executor, to finish by `drain_deadline`. False when it had begun already.
    bool stop(clock::time_point drain_deadline) {
        std::lock_guard lock(mutex_);
        if (std::exchange(stopping_, true)) return false;
        for (auto& weak : slots_)
            if (auto slot = weak.lock())
                asio::post(slot->executor, [slot, drain_deadline] { slot->shutdown(drain_deadline); });
        return true;
    }

    /// Whether a stop has begun.
    bool stopping() const {
        std::lock_guard lock(mutex_);
        return stopping_;
    }

    /// How many connections hold a place.
    std::size_t open() const {
        std::lock_guard lock(mutex_);
        return slots_.size();
    }

  private:
    limits limits_;
    mutable std::mutex mutex_;  // guards what follows
    slot_list slots_;
    address_counts per_address_;
    bool stopping_ = false;
};

/// @}
} // namespace grey::server
