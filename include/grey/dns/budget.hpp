// grey/dns/budget.hpp — the time one decision may spend on DNS, all its look-ups together: a
// query that would outlive it ends as a timeout, so a slow zone costs a decision its evidence,
// never the client its session.
#pragma once

#include <chrono>

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// A deadline shared by a decision's look-ups; unlimited by default.
struct budget {
    /// The moment its look-ups must have ended by.
    std::chrono::steady_clock::time_point until = std::chrono::steady_clock::time_point::max();

    /// A budget of `d` from now.
    static budget after(std::chrono::steady_clock::duration d) noexcept {
        return {std::chrono::steady_clock::now() + d};
    }
    /// Whether it is spent at `now`.
    bool spent(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) const noexcept {
        return now >= until;
    }
};

/// @}
} // namespace grey::dns
