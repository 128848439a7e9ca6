// grey/concrete_mail_handler.hpp — ConcreteMailHandler<Derived>, the seed's class: the SMTP
// state machine of MailHandler plus the decisions and the relay that make it a proxy.
//
// Per recipient, shouldWeAcceptRecipient decides first (accept by default); an accepted
// recipient opens the upstream connection if there is none yet and is relayed live, and the
// client gets the upstream's own answer. At DATA, the seed's shouldWeAcceptMail() is the last
// gate: false by default, exactly as in the seed, so a handler that does not say otherwise
// defers every message ("451 4.7.1 Please try again later") and disconnects.
#pragma once

#include <cassert>
#include <string>

#include "config.hpp"
#include "mail_handler.hpp"
#include "upstream/relay.hpp"
#include "verdict.hpp"

namespace grey {
/// @addtogroup group_sessions
/// @{

/// The seed's proxy: MailHandler's session, with per-recipient decisions and the relay to the
/// upstream (smtp_ip, smtp_port). Derived is the final class (CRTP); it replaces a decision or
/// a hook by declaring one of the same name.
template <class Derived>
class ConcreteMailHandler : public MailHandler<Derived> {
    using base = MailHandler<Derived>;

  public:
    /// The session, and a relay that connects upstream at the first accepted recipient.
    explicit ConcreteMailHandler(session_context ctx)
        : base(ctx),
          servername(ctx.config.servername),
          serverid(ctx.config.serverid),
          smtp_ip(ctx.config.smtp_ip),
          smtp_port(ctx.config.smtp_port),
          relay_(ctx.socket.get_executor(), ctx.deadline, relayed_by(ctx), this->client_record()) {}

    /// Tells ServerCore to keep an upstream service (upstream/service.hpp) for its sessions:
    /// the pool, failover, the probe that learns the upstream's extensions at start.
    static constexpr bool relays_upstream = true;

    // The seed's configuration, as this session sees it.
    std::string servername;   ///< the name Grey gives itself in its replies
    std::string serverid;     ///< the software named in the greeting
    std::string smtp_ip;      ///< the real SMTP server
    std::uint16_t smtp_port;  ///< its port

    // ---- Decisions: Derived declares its own to replace them. ----

    /// The per-recipient decision. May return bool, verdict, or an awaitable of either.
    verdict shouldWeAcceptRecipient(const smtp::rcpt_command&) { return true; }
    /// The seed's decision, taken at DATA. May return bool or awaitable<bool>.
    bool shouldWeAcceptMail() { return false; }

    // ---- The seed's actions ----

    /// Starts relaying the message text: the upstream's answer to DATA. A message the client
    /// sends in BDAT chunks goes on in BDAT chunks when the upstream offers CHUNKING, byte for
    /// byte; otherwise as DATA text made from the chunks.
    asio::awaitable<smtp::reply> acceptMail() {
        const bool chunks = this->chunked() && relay_.takes_chunks();
        // A binary body has no DATA form: it goes on in chunks, or not at all.
        if (this->mail_parameters.body == smtp::body_type::binary_mime && !chunks)
            co_return smtp::replies::cannot_take_binary;
        co_return co_await relay_.data(chunks);
    }
    /// Defers the message and ends the session, as the seed does.
    smtp::reply deferMail() {
        this->close_after_reply();
        return smtp::replies::try_again_later;
    }
    /// Refuses with `r` and ends the session.
    smtp::reply error(smtp::reply r) {
        this->close_after_reply();
        return r;
    }
    /// The reply for an upstream that failed under a transaction.
    smtp::reply RelayError() const { return smtp::replies::upstream_failed; }
    /// Opens the upstream connection now, if it is not open (normally done at the first
    /// accepted recipient).
    asio::awaitable<result<void>> connectToRealSMTPServer() { co_return co_await relay_.connect(this->remotename); }

    // ---- Hooks ----

    /// MailHandler's answer; the upstream's transaction, if any, is reset before the next one.
    smtp::reply handleHelo(const smtp::helo_command& c) {
        relay_.end_transaction();
        return base::handleHelo(c);
    }
    /// MailHandler's extensions, and those the upstream must have for Grey to offer them
    /// (smtp::relayable): what its latest EHLO reply offered.
    smtp::reply handleEhlo(const smtp::helo_command& c) {
        relay_.end_transaction();
        smtp::reply r = base::handleEhlo(c);
        const smtp::extensions up = smtp::relayable(relay_.upstream_extensions());
        if (up.has(smtp::extension::smtputf8)) r.lines.emplace_back("SMTPUTF8");
        if (up.has(smtp::extension::dsn)) r.lines.emplace_back("DSN");
        if (up.has(smtp::extension::binarymime)) r.lines.emplace_back("BINARYMIME");
        return r;
    }
    /// shouldWeAcceptRecipient first: a refused recipient gets its reply from Grey and the
    /// upstream never hears of it; an accepted one is relayed, and gets the upstream's reply.
    asio::awaitable<smtp::reply> handleRcpt(const smtp::rcpt_command& c) {
        const verdict v = co_await detail::await_hook([&] { return derived().shouldWeAcceptRecipient(c); });
        if (!v.accepted()) co_return v.reply();  // the upstream never hears of it (P3)
        co_return co_await relay_.rcpt(
            upstream::envelope{this->remotename, this->sender, this->mail_parameters, this->protocol()}, c);
    }
    /// shouldWeAcceptMail decides: acceptMail() if it says yes, deferMail() if not.
    asio::awaitable<smtp::reply> handleData() {
        const bool accept = co_await detail::await_hook([&] { return derived().shouldWeAcceptMail(); });
        if (!accept) co_return derived().deferMail();
        co_return co_await detail::await_hook([&] { return derived().acceptMail(); });
    }
    /// Passes the message text on to the upstream.
    asio::awaitable<void> handleMessageData(smtp::message_data data) { co_await relay_.message_data(data); }
    /// Ends the message upstream: the client gets the upstream's answer.
    asio::awaitable<smtp::reply> handleEndOfData() { co_return co_await relay_.end_of_data(); }
    /// Makes sure the upstream does not deliver the message.
    void handleAbortData() { relay_.abort_data(); }
    /// MailHandler's answer; the upstream's transaction, if any, is reset before the next one.
    smtp::reply handleRset() {
        relay_.end_transaction();
        return base::handleRset();
    }
    /// QUIT to the upstream, or its connection back to the pool when it is clean.
    asio::awaitable<void> handleDisconnect() { co_await relay_.quit(); }

  protected:
    /// This session as Derived, whose decisions and hooks replace the defaults.
    Derived& derived() noexcept { return static_cast<Derived&>(*this); }
    /// The upstream leg, for a Derived that talks to the upstream itself.
    upstream::relay& relay() noexcept { return relay_; }

  private:
    /// The upstream service's share for this session: ServerCore gives one to every session of
    /// a Protocol with `relays_upstream`.
    static const upstream::share& relayed_by(const session_context& ctx) noexcept {
        assert(ctx.upstream && "ConcreteMailHandler runs in a ServerCore, which gives it the upstream service");
        return *ctx.upstream;
    }

    upstream::relay relay_;
};

/// @}
} // namespace grey
