// grey/upstream/relay.hpp — relays a session's transactions to the real MTA while the client
// waits (DESIGN §2), so that no 2xx reaches the client unless the upstream gave it.
//
//   first accepted RCPT: a connection (connector.hpp: pooled, or new with failover and TLS);
//                        the client's identity as the identity policy asks (XCLIENT, its 220
//                        and EHLO again; or XFORWARD before each MAIL: identity.hpp); then
//                        [RSET,] [XFORWARD,] MAIL, RCPT, in one write with PIPELINING (RFC 2920)
//   later RCPTs:         sent live; each client gets the upstream's answer
//   DATA:                upstream DATA; the text is streamed (data_writer.hpp)
//   end of data:         "." upstream; the client gets the upstream's final answer
//   BDAT (RFC 3030):     to an upstream with CHUNKING, the octets as the client sent them in
//                        BDAT chunks (data_writer.hpp); the client gets the answer to
//                        "BDAT n LAST", or the first refusal of a chunk. To any other
//                        upstream, DATA as above: MailHandler has made the chunks DATA text.
//
// Once the upstream fails inside a transaction, the transaction is lost: every later RCPT
// and the DATA get 4xx until the client starts a new one, because replaying only the later
// recipients on a new connection would deliver to fewer recipients than were accepted.
// Which upstream a transaction goes to is settled when its connection opens, before any MAIL:
// a transaction is never split between two of them.
#pragma once

#include <cassert>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../config.hpp"
#include "../diagnostics.hpp"
#include "../metrics/server_metrics.hpp"
#include "../smtp/command.hpp"
#include "../smtp/command_format.hpp"
#include "../smtp/message_data.hpp"
#include "../smtp/reply.hpp"
#include "client.hpp"
#include "connector.hpp"
#include "data_writer.hpp"
#include "failover.hpp"
#include "identity.hpp"
#include "introducer.hpp"
#include "settings.hpp"
#include "share.hpp"
#include "known_extensions.hpp"
#include "opening.hpp"
#include "pool.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// What the relay replays at the start of each upstream transaction.
struct envelope {
    std::string_view helo_name;               ///< the client's HELO/EHLO name
    std::string_view sender;                  ///< MAIL FROM's reverse-path, without <>
    const smtp::mail_parameters& parameters;  ///< MAIL FROM's parameters (SIZE, BODY, DSN, SMTPUTF8)
    std::string_view protocol = "ESMTP";      ///< "SMTP" when the client said HELO
};

/// One session's relay to the upstream: the connection it opens (or takes from the pool) at
/// the first accepted recipient, and the transactions it carries while the client waits.
class relay {
  public:
    /// A session's relay, with no connection yet: `limit` is the session's deadline, `upstream`
    /// its worker's share of the server's upstream service (upstream/service.hpp), which must
    /// outlive it, and `client` the session's peer, whose names the relay looks up at most
    /// once, shared with the greylist.
    relay(const asio::any_io_executor& ex, deadline& limit, const share& upstream, grey::peer& client)
        : settings_(*upstream.settings), connector_(ex, limit, upstream), introducer_(settings_, client),
          text_(settings_.timeouts) {}

    /// What the upstream offered at its latest EHLO that this server has seen (any session's);
    /// nothing while none has been seen.
    smtp::extensions upstream_extensions() const noexcept { return connector_.upstream_extensions(); }

    /// Whether an upstream connection is open.
    bool connected() const noexcept { return client_ != nullptr; }
    /// The open upstream connection (host(), caps(), tls()); null when there is none.
    const client* connection() const noexcept { return client_.get(); }

    /// Opens the upstream connection if there is none: a pooled one, or a new one (connect,
    /// greeting, EHLO, STARTTLS as the policy asks) to the first upstream that takes it, in
    /// order, skipping those marked down (failover.hpp). A pooled connection is RSET before its
    /// next MAIL, in the same write. `helo_name` is the name to greet with on a connection of
    /// its own; `identity_key` the client's (identity.hpp), to find a pooled connection that
    /// may serve it.
    asio::awaitable<result<void>> connect(std::string_view helo_name, std::string_view identity_key = {}) {
        if (client_) co_return result<void>{};
        if ((client_ = connector_.pooled(identity_key))) {
            reused_ = true;
            if (state_ == state::idle) state_ = state::needs_reset;
            co_return result<void>{};
        }
        auto opened = co_await connector_.open(helo_name);
        if (!opened) co_return opened.error();
        client_ = std::move(*opened);
        co_return result<void>{};
    }

