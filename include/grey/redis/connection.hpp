// grey/redis/connection.hpp — one connection to Redis over Asio, with many commands in flight.
//
// The socket is Asio's (TCP, TLS through Grey's own stream, or a unix socket); hiredis serves
// only as the RESP parser (resp.hpp), so a call suspends the caller's coroutine instead of
// blocking its thread. Commands are pipelined: concurrent calls share one connection, their
// commands leave in one write and their replies come back in order. A command unanswered
// within command_timeout, or a connection that breaks, fails every call in flight on it: none
// waits for ever. Logging in and reconnecting are the client's job (client.hpp), not this
// one's. All of it runs on one executor's thread. Link grey::redis (hiredis) to use it.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>

#include <asio/ssl/context.hpp>

#include "../detail/asio.hpp"
#include "../diagnostics.hpp"
#include "settings.hpp"
#include "../result.hpp"
#include "../stream.hpp"
#include "error.hpp"
#include "resp.hpp"

namespace grey::redis {
/// @addtogroup group_greylist
/// @{

/// One connection, many commands in flight. A call appends its command to the outgoing
/// bytes and waits; one writer sends whatever has gathered, one reader (running as long as
/// the connection, so that Redis going away is seen at once, not by the next command)
/// hands each reply to the oldest waiter. A broken connection fails every waiter, with the
/// reason, and is replaced at the next call.
class connection : public std::enable_shared_from_this<connection> {
  public:
    /// A connection not yet open, on `ex`, whose calls wait `command_timeout` at most.
    connection(const asio::any_io_executor& ex, std::chrono::milliseconds command_timeout)
        : tcp_(ex), local_(ex), resolver_(ex), command_timeout_(command_timeout), reader_(redisReaderCreate()) {}
    /// Frees hiredis's reader. The loops hold the connection, so none runs any more.
    ~connection() { redisReaderFree(reader_); }
    /// Not copyable: its calls wait on its sockets.
    connection(const connection&) = delete;
    /// Not copyable: its calls wait on its sockets.
    connection& operator=(const connection&) = delete;

    /// Connects (and shakes hands, for TLS), then starts reading.
    asio::awaitable<std::error_code> open(const redis_settings& s, asio::ssl::context* tls) {
        std::error_code ec;
        if (s.is_unix()) {
            unix_ = true;
            const asio::local::stream_protocol::endpoint where(s.unix_socket);
            std::tie(ec) = co_await local_.async_connect(where, grey::detail::use_nothrow);
            if (ec) co_return ec;
        } else {
            const std::string port = std::to_string(s.port);
            auto [resolve_ec, results] = co_await resolver_.async_resolve(s.host, port, grey::detail::use_nothrow);
            if (resolve_ec) co_return resolve_ec;
            std::tie(ec, std::ignore) = co_await asio::async_connect(tcp_, results, grey::detail::use_nothrow);
            if (ec) co_return ec;
            tcp_.set_option(grey::detail::tcp::no_delay(true), ec);
            if (tls) {
                tls_ = std::make_unique<grey::stream>(tcp_);
                const std::string name = s.tls_server_name.empty() ? s.host : s.tls_server_name;
                ec = co_await tls_->handshake(*tls, grey::stream::role::client, name, s.tls_verify);
                if (ec) co_return aborted_ ? ec : std::error_code(redis_errc::tls_failed);
            }
        }
        asio::co_spawn(tcp_.get_executor(), read_loop(shared_from_this()),
                       grey::diagnostics::reported{"redis"});
        co_return std::error_code{};
    }

    /// Whether it failed or was closed: every call on it fails, with the reason.
    bool broken() const noexcept { return broken_; }
    /// Whether it was aborted because its connect_timeout passed.
    bool timed_out() const noexcept { return timed_out_; }
    /// Closes it: the calls in flight fail with connection_lost.
    void close() { fail_all(redis_errc::connection_lost); }
    /// Ends a connection being opened: `timed_out` when its connect_timeout passed.
    void abort(bool timed_out) {
        aborted_ = true;
        timed_out_ = timed_out;
        resolver_.cancel();
        fail_all(timed_out ? redis_errc::connect_timeout : redis_errc::connection_lost);
    }

