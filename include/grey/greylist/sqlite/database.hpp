// grey/greylist/sqlite/database.hpp — one SQLite connection and the statements it keeps.
//
// A connection belongs to one thread at a time (opened NOMUTEX: SQLite takes no lock of its
// own), so its statements are prepared once, at their first use, and kept for its lifetime:
// parsing SQL for every call showed in profiles as a fifth of a decision.
//
// Link grey::sqlite (SQLite 3) to use it.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace grey::greylist::sqlite {
/// @addtogroup group_greylist
/// @{

/// One use of a kept prepared statement: reset and unbound when it goes out of scope.
class statement {
  public:
    /// A use of `s`, a statement kept by its connection; null when it failed to prepare.
    explicit statement(sqlite3_stmt* s) : s_(s) {}
    ~statement() {
        if (!s_) return;  // not prepared: sqlite3_clear_bindings would crash on it
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    /// Binds parameter `i` (from 1) to the text `v`, copied.
    void bind(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT); }
    /// Binds parameter `i` (from 1) to the integer `v`.
    void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
    /// SQLITE_ROW, SQLITE_DONE, or an error; SQLITE_ERROR when the statement failed to prepare.
    int step() { return s_ ? sqlite3_step(s_) : SQLITE_ERROR; }
    /// Column `col` (from 0) of the current row, as an integer.
    std::int64_t integer(int col) { return sqlite3_column_int64(s_, col); }
    /// Column `col` (from 0) of the current row, as text.
    std::string text(int col) {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
    }

  private:
    sqlite3_stmt* s_ = nullptr;
};

/// An open connection. Not thread-safe: one thread uses it at a time.
class database {
  public:
    /// Opens `path` with `flags` (SQLITE_OPEN_*; NOMUTEX is added). Throws std::runtime_error
    /// naming the file when it cannot.
    database(const std::string& path, int flags) {
        if (sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
            const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw std::runtime_error("cannot open greylist database " + path + ": " + why);
        }
        sqlite3_busy_timeout(db_, 5000);  // another process (greylist_admin) may hold the lock
    }
    ~database() {
        for (auto& [sql, s] : statements_) sqlite3_finalize(s);
        sqlite3_close(db_);
    }
    database(const database&) = delete;
    database& operator=(const database&) = delete;

    /// The statement for `sql`, prepared at its first use and kept. Keyed by the literal's
    /// address: each call site passes its own string literal.
    statement prepared(const char* sql) {
        sqlite3_stmt*& s = statements_[sql];
        if (!s) sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
        return statement(s);
    }

    /// Runs `sql` once, unprepared: for schema and settings. Throws std::runtime_error.
    void exec_or_throw(const char* sql) {
        if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string("greylist database: ") + sqlite3_errmsg(db_));
    }

    /// The connection itself, for SQLite's own calls.
    sqlite3* native() const noexcept { return db_; }

    /// Rows the last INSERT, UPDATE or DELETE changed.
    std::size_t changes() const { return static_cast<std::size_t>(sqlite3_changes(db_)); }

  private:
    sqlite3* db_ = nullptr;
    std::unordered_map<const char*, sqlite3_stmt*> statements_;
};

/// @}
} // namespace grey::greylist::sqlite
