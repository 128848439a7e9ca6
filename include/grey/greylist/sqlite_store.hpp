// grey/greylist/sqlite_store.hpp — greylist state in an SQLite file: the embedded, durable
// default. It survives restarts and crashes (write-ahead log), and forgets expired records
// when purged.
//
// Writes share transactions (sqlite/group_commit.hpp): the caller that finds none running
// commits on its own thread for every caller queued meanwhile, and each hears its answer only
// once that transaction has committed: a first sighting answered 451 is in the write-ahead log
// before the client hears it, and survives the process. A commit never waits for the disk;
// the checkpoint, which does, runs on a thread of its own (sqlite/checkpointer.hpp).
//
// Reads that decide alone run on the caller's thread over a read-only connection
// (sqlite/readers.hpp): mail from an auto-whitelisted client, most of a known sender's mail,
// is answered without waiting for a transaction.
//
// Link grey::sqlite (SQLite 3) to use it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sqlite/checkpointer.hpp"
#include "sqlite/database.hpp"
#include "sqlite/group_commit.hpp"
#include "sqlite/readers.hpp"
#include "store.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// Greylist state in an SQLite file, durable.
class sqlite_store final : public store {
  public:
    /// Opens or creates the database at `path`. Throws std::runtime_error when it cannot.
    explicit sqlite_store(const std::string& path) : db_(open_writer(path)), writer_(*db_) {
        if (!has_own_file(path)) return;  // a private database: no other connection sees it
        readers_ = std::make_unique<sqlite::readers>(path);
        // The log folded back every 64 MiB rather than every 4, since each checkpoint waits
        // for the disk; on its own thread, since it waits.
        checkpoints_ = std::make_unique<sqlite::checkpointer>(path, *db_, 16384);
    }

    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;

    asio::awaitable<result<decision>> check(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await writer_.run([&](sqlite::database& db) { return do_check(db, t, timing, now); });
    }

    asio::awaitable<result<std::optional<client_record>>> client(const std::string& group) override {
        if (readers_) {
            try {
                auto reader = readers_->borrow();
                auto c = read_client(*reader, group);
                if (c) co_return c;
            } catch (const std::runtime_error&) {
                // No reader could be opened: the writer answers instead, or reports the failure.
            }
        }
        co_return co_await writer_.run([&](sqlite::database& db) { return read_client(db, group); });
    }

    asio::awaitable<result<void>> count_pass(const std::string& group, const timing& timing,
                                             clock::time_point now) override {
        co_return co_await writer_.run([&](sqlite::database& db) { return do_count_pass(db, group, timing, now); });
    }

    /// The base class's three calls as one: answered on the caller's thread when a read
    /// decides it, else one job in a shared transaction, where each call would take its own.
    asio::awaitable<result<screening>> screen(const std::string& group, const triplet& t, const timing& timing,
                                              clock::time_point now, unsigned auto_whitelist_after) override {
        const std::optional<bool> whitelisted = read_whitelisted(group, timing, now, auto_whitelist_after);
        if (whitelisted == true) co_return screening{};
        co_return co_await writer_.run([&](sqlite::database& db) -> result<screening> {
            // A client the read found not whitelisted is not asked again: if a pass has made it
            // so since, this one triplet is checked when it need not have been, and no more.
            if (auto_whitelist_after > 0 && !whitelisted) {
                auto c = read_client(db, group);
                if (!c) return c.error();
                if (client_whitelisted(auto_whitelist_after, *c, timing, now)) return screening{};
            }
            auto d = do_check(db, t, timing, now);
            if (!d) return d.error();
            screening out{std::move(*d), {}};
            if (out.checked->pass() && auto_whitelist_after > 0)
                out.uncounted = do_count_pass(db, group, timing, now).error();
            return out;
        });
    }

    asio::awaitable<result<std::vector<entry>>> find(std::string needle) override {
        co_return co_await writer_.run([&](sqlite::database& db) -> result<std::vector<entry>> {
            auto s = db.prepared(
                    "SELECT client, sender, recipient, first_seen, last_seen, passed_at, attempts, passes,"
                    " passed FROM triplets WHERE instr(client, ?1) OR instr(sender, ?1) OR instr(recipient, ?1)"
                    " OR ?1 = '' ORDER BY client, sender, recipient");
            s.bind(1, needle);
            std::vector<entry> found;
            int rc;
            while ((rc = s.step()) == SQLITE_ROW) found.push_back({{s.text(0), s.text(1), s.text(2)}, row_record(s, 3)});
            if (rc != SQLITE_DONE) return errc::store_failed;
            return found;
        });
    }

    asio::awaitable<result<void>> whitelist(const triplet& t, const timing& timing, clock::time_point now) override {
        co_return co_await writer_.run([&](sqlite::database& db) -> result<void> {
            const record r{now, now, now, 1, 1, true};
            if (!upsert(db, t, r, expires_at(timing, r))) return errc::store_failed;
            return {};
        });
    }

