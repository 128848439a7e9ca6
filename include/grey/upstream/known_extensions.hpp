// grey/upstream/known_extensions.hpp — what Grey last learned of the upstream's extensions,
// shared by every session on every thread: written by the probe at start and by every EHLO
// reply the upstream gives (pooled connections included), read by every EHLO Grey answers.
// A relaxed atomic is enough: a session that reads a value a moment old offers what the
// upstream had a moment ago, and a transaction that relies on an extension the upstream has
// since lost gets a 4xx from the relay, never a silent downgrade.
#pragma once

#include <atomic>
#include <cstdint>

#include "../smtp/extensions.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// The upstream's extensions as last seen, shared by every thread; lock-free.
class known_extensions {
  public:
    /// Records what an EHLO reply of the upstream offered.
    void learn(const smtp::extensions& e) noexcept { bits_.store(e.bits() | known_bit, std::memory_order_relaxed); }

    /// Whether any EHLO reply has been seen yet.
    bool known() const noexcept { return bits_.load(std::memory_order_relaxed) & known_bit; }

    /// What the latest EHLO reply seen offered; nothing while none has been seen.
    smtp::extensions get() const noexcept {
        return smtp::extensions::from_bits(bits_.load(std::memory_order_relaxed) & ~known_bit);
    }

  private:
    static constexpr std::uint32_t known_bit = 1u << 31;
    std::atomic<std::uint32_t> bits_{0};
};

/// @}
} // namespace grey::upstream
