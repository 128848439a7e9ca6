// grey/greylist/sqlite/readers.hpp — read-only connections to a WAL database, lent to the
// callers' own threads.
//
// In WAL mode readers never wait for the writer, nor it for them: a decision that only reads
// (an auto-whitelisted client, a triplet that passed long ago: most of a known sender's mail)
// is answered on the caller's thread without a hop to the writer and back. A connection is
// lent to one caller at a time; there are as many as callers have ever read at once, which is
// about one per event-loop thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "database.hpp"

namespace grey::greylist::sqlite {
/// @addtogroup group_greylist
/// @{

/// A pool of read-only connections to one database file.
class readers {
  public:
    /// Connections to `path`, opened as they are first needed. The file must exist and be in
    /// WAL mode (the writer's connection has made it so).
    explicit readers(std::string path) : path_(std::move(path)) {}

    /// A connection held until the lease ends.
    class lease {
      public:
        /// Holds `db` until the lease ends, then gives it back to `pool`.
        lease(readers& pool, std::unique_ptr<database> db) : pool_(pool), db_(std::move(db)) {}
        ~lease() { pool_.give_back(std::move(db_)); }
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        /// The connection lent.
        database& operator*() { return *db_; }
        /// The connection lent, for its members.
        database* operator->() { return db_.get(); }

      private:
        readers& pool_;
        std::unique_ptr<database> db_;
    };

    /// An idle connection, or a new one. Throws std::runtime_error when none can be opened.
    lease borrow() {
        {
            std::lock_guard lock(mutex_);
            if (!idle_.empty()) {
                auto db = std::move(idle_.back());
                idle_.pop_back();
                return lease(*this, std::move(db));
            }
        }
        auto db = std::make_unique<database>(path_, SQLITE_OPEN_READONLY);
        // No mapping of the file: a read transaction that follows another connection's commit
        // unmaps it and maps it again (a munmap, an mmap and a TLB flush per decision), and it
        // empties the connection's page cache too, so that cache stays small. A read is a
        // pread or two from the kernel's page cache.
        db->exec_or_throw("PRAGMA cache_size=-1024");
        return lease(*this, std::move(db));
    }

  private:
    void give_back(std::unique_ptr<database> db) {
        std::lock_guard lock(mutex_);
        idle_.push_back(std::move(db));
    }

    const std::string path_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<database>> idle_;  // under mutex_
};

/// @}
} // namespace grey::greylist::sqlite