    asio::awaitable<result<bool>> remove(const triplet& t) override {
        co_return co_await writer_.run([&](sqlite::database& db) { return delete_triplet(db, t); });
    }

    /// Walks the table in key order, a slice per transaction, so that a purge of millions of
    /// records never holds the writing connection (or the thread leading its transactions)
    /// for more than a slice: the table has no index on expiry, which would cost every first
    /// sighting a second B-tree write for the sake of an hourly purge.
    asio::awaitable<result<std::size_t>> purge(const timing& timing, clock::time_point now) override {
        std::size_t removed = 0;
        triplet after;  // "" sorts before every key
        for (;;) {
            auto slice = co_await writer_.run([&](sqlite::database& db) { return purge_slice(db, after, now); });
            if (!slice) co_return slice.error();
            removed += slice->removed;
            if (!slice->last) break;
            after = std::move(*slice->last);
        }
        auto clients = co_await writer_.run([&](sqlite::database& db) -> result<std::size_t> {
            auto s = db.prepared("DELETE FROM clients WHERE last_pass < ?1");
            s.bind(1, to_epoch_ms(now - timing.max_age));
            if (s.step() != SQLITE_DONE) return errc::store_failed;
            return db.changes();
        });
        if (!clients) co_return clients.error();
        co_return removed + *clients;
    }

