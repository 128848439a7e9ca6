// grey/dns/resolver.hpp — DNS look-ups as coroutines on Grey's executors (DESIGN §9): libunbound
// resolves, from the root or through the servers named (settings.hpp); its file descriptor is
// waited on by Asio, and ub_process() hands each answer to the coroutine that asked, as a typed
// result (answer.hpp) read by Grey's own parser (message.hpp). Nothing here blocks the thread:
// libunbound's one worker thread per resolver does the network, and no thread is started per
// query. libunbound answers some names itself when it resolves from the root (its default local
// zones: RFC 6761's test., invalid., the private and documentation reverse zones); with servers
// named it asks them everything but the host's own names (localhost., 127.in-addr.arpa.). A query ends by its timeout or its decision's budget
// (budget.hpp), whichever comes first; answers are kept for their TTL (cache.hpp).
//
// Threading: a resolver belongs to one thread, its executor's (an io_context run by one
// thread, as each of Grey's workers is): start its queries from there. Have one per worker.
// Destroying it with queries in flight is safe: they end at once as temporary failures
// (failure::aborted), resumed on the executor, and touch nothing of the resolver. It must be
// destroyed before its io_context. Link grey::dns (libunbound) to use it.
#pragma once

#include <unbound.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../detail/asio.hpp"
#include "../metrics/server_metrics.hpp"
#include "answer.hpp"
#include "budget.hpp"
#include "cache.hpp"
#include "message.hpp"
#include "reverse_name.hpp"
#include "settings.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// What a resolver has done, for metrics and tests.
struct resolver_stats {
    std::uint64_t queries = 0;     ///< queries handed to libunbound
    std::uint64_t cache_hits = 0;  ///< questions answered from the cache, libunbound not asked
    std::uint64_t timeouts = 0;    ///< queries ended by their timeout or their budget
};

/// An asynchronous resolver on one executor. See the header's comment for its threading rule.
class resolver {
    struct pending;
    struct core;

  public:
    /// A resolver on `ex` with `settings`. Throws std::invalid_argument for a server that is
    /// not "IP:PORT", std::runtime_error when libunbound refuses its settings.
    explicit resolver(const asio::any_io_executor& ex, const resolver_settings& settings = {})
        : core_(std::make_shared<core>(ex, settings)) {}
    /// Not copyable: its queries wait on its libunbound context.
    resolver(const resolver&) = delete;
    /// Not copyable: its queries wait on its libunbound context.
    resolver& operator=(const resolver&) = delete;

    /// The records of `type` for `name`, from the cache or libunbound; never throws for what
    /// DNS answers or fails to.
    asio::awaitable<answer> query(std::string_view name, rr_type type, budget b = {}) {
        return ask(core_, std::string(name), type, b);
    }
    /// The IPv4 addresses of `name`.
    asio::awaitable<lookup<asio::ip::address>> lookup_a(std::string_view name, budget b = {}) {
        return addresses(ask(core_, std::string(name), rr_type::a, b));
    }
    /// The IPv6 addresses of `name`.
    asio::awaitable<lookup<asio::ip::address>> lookup_aaaa(std::string_view name, budget b = {}) {
        return addresses(ask(core_, std::string(name), rr_type::aaaa, b));
    }
    /// The names of `address` (its PTR records, reverse_name.hpp).
    asio::awaitable<lookup<std::string>> lookup_ptr(const asio::ip::address& address, budget b = {}) {
        return texts(ask(core_, reverse_name(address), rr_type::ptr, b));
    }
    /// The TXT records of `name`, each one string (RFC 7208 §3.3).
    asio::awaitable<lookup<std::string>> lookup_txt(std::string_view name, budget b = {}) {
        return texts(ask(core_, std::string(name), rr_type::txt, b));
    }
    /// The mail exchangers of `name`, in the answer's order.
    asio::awaitable<lookup<mx>> lookup_mx(std::string_view name, budget b = {}) {
        return exchangers(ask(core_, std::string(name), rr_type::mx, b));
    }

    /// What it has done so far.
    const resolver_stats& stats() const noexcept { return core_->stats; }

  private:
    // A query in flight: the coroutine that asked waits on `wake`, which the answer, the
    // timeout or the resolver's end cancels; `result` says which.
    struct pending {
        explicit pending(const asio::any_io_executor& ex) : wake(ex) {}
        asio::steady_timer wake;
        std::optional<answer> result;
        std::string key;  // in the cache
        int ub_id = 0;
    };

    static answer temporary(failure why) {
        answer a;
        a.why = why;
        return a;
    }

