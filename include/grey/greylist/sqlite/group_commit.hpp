// grey/greylist/sqlite/group_commit.hpp — a writer thread that runs jobs from any thread in
// shared transactions, and answers each job only once its transaction has committed.
//
// SQLite blocks, and one connection writes at a time, so every write of a store goes to this
// one thread; the event loops never wait on the disk. Jobs that queue while a transaction is
// running share the next one (group commit): at eight jobs in flight, one COMMIT (its WAL
// frames and file locks) serves eight decisions. One thread also serialises the jobs, which is
// what makes a read-decide-write job atomic.
//
// The queue is a vector under a mutex, and the thread sleeps on a condition variable only when
// it is empty: a busy writer takes a whole queue per lock, and a caller wakes it (a futex call)
// only when it sleeps. Each answer is posted to the caller's own executor.
#pragma once

#include <cassert>
#include <condition_variable>
#include <algorithm>
#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../detail/asio.hpp"
#include "../../error.hpp"
#include "database.hpp"

namespace grey::greylist::sqlite {
/// @addtogroup group_greylist
/// @{

/// The writer thread of one database: run() queues jobs on it.
class group_commit {
  public:
    /// The most jobs in one transaction: bounds how long the first of them waits for its answer.
    static constexpr std::size_t max_batch = 256;

    /// Starts the thread; `db` is used by it alone from now on, and must outlive this object.
    explicit group_commit(database& db) : db_(db), thread_([this] { loop(); }) {}

    /// Runs the jobs already queued, then stops the thread.
    ~group_commit() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_one();
        thread_.join();
    }

    group_commit(const group_commit&) = delete;
    group_commit& operator=(const group_commit&) = delete;

    /// Runs `f(db)` on the writer thread inside the current transaction, and answers its result
    /// once that transaction has committed; R(errc::store_failed) when it could not begin or
    /// commit (the job's writes are then rolled back with the rest of the transaction). `f`
    /// returns a result<T>; it may refer to the caller's locals, which outlive the wait.
    template <class F>
    asio::awaitable<std::invoke_result_t<F&, database&>> run(F f) {
        using R = std::invoke_result_t<F&, database&>;
        return asio::async_initiate<const asio::use_awaitable_t<>&, void(R)>(
                [this](auto handler, F f) {
                    enqueue(std::make_unique<answered_job<F, decltype(handler)>>(std::move(f), std::move(handler)));
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

    void enqueue(std::unique_ptr<job> j) {
        bool wake;
        {
            std::lock_guard lock(mutex_);
            assert(!stopping_);
            queue_.push_back(std::move(j));
            wake = sleeping_;
            sleeping_ = false;
        }
        if (wake) wake_.notify_one();
    }

    void loop() {
        std::vector<std::unique_ptr<job>> jobs;
        for (;;) {
            {
                std::unique_lock lock(mutex_);
                while (queue_.empty() && !stopping_) {
                    sleeping_ = true;
                    wake_.wait(lock);
                }
                if (queue_.empty()) return;  // stopping, and nothing left to run
                jobs.swap(queue_);
            }
            transaction(jobs);
            jobs.clear();
        }
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
    std::condition_variable wake_;
    std::vector<std::unique_ptr<job>> queue_;  // under mutex_
    bool sleeping_ = false;                    // under mutex_: the thread waits on wake_
    bool stopping_ = false;                    // under mutex_
    std::thread thread_;                       // last: started once the rest is built
};

/// @}
} // namespace grey::greylist::sqlite