    /// One command, one reply. An error reply from Redis is a reply; a broken connection,
    /// a reply later than command_timeout or unparsable bytes are an error. `command` is
    /// RESP, made by command() (resp.hpp). `replies` > 1: `command` is that many commands,
    /// sent in one piece, so that no other call's command comes between them (ASKING and
    /// the command it is for); the answer is the last one's reply.
    asio::awaitable<result<reply>> call(const std::string& command, unsigned replies = 1) {
        if (broken_) co_return failure_;
        if (command.empty() || replies == 0) co_return std::error_code(redis_errc::protocol_error);  // hiredis could not format it
        waiter w(tcp_.get_executor(), command_timeout_, replies);
        outgoing_ += command;
        waiting_.push_back(&w);
        if (!writing_) {
            writing_ = true;
            asio::co_spawn(tcp_.get_executor(), write_loop(shared_from_this()),
                           grey::diagnostics::reported{"redis"});
        }
        if (!w.done) co_await w.ready.async_wait(grey::detail::use_nothrow);
        // The deadline passed: the replies behind this one can no longer be matched to
        // their commands, so the connection ends, and every call on it fails.
        if (!w.done) fail_all(redis_errc::command_timeout);
        co_return std::move(w.answer);
    }

  private:
    struct waiter {
        waiter(const asio::any_io_executor& ex, std::chrono::milliseconds timeout, unsigned expected)
            : ready(ex, timeout), replies(expected) {}
        asio::steady_timer ready;  // expires at the deadline; cancelled when the answer is in
        result<reply> answer{std::error_code(redis_errc::connection_lost)};
        unsigned replies;  // still to come; only the last is the answer
        bool done = false;
    };

    static void answer(waiter& w, result<reply> r) {
        w.answer = std::move(r);
        w.done = true;
        w.ready.cancel();
    }

    void fail_all(std::error_code why) {
        if (!broken_) failure_ = why;
        broken_ = true;
        asio::error_code ignored;
        if (tls_ && tls_->is_tls()) tls_->close();
        tcp_.close(ignored);
        local_.close(ignored);
        for (waiter* w : waiting_) answer(*w, failure_);
        waiting_.clear();
    }

    asio::awaitable<std::tuple<std::error_code, std::size_t>> read_some(asio::mutable_buffer b) {
        if (unix_) {
            auto [ec, n] = co_await local_.async_read_some(b, grey::detail::use_nothrow);
            co_return std::tuple<std::error_code, std::size_t>{ec, n};
        }
        if (tls_) co_return co_await tls_->read_some(b);
        auto [ec, n] = co_await tcp_.async_read_some(b, grey::detail::use_nothrow);
        co_return std::tuple<std::error_code, std::size_t>{ec, n};
    }

    asio::awaitable<std::error_code> write(const std::string& bytes) {
        if (unix_) {
            auto [ec, n] = co_await asio::async_write(local_, asio::buffer(bytes), grey::detail::use_nothrow);
            co_return ec;
        }
        if (tls_) co_return co_await tls_->write(bytes);
        auto [ec, n] = co_await asio::async_write(tcp_, asio::buffer(bytes), grey::detail::use_nothrow);
        co_return ec;
    }

    static asio::awaitable<void> write_loop(std::shared_ptr<connection> self) {
        while (!self->outgoing_.empty() && !self->broken_) {
            self->sending_.swap(self->outgoing_);
            const std::error_code ec = co_await self->write(self->sending_);
            self->sending_.clear();
            if (ec) self->fail_all(redis_errc::connection_lost);
        }
        self->writing_ = false;
    }

    static asio::awaitable<void> read_loop(std::shared_ptr<connection> self) {
        while (!self->broken_) {
            void* raw = nullptr;
            if (redisReaderGetReply(self->reader_, &raw) != REDIS_OK) {
                self->fail_all(redis_errc::protocol_error);
                break;
            }
            if (raw) {
                std::unique_ptr<redisReply, void (*)(void*)> r(static_cast<redisReply*>(raw), freeReplyObject);
                if (self->waiting_.empty()) {
                    self->fail_all(redis_errc::protocol_error);
                    break;
                }
                waiter* w = self->waiting_.front();
                if (--w->replies > 0) continue;
                self->waiting_.pop_front();
                answer(*w, reply::copy(*r));
                continue;
            }
            auto [ec, got] = co_await self->read_some(asio::buffer(self->buffer_));
            if (ec) {
                self->fail_all(redis_errc::connection_lost);
                break;
            }
            redisReaderFeed(self->reader_, self->buffer_, got);
        }
    }

    grey::detail::tcp::socket tcp_;
    asio::local::stream_protocol::socket local_;
    std::unique_ptr<grey::stream> tls_;  // over tcp_, with rediss://
    grey::detail::tcp::resolver resolver_;
    std::chrono::milliseconds command_timeout_;
    redisReader* reader_;
    std::string outgoing_;  // commands not yet handed to the socket
    std::string sending_;   // the write in progress
    std::deque<waiter*> waiting_;
    std::error_code failure_;  // why it broke
    bool unix_ = false;
    bool writing_ = false;
    bool broken_ = false;
    bool aborted_ = false;
    bool timed_out_ = false;
    char buffer_[16384];
};

/// @}
} // namespace grey::redis