    // libunbound's context, its descriptor, the cache and the queries in flight. Handlers and
    // coroutines hold it weakly, so that the resolver's end is its end.
    struct core : std::enable_shared_from_this<core> {
        core(const asio::any_io_executor& ex, const resolver_settings& s)
            : settings(s), cache(s.cache_entries), fd(ex), ctx(ub_ctx_create()) {
            if (!ctx) throw std::runtime_error("libunbound: cannot create a context");
            try {
                configure();
                fd.assign(ub_fd(ctx));
            } catch (...) {
                ub_ctx_delete(ctx);
                throw;
            }
        }

        ~core() {
            for (auto& [serial, p] : in_flight) {
                p->result = temporary(failure::aborted);
                p->wake.cancel();
            }
            in_flight.clear();
            asio::error_code ignored;
            fd.cancel(ignored);
            (void)fd.release();  // libunbound owns the descriptor and closes it
            // Stops libunbound's worker thread: told to quit, and joined.
            ub_ctx_delete(ctx);
        }

        void set(const char* option, const char* value) {
            if (const int err = ub_ctx_set_option(ctx, option, value))
                throw std::runtime_error(std::string("libunbound: ") + option + " " + ub_strerror(err));
        }

        void configure() {
            // One worker thread per resolver. libunbound's default worker is a process it forks,
            // which leaves by exit(): it would run the program's exit handlers and flush its
            // stdio buffers a second time.
            if (const int err = ub_ctx_async(ctx, 1))
                throw std::runtime_error(std::string("libunbound: async: ") + ub_strerror(err));
            // libunbound's own default is 16 queries in flight per context: with one context
            // per worker and a DNS 50 ms away, that would cap decisions at a few hundred a second.
            set("outgoing-range:", "1024");
            if (settings.trust_anchor_file.empty()) {
                set("module-config:", "iterator");  // no validator: no trust anchor to load
            } else if (const int err = ub_ctx_add_ta_file(ctx, settings.trust_anchor_file.c_str())) {
                throw std::runtime_error(std::string("libunbound: trust anchor: ") + ub_strerror(err));
            }
            for (const std::string& server : settings.servers) {
                auto forwarder = unbound_server(server);
                if (!forwarder) throw std::invalid_argument("DNS server \"" + server + "\": not IP:PORT");
                if (const int err = ub_ctx_set_fwd(ctx, forwarder->c_str()))
                    throw std::runtime_error("libunbound: forwarder " + server + ": " + ub_strerror(err));
            }
            if (!settings.servers.empty()) {
                // A forwarder named is one to ask, on loopback too (a local unbound, the tests').
                set("do-not-query-localhost:", "no");
                // ...and to ask everything: a site's own resolver serves its private reverse
                // zones (10.in-addr.arpa...), and a test's may serve test. or TEST-NET's; the
                // zones libunbound answers itself by default stay only for the host itself.
                for (const std::string& zone : forwarded_default_zones()) set("local-zone:", (zone + " nodefault").c_str());
            }
        }

        // libunbound's default local zones (unbound.conf(5), "Default zones") but the host's
        // own (localhost., 127.in-addr.arpa., ::1's).
        static std::vector<std::string> forwarded_default_zones() {
            std::vector<std::string> zones = {
                "home.arpa.", "onion.", "test.", "invalid.", "10.in-addr.arpa.", "168.192.in-addr.arpa.",
                "0.in-addr.arpa.", "254.169.in-addr.arpa.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
                "113.0.203.in-addr.arpa.", "255.255.255.255.in-addr.arpa.",
                "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "d.f.ip6.arpa.",
                "8.e.f.ip6.arpa.", "9.e.f.ip6.arpa.", "a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa."};
            for (int i = 16; i <= 31; ++i) zones.push_back(std::to_string(i) + ".172.in-addr.arpa.");   // RFC 1918
            for (int i = 64; i <= 127; ++i) zones.push_back(std::to_string(i) + ".100.in-addr.arpa.");  // RFC 6598
            return zones;
        }

        // Hands the query to libunbound; the serial, not a pointer, is its callback's argument,
        // so an answer for a query given up finds nothing to touch.
        std::shared_ptr<pending> start(const std::string& name, rr_type type, std::string key) {
            auto p = std::make_shared<pending>(fd.get_executor());
            p->key = std::move(key);
            const std::uint64_t serial = ++last_serial;
            void* tag = reinterpret_cast<void*>(static_cast<std::uintptr_t>(serial));
            if (ub_resolve_async(ctx, name.c_str(), static_cast<int>(type), 1 /* IN */, tag, &on_result, &p->ub_id) != 0)
                return nullptr;
            ++stats.queries;
            in_flight.emplace(serial, p);
            wait_readable();
            return p;
        }

