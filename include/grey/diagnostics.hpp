// grey/diagnostics.hpp — what goes wrong, on standard error: one line each, with a level, and
// rate-limited per topic, so that an upstream down under load writes a few lines a minute
// rather than one per session. (The seed's session log line is something else: a record of
// every session, on its own stream.)
//
// Under systemd, standard error goes to the journal, which reads a "<N>" prefix as the line's
// priority (sd-daemon(3)): journalctl -p warning then shows what matters. Elsewhere the level
// is written out in words.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

namespace grey::diagnostics {
/// @addtogroup group_metrics
/// @{

/// How much a line matters. The values are syslog's priorities (LOG_ERR to LOG_INFO), which
/// the journal reads from a line's "<N>" prefix.
enum class level { error = 3, warning = 4, notice = 5, info = 6 };

/// The level in words ("warning"), as written when standard error is not the journal.
constexpr std::string_view name(level l) noexcept {
    switch (l) {
    case level::error: return "error";
    case level::warning: return "warning";
    case level::notice: return "notice";
    case level::info: return "info";
    }
    return "";
}

/// How many lines one topic may write, so that a failure repeated by every session (an
/// upstream down under load) fills no disk.
struct report_limits {
    unsigned burst = 10;  ///< lines of one topic per window
    std::chrono::steady_clock::duration window = std::chrono::minutes(1);  ///< the window, from a topic's first line in it
};

/// Writes diagnostic lines, one write each, rate-limited per topic and safe to call from any
/// thread. Under systemd (JOURNAL_STREAM set) a line starts with its priority as "<N>";
/// elsewhere with "grey: " and the level in words.
class reporter {
  public:
    using clock = std::chrono::steady_clock;  ///< windows are measured on it: wall-clock changes move none
    using limits = report_limits;             ///< the limits, by a shorter name

    /// `write` takes each finished line, newline included; standard error by default.
    explicit reporter(limits l = {}, std::function<void(std::string_view)> write = {},
                      std::function<clock::time_point()> now = [] { return clock::now(); })
        : limits_(l), write_(write ? std::move(write) : write_stderr), now_(std::move(now)),
          journal_(std::getenv("JOURNAL_STREAM") != nullptr) {}

    /// One line of `topic` (a fixed word: "upstream", "store", "tls"…), unless the topic has
    /// had its share of the window; then it is counted, and the next line that passes says how
    /// many were left out.
    void report(level l, std::string_view topic, std::string_view text) {
        std::string line;
        {
            std::lock_guard lock(mutex_);
            topic_state& t = topics_[std::string(topic)];
            const auto now = now_();
            if (now - t.window_start >= limits_.window) {
                t.window_start = now;
                t.lines = 0;
            }
            if (t.lines >= limits_.burst) {
                ++t.suppressed;
                return;
            }
            ++t.lines;
            const std::string prefix = journal_ ? fmt::format("<{}>grey: ", static_cast<int>(l))
                                                : fmt::format("grey: {}: ", name(l));
            line = prefix + std::string(text);
            if (t.suppressed) line += fmt::format(" ({} more {} lines left out)", std::exchange(t.suppressed, 0), topic);
            line += '\n';
        }
        write_(line);
    }

  private:
    struct topic_state {
        clock::time_point window_start{};
        unsigned lines = 0;
        unsigned suppressed = 0;
    };

    static void write_stderr(std::string_view line) {
        std::fwrite(line.data(), 1, line.size(), stderr);  // one write: lines of threads do not mix
        std::fflush(stderr);
    }

    limits limits_;
    std::function<void(std::string_view)> write_;
    std::function<clock::time_point()> now_;
    bool journal_;
    std::mutex mutex_;
    std::map<std::string, topic_state, std::less<>> topics_;
};

/// The process's reporter, which the library's components use.
inline reporter& process_reporter() {
    static reporter r;
    return r;
}

/// One line to the process's reporter: see reporter::report.
inline void report(level l, std::string_view topic, std::string_view text) {
    process_reporter().report(l, topic, text);
}

/// A task that ended by an exception, as one error line: "`what` ended by exception: why".
inline void report_exception(std::string_view what, std::exception_ptr e) {
    std::string why = "unknown exception";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        why = ex.what();
    } catch (...) {
    }
    report(level::error, what, fmt::format("{} ended by exception: {}", what, why));
}

/// The completion of a coroutine spawned to run on its own (asio::co_spawn's third argument in
/// place of asio::detached): an exception that ends it is reported, never lost.
struct reported {
    std::string_view what;  ///< what the task is, for the line: a string that outlives it
    /// Reports `e`, if the task ended by one; whatever the task returned is dropped.
    template <class... Result>
    void operator()(std::exception_ptr e, Result&&...) const {
        if (e) report_exception(what, e);
    }
};

/// @}
} // namespace grey::diagnostics
