// examples/greylist_admin/explain.hpp — `greylist_admin explain ADDRESS SENDER RECIPIENT [HELO]`:
// what DNS says of a client and its sender, and the decision greylist_server would take for
// that recipient now, through the server's own pipeline and configuration, with its store read
// and never written (a triplet explained is not a triplet seen).
#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include <grey/greylist/greylisting_policy.hpp>
#include <grey/greylist/judge.hpp>
#include <grey/greylist/judges_first.hpp>
#include <grey/greylist/memory_store.hpp>
#include <grey/policy/session.hpp>

#include "../greylist_server/settings.hpp"

namespace greylist_admin {

/// A store that reads through to another and writes nothing: check() decides from the stored
/// record as the server would, and forgets the decision.
class read_only_store final : public grey::greylist::store {
  public:
    explicit read_only_store(std::shared_ptr<grey::greylist::store> under) : under_(std::move(under)) {}

    asio::awaitable<grey::result<grey::greylist::decision>> check(const grey::greylist::triplet& t,
                                                                 const grey::greylist::timing& timing,
                                                                 grey::greylist::clock::time_point now) override {
        auto found = co_await under_->find(t.client);
        if (!found) co_return found.error();
        std::optional<grey::greylist::record> stored;
        for (const auto& e : *found)
            if (e.key == t) stored = e.value;
        co_return grey::greylist::decide(timing, stored, now);
    }
    asio::awaitable<grey::result<std::optional<grey::greylist::client_record>>> client(const std::string& group) override {
        co_return co_await under_->client(group);
    }
    asio::awaitable<grey::result<void>> count_pass(const std::string&, const grey::greylist::timing&,
                                                   grey::greylist::clock::time_point) override {
        co_return grey::result<void>{};
    }
    asio::awaitable<grey::result<std::vector<grey::greylist::entry>>> find(std::string needle) override {
        co_return co_await under_->find(std::move(needle));
    }
    asio::awaitable<grey::result<void>> whitelist(const grey::greylist::triplet&, const grey::greylist::timing&,
                                                  grey::greylist::clock::time_point) override {
        co_return std::make_error_code(std::errc::read_only_file_system);
    }
    asio::awaitable<grey::result<bool>> remove(const grey::greylist::triplet&) override {
        co_return std::make_error_code(std::errc::read_only_file_system);
    }
    asio::awaitable<grey::result<std::size_t>> purge(const grey::greylist::timing&, grey::greylist::clock::time_point) override {
        co_return std::make_error_code(std::errc::read_only_file_system);
    }

  private:
    std::shared_ptr<grey::greylist::store> under_;
};

#if GREY_JUDGES_FIRST
/// An evidence source that keeps what another gave, to print it after the decision.
class recorded_evidence final : public grey::greylist::evidence_source {
  public:
    explicit recorded_evidence(grey::greylist::evidence_source& inner) : inner_(inner) {}
    asio::awaitable<grey::greylist::reputation_evidence> evidence(const grey::greylist::question& q) override {
        seen = co_await inner_.evidence(q);
        co_return *seen;
    }
    std::optional<grey::greylist::reputation_evidence> seen;  ///< once asked

  private:
    grey::greylist::evidence_source& inner_;
};

inline void print_evidence(const grey::greylist::reputation_evidence& e) {
    const grey::greylist::client_evidence& c = e.client;
    if (c.fcrdns) fmt::print("  {}\n", c.fcrdns->reason());
    if (c.generic) fmt::print("  {}\n", c.generic->reason());
    if (c.name_domain) fmt::print("  registered domain of the name: {}\n", *c.name_domain);
    if (c.helo) fmt::print("  {}\n", c.helo->reason());
    if (c.lists) fmt::print("  {}\n", c.lists->reason());
    if (e.sender) {
        const grey::dns::spf_result& spf = e.sender->spf;
        fmt::print("  spf={} ({})\n", grey::dns::spf::to_string(spf.value), spf.why);
        if (!spf.explanation.empty()) fmt::print("  spf explanation: {}\n", spf.explanation);
    }
}
#endif

/// The explain command; the exit code (0: explained; 1: the store could not be read).
inline int explain(greylist_server::settings& s, std::shared_ptr<grey::greylist::store> db, const std::string& address,
                   const std::string& sender, const std::string& recipient, const std::string& helo) {
    grey::greylist::greylist_config& g = s.server;
    g.store = std::make_shared<read_only_store>(db ? db : std::make_shared<grey::greylist::memory_store>());
    g.lists = std::make_shared<grey::greylist::shared_lists>(s.lists);
    g.report = {};
    const bool policy_mode = !s.policy_listen.empty();
    const std::string domain = recipient.substr(recipient.rfind('@') == std::string::npos ? recipient.size() : recipient.rfind('@') + 1);
    grey::greylist::question q{address, helo, sender, recipient, domain, /*relay_control=*/!policy_mode};

    asio::io_context ioc;
    std::optional<grey::greylist::judgement> j;
#if GREY_JUDGES_FIRST
    grey::greylist::request_reputation source(g.reputation, {}, {});
    recorded_evidence recorded(source);
    q.reputation = &recorded;
#endif
    asio::co_spawn(ioc, grey::greylist::judge(g, g.metrics, *g.lists->load(), q),
                   [&](std::exception_ptr e, grey::greylist::judgement value) {
                       if (e) std::rethrow_exception(e);
                       j = std::move(value);
                   });
    ioc.run();

    fmt::print("client {} HELO {} sender <{}> recipient <{}>\n", address, helo.empty() ? "(none)" : helo, sender, recipient);
#if GREY_JUDGES_FIRST
    if (recorded.seen) print_evidence(*recorded.seen);
#endif
    if (j->assessed) {
        const grey::greylist::assessment& a = *j->assessed;
        fmt::print("assessment: {}\n", a.describe());
        fmt::print("identity: {}\n", a.identity.empty() ? "the address's group (" +
                                                              grey::greylist::client_group(address, g.grouping) + ")"
                                                        : a.identity);
    }
    fmt::print("checks: {}\n", j->reasons());
    fmt::print("decision: {} ({})\n", j->describe(), j->explain());
    if (policy_mode) {
        grey::policy::request r;
        r.recipient = recipient;
        std::string action = grey::policy::respond(*j, r, s.policy, {});
        while (!action.empty() && action.back() == '\n') action.pop_back();
        fmt::print("policy answer: {}\n", action);
    } else {
        const grey::verdict v = grey::greylist::verdict_of(*j);
        if (v.accepted()) fmt::print("reply: relayed to the upstream, which answers\n");
        else fmt::print("reply: {} {} {}\n", v.reply().code, v.reply().enhanced, v.reply().lines.empty() ? "" : v.reply().lines.front());
    }
    return j->why == grey::greylist::finding::store_unavailable ? 1 : 0;
}

} // namespace greylist_admin