        void wait_readable() {
            if (waiting || in_flight.empty()) return;
            waiting = true;
            fd.async_wait(asio::posix::stream_descriptor::wait_read, [w = weak_from_this()](asio::error_code ec) {
                if (auto c = w.lock()) c->readable(ec);
            });
        }

        void readable(asio::error_code ec) {
            waiting = false;
            if (ec == asio::error::operation_aborted) return wait_readable();  // a query may have come since
            if (ec) return;
            processing = this;
            const int err = ub_process(ctx);
            processing = nullptr;
            if (err != 0) {
                // The worker is gone: nothing in flight will be answered.
                for (auto& [serial, p] : in_flight) {
                    p->result = temporary(failure::resolver);
                    p->wake.cancel();
                }
                in_flight.clear();
            }
            wait_readable();
        }

        // ub_process() calls this for each answer, on this thread, with `processing` set.
        static void on_result(void* tag, int err, ub_result* r) {
            std::unique_ptr<ub_result, void (*)(ub_result*)> owned(r, &ub_resolve_free);
            if (processing) processing->deliver(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(tag)), err, r);
        }

        void deliver(std::uint64_t serial, int err, const ub_result* r) {
            const auto it = in_flight.find(serial);
            if (it == in_flight.end()) return;
            const std::shared_ptr<pending> p = std::move(it->second);
            in_flight.erase(it);
            answer a = to_answer(err, r);
            // SERVFAIL is what libunbound answers when the servers it asks stay silent: for the
            // operator, a timeout as much as one of ours.
            if (settings.metrics && err == 0 && r && !r->bogus && r->rcode == 2) settings.metrics->dns_timeouts.add();
            remember(p->key, a);
            if (a.status != outcome::temporary_failure || a.why != failure::resolver) unanswered = 0;  // DNS is there
            p->result = std::move(a);
            p->wake.cancel();
        }

        // A query went unanswered for its whole timeout. A few in a row with no answer between
        // them: DNS is unreachable, and for failure_ttl every query not in the cache fails at
        // once instead of costing each decision its budget; then queries go out again.
        void note_unanswered(answer_cache::clock::time_point now) {
            if (++unanswered >= unreachable_after && settings.failure_ttl > std::chrono::seconds::zero())
                unreachable_until = now + settings.failure_ttl;
        }
        bool unreachable(answer_cache::clock::time_point now) const { return now < unreachable_until; }

        answer to_answer(int err, const ub_result* r) const {
            if (err != 0 || !r) return temporary(failure::resolver);
            if (r->bogus) return temporary(failure::server);
            std::optional<message> m;
            if (r->answer_packet && r->answer_len > 0)
                m = parse_message(std::span(static_cast<const unsigned char*>(r->answer_packet),
                                            static_cast<std::size_t>(r->answer_len)));
            answer a;
            const auto negative = [&] {
                return m && m->negative_ttl
                           ? std::min<std::uint32_t>(*m->negative_ttl, static_cast<std::uint32_t>(settings.max_negative_ttl.count()))
                           : static_cast<std::uint32_t>(settings.negative_ttl.count());
            };
            if (r->rcode == 3 || r->nxdomain) {
                a.status = outcome::nxdomain;
                a.ttl = negative();
            } else if (r->rcode != 0) {
                return temporary(failure::server);
            } else if (!m || m->question_type != r->qtype) {
                a.status = outcome::malformed;
            } else if (m->answers.empty()) {
                a.status = outcome::nodata;
                a.ttl = negative();
            } else {
                a.status = outcome::found;
                a.ttl = std::min<std::uint32_t>(m->answer_ttl, static_cast<std::uint32_t>(settings.max_cache_ttl.count()));
                a.records = std::move(m->answers);
            }
            return a;
        }

        // Facts are kept for their TTL; a server's failure for failure_ttl; a malformed answer
        // and a resolver's own trouble not at all.
        void remember(const std::string& key, const answer& a) {
            if (a.status == outcome::malformed) return;
            if (a.status == outcome::temporary_failure) {
                if (a.why == failure::server || a.why == failure::timeout)
                    cache.put(key, a, settings.failure_ttl, answer_cache::clock::now());
                return;
            }
            cache.put(key, a, std::chrono::seconds(a.ttl), answer_cache::clock::now());
        }

        // The coroutine's deadline passed first: libunbound forgets the query.
        void give_up(const std::shared_ptr<pending>& p) {
            for (auto it = in_flight.begin(); it != in_flight.end(); ++it) {
                if (it->second != p) continue;
                ub_cancel(ctx, p->ub_id);
                in_flight.erase(it);
                break;
            }
            ++stats.timeouts;
            // Nothing left to wait for: an idle resolver keeps no operation pending, so that
            // its io_context can run out of work.
            if (in_flight.empty() && waiting) {
                asio::error_code ignored;
                fd.cancel(ignored);
            }
        }

