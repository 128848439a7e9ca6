// The write-ahead log stays bounded under a writer that never pauses: the checkpointer's
// thread folds back most of it, the writer the last frames, and the log restarts.
#include <grey/greylist/sqlite/checkpointer.hpp>
#include <grey/greylist/sqlite/database.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include <unistd.h>

using namespace grey::greylist::sqlite;

TEST_CASE("A busy writer's log is folded back and restarted, never left to grow") {
    const std::filesystem::path path =
            std::filesystem::temp_directory_path() / ("grey-checkpoint-" + std::to_string(::getpid()) + ".db");
    const auto remove_all = [&] {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
    };
    remove_all();
    constexpr int commits = 20000, limit = 64;  // pages in the log before a checkpoint
    std::uintmax_t log_bytes = 0, database_bytes = 0;
    {
        database writer(path.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
        writer.exec_or_throw("PRAGMA journal_mode=WAL");
        writer.exec_or_throw("PRAGMA synchronous=NORMAL");
        writer.exec_or_throw("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
        checkpointer checkpoints(path.string(), writer, limit);
        for (int i = 0; i < commits; ++i) {  // each its own transaction: at least a frame each
            auto insert = writer.prepared("INSERT INTO t VALUES (?, randomblob(200))");
            insert.bind(1, std::int64_t{i});
            REQUIRE(insert.step() == SQLITE_DONE);
        }
        log_bytes = std::filesystem::file_size(path.string() + "-wal");
        database_bytes = std::filesystem::file_size(path);
    }
    remove_all();
    // Unfolded, the log would hold every commit's frames: 20,000 of 4 KiB and more.
    const std::uintmax_t frame = 4096 + 24;
    CHECK(log_bytes < 2000 * frame);
    // What was folded back is in the database file: most of 20,000 rows of 200 octets.
    CHECK(database_bytes > std::uintmax_t{commits} * 200 / 2);
}
