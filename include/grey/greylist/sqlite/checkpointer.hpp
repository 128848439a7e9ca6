// grey/greylist/sqlite/checkpointer.hpp — folds a database's write-ahead log back into the
// database on a thread of its own.
//
// A checkpoint copies the log's pages into the database file and syncs it: the one write that
// waits for the disk. SQLite runs it in the commit that crosses the log's size limit, which
// would stall the thread that happened to commit, and every session it serves. Here the
// commit only signals (a WAL hook on the writing connection), and this thread checkpoints
// through a connection of its own. PASSIVE: it never waits for the writer, nor the writer for
// it, and it folds back whatever the log holds when it starts.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "database.hpp"

namespace grey::greylist::sqlite {
/// @addtogroup group_greylist
/// @{

/// The checkpoints of one database file, signalled by the commits of `writer`.
class checkpointer {
  public:
    /// Checkpoints `path` whenever a commit through `writer` leaves at least `pages` pages in
    /// the log; `writer` must outlive this object. Throws std::runtime_error when the file
    /// cannot be opened.
    checkpointer(const std::string& path, database& writer, int pages)
        : db_(path, SQLITE_OPEN_READWRITE), writer_(writer), pages_(pages), thread_([this] { loop(); }) {
        // Replaces SQLite's own automatic checkpoint, which is this same hook.
        sqlite3_wal_hook(writer_.native(), &checkpointer::on_commit, this);
    }

    ~checkpointer() {
        sqlite3_wal_hook(writer_.native(), nullptr, nullptr);
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
        thread_.join();
    }

    checkpointer(const checkpointer&) = delete;
    checkpointer& operator=(const checkpointer&) = delete;

  private:
    static int on_commit(void* self, sqlite3*, const char*, int pages) {
        auto& c = *static_cast<checkpointer*>(self);
        // Once per checkpoint, not once per commit while it runs.
        if (pages >= c.pages_ && !c.requested_.exchange(true, std::memory_order_relaxed)) {
            std::lock_guard lock(c.mutex_);
            c.wake_.notify_one();
        }
        return SQLITE_OK;
    }

    void loop() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [this] { return stopping_ || requested_.load(std::memory_order_relaxed); });
            if (stopping_) return;
            lock.unlock();
            sqlite3_wal_checkpoint_v2(db_.native(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            requested_.store(false, std::memory_order_relaxed);
            lock.lock();
        }
    }

    database db_;  // this thread's alone
    database& writer_;
    const int pages_;
    std::atomic<bool> requested_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;  // under mutex_
    std::thread thread_;     // last: started once the rest is built
};

/// @}
} // namespace grey::greylist::sqlite