    /// The client's RCPT: replayed after EHLO and MAIL when this is the transaction's first
    /// (which opens the connection if there is none). The upstream's answer, or a 4xx of
    /// Grey's when the upstream cannot be had or failed.
    asio::awaitable<smtp::reply> rcpt(const envelope& env, const smtp::rcpt_command& recipient) {
        if (state_ == state::broken) co_return smtp::replies::upstream_failed;
        if (!mail_accepted()) co_return co_await open_transaction(env, recipient);
        if (recipient.parameters.uses_dsn() && !client_->caps().has(smtp::extension::dsn))
            co_return smtp::replies::upstream_lost_extension;
        line_.clear();
        smtp::append_rcpt(line_, recipient.forward_path.mailbox, recipient.parameters);
        auto r = co_await client_->command(line_, settings_.timeouts.upstream_command);
        if (!r) co_return fail();
        co_return decorate(std::move(*r));
    }

    /// Whether a message that comes in BDAT chunks can go on as chunks: the upstream of the
    /// open transaction offered CHUNKING.
    bool takes_chunks() const noexcept { return client_ && client_->caps().has(smtp::extension::chunking); }

    /// The client's DATA, or the first BDAT of its message. Only a 354 lets the text through.
    /// With `chunks` (takes_chunks() must hold) nothing is asked: BDAT carries its length, and
    /// message_data then sends the octets on as chunks.
    asio::awaitable<smtp::reply> data(bool chunks = false) {
        if (!mail_accepted()) co_return smtp::replies::upstream_failed;
        if (chunks) {
            assert(takes_chunks());
            chunks_ = std::make_unique<chunk_writer>(settings_.timeouts);
            state_ = state::in_chunks;
            co_return smtp::replies::start_data;
        }
        auto r = co_await client_->command(smtp::command_lines::data, settings_.timeouts.upstream_data_init);
        if (!r) co_return fail();
        if (r->code == 354) state_ = state::in_data;
        co_return decorate(std::move(*r));
    }

    /// The next piece of the message, framed as it came: in BDAT chunks it goes on as it came;
    /// after DATA, DATA text goes as it is (data_codec.hpp recomputed the stuffing) and a
    /// chunked message's octets are stuffed on the way. Small messages are held back to leave
    /// with their end (data_writer.hpp).
    asio::awaitable<void> message_data(smtp::message_data data) {
        if (state_ != state::in_data && (state_ != state::in_chunks || chunks_->refused())) co_return;
        assert(state_ == state::in_data || data.framing == smtp::framing::chunk_octets);
        if (metrics()) metrics()->bytes_relayed.add(data.octets.size());
        // Not one ?: expression: GCC 12 miscompiles co_await inside a conditional operator.
        std::error_code ec;
        if (state_ == state::in_data) ec = co_await text_.write(*client_, data);
        else ec = co_await chunks_->write(*client_, data.octets);
        if (ec) fail();
    }

    /// The end of the message: the client gets the upstream's own answer to it (P1).
    asio::awaitable<smtp::reply> end_of_data() {
        smtp::reply r = co_await finish_message();
        if (metrics()) (r.completion() ? metrics()->messages_relayed : metrics()->messages_failed).add();
        co_return r;
    }

    /// The message must not be delivered. Inside DATA the only way to say so is to close the
    /// connection before the final dot: the upstream then discards what it has.
    void abort_data() {
        if (in_message()) drop();
        end_transaction();
    }

    /// The client ended the transaction (RSET, HELO/EHLO, or a refused DATA then RSET).
    void end_transaction() {
        text_.clear();
        chunks_.reset();
        if (mail_accepted()) state_ = state::needs_reset;
        // A connection taken from the pool while the transaction was lost is RSET before use.
        else if (state_ == state::broken) state_ = reused_ ? state::needs_reset : state::idle;
    }

    /// The session is over: a clean connection goes back to the pool, any other is closed.
    asio::awaitable<void> quit() {
        if (!client_) co_return;
        if (state_ == state::idle) {
            client_ = connector_.release(std::move(client_));  // null once the pool keeps it
            if (!client_) co_return;
        }
        if (!in_message()) {
            auto bye = co_await client_->command(smtp::command_lines::quit, std::chrono::seconds(10));
            (void)bye;
        }
        drop();
    }

