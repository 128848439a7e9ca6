// grey/greylist/sqlite/group_commit.hpp — writes from any thread in shared transactions, each
// answered only once its transaction has committed.
//
// One connection writes at a time. The caller that finds no transaction running leads one,
// on its own thread once that thread's ready work has queued its own jobs: it runs them, then
// every job the other threads queued meanwhile, and commits once none is waiting. At eight
// jobs in flight, one COMMIT (its WAL frames and file locks) serves eight decisions. The
// others' coroutines wait without blocking their threads, and hear their answers on their own
// executors. A writer thread of its own would cost every write two thread switches, there and
// back; measured on 2 vCPUs, those cost more than the write itself (186 us of CPU per
// first-sight decision on one policy connection, against 60 us for SQLite alone).
//
// A transaction blocks its leader's thread while it runs: tens of microseconds, since with
// the write-ahead log in synchronous=NORMAL a commit writes to the page cache and never waits
// for the disk. The one step that does, the checkpoint, runs on a thread of its own
// (checkpointer.hpp). Jobs that arrive once a leader has committed make it lead again after
// its thread's other work, so that no thread's sessions wait behind another's stream of writes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../detail/asio.hpp"
#include "../../error.hpp"
#include "database.hpp"

namespace grey::greylist::sqlite {
/// @addtogroup group_greylist
/// @{

/// The transactions of one writing connection: run() takes part in one.
class group_commit {
  public:
    /// The most jobs in one transaction: bounds how long the first of them waits for its answer.
    static constexpr std::size_t max_batch = 256;

    /// Writes through `db`, which must outlive this object and be used by nothing else.
    explicit group_commit(database& db) : db_(db) {}

    group_commit(const group_commit&) = delete;
    group_commit& operator=(const group_commit&) = delete;

    /// Runs `f(db)` inside a transaction, and answers its result once that transaction has
    /// committed; R(errc::store_failed) when it could not begin or commit (the job's writes are
    /// then rolled back with the rest of the transaction). `f` returns a result<T>; it may refer
    /// to the caller's locals, which outlive the wait.
    template <class F>
    asio::awaitable<std::invoke_result_t<F&, database&>> run(F f) {
        using R = std::invoke_result_t<F&, database&>;
        return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
                [this](auto handler, F f) {
                    const asio::any_io_executor here = asio::get_associated_executor(handler);
                    auto j = std::make_unique<answered_job<F, decltype(handler)>>(std::move(f), std::move(handler));
                    {
                        std::lock_guard lock(mutex_);
                        queue_.push_back(std::move(j));
                        if (leading_) return;  // the running transaction, or the next, takes it in
                        leading_ = true;
                    }
                    // After what this thread has ready to run: its other sessions' writes then
                    // join this transaction instead of waiting for the next.
                    asio::post(here, [this, here] { lead(here); });
                },
                asio::use_awaitable, std::move(f));
    }

  private:
    struct job {
        virtual ~job() = default;
        virtual void run(database& db) = 0;
        /// After the transaction: `committed` false when it rolled back or never began.
        virtual void finish(bool committed) = 0;
    };

    template <class F, class Handler>
    struct answered_job final : job {
        using R = std::invoke_result_t<F&, database&>;
        answered_job(F f, Handler h)
            : f(std::move(f)), handler(std::move(h)), work(asio::make_work_guard(asio::get_associated_executor(handler))) {}
        void run(database& db) override { answer.emplace(f(db)); }
        void finish(bool committed) override {
            if (!committed || !answer) answer.emplace(R(errc::store_failed));
            auto ex = work.get_executor();
            asio::post(ex, [h = std::move(handler), r = std::move(*answer)]() mutable { std::move(h)(std::move(r)); });
            work.reset();
        }
        F f;
        Handler handler;
        asio::executor_work_guard<asio::associated_executor_t<Handler>> work;
        std::optional<R> answer;
    };

    /// One transaction of the jobs queued, on this thread, which leads (leading_).
    void lead(const asio::any_io_executor& here) {
        std::vector<std::unique_ptr<job>> jobs;
        {
            std::lock_guard lock(mutex_);
            jobs.swap(queue_);
        }
        transaction(jobs);
        std::lock_guard lock(mutex_);
        if (queue_.empty()) {
            leading_ = false;
            return;
        }
        asio::post(here, [this, here] { lead(here); });
    }

    /// Runs `jobs`, and those that arrive meanwhile, in one transaction of up to max_batch:
    /// it commits once nothing more is waiting. The writer woken by one job would otherwise
    /// commit it alone while its callers are still queueing the rest.
    void transaction(std::vector<std::unique_ptr<job>>& jobs) {
        if (jobs.size() > max_batch) {  // the rest wait for the next transaction, first in line
            std::lock_guard lock(mutex_);
            queue_.insert(queue_.begin(), std::make_move_iterator(jobs.begin() + max_batch),
                          std::make_move_iterator(jobs.end()));
            jobs.resize(max_batch);
        }
        // BEGIN and COMMIT are kept statements too: sqlite3_exec would parse them every time.
        bool ok = db_.prepared("BEGIN IMMEDIATE").step() == SQLITE_DONE;
        std::size_t ran = 0;
        while (ok && ran < jobs.size()) {
            for (; ran < jobs.size(); ++ran) jobs[ran]->run(db_);
            if (ran == max_batch) break;
            std::lock_guard lock(mutex_);
            const std::size_t room = max_batch - ran;
            const std::size_t taken = std::min(room, queue_.size());
            std::move(queue_.begin(), queue_.begin() + std::ptrdiff_t(taken), std::back_inserter(jobs));
            queue_.erase(queue_.begin(), queue_.begin() + std::ptrdiff_t(taken));
        }
        if (ok && db_.prepared("COMMIT").step() != SQLITE_DONE) {
            (void)db_.prepared("ROLLBACK").step();
            ok = false;
        }
        for (auto& j : jobs) j->finish(ok);
    }

    database& db_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<job>> queue_;  // under mutex_
    bool leading_ = false;                     // under mutex_: a thread is running transactions
};

/// @}
} // namespace grey::greylist::sqlite
