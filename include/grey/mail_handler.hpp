// grey/mail_handler.hpp — MailHandler<Derived>: one SMTP session, as one coroutine.
//
// The loop reads a line, parses it, checks it against the RFC 5321 state machine, and hands
// well-formed, in-order commands to the seed's hooks (handleHelo, handleMail, handleRcpt, …).
// Derived replaces a hook by declaring one of the same name (CRTP: no virtual calls); a hook
// returns a reply, or an asio::awaitable of one when it must wait for something. Replies are
// batched and written only when no complete command is left in the input, which is what
// PIPELINING (RFC 2920) asks. Message text is passed to handleMessageData in chunks of
// complete, validated lines straight out of the read buffer, one chunk per read: the next read
// starts only when the hook is done with the chunk, so a slow consumer slows the client down
// (back-pressure) and memory does not grow with the message. A message sent in BDAT chunks
// reaches the same hook as the octets came, typed by their framing (smtp/message_data.hpp);
// what to do with each piece is smtp::bdat_receiver's to say.
//
// Why it is longer than a header should be: it is the one place where RFC 5321's order of
// commands meets the hooks, for every verb, DATA and BDAT; each part is short, and splitting
// the switch would scatter one state machine over several files.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "config.hpp"
#include "detail/asio.hpp"
#include "diagnostics.hpp"
#include "deadline.hpp"
#include "metrics/server_metrics.hpp"
#include "session/peer.hpp"
#include "session/starttls.hpp"
#include "session_context.hpp"
#include "smtp/bdat_receiver.hpp"
#include "smtp/command.hpp"
#include "smtp/message_data.hpp"
#include "smtp/data_codec.hpp"
#include "smtp/extensions.hpp"
#include "smtp/line_reader.hpp"
#include "smtp/reply.hpp"
#include "smtp/session_state.hpp"
#include "stream.hpp"
#include "tls/context.hpp"

namespace grey {
/// @addtogroup group_sessions
/// @{

/// One SMTP session as one coroutine: the seed's hooks, called by run() in the order the
/// state machine allows. Derived is the final class (CRTP); it replaces a hook by declaring
/// one of the same name.
template <class Derived>
class MailHandler {
  public:
    /// Takes the accepted connection and what the server shares with its sessions; the
    /// session starts with run().
    explicit MailHandler(session_context ctx)
        : stream_(ctx.socket), config_(ctx.config),
          deadline_(ctx.deadline), tls_(ctx.tls), client_leaving_(std::move(ctx.client_leaving)),
          client_(std::move(ctx.client)) {
        // Reads are tried without blocking once the socket is readable (read_some); Asio's own
        // operations would switch the socket to non-blocking mode at their first use anyway.
        asio::error_code mode_ec;
        stream_.socket().non_blocking(true, mode_ec);
        if (!client_.known()) {
            // ServerCore built the peer at accept; a session made some other way asks the socket.
            asio::error_code peer_ec, local_ec;
            const auto peer_ep = ctx.peer.port() ? ctx.peer : ctx.socket.remote_endpoint(peer_ec);
            const auto local_ep = ctx.local.port() ? ctx.local : ctx.socket.local_endpoint(local_ec);
            client_ = grey::peer::accepted(peer_ec ? asio::ip::tcp::endpoint{} : peer_ep,
                                           local_ec ? asio::ip::tcp::endpoint{} : local_ep);
        }
        // The seed's names for the peer's facts, as text once.
        if (client_.known()) peer = client_.address.to_string();
        peerport = client_.port;
        if (client_.local_port) local = client_.local_address.to_string();
        localport = client_.local_port;
    }

    MailHandler(const MailHandler&) = delete;
    MailHandler& operator=(const MailHandler&) = delete;

    // The seed's session state, readable by every hook (the peer's, client(), in the seed's
    // spelling).
    std::string remotename;               ///< the name the client claimed in HELO/EHLO
    std::string peer;                     ///< the client's address (an IPv4 client un-mapped)
    std::uint16_t peerport = 0;           ///< the client's port
    std::string local;                    ///< the address the client connected to
    std::uint16_t localport = 0;          ///< the port the client connected to
    std::string sender;                   ///< reverse-path of the open transaction ("" for <>)
    std::vector<std::string> recipients;  ///< forward-paths accepted in this transaction
    smtp::mail_parameters mail_parameters;  ///< MAIL's parameters in the open transaction