  private:
    /// Where the upstream transaction stands. mail_sent, in_data, in_chunks and needs_reset
    /// have a connection; broken has none but one connect() opened since, which carries
    /// nothing until the client ends the transaction.
    enum class state {
        idle,         ///< no transaction upstream: the next one starts with MAIL
        needs_reset,  ///< a transaction was left open upstream (or the connection is pooled): RSET first
        mail_sent,    ///< MAIL accepted upstream; RCPTs go live
        in_data,      ///< the upstream answered 354 and has not seen the final dot (text_)
        in_chunks,    ///< the message goes upstream in BDAT chunks (chunks_)
        broken,       ///< the upstream failed inside the transaction: 4xx until the client ends it
    };

    /// Whether the upstream accepted the open transaction's MAIL.
    bool mail_accepted() const noexcept {
        return state_ == state::mail_sent || state_ == state::in_data || state_ == state::in_chunks;
    }
    /// Whether the upstream is taking a message's text.
    bool in_message() const noexcept { return state_ == state::in_data || state_ == state::in_chunks; }

    metrics::server_metrics* metrics() const noexcept { return settings_.metrics; }

    /// The final dot (or "BDAT n LAST") and the upstream's answer to the message.
    asio::awaitable<smtp::reply> finish_message() {
        if (!in_message()) {
            end_transaction();
            co_return smtp::replies::upstream_failed;
        }
        const bool chunked = state_ == state::in_chunks;
        state_ = state::idle;  // whatever the answer, the transaction is over
        result<smtp::reply> r = errc::upstream_protocol;
        if (chunked) r = co_await chunks_->finish(*client_);
        else r = co_await text_.finish(*client_);
        if (!r) co_return fail();
        // RFC 3030 §2: a refused chunk fails the transaction, which the upstream ends at RSET.
        if (chunked && !r->completion()) state_ = state::needs_reset;
        co_return decorate(std::move(*r));
    }

    /// The transaction's first RCPT: [RSET,] [XFORWARD,] MAIL, RCPT. With PIPELINING they
    /// leave in one write and their replies are read in order; without, each is sent when the
    /// one before it has been answered (RFC 5321 §4.3). A RCPT pipelined after a refused MAIL
    /// is answered 503 and that answer is moot. A pooled connection found dead before anything
    /// was accepted is replaced, and the transaction opened again on the next.
    asio::awaitable<smtp::reply> open_transaction(const envelope& env, const smtp::rcpt_command& recipient) {
        const auto timeout = settings_.timeouts.upstream_command;
        for (;;) {
            const std::string key = introducer_.key(env.helo_name, env.protocol);
            if (!client_) {
                const result<void> connected = co_await connect(env.helo_name, key);
                if (!connected && connected.error() == errc::upstream_tls_failed)
                    co_return smtp::replies::upstream_tls_failed;
                if (!connected) co_return smtp::replies::upstream_unavailable;
            }
            // The names are looked up only for an upstream that will hear them.
            const identity_method method = choose(settings_.identity, client_->caps());
            const client_identity* who = nullptr;
            if (method != identity_method::none) who = co_await introducer_.who(env.helo_name, env.protocol);
            if (method == identity_method::xclient && client_->identity() != key) {
                if (!client_->identity().empty()) {
                    // It speaks for another identity (the client said HELO again with a new
                    // name): a second XCLIENT would be refused. Another connection, then.
                    drop();
                    continue;
                }
                const result<bool> taken = co_await take_identity(*who, env.helo_name);
                if (!taken) {
                    if (!reused_) co_return fail();
                    drop();  // a pooled connection the upstream had closed: take another
                    continue;
                }
                if (!*taken) {
                    drop();
                    co_return smtp::replies::upstream_identity_refused;
                }
            }
            const smtp::extensions& caps = client_->caps();
            if (env.parameters.body == smtp::body_type::eight_bit_mime && !caps.has(smtp::extension::eight_bit_mime))
                co_return smtp::replies::cannot_relay_8bit;
            // Offered to the client on what the upstream had at an earlier EHLO: if it has
            // lost one since, the transaction is refused for now rather than sent without it.
            const bool binary = env.parameters.body == smtp::body_type::binary_mime;
            if ((binary && !(caps.has(smtp::extension::binarymime) && caps.has(smtp::extension::chunking))) ||
                (env.parameters.smtputf8 && !caps.has(smtp::extension::smtputf8)) ||
                ((env.parameters.uses_dsn() || recipient.parameters.uses_dsn()) && !caps.has(smtp::extension::dsn)))
                co_return smtp::replies::upstream_lost_extension;

            const bool pipelined = caps.has(smtp::extension::pipelining);
            opening_.compose(state_ == state::needs_reset,
                             method == identity_method::xforward ? identity_commands(method, *who, caps)
                                                                 : std::vector<std::string>{},
                             env.sender, env.parameters, recipient.forward_path.mailbox, recipient.parameters, caps);
            // Before MAIL: RSET must be accepted; a refused XFORWARD changes no access decision
            // upstream, and the mail goes on without it.
            bool usable = !pipelined || !co_await client_->write(opening_.wire(), timeout);
            bool identity_refused = false;
            for (std::size_t i = 0; usable && i < opening_.mail(); ++i) {
                const auto r = co_await exchange(opening_.command(i), pipelined);
                usable = r && (r->completion() || !opening_.is_reset(i));
                identity_refused |= r && !r->completion() && !opening_.is_reset(i);
            }
            if (usable && !pipelined) usable = !co_await client_->write(opening_.command(opening_.mail()), timeout);
            if (identity_refused)
                diagnostics::report(diagnostics::level::warning, "upstream",
                                    fmt::format("upstream {} refused XFORWARD for {}", client_->remote_name(),
                                                who->addr));
            if (!usable) {
                if (!reused_) co_return fail();
                drop();  // a pooled connection the upstream had closed: take another
                continue;
            }
            state_ = state::idle;
            reused_ = false;

            auto mail = co_await client_->read_reply(timeout);
            if (!mail) co_return fail();
            result<smtp::reply> rcpt = errc::upstream_protocol;
            // A pipelined RCPT's reply comes next, whatever MAIL's was.
            if (pipelined && !(rcpt = co_await client_->read_reply(timeout))) co_return fail();
            if (!mail->completion()) {
                state_ = state::needs_reset;
                co_return decorate(std::move(*mail));
            }
            state_ = state::mail_sent;
            if (!pipelined && !(rcpt = co_await exchange(opening_.command(opening_.mail() + 1), false)))
                co_return fail();
            co_return decorate(std::move(*rcpt));
        }
    }