        resolver_settings settings;
        answer_cache cache;
        resolver_stats stats;
        asio::posix::stream_descriptor fd;
        ub_ctx* ctx;
        bool waiting = false;
        static constexpr unsigned unreachable_after = 3;
        unsigned unanswered = 0;  // queries in a row that timed out, no answer between
        answer_cache::clock::time_point unreachable_until{};
        std::uint64_t last_serial = 0;
        std::unordered_map<std::uint64_t, std::shared_ptr<pending>> in_flight;
        static inline thread_local core* processing = nullptr;
    };

    // The query itself. It holds the core only while it runs, never while it waits: after the
    // wait it touches the core only if it still exists.
    static asio::awaitable<answer> ask(std::weak_ptr<core> weak, std::string name, rr_type type, budget b) {
        std::shared_ptr<pending> p;
        bool full_timeout = false;
        {
            const auto c = weak.lock();
            if (!c) co_return temporary(failure::aborted);
            const auto now = answer_cache::clock::now();
            std::string key = answer_cache::key(name, type);
            if (auto hit = c->cache.find(key, now)) {
                ++c->stats.cache_hits;
                if (c->settings.metrics) c->settings.metrics->dns_cache_hits.add();
                co_return std::move(*hit);
            }
            if (c->settings.metrics) c->settings.metrics->dns_cache_misses.add();
            if (b.spent(now) || c->unreachable(now)) {
                ++c->stats.timeouts;
                co_return temporary(failure::timeout);
            }
            p = c->start(name, type, std::move(key));
            if (!p) co_return temporary(failure::resolver);
            const auto timeout = std::chrono::duration_cast<answer_cache::clock::duration>(c->settings.query_timeout);
            full_timeout = b.until - now > timeout;
            p->wake.expires_at(full_timeout ? now + timeout : b.until);
        }
        const auto sent = answer_cache::clock::now();
        auto [ec] = co_await p->wake.async_wait(grey::detail::use_nothrow);
        (void)ec;  // why it woke is in p->result: an answer, the resolver's end, or none (time)
        if (const auto c = weak.lock(); c && c->settings.metrics)
            c->settings.metrics->dns_query(type_name(type), answer_cache::clock::now() - sent);
        if (p->result) co_return std::move(*p->result);
        answer late = temporary(failure::timeout);
        if (const auto c = weak.lock()) {
            c->give_up(p);
            if (c->settings.metrics) c->settings.metrics->dns_timeouts.add();
            // Unanswered for its whole timeout: the server is slow or gone, which the next
            // decision need not learn again. A query cut short by its budget proves nothing.
            if (full_timeout) {
                c->remember(p->key, late);
                c->note_unanswered(answer_cache::clock::now());
            }
        }
        co_return late;
    }

    static std::string_view type_name(rr_type t) noexcept {
        switch (t) {
        case rr_type::a: return "A";
        case rr_type::aaaa: return "AAAA";
        case rr_type::ptr: return "PTR";
        case rr_type::txt: return "TXT";
        case rr_type::mx: return "MX";
        default: return "other";
        }
    }

    template <class T, class F>
    static lookup<T> convert(answer a, F value) {
        lookup<T> l;
        l.status = a.status;
        l.why = a.why;
        for (const record& r : a.records) l.values.push_back(value(r));
        return l;
    }

    static asio::awaitable<lookup<asio::ip::address>> addresses(asio::awaitable<answer> q) {
        answer a = co_await std::move(q);
        co_return convert<asio::ip::address>(std::move(a), [](const record& r) -> asio::ip::address {
            if (r.data.size() == 4) {
                asio::ip::address_v4::bytes_type b;
                std::copy(r.data.begin(), r.data.end(), b.begin());
                return asio::ip::address_v4(b);
            }
            asio::ip::address_v6::bytes_type b;
            std::copy(r.data.begin(), r.data.end(), b.begin());
            return asio::ip::address_v6(b);
        });
    }

    static asio::awaitable<lookup<std::string>> texts(asio::awaitable<answer> q) {
        answer a = co_await std::move(q);
        co_return convert<std::string>(std::move(a), [](const record& r) { return r.data; });
    }

    static asio::awaitable<lookup<mx>> exchangers(asio::awaitable<answer> q) {
        answer a = co_await std::move(q);
        co_return convert<mx>(std::move(a), [](const record& r) { return mx{r.preference, r.data}; });
    }

    std::shared_ptr<core> core_;
};

/// @}
} // namespace grey::dns
