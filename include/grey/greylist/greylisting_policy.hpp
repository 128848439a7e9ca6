// grey/greylist/greylisting_policy.hpp — GreyListingPolicy<Derived>: the seed's greylisting
// proxy, as a ConcreteMailHandler whose per-recipient decision is, in order:
//
//   1. relay control: a recipient outside allowed_domains gets "550 5.7.1 Relaying denied",
//      unless the client is an allowed sender (address or network), which may relay anywhere
//      and is not greylisted (the seed's rule);
//   2. whitelisted triples and non-standard triples pass;
//   3. an auto-whitelisted client group passes;
//   4. the greylist: "451 4.7.1 Please try again later" until a retry passes.
//
// A deferred recipient is answered by Grey alone: the upstream never hears of it. A store that
// cannot answer defers too, with "451 4.3.0", logged as "tempfail (store unavailable)" (not
// "greylisted": nothing was greylisted), and the outage is reported once, not per recipient.
// Derived may replace any of these decisions by declaring its own.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "../concrete_mail_handler.hpp"
#include "engine.hpp"
#include "lists.hpp"
#include "store.hpp"
#include "triplet.hpp"

namespace grey::greylist {

/// The lists, shared by all sessions and replaced whole on reload: a session keeps the
/// snapshot it started with.
class shared_lists {
  public:
    explicit shared_lists(lists l = {}) : current_(std::make_shared<const lists>(std::move(l))) {}
    std::shared_ptr<const lists> load() const { return current_.load(); }
    void replace(lists l) { current_.store(std::make_shared<const lists>(std::move(l))); }

  private:
    std::atomic<std::shared_ptr<const lists>> current_;
};

struct greylist_config : server_config {
    greylist::timing timing = timing::postgrey();
    greylist::grouping grouping{};
    greylist::normalisation normalisation{};
    unsigned auto_whitelist_after = 5;  ///< passed deliveries before a client skips the greylist; 0: off
    bool add_header = false;            ///< prepend X-Greylist to mail that was held back
    /// Applied to each triplet (and client group) before it reaches the store; privacy mode
    /// sets it to greylist::hashed (privacy.hpp).
    std::function<triplet(triplet)> transform;
    std::shared_ptr<greylist::store> store;
    std::shared_ptr<shared_lists> lists = std::make_shared<shared_lists>();
    /// Receives the session's log line; none when empty.
    std::function<void(const std::string&)> log;
    /// Receives a line when the store stops answering and when it answers again (store_health):
    /// once per outage for all sessions. Standard error by default; none when empty.
    std::function<void(const std::string&)> report = [](const std::string& line) {
        fmt::print(stderr, "grey: {}\n", line);
    };
    /// The clock greylisting reads: replaced in tests to move time without sleeping.
    std::function<clock::time_point()> now = [] { return clock::now(); };
};

inline const smtp::reply relay_denied{550, "5.7.1", "Relaying denied"};
inline const smtp::reply greylist_unavailable{451, "4.3.0", "Greylist temporarily unavailable, try again later"};

template <class Derived>
class GreyListingPolicy : public ConcreteMailHandler<Derived> {
    using base = ConcreteMailHandler<Derived>;

  public:
    using config_type = greylist_config;

    explicit GreyListingPolicy(session_context ctx) : base(ctx), lists_(settings().lists->load()) {}

    asio::awaitable<verdict> shouldWeAcceptRecipient(const smtp::rcpt_command& rcpt) {
        const verdict v = co_await decide(rcpt.forward_path);
        note(rcpt.forward_path.mailbox, describe(v));
        co_return v;
    }

    bool shouldWeAcceptMail() { return true; }

    /// X-Greylist for a message that was held back: prepended as the text starts.
    asio::awaitable<smtp::reply> acceptMail() {
        smtp::reply r = co_await base::acceptMail();
        if (r.code == 354 && settings().add_header && delayed_) {
            co_await this->relay().message_data(fmt::format(
                "X-Greylist: delayed {} seconds by Grey at {}; {:%a, %d %b %Y %H:%M:%S} +0000\r\n",
                delayed_->count(), this->servername, fmt::gmtime(clock::to_time_t(settings().now()))));
        }
        co_return r;
    }

