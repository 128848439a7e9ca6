// grey/redis/reconnect_backoff.hpp — when a Redis client may try to connect again.
//
// Kept apart from the connection, and free of I/O and of any clock of its own, so that its
// schedule is tested by passing times in. While Redis is down, each failed attempt doubles
// the wait before the next: a Redis that is down gets no storm of connections, and one that
// comes back is tried again within the longest wait.
#pragma once

#include <algorithm>
#include <chrono>

namespace grey::redis {
/// @addtogroup group_greylist
/// @{

/// When to try connecting again, without I/O: at once after a connection that worked; after a
/// failed attempt not before `min`, and each further failure doubles the wait up to `max`.
class reconnect_backoff {
  public:
    /// Steady time: the wall clock may jump.
    using time_point = std::chrono::steady_clock::time_point;

    /// Waits from `min` to `max`; a `max` below `min` is taken as `min`.
    reconnect_backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) noexcept
        : min_(min), max_(std::max(min, max)), delay_(min) {}

    /// Whether an attempt may be made at `now`.
    bool may_try(time_point now) const noexcept { return now >= next_; }
    /// An attempt failed at `now`: none before the current wait has gone by, and the wait doubles.
    void failed(time_point now) noexcept {
        next_ = now + delay_;
        delay_ = std::min(delay_ * 2, max_);
    }
    /// A connection worked: the next attempt may come at once, the next failure waits `min`.
    void succeeded() noexcept {
        delay_ = min_;
        next_ = time_point{};
    }
    /// The wait the next failure will impose.
    std::chrono::milliseconds next_delay() const noexcept { return delay_; }
    /// The earliest time of the next attempt.
    time_point next_attempt() const noexcept { return next_; }

  private:
    std::chrono::milliseconds min_, max_, delay_;
    time_point next_{};
};

/// @}
} // namespace grey::redis
