// grey/greylist/reputation_sources.hpp — where the reputation check's evidence comes from: the
// look-ups of dns/ run on the worker's resolver (dns/resolver_service.hpp), each decision's
// within its budget.
//
//   connection_reputation  the proxy's: the client's names and lists are asked for as the
//                          connection is accepted, the HELO as it is given, SPF at MAIL, so
//                          that by RCPT the answers are in or on their way, and every
//                          recipient of the connection is judged on the same evidence.
//   request_reputation     the policy server's: per request, with Postfix's client_name and
//                          reverse_client_name standing for the PTR look-ups when it sends
//                          them, and the client's evidence kept per address for a while by the
//                          worker, since Postfix asks once per recipient.
//
// Link grey::dns and grey::psl.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <asio/experimental/awaitable_operators.hpp>

#include "../detail/asio.hpp"
#include "../dns/dnsbl.hpp"
#include "../dns/fcrdns.hpp"
#include "../dns/generic_name.hpp"
#include "../dns/helo_check.hpp"
#include "../dns/registered_domain.hpp"
#include "../dns/resolver_service.hpp"
#include "../dns/spf.hpp"
#include "judgement.hpp"
#include "reputation.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// What a confirmed name says beyond itself: whether it looks like an ISP's pool, and its
/// registered domain (the identity it may give).
inline void describe_name(client_evidence& e, const asio::ip::address& address) {
    if (!e.fcrdns || e.fcrdns->status != dns::fcrdns_status::ok) return;
    e.name_domain = dns::registered_domain(e.fcrdns->name);
    e.generic = dns::check_generic_name(e.fcrdns->name, address, e.name_domain ? *e.name_domain : std::string_view{});
}

/// The client's names (FCrDNS) and its score on the DNS lists, asked at once, within `b`.
inline asio::awaitable<client_evidence> gather_client(dns::resolver& r, const reputation_settings& s,
                                                      asio::ip::address address, dns::budget b) {
    using namespace asio::experimental::awaitable_operators;
    client_evidence e;
    auto [names, lists] = co_await (dns::check_fcrdns(r, address, b) && dns::score(r, address, s.dnsbl_sites, b));
    e.fcrdns = std::move(names);
    if (!s.dnsbl_sites.empty()) e.lists = std::move(lists);
    describe_name(e, address);
    co_return e;
}

/// SPF for `sender` (the HELO's, for the null sender) from `address`, within `b`, with the
/// registered domain of the domain it checked.
inline asio::awaitable<sender_evidence> gather_sender(dns::resolver& r, asio::ip::address address, std::string sender,
                                                      std::string helo, dns::budget b) {
    sender_evidence e;
    e.spf = co_await dns::spf::evaluate_sender(r, address, sender, helo, b);
    if (!e.spf.domain.empty()) e.spf_domain = dns::registered_domain(e.spf.domain);
    co_return e;
}

/// The proxy's evidence for one connection; see the header's comment. Made on the session's
/// executor, and used there only.
class connection_reputation final : public evidence_source {
  public:
    /// Starts asking about `client` at once, on `ex`'s worker's resolver, with `s` (which
    /// outlives the connection, as the server's configuration does).
    connection_reputation(const asio::any_io_executor& ex, const reputation_settings& s, const asio::ip::address& client)
        : state_(std::make_shared<state>(ex, dns::resolver_for(ex, s.resolver), s, unmapped(client))) {
        asio::co_spawn(ex, gather(state_), asio::detached);
    }
    connection_reputation(const connection_reputation&) = delete;
    connection_reputation& operator=(const connection_reputation&) = delete;

    /// The client said HELO/EHLO `name`: checks it, unless it was checked already.
    void helo(std::string_view name) {
        if (!state_->settings.check_helo || name.empty() || (state_->helo && state_->helo->name == name)) return;
        state_->helo.emplace(part<dns::helo_result>{std::string(name), std::nullopt});
        asio::co_spawn(state_->executor, check_helo(state_, std::string(name)), asio::detached);
    }
    /// A transaction from `sender` ("" for the null sender) began: checks SPF for it, unless
    /// it was checked already with the same HELO.
    void mail(std::string_view sender, std::string_view helo) {
        if (!state_->settings.check_spf) return;
        std::string key = std::string(sender) + '\n' + std::string(helo);
        if (state_->spf && state_->spf->name == key) return;
        state_->spf.emplace(part<sender_evidence>{std::move(key), std::nullopt});
        asio::co_spawn(state_->executor, check_spf(state_, std::string(sender), std::string(helo)), asio::detached);
    }