    /// The reply to `line`: with PIPELINING it was written with the others and its reply is
    /// the next; without, it is written now.
    asio::awaitable<result<smtp::reply>> exchange(std::string_view line, bool pipelined) {
        const auto timeout = settings_.timeouts.upstream_command;
        if (pipelined) co_return co_await client_->read_reply(timeout);
        co_return co_await client_->command(line, timeout);
    }

    /// XCLIENT (introducer.hpp), outside any transaction: one left open upstream is RSET first.
    asio::awaitable<result<bool>> take_identity(const client_identity& who, std::string_view helo_name) {
        if (state_ == state::needs_reset) {
            auto r = co_await client_->command(smtp::command_lines::rset, settings_.timeouts.upstream_command);
            if (!r) co_return r.error();
            state_ = state::idle;
        }
        const result<bool> taken = co_await introducer_.take(*client_, who, helo_name);
        if (taken && *taken) connector_.learn(*client_);
        co_return taken;
    }

    /// Grey advertises ENHANCEDSTATUSCODES whatever the upstream does (RFC 2034 §3): a reply
    /// that lacks one gets the generic code of its class.
    static smtp::reply decorate(smtp::reply r) {
        if (r.enhanced.empty() && (r.completion() || r.transient() || r.permanent()))
            r.enhanced = fmt::format("{}.0.0", r.klass());
        return r;
    }

    /// The connection failed: it is closed, and a transaction it carried is lost.
    smtp::reply fail() {
        const bool in_transaction = mail_accepted();
        drop();
        if (in_transaction) state_ = state::broken;
        return smtp::replies::upstream_failed;
    }

    /// Closes the connection at once and forgets what was on its way.
    void drop() {
        if (client_) client_->close();
        client_.reset();
        text_.clear();
        chunks_.reset();
        state_ = state::idle;
        reused_ = false;
    }

    const upstream::settings& settings_;
    connector connector_;
    introducer introducer_;
    std::unique_ptr<client> client_;
    state state_ = state::idle;
    bool reused_ = false;  // the connection came from the pool and has not been heard from yet
    text_writer text_;
    std::unique_ptr<chunk_writer> chunks_;  // for a message in BDAT chunks only: most sessions never have one
    opening opening_;   // the commands that open a transaction, kept to compose the next
    std::string line_;  // a later RCPT, kept likewise
};

/// @}
} // namespace grey::upstream