  private:
    static std::unique_ptr<sqlite::database> open_writer(const std::string& path) {
        auto db = std::make_unique<sqlite::database>(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        db->exec_or_throw("PRAGMA journal_mode=WAL");
        db->exec_or_throw("PRAGMA synchronous=NORMAL");  // with WAL: durable across process crashes
        // Reads from a mapping rather than a pread per page; up to 64 MiB of pages kept.
        db->exec_or_throw("PRAGMA mmap_size=268435456");
        db->exec_or_throw("PRAGMA cache_size=-65536");
        db->exec_or_throw(
                "CREATE TABLE IF NOT EXISTS triplets ("
                " client TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,"
                " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, passed_at INTEGER NOT NULL,"
                " attempts INTEGER NOT NULL, passes INTEGER NOT NULL, passed INTEGER NOT NULL,"
                " expires INTEGER NOT NULL,"
                " PRIMARY KEY (client, sender, recipient)) WITHOUT ROWID");
        db->exec_or_throw("DROP INDEX IF EXISTS triplets_expires");  // earlier versions' (see purge)
        db->exec_or_throw(
                "CREATE TABLE IF NOT EXISTS clients ("
                " client TEXT PRIMARY KEY NOT NULL, passes INTEGER NOT NULL, last_pass INTEGER NOT NULL)"
                " WITHOUT ROWID");
        return db;
    }

    /// Whether other connections to `path` see the same database: not so for SQLite's private
    /// temporary and in-memory databases, whose reads must then go to the writer too.
    static bool has_own_file(const std::string& path) { return !path.empty() && path != ":memory:"; }

    /// Whether the client group is auto-whitelisted, read on the caller's thread: then
    /// screen() writes nothing and needs no transaction. None when auto-whitelisting is off,
    /// or the read could not be made (the transaction then reads, and reports a failure).
    /// A pass of a known triplet is not answered on a read, though one would decide it: its
    /// count must be stored before the answer, so that the next read sees it.
    std::optional<bool> read_whitelisted(const std::string& group, const timing& timing, clock::time_point now,
                                         unsigned auto_whitelist_after) {
        if (!readers_ || auto_whitelist_after == 0) return std::nullopt;
        try {
            auto reader = readers_->borrow();
            auto c = read_client(*reader, group);
            if (!c) return std::nullopt;
            return client_whitelisted(auto_whitelist_after, *c, timing, now);
        } catch (const std::runtime_error&) {
            return std::nullopt;  // no reader could be opened
        }
    }

    struct purged_slice {
        std::size_t removed = 0;
        std::optional<triplet> last;  ///< where the next slice starts; none after the last
    };
    static constexpr int purge_slice_rows = 2000;  // about a millisecond of scanning

    static result<purged_slice> purge_slice(sqlite::database& db, const triplet& after, clock::time_point now) {
        std::vector<triplet> expired;
        purged_slice out;
        {
            auto s = db.prepared(
                    "SELECT client, sender, recipient, expires FROM triplets"
                    " WHERE (client, sender, recipient) > (?1, ?2, ?3)"
                    " ORDER BY client, sender, recipient LIMIT ?4");
            bind_key(s, after);
            s.bind(4, std::int64_t{purge_slice_rows});
            const std::int64_t now_ms = to_epoch_ms(now);
            int rows = 0, rc;
            triplet key;
            while ((rc = s.step()) == SQLITE_ROW) {
                ++rows;
                key = {s.text(0), s.text(1), s.text(2)};
                if (s.integer(3) < now_ms) expired.push_back(key);
            }
            if (rc != SQLITE_DONE) return errc::store_failed;
            if (rows == purge_slice_rows) out.last = std::move(key);
        }
        for (const triplet& t : expired) {
            auto r = delete_triplet(db, t);
            if (!r) return r.error();
        }
        out.removed = expired.size();
        return out;
    }

    static result<bool> delete_triplet(sqlite::database& db, const triplet& t) {
        auto s = db.prepared("DELETE FROM triplets WHERE client = ?1 AND sender = ?2 AND recipient = ?3");
        bind_key(s, t);
        if (s.step() != SQLITE_DONE) return errc::store_failed;
        return db.changes() > 0;
    }

    /// Binds ?1, ?2 and ?3 to the triplet's client, sender and recipient: every statement on
    /// the table names its key so.
    static void bind_key(sqlite::statement& s, const triplet& t) {
        s.bind(1, t.client);
        s.bind(2, t.sender);
        s.bind(3, t.recipient);
    }

    static record row_record(sqlite::statement& s, int first) {
        return {from_epoch_ms(s.integer(first)), from_epoch_ms(s.integer(first + 1)),
                from_epoch_ms(s.integer(first + 2)), static_cast<std::uint64_t>(s.integer(first + 3)),
                static_cast<std::uint64_t>(s.integer(first + 4)), s.integer(first + 5) != 0};
    }

    // Statements shared by the writer and the readers: each connection prepares its own.

    static result<decision> do_check(sqlite::database& db, const triplet& t, const timing& timing,
                                     clock::time_point now) {
        auto stored = read_triplet(db, t);
        if (!stored) return stored.error();
        const decision d = decide(timing, *stored, now);
        if (!upsert(db, t, d.updated, expires_at(timing, d.updated))) return errc::store_failed;
        return d;
    }

    static result<std::optional<client_record>> read_client(sqlite::database& db, const std::string& group) {
        auto s = db.prepared("SELECT passes, last_pass FROM clients WHERE client = ?1");
        s.bind(1, group);
        const int rc = s.step();
        if (rc == SQLITE_DONE) return std::optional<client_record>{};
        if (rc != SQLITE_ROW) return errc::store_failed;
        return std::optional(client_record{static_cast<std::uint64_t>(s.integer(0)), from_epoch_ms(s.integer(1))});
    }

    static result<void> do_count_pass(sqlite::database& db, const std::string& group, const timing& timing,
                                      clock::time_point now) {
        // One statement: a lapsed record starts counting again from 1.
        auto s = db.prepared(
                "INSERT INTO clients (client, passes, last_pass) VALUES (?1, 1, ?2)"
                " ON CONFLICT (client) DO UPDATE SET"
                "  passes = CASE WHEN ?2 - last_pass > ?3 THEN 1 ELSE passes + 1 END,"
                "  last_pass = ?2");
        s.bind(1, group);
        s.bind(2, to_epoch_ms(now));
        s.bind(3, std::chrono::duration_cast<std::chrono::milliseconds>(timing.max_age).count());
        if (s.step() != SQLITE_DONE) return errc::store_failed;
        return {};
    }

    static result<std::optional<record>> read_triplet(sqlite::database& db, const triplet& t) {
        auto s = db.prepared(
                "SELECT first_seen, last_seen, passed_at, attempts, passes, passed FROM triplets"
                " WHERE client = ?1 AND sender = ?2 AND recipient = ?3");
        bind_key(s, t);
        const int rc = s.step();
        if (rc == SQLITE_DONE) return std::optional<record>{};
        if (rc != SQLITE_ROW) return errc::store_failed;
        return std::optional(row_record(s, 0));
    }

    static bool upsert(sqlite::database& db, const triplet& t, const record& r, clock::time_point expires_time) {
        // Updated in place: INSERT OR REPLACE would delete the row and its index entry and
        // insert both again (measured: 5 to 20 % fewer checks/s).
        auto s = db.prepared(
                "INSERT INTO triplets (client, sender, recipient, first_seen, last_seen,"
                " passed_at, attempts, passes, passed, expires) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
                " ON CONFLICT DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen,"
                " passed_at = excluded.passed_at, attempts = excluded.attempts, passes = excluded.passes,"
                " passed = excluded.passed, expires = excluded.expires");
        bind_key(s, t);
        s.bind(4, to_epoch_ms(r.first_seen));
        s.bind(5, to_epoch_ms(r.last_seen));
        s.bind(6, to_epoch_ms(r.passed_at));
        s.bind(7, static_cast<std::int64_t>(r.attempts));
        s.bind(8, static_cast<std::int64_t>(r.passes));
        s.bind(9, std::int64_t{r.passed});
        s.bind(10, to_epoch_ms(expires_time));
        return s.step() == SQLITE_DONE;
    }

    // In this order: the checkpoints stop before the writing connection closes.
    std::unique_ptr<sqlite::database> db_;  // used through writer_ alone
    sqlite::group_commit writer_;
    std::unique_ptr<sqlite::readers> readers_;           // none for a private database
    std::unique_ptr<sqlite::checkpointer> checkpoints_;  // none for a private database
};

/// @}
} // namespace grey::greylist
