// grey/upstream/relay.hpp — relays a session's transactions to the real MTA while the client
// waits (DESIGN §2), so that no 2xx reaches the client unless the upstream gave it.
//
//   first accepted RCPT: connect, greet, EHLO (HELO fallback), STARTTLS and EHLO again as the
//                        upstream TLS policy asks; the client's identity as the identity
//                        policy asks (XCLIENT, its 220 and EHLO again; or XFORWARD before each
//                        MAIL: identity.hpp); replay MAIL, send RCPT; with PIPELINING
//                        (RFC 2920) XFORWARD, MAIL and RCPT leave in one write
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
//
// With several upstreams (failover.hpp) a new connection tries them in order, skipping those
// marked down, before any MAIL is sent: which upstream a transaction goes to is settled when
// its connection opens, and a transaction is never split between two of them.
#pragma once

#include <cassert>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../config.hpp"
#include "../diagnostics.hpp"
#include "../metrics/server_metrics.hpp"
#include "../smtp/command.hpp"
#include "../smtp/command_format.hpp"
#include "../smtp/reply.hpp"
#include "client.hpp"
#include "data_writer.hpp"
#include "failover.hpp"
#include "identity.hpp"
#include "known_extensions.hpp"
#include "name_lookup.hpp"
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
    /// A relay with no connection yet, for one session: `ex` and `watchdog` are the session's;
    /// `idle` the pool of its thread (none when null); `tls` the context towards the upstream
    /// (null when config.upstream_tls's policy is none); `learned` where the upstream's
    /// extensions are shared (none when null); `client` the client's address, for XCLIENT and
    /// XFORWARD; `upstreams` the server's failover state (when null, config's upstreams are
    /// tried in order, none ever skipped). All but `client` must outlive the relay.
    relay(const asio::any_io_executor& ex, detail::watchdog& watchdog, const server_config& config,
          pool* idle = nullptr, asio::ssl::context* tls = nullptr, known_extensions* learned = nullptr,
          asio::ip::tcp::endpoint client = {}, failover* upstreams = nullptr)
        : executor_(ex), watchdog_(watchdog), config_(config), pool_(idle), tls_(tls), learned_(learned),
          upstreams_(upstreams), client_endpoint_(client), text_(config.timeouts), chunks_(config.timeouts) {}

    /// What the upstream offered at its latest EHLO that this server has seen (any session's);
    /// nothing while none has been seen.
    smtp::extensions upstream_extensions() const noexcept { return learned_ ? learned_->get() : smtp::extensions{}; }

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
        if (pool_ && (client_ = pool_->acquire(identity_key))) {
            if (metrics()) metrics()->pool_hits.add();
            client_->attach(watchdog_);
            reused_ = true;
            if (state_ == state::idle) state_ = state::needs_reset;
            co_return result<void>{};
        }
        if (pool_ && metrics()) metrics()->pool_misses.add();
        if (pool_) helo_name = config_.servername;  // one connection, many clients' mail
        const std::string name(helo_name.empty() ? std::string_view(config_.servername) : helo_name);
        result<void> opened = errc::upstream_unavailable;
        if (upstreams_) {
            const std::vector<std::size_t> order = upstreams_->order();  // not a temporary across co_await
            for (const std::size_t i : order) {
                opened = co_await open_to(upstreams_->at(i), name);
                if (opened) {
                    upstreams_->succeeded(i);
                    break;
                }
                if (watchdog_.shutting_down()) break;  // cut short by a stop, not the upstream's failure
                upstreams_->failed(i, failure_);
            }
        } else {
            const std::vector<endpoint> all = config_.upstream_endpoints();
            for (const endpoint& where : all) {
                opened = co_await open_to(where, name);
                if (opened) break;
            }
        }
        co_return opened;
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
        auto r = co_await client_->command(line_, config_.timeouts.upstream_command);
        if (!r) co_return fail();
        co_return decorate(std::move(*r));
    }

    /// Whether a message that comes in BDAT chunks can go on as chunks: the upstream of the
    /// open transaction offered CHUNKING.
    bool takes_chunks() const noexcept { return client_ && client_->caps().has(smtp::extension::chunking); }

    /// The client's DATA, or the first BDAT of its message. Only a 354 lets the text through.
    /// With `chunks` (takes_chunks() must hold) nothing is asked: BDAT carries its length, and
    /// message_data then takes the octets as the client sent them.
    asio::awaitable<smtp::reply> data(bool chunks = false) {
        if (!mail_accepted()) co_return smtp::replies::upstream_failed;
        if (chunks) {
            assert(takes_chunks());
            state_ = state::in_chunks;
            co_return smtp::replies::start_data;
        }
        auto r = co_await client_->command(smtp::command_lines::data, config_.timeouts.upstream_data_init);
        if (!r) co_return fail();
        if (r->code == 354) state_ = state::in_data;
        co_return decorate(std::move(*r));
    }

    /// Whole lines, CRLF-terminated and dot-stuffed: sent as they are (see data_codec.hpp).
    /// For a chunked message, the octets as they came, in pieces of any size. Small messages
    /// are held back to leave with their end (data_writer.hpp).
    asio::awaitable<void> message_data(std::string_view wire) {
        if (state_ != state::in_data && (state_ != state::in_chunks || chunks_.refused())) co_return;
        if (metrics()) metrics()->bytes_relayed.add(wire.size());
        // Not one ?: expression: GCC 12 miscompiles co_await inside a conditional operator.
        std::error_code ec;
        if (state_ == state::in_data) ec = co_await text_.write(*client_, wire);
        else ec = co_await chunks_.write(*client_, wire);
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
        chunks_.clear();
        if (mail_accepted()) state_ = state::needs_reset;
        // A connection taken from the pool while the transaction was lost is RSET before use.
        else if (state_ == state::broken) state_ = reused_ ? state::needs_reset : state::idle;
    }

    /// The session is over: a clean connection goes back to the pool, any other is closed.
    asio::awaitable<void> quit() {
        if (!client_) co_return;
        if (pool_ && state_ == state::idle) {
            pool_->release(std::move(client_));
            co_return;
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

    metrics::server_metrics* metrics() const noexcept { return config_.metrics; }

    /// The final dot (or "BDAT n LAST") and the upstream's answer to the message.
    asio::awaitable<smtp::reply> finish_message() {
        if (!in_message()) {
            end_transaction();
            co_return smtp::replies::upstream_failed;
        }
        const bool chunked = state_ == state::in_chunks;
        state_ = state::idle;  // whatever the answer, the transaction is over
        result<smtp::reply> r = errc::upstream_protocol;
        if (chunked) r = co_await chunks_.finish(*client_);
        else r = co_await text_.finish(*client_);
        if (!r) co_return fail();
        // RFC 3030 §2: a refused chunk fails the transaction, which the upstream ends at RSET.
        if (chunked && !r->completion()) state_ = state::needs_reset;
        co_return decorate(std::move(*r));
    }

    /// A new connection to `where`, with TLS as the policy asks: under `may`, a failed
    /// handshake is followed by a plain connection (opportunistic TLS never holds mail back).
    /// On failure the connection is dropped and failure_ says why.
    asio::awaitable<result<void>> open_to(const endpoint& where, const std::string& helo_name) {
        result<void> opened = co_await open(where, helo_name, tls_ != nullptr);
        if (!opened && opened.error() == errc::upstream_tls_failed &&
            config_.upstream_tls.policy == tls::upstream_policy::may) {
            close();
            opened = co_await open(where, helo_name, false);
        }
        if (!opened) close();
        if (metrics()) (opened ? metrics()->upstream_connects : metrics()->upstream_connect_failures).add();
        co_return opened;
    }

    /// A new connection to `where`: connect, greeting, EHLO; with `secure`, STARTTLS as the
    /// policy asks and EHLO again inside TLS (RFC 3207 §4.2: what was learned before TLS is
    /// forgotten). The certificate is checked against the name configured, else against the
    /// host of the upstream actually connected to.
    asio::awaitable<result<void>> open(const endpoint& where, const std::string& helo_name, bool secure) {
        client_ = std::make_unique<client>(executor_, watchdog_, config_.timeouts);
        if (metrics()) client_->time_replies(&metrics()->upstream_reply_seconds);
        auto greeting = co_await client_->connect(where.host, where.port);
        if (!greeting || greeting->code != 220) {
            failure_ = failure_text("greeting", greeting);
            co_return errc::upstream_unavailable;
        }
        auto hello = co_await client_->hello(helo_name);
        if (!hello || !hello->completion()) {
            failure_ = failure_text("EHLO", hello);
            co_return errc::upstream_unavailable;
        }
        learn();
        if (!secure) co_return result<void>{};

        const tls::client_settings& s = config_.upstream_tls;
        if (!client_->caps().has(smtp::extension::starttls)) {
            if (s.policy == tls::upstream_policy::may) co_return result<void>{};
            diagnostics::report(diagnostics::level::error, "upstream",
                                fmt::format("upstream {} does not offer STARTTLS, which the TLS policy requires",
                                            client_->remote_name()));
            failure_ = "no STARTTLS, which the TLS policy requires";
            co_return errc::upstream_tls_failed;
        }
        const std::string& server = s.server_name.empty() ? where.host : s.server_name;
        const std::error_code ec = co_await client_->start_tls(*tls_, server, s.policy == tls::upstream_policy::verify);
        if (metrics()) (ec ? metrics()->upstream_tls_handshake_failures : metrics()->upstream_tls_handshakes).add();
        if (ec) {
            diagnostics::report(diagnostics::level::error, "upstream",
                                fmt::format("TLS to upstream {} failed: {}", client_->remote_name(), ec.message()));
            failure_ = fmt::format("TLS: {}", ec.message());
            co_return errc::upstream_tls_failed;
        }
        hello = co_await client_->hello(helo_name);
        if (!hello || !hello->completion()) {
            failure_ = failure_text("EHLO in TLS", hello);
            co_return errc::upstream_unavailable;
        }
        learn();
        co_return result<void>{};
    }

    void learn() {
        if (learned_) learned_->learn(client_->caps());
    }

    /// The transaction's first RCPT: [RSET,] [XFORWARD,] MAIL, RCPT. With PIPELINING they
    /// leave in one write and their replies are read in order; without, each is sent when the
    /// one before it has been answered (RFC 5321 §4.3). A RCPT pipelined after a refused MAIL
    /// is answered 503 and that answer is moot. A pooled connection found dead before anything
    /// was accepted is replaced, and the transaction opened again on the next.
    asio::awaitable<smtp::reply> open_transaction(const envelope& env, const smtp::rcpt_command& recipient) {
        const auto timeout = config_.timeouts.upstream_command;
        for (;;) {
            const std::string key = identity_key_of(env);
            if (!client_) {
                const result<void> connected = co_await connect(env.helo_name, key);
                if (!connected && connected.error() == errc::upstream_tls_failed)
                    co_return smtp::replies::upstream_tls_failed;
                if (!connected) co_return smtp::replies::upstream_unavailable;
            }
            // The names are looked up only for an upstream that will hear them.
            const identity_method method = choose(config_.upstream_identity, client_->caps());
            const client_identity* who = nullptr;
            if (method != identity_method::none) who = co_await identity(env);
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
            compose_opening(env, recipient, method == identity_method::xforward ? who : nullptr);
            // Before MAIL: RSET must be accepted; a refused XFORWARD changes no access decision
            // upstream, and the mail goes on without it.
            bool usable = !pipelined || !co_await client_->write(line_, timeout);
            bool identity_refused = false;
            for (std::size_t i = 0; usable && i < mail_at_; ++i) {
                const auto r = co_await exchange(opening(i), pipelined);
                const bool reset = i < resets_;
                usable = r && (r->completion() || !reset);
                identity_refused |= r && !r->completion() && !reset;
            }
            if (usable && !pipelined) usable = !co_await client_->write(opening(mail_at_), timeout);
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
            if (!pipelined && !(rcpt = co_await exchange(opening(mail_at_ + 1), false))) co_return fail();
            co_return decorate(std::move(*rcpt));
        }
    }

    /// Composes the commands that open a transaction in line_, one after the other, and notes
    /// where each ends in ends_: RSET when a transaction was left open upstream, XFORWARD when
    /// `who` is to be told, MAIL (at mail_at_) and RCPT.
    void compose_opening(const envelope& env, const smtp::rcpt_command& recipient, const client_identity* who) {
        line_.clear();
        ends_.clear();
        resets_ = state_ == state::needs_reset ? 1 : 0;
        if (resets_) {
            line_.append(smtp::command_lines::rset);
            ends_.push_back(line_.size());
        }
        if (who)
            for (const std::string& forward : identity_commands(identity_method::xforward, *who, client_->caps())) {
                line_.append(forward);
                ends_.push_back(line_.size());
            }
        mail_at_ = ends_.size();
        smtp::append_mail(line_, env.sender, env.parameters, client_->caps());
        ends_.push_back(line_.size());
        smtp::append_rcpt(line_, recipient.forward_path.mailbox, recipient.parameters);
        ends_.push_back(line_.size());
    }

    /// The `i`th command compose_opening() composed.
    std::string_view opening(std::size_t i) const {
        const std::size_t begin = i == 0 ? 0 : ends_[i - 1];
        return std::string_view(line_).substr(begin, ends_[i] - begin);
    }

    /// The reply to `line`: with PIPELINING it was written with the others and its reply is
    /// the next; without, it is written now.
    asio::awaitable<result<smtp::reply>> exchange(std::string_view line, bool pipelined) {
        const auto timeout = config_.timeouts.upstream_command;
        if (pipelined) co_return co_await client_->read_reply(timeout);
        co_return co_await client_->command(line, timeout);
    }

    /// The key of the identity this session's client would give a connection (identity.hpp);
    /// empty when the policy tells the upstream nothing.
    std::string identity_key_of(const envelope& env) const {
        if (config_.upstream_identity == identity_policy::none) return {};
        const std::string addr = client_endpoint_.port() ? identity_address(client_endpoint_.address().to_string())
                                                         : std::string(unavailable);
        return identity_key(addr, env.helo_name.empty() ? unavailable : env.helo_name, env.protocol);
    }

    /// The session's client as the upstream is to see it. Its names are looked up once per
    /// session (and cached per thread).
    asio::awaitable<const client_identity*> identity(const envelope& env) {
        if (!identity_) {
            client_identity who;
            who.addr = who.name = who.reverse_name = std::string(unavailable);
            if (client_endpoint_.port()) {
                const asio::ip::address address = client_endpoint_.address();
                who.addr = identity_address(address.to_string());
                who.port = client_endpoint_.port();
                client_names names = co_await look_up_names(address);
                who.name = std::move(names.name);
                who.reverse_name = std::move(names.reverse_name);
            }
            identity_ = std::move(who);
        }
        identity_->helo = env.helo_name.empty() ? std::string(unavailable) : std::string(env.helo_name);
        identity_->proto = std::string(env.protocol);
        co_return &*identity_;
    }

    /// XCLIENT: the connection takes the client's identity, answers with a new greeting, and
    /// is greeted again with the client's own HELO name, as Postfix reads it from that EHLO.
    /// An open upstream transaction is RSET first (XCLIENT may not come inside one). True when
    /// taken; false when refused (logged); an error when the connection failed.
    asio::awaitable<result<bool>> take_identity(const client_identity& who, std::string_view helo_name) {
        const auto timeout = config_.timeouts.upstream_command;
        if (state_ == state::needs_reset) {
            auto r = co_await client_->command(smtp::command_lines::rset, timeout);
            if (!r) co_return r.error();
            state_ = state::idle;
        }
        for (const std::string& line : identity_commands(identity_method::xclient, who, client_->caps())) {
            auto r = co_await client_->command(line, timeout);
            if (!r) co_return r.error();
            if (!r->completion()) {
                diagnostics::report(diagnostics::level::error, "upstream",
                                    fmt::format("upstream {} refused XCLIENT for {}: {} {}", client_->remote_name(),
                                                who.addr, r->code,
                                                r->lines.empty() ? "" : r->lines.back()));
                co_return false;
            }
        }
        auto hello = co_await client_->hello(helo_name.empty() ? std::string_view(config_.servername) : helo_name);
        if (!hello) co_return hello.error();
        if (!hello->completion()) co_return false;
        learn();
        client_->set_identity(who.key());
        co_return true;
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
        close();
        text_.clear();
        chunks_.clear();
        state_ = state::idle;
        reused_ = false;
    }

    /// Closes the connection at once; the transaction's state is the caller's to settle.
    void close() {
        if (client_) client_->close();
        client_.reset();
    }

    asio::any_io_executor executor_;
    detail::watchdog& watchdog_;
    const server_config& config_;
    pool* pool_;
    asio::ssl::context* tls_;  // towards the upstream; null when its policy is none
    known_extensions* learned_;  // shared by the server's sessions; may be null
    failover* upstreams_;        // shared by the server's sessions; may be null
    std::string failure_;        // why the latest new connection failed, for failover's line
    asio::ip::tcp::endpoint client_endpoint_;  // the client, for XCLIENT and XFORWARD
    std::optional<client_identity> identity_;  // its identity, once needed
    std::unique_ptr<client> client_;
    state state_ = state::idle;
    bool reused_ = false;  // the connection came from the pool and has not been heard from yet
    text_writer text_;
    chunk_writer chunks_;
    std::string line_;  // the command lines being composed, kept to compose the next
    // The commands that open a transaction, in line_: where each ends, how many RSETs lead
    // (0 or 1), and which one is MAIL. Kept to be reused.
    std::vector<std::size_t> ends_;
    std::size_t resets_ = 0, mail_at_ = 0;
};

/// @}
} // namespace grey::upstream