    // ---- Hooks: each is optional; Derived declares one to replace it. ----

    /// The greeting: 220 with servername and serverid. Any other code refuses the session,
    /// which ends once the reply is sent.
    smtp::reply handleConnect() {
        return {220, "", fmt::format("{} ESMTP {}", config_.servername, config_.serverid)};
    }
    /// HELO: 250 with servername. The session then takes no ESMTP extension.
    smtp::reply handleHelo(const smtp::helo_command&) { return {250, "", config_.servername}; }
    /// EHLO: 250 with servername and the extensions offered. The session then allows the
    /// extensions the reply lists, and only those.
    smtp::reply handleEhlo(const smtp::helo_command&) {
        smtp::reply r{250, "", {config_.servername, "PIPELINING",
                                fmt::format("SIZE {}", config_.limits.max_message_size), "8BITMIME",
                                "ENHANCEDSTATUSCODES"}};
        r.lines.emplace_back("CHUNKING");  // RFC 3030; see dispatch_bdat
        if (offers_starttls()) r.lines.emplace_back("STARTTLS");  // RFC 3207 §4.2: never once TLS is up
        return r;
    }
    /// MAIL, in order and well-formed: a 2xx opens the transaction. Accepts any sender.
    smtp::reply handleMail(const smtp::mail_command&) { return smtp::replies::sender_ok; }
    /// RCPT, in a transaction: a 2xx adds the recipient. Accepts any recipient.
    smtp::reply handleRcpt(const smtp::rcpt_command&) { return smtp::replies::recipient_ok; }
    /// A 354 starts the message text; anything else refuses it. MailHandler alone delivers
    /// nothing, so it refuses rather than accept mail it would drop.
    smtp::reply handleData() { return smtp::replies::no_delivery; }
    /// The next piece of the message, framed as it came: DATA's whole dot-stuffed lines, or a
    /// chunked message's octets (smtp/message_data.hpp); smtp::for_each_content reads either.
    /// Taken by value: a hook that is a coroutine must not hold a reference to the caller's.
    void handleMessageData(smtp::message_data /*data*/) {}
    /// The final dot (or BDAT LAST) of a message that passed every check: the answer to it.
    smtp::reply handleEndOfData() { return smtp::replies::ok; }
    /// The message ended without its final dot being accepted (limit, bad framing, timeout,
    /// client gone): whatever handleMessageData was given must not be delivered.
    void handleAbortData() {}
    /// RSET; the session ends the transaction itself.
    smtp::reply handleRset() { return smtp::replies::reset_ok; }
    /// NOOP: 250, whatever its argument.
    smtp::reply handleNoop(std::string_view) { return smtp::replies::ok; }
    /// VRFY: 252, which tells nothing about who has a mailbox here.
    smtp::reply handleVrfy(std::string_view) { return smtp::replies::cannot_vrfy; }
    /// HELP: the commands, whatever its argument.
    smtp::reply handleHelp(std::string_view) { return smtp::replies::help; }
    /// QUIT: the session ends once this reply is sent.
    smtp::reply handleQuit() { return smtp::replies::bye; }
    /// Last of all, after the connection has closed, whatever ended the session.
    void handleDisconnect() {}

    // ---- For hooks ----

    /// The server's configuration; a Protocol with its own config_type casts it back.
    const server_config& config() const noexcept { return config_; }
    /// The session's executor, for a hook's own timers and sockets.
    asio::any_io_executor get_executor() { return stream_.socket().get_executor(); }
    /// Close the connection once the reply being composed has been sent.
    void close_after_reply() noexcept { closing_ = true; }
    /// Where the session is in RFC 5321's order of commands.
    smtp::phase phase() const noexcept { return state_.current(); }
    /// The client: address, ports, PROXY origin, HELO name, TLS, names once looked up.
    const grey::peer& client() const noexcept { return client_; }
    /// The client's host names, looked up the first time a hook, the greylist or the relay
    /// asks, and kept for the session (session/peer.hpp).
    asio::awaitable<const dns::client_names*> client_names() { return look_up_names(client_); }
    /// What TLS negotiated with the client; null while the session is in plain text.
    const tls_info* tls() const noexcept { return stream_.is_tls() ? &stream_.tls() : nullptr; }
    /// Whether EHLO offers STARTTLS now: a certificate is configured and TLS is not yet up.
    bool offers_starttls() const noexcept { return tls_ && !stream_.is_tls(); }
    /// How the client greeted: "ESMTP" after EHLO, "SMTP" after HELO (or none yet).
    std::string_view protocol() const noexcept { return extended_ ? "ESMTP" : "SMTP"; }
    /// Whether the message that handleData opens, or that is being received, comes in BDAT
    /// chunks (RFC 3030) rather than as DATA text: its octets then reach handleMessageData
    /// framed as smtp::framing::chunk_octets.
    bool chunked() const noexcept { return chunked_; }

