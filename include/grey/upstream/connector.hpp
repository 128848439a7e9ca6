// grey/upstream/connector.hpp — where a session's upstream connection comes from: the pool, when
// it keeps one that may serve the client (pool.hpp), else a new connection: connect, greeting,
// EHLO (HELO fallback), and STARTTLS with EHLO again as the upstream TLS policy asks.
//
// With several upstreams (failover.hpp) a new connection tries them in order, skipping those
// marked down, and reports each failure so that an upstream that keeps failing is marked down.
// Under the TLS policy `may` a failed handshake is followed by a plain connection to the same
// upstream: opportunistic TLS never holds mail back. Every EHLO reply teaches the server what
// the upstream offers (known_extensions.hpp), so that what Grey offers its clients follows.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../config.hpp"
#include "../detail/asio.hpp"
#include "../deadline.hpp"
#include "../diagnostics.hpp"
#include "../metrics/server_metrics.hpp"
#include "../result.hpp"
#include "client.hpp"
#include "failover.hpp"
#include "known_extensions.hpp"
#include "pool.hpp"
#include "share.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// Opens a session's upstream connections, or takes them from the pool.
class connector {
  public:
    /// For one session: `ex` and `limit` are the session's; `upstream` its worker's share of
    /// the upstream service (settings, pool, TLS context, what the upstream offers, failover),
    /// which must outlive the connector.
    connector(const asio::any_io_executor& ex, deadline& limit, const share& upstream)
        : executor_(ex), limit_(limit), settings_(*upstream.settings), pool_(upstream.idle), tls_(upstream.tls),
          learned_(upstream.learned), upstreams_(upstream.upstreams) {}

    /// What the upstream offered at its latest EHLO that this server has seen (any session's).
    smtp::extensions upstream_extensions() const noexcept { return learned_ ? learned_->get() : smtp::extensions{}; }

    /// A pooled connection that may serve a client of identity `identity_key` (identity.hpp),
    /// now watched by this session's deadline; null when the pool has none (or there is no pool).
    std::unique_ptr<client> pooled(std::string_view identity_key) {
        if (!pool_) return nullptr;
        std::unique_ptr<client> c = pool_->acquire(identity_key);
        if (metrics()) (c ? metrics()->pool_hits : metrics()->pool_misses).add();
        if (c) c->attach(limit_);
        return c;
    }

    /// Keeps `c`, a connection between transactions, for the next session when there is a
    /// pool; otherwise gives it back to be closed.
    std::unique_ptr<client> release(std::unique_ptr<client> c) {
        if (!pool_) return c;
        pool_->release(std::move(c));
        return nullptr;
    }

    /// A new connection to the first upstream that takes it, greeted with `helo_name` (or with
    /// the server's name when it is empty, or when the connection is to be pooled: it will
    /// carry many clients' mail).
    asio::awaitable<result<std::unique_ptr<client>>> open(std::string_view helo_name) {
        if (pool_ || helo_name.empty()) helo_name = settings_.helo_name;
        const std::string name(helo_name);
        result<std::unique_ptr<client>> opened = errc::upstream_unavailable;
        if (upstreams_) {
            const std::vector<std::size_t> order = upstreams_->order();  // not a temporary across co_await
            for (const std::size_t i : order) {
                opened = co_await open_to(upstreams_->at(i), name);
                if (opened) {
                    upstreams_->succeeded(i);
                    break;
                }
                if (limit_.shutting_down()) break;  // cut short by a stop, not the upstream's failure
                upstreams_->failed(i, failure_);
            }
        } else {
            const std::vector<endpoint>& all = settings_.endpoints;
            for (const endpoint& where : all) {
                opened = co_await open_to(where, name);
                if (opened) break;
            }
        }
        co_return opened;
    }

    /// Shares what `c`'s upstream offered at its latest EHLO with the server's other sessions.
    void learn(const client& c) {
        if (learned_) learned_->learn(c.caps());
    }

  private:
    metrics::server_metrics* metrics() const noexcept { return settings_.metrics; }

    /// A new connection to `where`, with TLS as the policy asks: under `may`, a failed
    /// handshake is followed by a plain connection. On failure failure_ says why.
    asio::awaitable<result<std::unique_ptr<client>>> open_to(const endpoint& where, const std::string& helo_name) {
        auto c = std::make_unique<client>(executor_, limit_, settings_.timeouts);
        result<void> opened = co_await open(*c, where, helo_name, tls_ != nullptr);
        if (!opened && opened.error() == errc::upstream_tls_failed &&
            settings_.tls.policy == tls::upstream_policy::may) {
            c->close();
            c = std::make_unique<client>(executor_, limit_, settings_.timeouts);
            opened = co_await open(*c, where, helo_name, false);
        }
        if (metrics()) (opened ? metrics()->upstream_connects : metrics()->upstream_connect_failures).add();
        if (!opened) {
            c->close();
            co_return opened.error();
        }
        co_return std::move(c);
    }

    /// Connect, greeting, EHLO on `c`; with `secure`, STARTTLS as the policy asks and EHLO
    /// again inside TLS (RFC 3207 §4.2: what was learned before TLS is forgotten). The
    /// certificate is checked against the name configured, else against the host of the
    /// upstream actually connected to.
    asio::awaitable<result<void>> open(client& c, const endpoint& where, const std::string& helo_name, bool secure) {
        if (metrics()) c.time_replies(&metrics()->upstream_reply_seconds);
        auto greeting = co_await c.connect(where.host, where.port);
        if (!greeting || greeting->code != 220) {
            failure_ = failure_text("greeting", greeting);
            co_return errc::upstream_unavailable;
        }
        auto hello = co_await c.hello(helo_name);
        if (!hello || !hello->completion()) {
            failure_ = failure_text("EHLO", hello);
            co_return errc::upstream_unavailable;
        }
        learn(c);
        if (!secure) co_return result<void>{};

        const tls::client_settings& s = settings_.tls;
        if (!c.caps().has(smtp::extension::starttls)) {
            if (s.policy == tls::upstream_policy::may) co_return result<void>{};
            diagnostics::report(diagnostics::level::error, "upstream",
                                fmt::format("upstream {} does not offer STARTTLS, which the TLS policy requires",
                                            c.remote_name()));
            failure_ = "no STARTTLS, which the TLS policy requires";
            co_return errc::upstream_tls_failed;
        }
        const std::string& server = s.server_name.empty() ? where.host : s.server_name;
        const std::error_code ec = co_await c.start_tls(*tls_, server, s.policy == tls::upstream_policy::verify);
        if (metrics()) (ec ? metrics()->upstream_tls_handshake_failures : metrics()->upstream_tls_handshakes).add();
        if (ec) {
            diagnostics::report(diagnostics::level::error, "upstream",
                                fmt::format("TLS to upstream {} failed: {}", c.remote_name(), ec.message()));
            failure_ = fmt::format("TLS: {}", ec.message());
            co_return errc::upstream_tls_failed;
        }
        hello = co_await c.hello(helo_name);
        if (!hello || !hello->completion()) {
            failure_ = failure_text("EHLO in TLS", hello);
            co_return errc::upstream_unavailable;
        }
        learn(c);
        co_return result<void>{};
    }

    asio::any_io_executor executor_;
    deadline& limit_;
    const upstream::settings& settings_;
    pool* pool_;
    asio::ssl::context* tls_;    // towards the upstream; null when its policy is none
    known_extensions* learned_;  // shared by the server's sessions; may be null
    failover* upstreams_;        // shared by the server's sessions; may be null
    std::string failure_;        // why the latest new connection failed, for failover's line
};

/// @}
} // namespace grey::upstream