    /// The evidence for `q`: waits for what was asked (asking for the HELO and sender of `q`
    /// if nobody did) and has not answered yet; every look-up ends by its budget.
    asio::awaitable<reputation_evidence> evidence(const question& q) override {
        helo(q.helo_name);
        mail(q.sender, q.helo_name);
        const std::shared_ptr<state> s = state_;
        while (!s->ready()) {
            auto [ec] = co_await s->changed.async_wait(grey::detail::use_nothrow);
            (void)ec;  // each answer cancels the wait; ready() says whether all are in
        }
        reputation_evidence e;
        e.client = *s->client;
        if (s->helo) e.client.helo = s->helo->value;
        if (s->spf) e.sender = s->spf->value;
        co_return e;
    }

  private:
    template <class T>
    struct part {
        std::string name;        // what was asked: the HELO name; the sender and HELO
        std::optional<T> value;  // the answer, once in
    };

    // Shared with the look-ups in flight, which may outlive the session: they only write here.
    struct state {
        state(const asio::any_io_executor& ex, dns::resolver& r, const reputation_settings& s, asio::ip::address a)
            : executor(ex), resolver(r), settings(s), address(a), changed(ex) {
            changed.expires_at(std::chrono::steady_clock::time_point::max());
        }
        bool ready() const { return client && (!helo || helo->value) && (!spf || spf->value); }
        void answered() { changed.cancel(); }

        asio::any_io_executor executor;
        dns::resolver& resolver;  // the worker's: it outlives every session on it
        const reputation_settings& settings;
        asio::ip::address address;
        asio::steady_timer changed;  // cancelled as each answer comes in
        std::optional<client_evidence> client;
        std::optional<part<dns::helo_result>> helo;
        std::optional<part<sender_evidence>> spf;
    };

    static dns::budget budget(const state& s) { return dns::budget::after(s.settings.budget); }

    static asio::awaitable<void> gather(std::shared_ptr<state> s) {
        s->client = co_await gather_client(s->resolver, s->settings, s->address, budget(*s));
        s->answered();
    }
    static asio::awaitable<void> check_helo(std::shared_ptr<state> s, std::string name) {
        dns::helo_result r = co_await dns::check_helo(s->resolver, name, s->address, budget(*s));
        if (s->helo && s->helo->name == name) s->helo->value = std::move(r);  // not replaced meanwhile
        s->answered();
    }
    static asio::awaitable<void> check_spf(std::shared_ptr<state> s, std::string sender, std::string helo) {
        sender_evidence r = co_await gather_sender(s->resolver, s->address, sender, helo, budget(*s));
        if (s->spf && s->spf->name == sender + '\n' + helo) s->spf->value = std::move(r);
        s->answered();
    }

    std::shared_ptr<state> state_;
};

/// What a worker keeps of the clients the policy server judged: their names' and lists'
/// evidence, per address and the names Postfix gave, for `ttl`; at most `capacity` entries
/// (all are forgotten when it is full: a flood of new addresses costs look-ups, not memory).
class client_evidence_cache {
  public:
    /// An empty cache.
    explicit client_evidence_cache(std::chrono::seconds ttl = std::chrono::seconds(300), std::size_t capacity = 10000)
        : ttl_(ttl), capacity_(capacity) {}

    /// What is kept under `key`, if it is still fresh at `now`.
    const client_evidence* find(const std::string& key, std::chrono::steady_clock::time_point now) const {
        const auto found = entries_.find(key);
        if (found == entries_.end() || found->second.expires <= now) return nullptr;
        return &found->second.evidence;
    }
    /// Keeps `e` under `key` from `now`.
    void keep(std::string key, client_evidence e, std::chrono::steady_clock::time_point now) {
        if (entries_.size() >= capacity_) entries_.clear();
        entries_.insert_or_assign(std::move(key), entry{std::move(e), now + ttl_});
    }

  private:
    struct entry {
        client_evidence evidence;
        std::chrono::steady_clock::time_point expires;
    };
    std::chrono::seconds ttl_;
    std::size_t capacity_;
    std::unordered_map<std::string, entry> entries_;
};

/// An io_context's client_evidence_cache for each reputation_settings: one per worker.
class client_evidence_caches : public asio::execution_context::service {
  public:
    /// Asio's key for use_service().
    static inline asio::execution_context::id id;
    /// No cache yet.
    explicit client_evidence_caches(asio::execution_context& context) : service(context) {}

    /// The cache for `s` (by address: the settings live as long as the server).
    client_evidence_cache& get(const reputation_settings& s) {
        std::lock_guard lock(mutex_);
        return caches_[&s];
    }

  private:
    void shutdown() override {}