    /// The session: greeting, commands until QUIT, an error that ends it, or the client leaving.
    asio::awaitable<void> run() {
        struct stop_deadline {
            grey::deadline& w;
            ~stop_deadline() { w.stop(); }
        } stopper{deadline_};
        deadline_.guard(stream_.socket());

        const bool talked_first = co_await talked_before_greeting();
        if (talked_first) {
            queue(smtp::replies::talked_too_soon);
            closing_ = true;
        } else {
            const smtp::reply greeting = co_await detail::await_hook([&] { return derived().handleConnect(); });
            queue(greeting);
            if (greeting.code != 220) closing_ = true;
        }
        try {
            co_await serve_commands();
        } catch (const std::exception& e) {
            // A hook that throws ends its own session, never the server: the client is told
            // to come back later, and a message half received is aborted, not delivered.
            diagnostics::report(diagnostics::level::error, "session", fmt::format("session with {}: {}", peer, e.what()));
            queue(smtp::replies::internal_error);
            closing_ = true;
        }
        if (state_.current() == smtp::phase::data || (bdat_ && !bdat_->failure())) co_await abort_message();
        // The client's place is given back before its last reply leaves: a client that opens
        // its next connection on reading "221" must find this one no longer counted.
        if (client_leaving_) client_leaving_();
        co_await flush();
        stream_.close();
        co_await detail::await_hook([&] { return derived().handleDisconnect(); });
    }

  protected:
    /// This session as Derived, whose hooks replace the defaults.
    Derived& derived() noexcept { return static_cast<Derived&>(*this); }
    /// The client, to be filled in as the session learns more (names, by client_names()).
    grey::peer& client_record() noexcept { return client_; }
    /// The session's one deadline timer, for a hook that waits on I/O of its own.
    grey::deadline& session_deadline() noexcept { return deadline_; }

  private:
    asio::awaitable<void> serve_commands() {
        while (!closing_) {
            deadline_.set_idle(!state_.in_transaction());
            if (deadline_.shutting_down() && !state_.in_transaction() && in_.buffered() == 0) {
                queue(smtp::replies::shutting_down);
                break;
            }
            // Between transactions a session with nothing unread gives its read buffer back:
            // idle connections then cost only their socket and coroutine.
            if (!state_.in_transaction()) in_.release();
            auto line = co_await read_line(config_.limits.max_command_line, config_.timeouts.command);
            deadline_.set_idle(false);
            if (!line) {
                fail(line.error());
                break;
            }
            co_await dispatch(line->text);
        }
    }

    void queue(const smtp::reply& r) { smtp::append_wire(out_, r); }

    asio::awaitable<void> flush() {
        if (out_.empty() || !stream_.socket().is_open()) co_return;
        deadline_.expires_after(config_.timeouts.send);
        const std::error_code ec = co_await stream_.write(out_);
        out_.clear();
        if (ec) closing_ = true;
    }

    /// RFC 5321 §3.1: the client waits for the greeting. Bytes already here were sent blind.
    asio::awaitable<bool> talked_before_greeting() {
        if (config_.greet_pause.count() > 0) {
            asio::steady_timer pause(get_executor(), config_.greet_pause);
            co_await pause.async_wait(detail::use_nothrow);
        }
        co_return stream_.has_input();
    }

    /// Maps why a session must answer and maybe stop into the reply it gets.
    void fail(std::error_code ec) {
        using smtp::replies::line_too_long;
        closing_ = true;
        if (ec == errc::line_too_long) queue(smtp::replies::line_too_long);
        else if (ec == errc::bare_lf || ec == errc::bare_cr) queue(smtp::replies::bare_line_ending);
        else if (ec == errc::nul_byte) queue(smtp::replies::nul_byte);
        else if (ec == errc::timeout) queue(smtp::replies::timeout);
        else if (ec == errc::shutting_down) queue(smtp::replies::shutting_down);
        // Otherwise the client is gone: nobody to answer.
    }

