// grey/greylist/greylisting_policy.hpp — GreyListingPolicy<Derived>: the seed's greylisting
// proxy, as a ConcreteMailHandler whose per-recipient decision is, in order:
//
//   1. relay control: a recipient outside allowed_domains gets "550 5.7.1 Relaying denied",
//      unless the client is an allowed sender (address or network), which may relay anywhere
//      and is not greylisted (the seed's rule);
//   2. whitelisted triples and non-standard triples pass, and so do the clients and recipients
//      of the whitelist files (Postgrey's). The client's host name is looked up (reverse, then
//      verified forward, as for XCLIENT) only when those files match names, and the client's
//      address and the recipient have not passed already; once per session;
//   3. an auto-whitelisted client group passes;
//   4. the greylist: "451 4.7.1 Please try again later" until a retry passes.
//
// A deferred recipient is answered by Grey alone: the upstream never hears of it. A store that
// cannot answer defers too, with "451 4.3.0", logged as "tempfail (store unavailable)" (not
// "greylisted": nothing was greylisted), and the outage is reported once, not per recipient.
// Derived may replace any of these decisions by declaring its own. The order is judge()'s
// default pipeline of checks (judge.hpp); greylist_config::pipeline changes it for the proxy
// and the policy server alike.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "../concrete_mail_handler.hpp"
#include "judge.hpp"
#include "judges_first.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// The answer to a recipient outside allowed_domains.
inline const smtp::reply relay_denied{550, "5.7.1", "Relaying denied"};
/// The answer while the store does not answer: deferred, never passed.
inline const smtp::reply greylist_unavailable{451, "4.3.0", "Greylist temporarily unavailable, try again later"};

/// The answer to a recipient of a client refused on its reputation (a refuse threshold set).
inline const smtp::reply refused_on_reputation{550, "5.7.1", "Service unavailable; client refused on its reputation"};

/// The answer while greylisted: the seed's "Please try again later", and when a retry can
/// pass, so that a person reading a bounce knows how long.
inline smtp::reply greylisted_reply(std::chrono::seconds wait) {
    smtp::reply r = smtp::replies::try_again_later;
    if (wait.count() > 0 && !r.lines.empty()) r.lines.front() += fmt::format(" (greylisted: retry in {} s)", wait.count());
    return r;
}

/// What the proxy answers a recipient judged `j`: accepted (relayed on), relay_denied,
/// greylist_unavailable, refused_on_reputation, or, greylisted, the seed's reply, which tells a
/// client judged first when its tier lets a retry pass (greylisted_reply()).
inline verdict verdict_of(const judgement& j) {
    if (j.accepted()) return true;
    if (j.why == finding::relay_denied) return relay_denied;
    if (j.why == finding::store_unavailable) return greylist_unavailable;
    if (j.why == finding::reputation_refused) return refused_on_reputation;
    return greylisted_reply(j.assessed ? j.wait : std::chrono::seconds{0});
}

/// The seed's greylisting proxy: a ConcreteMailHandler whose recipients are decided by judge().
/// Derived is the final class (CRTP); ServerCore<Derived> runs it with a greylist_config.
template <class Derived>
class GreyListingPolicy : public ConcreteMailHandler<Derived> {
    using base = ConcreteMailHandler<Derived>;

  public:
    /// Tells ServerCore to take a greylist_config; settings() reads it back.
    using config_type = greylist_config;

    /// Takes the lists of this moment: a reload does not change them under a session. Starts
    /// asking DNS about a client it will judge.
    explicit GreyListingPolicy(session_context ctx) : base(ctx), lists_(settings().lists->load()) {
#if GREY_JUDGES_FIRST
        const reputation_settings& r = settings().reputation;
        const grey::peer& client = this->client();
        if (r.enabled && client.known() && !r.local(client.address)) {
            try {
                reputation_.emplace(ctx.socket.get_executor(), r, client.address);
            } catch (const std::exception& e) {
                // A resolver libunbound refuses: greylisted as without DNS, and said once.
                static std::atomic_flag reported;
                if (!reported.test_and_set()) diagnostics::report(diagnostics::level::error, "dns", e.what());
            }
        }
#endif
    }