    std::mutex mutex_;
    std::unordered_map<const reputation_settings*, client_evidence_cache> caches_;
};

/// The policy server's evidence for one request; see the header's comment.
class request_reputation final : public evidence_source {
  public:
    /// For a request from a client Postfix names `client_name` (its verified name, "unknown"
    /// when none) and `reverse_client_name` (its PTR name, "unknown" when none); both empty
    /// when Postfix did not say, and the names are then looked up.
    request_reputation(const reputation_settings& s, std::string_view client_name, std::string_view reverse_client_name)
        : settings_(s), client_name_(client_name), reverse_client_name_(reverse_client_name) {}

    /// The evidence for `q`: the client's from the worker's cache or DNS, the HELO and SPF
    /// asked at the same time, all within one budget.
    asio::awaitable<reputation_evidence> evidence(const question& q) override {
        using namespace asio::experimental::awaitable_operators;
        reputation_evidence e;
        asio::error_code ec;
        const asio::ip::address address = unmapped(asio::ip::make_address(q.client_address, ec));
        if (ec) co_return e;  // nothing to ask about: every part unknown
        const asio::any_io_executor ex = co_await asio::this_coro::executor;
        dns::resolver& r = dns::resolver_for(ex, settings_.resolver);
        client_evidence_cache& cache = asio::use_service<client_evidence_caches>(asio::query(ex, asio::execution::context)).get(settings_);
        const dns::budget b = dns::budget::after(settings_.budget);
        const std::string key = address.to_string() + '\n' + client_name_ + '\n' + reverse_client_name_;

        const client_evidence* kept = cache.find(key, std::chrono::steady_clock::now());
        auto [client, helo, sender] = co_await (client_part(r, address, kept, b) && helo_part(r, address, std::string(q.helo_name), b) &&
                                                sender_part(r, address, std::string(q.sender), std::string(q.helo_name), b));
        if (!kept && complete(client)) cache.keep(key, client, std::chrono::steady_clock::now());
        e.client = std::move(client);
        e.client.helo = std::move(helo);
        e.sender = std::move(sender);
        co_return e;
    }

  private:
    // What Postfix's names say, when it sent them: its verified name is forward-confirmed.
    std::optional<dns::fcrdns_result> postfix_names() const {
        if (client_name_.empty() && reverse_client_name_.empty()) return std::nullopt;
        dns::fcrdns_result f;
        if (!client_name_.empty() && client_name_ != "unknown") {
            f.status = dns::fcrdns_status::ok;
            f.name = lowercase(client_name_);
            f.names = {f.name};
        } else if (!reverse_client_name_.empty() && reverse_client_name_ != "unknown") {
            f.status = dns::fcrdns_status::fail;
            f.names = {lowercase(reverse_client_name_)};
            f.why = "not-confirmed";
        } else {
            f.status = dns::fcrdns_status::fail;
            f.why = "no-ptr";
        }
        return f;
    }

    asio::awaitable<client_evidence> client_part(dns::resolver& r, asio::ip::address address, const client_evidence* kept,
                                                 dns::budget b) const {
        if (kept) co_return *kept;
        const std::optional<dns::fcrdns_result> named = postfix_names();
        if (!named) co_return co_await gather_client(r, settings_, address, b);
        client_evidence e;
        e.fcrdns = *named;
        if (!settings_.dnsbl_sites.empty()) e.lists = co_await dns::score(r, address, settings_.dnsbl_sites, b);
        describe_name(e, address);
        co_return e;
    }

    asio::awaitable<std::optional<dns::helo_result>> helo_part(dns::resolver& r, asio::ip::address address,
                                                                std::string helo, dns::budget b) const {
        if (!settings_.check_helo || helo.empty()) co_return std::nullopt;
        co_return co_await dns::check_helo(r, helo, address, b);
    }

    asio::awaitable<std::optional<sender_evidence>> sender_part(dns::resolver& r, asio::ip::address address,
                                                                 std::string sender, std::string helo, dns::budget b) const {
        if (!settings_.check_spf) co_return std::nullopt;
        co_return co_await gather_sender(r, address, std::move(sender), std::move(helo), b);
    }

    // Only answers are kept: a look-up that failed is asked again next time.
    static bool complete(const client_evidence& e) {
        return (!e.fcrdns || e.fcrdns->status != dns::fcrdns_status::unknown) && (!e.lists || e.lists->complete());
    }

    static std::string lowercase(std::string s) {
        for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        while (!s.empty() && s.back() == '.') s.pop_back();
        return s;
    }

    const reputation_settings& settings_;
    std::string client_name_, reverse_client_name_;
};

/// @}
} // namespace grey::greylist