    asio::awaitable<smtp::reply> handleEndOfData() {
        smtp::reply r = co_await base::handleEndOfData();
        status_ = r.completion() ? "delivered" : fmt::format("not delivered ({})", r.code);
        delayed_.reset();
        co_return r;
    }

    asio::awaitable<void> handleDisconnect() {
        co_await base::handleDisconnect();
        logResult();
    }

    /// The seed's log line: timestamp | remotename | peer | sender | recipients | status
    void logResult() {
        if (!settings().log || (noted_.empty() && status_.empty())) return;
        const auto now = std::chrono::system_clock::now();
        settings().log(fmt::format("{:%Y%m%d%H%M%S} | {} | {} | {} | {} | {}",
                                   fmt::gmtime(std::chrono::system_clock::to_time_t(now)), this->remotename,
                                   this->peer, last_sender_, fmt::join(noted_, ", "),
                                   status_.empty() ? "no message" : status_));
    }

  protected:
    const greylist_config& settings() const { return static_cast<const greylist_config&>(this->config()); }
    const lists& current_lists() const { return *lists_; }

  private:
    asio::awaitable<verdict> decide(const smtp::path& recipient) {
        const greylist_config& s = settings();
        const lists& l = *lists_;
        last_sender_ = this->sender;
        if (l.may_relay_anywhere(this->peer)) co_return true;
        // <Postmaster> has no domain, and every server must take it (RFC 5321 §4.5.1).
        if (!recipient.domain.empty() && !l.relays_for(recipient.domain)) co_return relay_denied;
        if (l.whitelisted(this->peer, this->remotename, this->sender, recipient.mailbox)) co_return true;

        std::string group = client_group(this->peer, s.grouping);
        triplet key = make_triplet(this->peer, this->sender, recipient.mailbox, s.grouping, s.normalisation);
        if (s.transform) {
            key = s.transform(std::move(key));
            group = s.transform(triplet{group, {}, {}}).client;
        }
        const clock::time_point now = s.now();
        if (s.auto_whitelist_after > 0) {
            auto c = co_await s.store->client(group);
            if (!watch(c)) co_return greylist_unavailable;
            if (client_whitelisted(s.auto_whitelist_after, *c, s.timing, now)) co_return true;
        }
        auto d = co_await s.store->check(key, s.timing, now);
        if (!watch(d)) co_return greylist_unavailable;
        if (!d->pass()) co_return smtp::replies::try_again_later;
        if (d->why == outcome::passed) delayed_ = d->delayed;
        if (s.auto_whitelist_after > 0) {
            auto counted = co_await s.store->count_pass(group, s.timing, now);
            watch(counted);  // a lost count only delays auto-whitelisting
        }
        co_return true;
    }

    /// Tells the store's shared health how a call went; reports the start or end of an outage.
    template <class T>
    bool watch(const result<T>& r) {
        const greylist_config& s = settings();
        if (auto line = s.store->health().note(r.error()); line && s.report) s.report(*line);
        return r.has_value();
    }

    /// What the log line says of one recipient: what happened, not only the reply's code.
    static std::string_view describe(const verdict& v) {
        if (v.accepted()) return "accepted";
        if (v.reply() == greylist_unavailable) return "tempfail (store unavailable)";
        return v.reply().code == 451 ? "greylisted" : "refused";
    }

    void note(std::string_view mailbox, std::string_view what) { noted_.push_back(fmt::format("{} {}", mailbox, what)); }

    std::shared_ptr<const lists> lists_;
    std::vector<std::string> noted_;
    std::string last_sender_;
    std::string status_;
    std::optional<std::chrono::seconds> delayed_;
};

} // namespace grey::greylist
