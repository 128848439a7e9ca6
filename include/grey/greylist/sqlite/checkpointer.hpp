// grey/greylist/sqlite/checkpointer.hpp — folds a database's write-ahead log back into the
// database on a thread of its own.
//
// A checkpoint copies the log's pages into the database file and syncs it: the one write that
// waits for the disk. SQLite runs it in the commit that crosses the log's size limit, which
// would stall the thread that happened to commit, and every session it serves. Here the
// commit only signals (a WAL hook on the writing connection), and this thread checkpoints
// through a connection of its own. PASSIVE: it never waits for the writer, nor the writer for
// it, and it folds back whatever the log holds when it starts.
//
// The log starts again from its beginning only after a checkpoint that folded back all of it,
// which a thread racing a busy writer never finishes: the log would grow without bound. So
// this thread copies, pass after pass, until the writer has added only a few frames since,
// and the writer folds those back itself after its next commit, with one short sync. A log
// four times its size (the thread fell behind) the writer folds back whole.
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
        : db_(path, SQLITE_OPEN_READWRITE), writer_(writer), pages_(pages) {
        // A connection opens the log only when it first reads: until then its checkpoints
        // find no log and do nothing, and say SQLITE_OK (the log then grew without bound).
        db_.exec_or_throw("SELECT count(*) FROM sqlite_schema");
        thread_ = std::thread([this] { loop(); });
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
    /// Frames few enough for the writer to fold back itself, after its commit: a millisecond.
    static constexpr int writer_finishes = 256;

    static int on_commit(void* self, sqlite3* db, const char* name, int pages) {
        auto& c = *static_cast<checkpointer*>(self);
        // The log restarts from its beginning only once a checkpoint has folded back every
        // frame in it, and the writer adds frames while this thread copies: only the writer
        // can fold back the last ones, which the thread has left few. And should the thread
        // fall behind (no CPU for it, a slow disk), the writer folds back all of it, as
        // SQLite's own checkpoint would, rather than let the log grow past four times its size.
        if (c.finish_.exchange(false, std::memory_order_acquire) || pages >= 4 * c.pages_) {
            sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            return SQLITE_OK;
        }
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
            catch_up();
            requested_.store(false, std::memory_order_relaxed);
            lock.lock();
        }
    }

    /// Folds back the log, pass after pass, each shorter than the last, until what the
    /// writer has added meanwhile is few enough for it to finish.
    void catch_up() {
        for (int pass = 0; pass < 8; ++pass) {
            int log = 0, folded = 0;
            if (sqlite3_wal_checkpoint_v2(db_.native(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &folded) != SQLITE_OK)
                return;  // another checkpoint runs (greylist_admin's): the next commit asks again
            if (folded >= log) return;  // all of it: the next write restarts the log
            if (log - folded <= writer_finishes) {
                finish_.store(true, std::memory_order_release);
                return;
            }
        }
    }

    database db_;  // this thread's alone
    database& writer_;
    const int pages_;
    std::atomic<bool> requested_{false};
    std::atomic<bool> finish_{false};  // the writer's next commit folds back the rest
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;  // under mutex_
    std::thread thread_;     // started once the rest is built
};

/// @}
} // namespace grey::greylist::sqlite
