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

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// The answer to a recipient outside allowed_domains.
inline const smtp::reply relay_denied{550, "5.7.1", "Relaying denied"};
/// The answer while the store does not answer: deferred, never passed.
inline const smtp::reply greylist_unavailable{451, "4.3.0", "Greylist temporarily unavailable, try again later"};

/// The seed's greylisting proxy: a ConcreteMailHandler whose recipients are decided by judge().
/// Derived is the final class (CRTP); ServerCore<Derived> runs it with a greylist_config.
template <class Derived>
class GreyListingPolicy : public ConcreteMailHandler<Derived> {
    using base = ConcreteMailHandler<Derived>;

  public:
    /// Tells ServerCore to take a greylist_config; settings() reads it back.
    using config_type = greylist_config;

    /// Takes the lists of this moment: a reload does not change them under a session.
    explicit GreyListingPolicy(session_context ctx) : base(ctx), lists_(settings().lists->load()) {}

    /// judge()'s decision as a verdict: accepted, relay_denied, greylist_unavailable, or
    /// smtp::replies::try_again_later while greylisted. Noted for the log line.
    asio::awaitable<verdict> shouldWeAcceptRecipient(const smtp::rcpt_command& rcpt) {
        const judgement j = co_await decide(rcpt.forward_path);
        note(rcpt.forward_path.mailbox, j.describe());
        if (j.why == finding::passed) delayed_ = j.delayed;
        co_return to_verdict(j);
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
        co_return co_await judge(settings(), *lists_,
                                 question{this->peer, this->remotename, this->sender, recipient.mailbox, recipient.domain,
                                          /*relay_control=*/true, client_name_ ? *client_name_ : std::string_view{}});
    }

    /// The client's verified host name, "" when it has none: what Postfix's client_name is.
    asio::awaitable<std::string> look_up_client_name() {
        const dns::client_names* names = co_await this->client_names();
        co_return std::string(names->verified());
    }

    static verdict to_verdict(const judgement& j) {
        if (j.accepted()) return true;
        if (j.why == finding::relay_denied) return relay_denied;
        if (j.why == finding::store_unavailable) return greylist_unavailable;
        return smtp::replies::try_again_later;
    }

    void note(std::string_view mailbox, std::string_view what) { noted_.push_back(fmt::format("{} {}", mailbox, what)); }

    std::shared_ptr<const lists> lists_;
    std::vector<std::string> noted_;
    std::string last_sender_;
    std::optional<std::string> client_name_;  ///< once looked up
    std::string status_;
    std::optional<std::chrono::seconds> delayed_;
};

/// @}
} // namespace grey::greylist
