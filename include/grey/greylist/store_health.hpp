// grey/greylist/store_health.hpp — whether a greylist store is answering. It lives with the
// store, so every session using the store (on every thread) shares it: an outage is reported
// once when it begins and once when it ends, not once per recipient of every session.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <system_error>

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Whether a store is answering: one per store, shared by all its callers (store::health()).
class store_health {
  public:
    /// Records the outcome of one store call (`ec` empty: it answered). Returns the line to
    /// report when the outcome changes the state: the first failure after a success names the
    /// error, the first success after a failure says the store is back; else nothing. Of many
    /// sessions failing at once, exactly one gets the line.
    std::optional<std::string> note(std::error_code ec) {
        const bool failed = static_cast<bool>(ec);
        // Read before writing: every RCPT comes here, and a store that stays up (or down)
        // should not have all threads writing one cache line.
        if (down_.load(std::memory_order_relaxed) == failed) return std::nullopt;
        if (down_.exchange(failed, std::memory_order_relaxed) == failed) return std::nullopt;
        if (failed) return "greylist store unavailable: " + ec.message();
        return "greylist store available again";
    }

    /// False from a failure until the next success.
    bool available() const noexcept { return !down_.load(std::memory_order_relaxed); }

  private:
    std::atomic<bool> down_{false};
};

/// @}
} // namespace grey::greylist