    /// A refused command: answered, and counted towards the session's error limit.
    void refuse(const smtp::reply& r) {
        if (config_.metrics) config_.metrics->command_refused(r.code);
        if (++errors_ >= config_.limits.max_errors) {
            queue(r.code == 421 ? r : smtp::replies::too_many_errors);
            closing_ = true;
            return;
        }
        queue(r);
    }

    void refuse(std::error_code ec) {
        using namespace smtp::replies;
        if (ec == errc::forbidden_command) {
            if (config_.metrics) config_.metrics->command_refused(554);
            queue(forbidden_command);
            closing_ = true;
            return;
        }
        refuse(ec == errc::not_implemented      ? not_implemented
               : ec == errc::unknown_command    ? unknown_command
               : ec == errc::bad_domain         ? bad_domain
               : ec == errc::bad_sender         ? bad_sender
               : ec == errc::bad_recipient      ? bad_recipient
               : ec == errc::unknown_parameter  ? unknown_parameter
               : ec == errc::bad_parameter_value ? bad_parameter_value
               : ec == errc::needs_smtputf8     ? needs_smtputf8
               : ec == errc::message_too_big    ? message_too_big
                                                : syntax_error);
    }

    /// Reads until a whole line is buffered. Pending replies go out before any wait.
    asio::awaitable<result<smtp::line>> read_line(std::size_t max, deadline::clock::duration timeout) {
        for (;;) {
            auto next = in_.next(max);
            if (!next) co_return next.error();
            if (*next) co_return **next;
            co_await flush();
            if (closing_) co_return asio::error::connection_reset;
            const std::error_code ec = co_await read_some(timeout);
            if (ec) co_return ec;
        }
    }

    asio::awaitable<std::error_code> read_some(deadline::clock::duration timeout) {
        deadline_.expires_after(timeout);
        while (!in_.holds_buffer()) {
            // Take a buffer only once there is something to read into it. Once readable, one
            // non-blocking read (the socket is in non-blocking mode) takes what is there; the
            // buffer comes from the thread's spares and goes back at once if it was the client
            // leaving.
            // The wait is the socket's own operation, not a coroutine of the stream's: an idle
            // connection holds one coroutine frame fewer.
            if (!stream_.readable_now()) {
                auto [ec] = co_await stream_.async_wait_readable(detail::use_nothrow);
                if (ec) co_return read_error(ec);
            }
            asio::error_code read_ec;
            const std::size_t n = stream_.read_now(detail::buffer(in_.prepare()), read_ec);
            if (read_ec == asio::error::would_block) {
                in_.release();
                continue;
            }
            if (read_ec) co_return read_error(read_ec);
            in_.commit(n);
            co_return std::error_code{};
        }
        auto [ec, n] = co_await stream_.read_some(detail::buffer(in_.prepare()));
        if (ec) co_return read_error(ec);
        in_.commit(n);
        co_return std::error_code{};
    }

    std::error_code read_error(std::error_code ec) const {
        if (deadline_.expired()) return deadline_.shutting_down() ? errc::shutting_down : errc::timeout;
        return ec;
    }

    void end_transaction() {
        sender.clear();
        recipients.clear();
        mail_parameters = {};
    }

    /// Whether input is already waiting, read or not: the client did not wait for our reply.
    bool sent_ahead() {
        if (config_.improper_pipelining == pipelining_policy::allow) return false;
        return in_.buffered() > 0 || stream_.has_input();
    }

    void refuse_improper_pipelining() {
        if (config_.metrics) config_.metrics->command_refused(554);
        queue(smtp::replies::improper_pipelining);
        closing_ = true;
    }