    /// MailHandler's answer; the HELO name is checked against the client from now.
    smtp::reply handleHelo(const smtp::helo_command& c) {
        note_helo(c.domain);
        return base::handleHelo(c);
    }
    /// ConcreteMailHandler's answer; the EHLO name is checked against the client from now.
    smtp::reply handleEhlo(const smtp::helo_command& c) {
        note_helo(c.domain);
        return base::handleEhlo(c);
    }
    /// MailHandler's answer; SPF is checked for the sender from now, so that it is known, or
    /// on its way, by the first recipient.
    smtp::reply handleMail(const smtp::mail_command& m) {
        smtp::reply r = base::handleMail(m);
#if GREY_JUDGES_FIRST
        if (reputation_ && r.completion()) reputation_->mail(m.reverse_path.mailbox, this->remotename);
#endif
        return r;
    }

    /// judge()'s decision as a verdict: accepted, relay_denied, greylist_unavailable, or
    /// smtp::replies::try_again_later while greylisted. Noted for the log line.
    asio::awaitable<verdict> shouldWeAcceptRecipient(const smtp::rcpt_command& rcpt) {
        const judgement j = co_await decide(rcpt.forward_path);
        note(rcpt.forward_path.mailbox, j.log_text());
        if (j.why == finding::passed) delayed_ = j.delayed;
        co_return verdict_of(j);
    }

    /// True: every recipient has been judged already.
    bool shouldWeAcceptMail() { return true; }

    /// X-Greylist for a message that was held back: prepended as the text starts.
    asio::awaitable<smtp::reply> acceptMail() {
        smtp::reply r = co_await base::acceptMail();
        if (r.code == 354 && settings().add_header && delayed_) {
            // A header line is the same octets in either framing; it goes as the message comes.
            const std::string line = x_greylist_header(*delayed_, this->servername, settings().now()) + "\r\n";
            co_await this->relay().message_data(
                {line, this->chunked() ? smtp::framing::chunk_octets : smtp::framing::data_text});
        }
        co_return r;
    }

    /// The upstream's answer to the message, noted for the log line.
    asio::awaitable<smtp::reply> handleEndOfData() {
        smtp::reply r = co_await base::handleEndOfData();
        status_ = r.completion() ? "delivered" : fmt::format("not delivered ({})", r.code);
        delayed_.reset();
        co_return r;
    }

    /// Ends the upstream session, then writes the log line.
    asio::awaitable<void> handleDisconnect() {
        co_await base::handleDisconnect();
        logResult();
    }

    /// The seed's log line: timestamp | remotename | peer | sender | recipients | status
    void logResult() {
        if (!settings().log || (noted_.empty() && status_.empty())) return;
        settings().log(log_line(std::chrono::system_clock::now(), this->remotename, this->peer, last_sender_,
                                fmt::format("{}", fmt::join(noted_, ", ")), status_.empty() ? "no message" : status_));
    }

  protected:
    /// The configuration, as the greylist_config it is.
    const greylist_config& settings() const { return static_cast<const greylist_config&>(this->config()); }
    /// The lists this session started with.
    const lists& current_lists() const { return *lists_; }

  private:
    asio::awaitable<judgement> decide(const smtp::path& recipient) {
        last_sender_ = this->sender;
        // A DNS look-up only for a decision it can change.
        if (!client_name_ && lists_->wants_client_name() &&
            !lists_->whitelisted_by_files(this->peer, {}, recipient.mailbox))
            client_name_ = co_await look_up_client_name();
        question q{this->peer, this->remotename, this->sender, recipient.mailbox, recipient.domain,
                   /*relay_control=*/true, client_name_ ? *client_name_ : std::string_view{}};
#if GREY_JUDGES_FIRST
        if (reputation_) q.reputation = &*reputation_;
#endif
        co_return co_await judge(settings(), *lists_, q);
    }

    void note_helo([[maybe_unused]] std::string_view name) {
#if GREY_JUDGES_FIRST
        if (reputation_) reputation_->helo(name);
#endif
    }

    /// The client's verified host name, "" when it has none: what Postfix's client_name is.
    asio::awaitable<std::string> look_up_client_name() {
        const dns::client_names* names = co_await this->client_names();
        co_return std::string(names->verified());
    }

    void note(std::string_view mailbox, std::string_view what) { noted_.push_back(fmt::format("{} {}", mailbox, what)); }

    std::shared_ptr<const lists> lists_;
    std::vector<std::string> noted_;
    std::string last_sender_;
    std::optional<std::string> client_name_;  ///< once looked up
    std::string status_;
    std::optional<std::chrono::seconds> delayed_;
#if GREY_JUDGES_FIRST
    std::optional<connection_reputation> reputation_;  ///< none: the client is not judged first
#endif
};

/// @}
} // namespace grey::greylist
