// grey/line_log.hpp — a log of whole lines, written from many threads, for the seed's session
// log line and the policy service's line per decision.
//
// A decision writes one line, so a busy server would make a write(2) per decision, each under
// a lock the other threads queue on. Here a thread that finds no write under way writes
// everything pending, and goes on writing what the others add meanwhile; the others add their
// line under the lock and go on at once. When the server is quiet every line is written as it
// comes; when it is busy, lines leave in batches, whole, in the order they were added, and no
// thread waits on the disk while holding the lock.
#pragma once

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "diagnostics.hpp"

namespace grey {
/// @addtogroup group_metrics
/// @{

/// Whole lines to a file (appended) or to standard output, from any thread.
class line_log {
  public:
    /// Appends to `path`, created if missing (mode 0666 less the umask, as fopen's "a");
    /// standard output when `path` is empty. Throws std::runtime_error naming the file when it
    /// cannot be opened.
    explicit line_log(const std::string& path) {
        if (path.empty()) return;
        fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
        if (fd_ < 0) throw std::runtime_error(fmt::format("cannot open log file {}: {}", path, std::strerror(errno)));
        owned_ = true;
    }

    ~line_log() {
        if (owned_) ::close(fd_);
    }

    line_log(const line_log&) = delete;
    line_log& operator=(const line_log&) = delete;

    /// Adds `line` (without its newline). It is written before this returns, or by the thread
    /// writing when it is called, as soon as that thread's current write is done.
    void write(std::string_view line) {
        std::unique_lock lock(mutex_);
        pending_.append(line);
        pending_ += '\n';
        if (writing_) return;
        writing_ = true;
        while (!pending_.empty()) {
            std::swap(pending_, batch_);
            lock.unlock();
            write_all(batch_);
            batch_.clear();
            lock.lock();
        }
        writing_ = false;
    }

  private:
    void write_all(std::string_view out) {
        while (!out.empty()) {
            const ssize_t n = ::write(fd_, out.data(), out.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                // A full disk loses log lines, never mail: said on standard error, rate-limited.
                diagnostics::report(diagnostics::level::error, "log",
                                    fmt::format("session log: write failed: {}: lines lost",
                                                std::strerror(n < 0 ? errno : EIO)));
                return;
            }
            out.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    int fd_ = STDOUT_FILENO;
    bool owned_ = false;
    std::mutex mutex_;
    bool writing_ = false;  // a thread is in write_all(); guarded by mutex_
    std::string pending_;   // lines added since that write began; guarded by mutex_
    std::string batch_;     // what the writing thread writes, outside the lock
};

/// @}
} // namespace grey