    asio::awaitable<void> dispatch(std::string_view text) {
        auto cmd = smtp::parse_command(text);
        if (!cmd) co_return refuse(cmd.error());
        if (smtp::ends_pipelined_group(cmd->verb, offered_.has(smtp::extension::pipelining)) && sent_ahead())
            co_return refuse_improper_pipelining();
        if (cmd->verb == smtp::verb::starttls && !tls_) co_return refuse(smtp::replies::not_implemented);
        if (cmd->verb == smtp::verb::bdat) co_return co_await dispatch_bdat(cmd->argument);
        // RSET, HELO or EHLO between chunks abandon the message (RFC 3030 §2).
        if (bdat_ && (cmd->verb == smtp::verb::rset || cmd->verb == smtp::verb::helo || cmd->verb == smtp::verb::ehlo))
            co_await drop_bdat();
        if (const smtp::reply* refusal = state_.check(cmd->verb)) co_return refuse(*refusal);

        switch (cmd->verb) {
        case smtp::verb::helo:
        case smtp::verb::ehlo: {
            auto helo = smtp::parse_helo(cmd->argument);
            if (!helo) co_return refuse(helo.error());
            // Two statements, not ?: — GCC 12 mis-destroys temporaries of a co_await inside ?:.
            smtp::reply r;
            if (cmd->verb == smtp::verb::ehlo)
                r = co_await detail::await_hook([&] { return derived().handleEhlo(*helo); });
            else
                r = co_await detail::await_hook([&] { return derived().handleHelo(*helo); });
            if (r.completion()) {
                state_.on_helo();  // RFC 5321 §4.1.4: HELO/EHLO also resets the transaction
                end_transaction();
                remotename = std::string(helo->domain);
                client_.helo = remotename;
                extended_ = cmd->verb == smtp::verb::ehlo;
                offered_ = extended_ ? smtp::extensions::from_ehlo(r) : smtp::extensions{};
            }
            co_return queue(r);
        }
        case smtp::verb::mail: {
            auto mail = smtp::parse_mail(cmd->argument);
            if (!mail && mail.error() == errc::needs_smtputf8) co_return refuse(smtp::replies::needs_smtputf8_sender);
            if (!mail) co_return refuse(mail.error());
            if (tls_ && tls_->settings().required && !stream_.is_tls())
                co_return refuse(smtp::replies::must_start_tls);
            // A parameter of an extension this session was not offered is unknown to it.
            if ((mail->parameters.smtputf8 && !offered_.has(smtp::extension::smtputf8)) ||
                (mail->parameters.uses_dsn() && !offered_.has(smtp::extension::dsn)) ||
                (mail->parameters.body == smtp::body_type::binary_mime && !offered_.has(smtp::extension::binarymime)))
                co_return refuse(smtp::replies::unknown_parameter);
            if (mail->parameters.size && *mail->parameters.size > config_.limits.max_message_size)
                co_return refuse(smtp::replies::message_too_big);
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleMail(*mail); });
            if (r.completion()) {
                state_.on_mail();
                sender = std::string(mail->reverse_path.mailbox);
                mail_parameters = mail->parameters;
            }
            co_return queue(r);
        }
        case smtp::verb::rcpt: {
            if (recipients.size() >= config_.limits.max_recipients)
                co_return queue(smtp::replies::too_many_recipients);
            auto rcpt = smtp::parse_rcpt(cmd->argument, mail_parameters.smtputf8);
            if (!rcpt) co_return refuse(rcpt.error());
            if (rcpt->parameters.uses_dsn() && !offered_.has(smtp::extension::dsn))
                co_return refuse(smtp::replies::unknown_parameter);
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleRcpt(*rcpt); });
            if (r.completion()) {
                state_.on_rcpt();
                recipients.emplace_back(rcpt->forward_path.mailbox);
            }
            co_return queue(r);
        }
        case smtp::verb::data: {
            if (mail_parameters.body == smtp::body_type::binary_mime) co_return refuse(smtp::replies::binary_needs_bdat);
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleData(); });
            queue(r);
            if (r.code == 354) {
                state_.on_data();
                co_await receive_message();
            }
            co_return;
        }
        case smtp::verb::rset: {
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleRset(); });
            state_.on_reset();
            end_transaction();
            co_return queue(r);
        }
        case smtp::verb::noop: {
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleNoop(cmd->argument); });
            co_return queue(r);
        }
        case smtp::verb::vrfy: {
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleVrfy(cmd->argument); });
            co_return queue(r);
        }
        case smtp::verb::help: {
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleHelp(cmd->argument); });
            co_return queue(r);
        }
        case smtp::verb::bdat:  // handled above, with its chunk
            co_return;
        case smtp::verb::starttls:
            if (stream_.is_tls()) co_return refuse(smtp::replies::tls_active);
            co_return co_await start_tls();
        case smtp::verb::quit:
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleQuit(); });
            queue(r);
            closing_ = true;
            co_return;
        }
    }

    /// RFC 3207: 220, the handshake (session/starttls.hpp), then a session that starts again
    /// from the greeting's state.
    asio::awaitable<void> start_tls() {
        queue(smtp::replies::ready_for_tls);
        co_await flush();
        if (closing_) co_return;
        const std::error_code ec = co_await start_server_tls(stream_, in_, deadline_, *tls_, config_.metrics);
        if (ec) {
            // Nothing can be said to a client whose TLS failed: neither plain text nor TLS.
            closing_ = true;
            out_.clear();
            co_return;
        }
        // RFC 3207 §4.2: the server must discard any knowledge obtained from the client
        // before TLS; the client must say EHLO again.
        state_ = smtp::session_state{};
        end_transaction();
        remotename.clear();
        client_.helo.clear();
        client_.tls = &stream_.tls();
        offered_ = {};
    }

    /// The message text, up to the lone dot: validated, counted and streamed to the hooks.
    asio::awaitable<void> receive_message() {
        std::uint64_t size = 0;
        bool too_big = false;
        for (;;) {
            // Gather the complete lines already buffered: consecutive lines are adjacent in the
            // buffer, so they go to the hook as one chunk.
            const char* chunk = nullptr;
            std::size_t chunk_size = 0;
            bool end = false;
            std::error_code framing;
            for (;;) {
                // RFC 5321 §4.5.3.1.6: the text line limit does not count the dot added for
                // transparency, so a stuffed line may be one octet longer on the wire.
                auto next = in_.next(config_.limits.max_text_line + 1);
                if (next && *next && (*next)->raw.size() > config_.limits.max_text_line &&
                    !(*next)->text.starts_with('.'))
                    next = errc::line_too_long;
                if (!next) {
                    framing = next.error();
                    break;
                }
                if (!*next) break;
                const smtp::line& l = **next;
                const smtp::data_line d = smtp::decode_data_line(l.text);
                if (d.end_of_data) {
                    end = true;
                    break;
                }
                size += d.content.size() + 2;
                if (size > config_.limits.max_message_size) too_big = true;
                if (too_big) continue;  // RFC 5321 §4.5.3.1.10: read on, answer 552 at the end
                // The line as the upstream must see it: the same bytes, or one fewer when the
                // client dotted a line that needed no dot. Then it does not continue the chunk.
                const std::string_view wire = smtp::canonical_data_line(l.raw);
                if (chunk && chunk + chunk_size != wire.data()) {
                    co_await pass_text(std::string_view(chunk, chunk_size));
                    chunk = nullptr;
                    chunk_size = 0;
                }
                if (!chunk) chunk = wire.data();
                chunk_size += wire.size();
            }
            if (chunk_size > 0) co_await pass_text(std::string_view(chunk, chunk_size));
            if (framing) {
                co_await abort_message();
                co_return fail(framing);
            }
            if (end) break;
            co_await flush();
            const std::error_code ec = co_await read_some(config_.timeouts.data_block);
            if (ec) {
                co_await abort_message();
                co_return fail(ec);
            }
        }
        state_.on_end_of_data();
        // Message text is the first "command" of a group (RFC 2920 §3.1), so with PIPELINING
        // the next commands may follow the final dot at once; without it nothing may.
        if (!offered_.has(smtp::extension::pipelining) && sent_ahead()) {
            co_await abort_message();
            refuse_improper_pipelining();
        } else if (too_big) {
            co_await abort_message();
            queue(smtp::replies::message_too_big);
        } else {
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleEndOfData(); });
            queue(r);
        }
        end_transaction();
    }

    asio::awaitable<void> pass_text(std::string_view wire) {
        co_await detail::await_hook(
            [&] { return derived().handleMessageData(smtp::message_data{wire, smtp::framing::data_text}); });
    }

    /// CHUNKING (RFC 3030). The chunk's octets follow the command line and are read whatever
    /// the answer, since the next command starts after them. The message goes to the hooks
    /// as a DATA message would: handleData at the first chunk, then its octets as they came,
    /// then handleEndOfData at LAST. smtp::bdat_receiver checks them as line_reader checks
    /// DATA text: a bare CR or LF is refused, never made a line end. A message that fails
    /// (framing, size) is aborted at once; its later chunks are read and given the same
    /// answer, until LAST.
    asio::awaitable<void> dispatch_bdat(std::string_view argument) {
        const auto chunk = smtp::parse_bdat(argument);
        if (!chunk || chunk->size > config_.limits.max_message_size) {
            // Unknown length, or more than any message may be: the octets that follow cannot
            // be told from commands, and are not worth reading.
            queue(chunk ? smtp::replies::message_too_big : smtp::replies::syntax_error);
            closing_ = true;
            co_return;
        }
        const smtp::reply* refusal = offered_.has(smtp::extension::chunking) ? state_.check(smtp::verb::bdat)
                                                                               : &smtp::replies::not_implemented;
        smtp::reply started;
        if (!refusal && state_.current() == smtp::phase::rcpt) {
            chunked_ = true;
            started = co_await detail::await_hook([&] { return derived().handleData(); });
            if (started.code == 354) {
                state_.on_bdat();
                bdat_ = std::make_unique<smtp::bdat_receiver>(config_.limits.max_text_line,
                                                              config_.limits.max_message_size,
                                                              mail_parameters.body == smtp::body_type::binary_mime);
            } else {
                chunked_ = false;
            }
        }
        const std::error_code ec = co_await take_chunk(chunk->size, !refusal && bdat_ != nullptr);
        if (ec) co_return fail(ec);  // the session ends; run() aborts the open message
        if (refusal) co_return refuse(*refusal);
        if (!bdat_) co_return queue(started);  // handleData said no
        if (!chunk->last) {
            if (!bdat_->failure()) queue(smtp::bdat_receiver::chunk_received(chunk->size));
            else queue(*bdat_->failure());
            co_return;
        }
        const smtp::bdat_receiver::step end = bdat_->finish();
        if (end == smtp::bdat_receiver::step::deliver) {
            const smtp::reply r = co_await detail::await_hook([&] { return derived().handleEndOfData(); });
            end_bdat();
            co_return queue(r);
        }
        if (end == smtp::bdat_receiver::step::abort) co_await abort_message();
        queue(*bdat_->failure());
        end_bdat();
    }

    /// Reads `size` octets of a chunk: into the message when `into_message`, else only off
    /// the wire.
    asio::awaitable<std::error_code> take_chunk(std::uint64_t size, bool into_message) {
        for (std::uint64_t left = size; left > 0;) {
            if (in_.buffered() == 0) {
                co_await flush();
                const std::error_code ec = co_await read_some(config_.timeouts.data_block);
                if (ec) co_return ec;
            }
            const std::string_view piece = in_.take(static_cast<std::size_t>(std::min<std::uint64_t>(left, in_.buffered())));
            left -= piece.size();
            if (!into_message) continue;
            switch (bdat_->take(piece)) {
            case smtp::bdat_receiver::step::deliver:
                co_await detail::await_hook([&] {
                    return derived().handleMessageData(smtp::message_data{piece, smtp::framing::chunk_octets});
                });
                break;
            case smtp::bdat_receiver::step::abort:
                co_await abort_message();
                break;
            case smtp::bdat_receiver::step::skip:
                break;
            }
        }
        co_return std::error_code{};
    }

    asio::awaitable<void> drop_bdat() {
        if (!bdat_->failure()) co_await abort_message();
        bdat_.reset();
        chunked_ = false;
    }

    void end_bdat() {
        state_.on_end_of_data();
        end_transaction();
        bdat_.reset();
        chunked_ = false;
    }

    asio::awaitable<void> abort_message() {
        co_await detail::await_hook([&] { return derived().handleAbortData(); });
    }

    stream stream_;
    const server_config& config_;
    grey::deadline& deadline_;
    tls::reloadable_context* tls_;
    std::function<void()> client_leaving_;
    grey::peer client_;
    smtp::line_reader in_;
    std::string out_;
    smtp::session_state state_;
    std::size_t errors_ = 0;
    smtp::extensions offered_;  // by the last successful EHLO; nothing after HELO
    bool extended_ = false;     // the last successful greeting was EHLO
    /// A message being received with BDAT; on the heap, as sessions rarely have one.
    std::unique_ptr<smtp::bdat_receiver> bdat_;
    bool chunked_ = false;  // from handleData of a BDAT message to its end
    bool closing_ = false;
};

/// @}
} // namespace grey
