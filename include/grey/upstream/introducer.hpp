// grey/upstream/introducer.hpp — tells the upstream who a session's client is, over the
// connection the relay uses: the client's identity as XCLIENT and XFORWARD carry it (the
// commands themselves are identity.hpp's), its host names looked up only when an upstream will
// hear them, and the XCLIENT exchange, after which the connection speaks for that client.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "../detail/asio.hpp"
#include "../diagnostics.hpp"
#include "../result.hpp"
#include "../session/peer.hpp"
#include "client.hpp"
#include "identity.hpp"
#include "settings.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// One session's client, as the upstream is to see it.
class introducer {
  public:
    /// For the session's client (session/peer.hpp), whose names it looks up at most once for
    /// the whole session, shared with the greylist; told as `s`'s identity policy asks. Both
    /// must outlive the introducer.
    introducer(const upstream::settings& s, grey::peer& client) : settings_(s), client_(&client) {}

    introducer(const introducer&) = delete;
    introducer& operator=(const introducer&) = delete;

    /// The key of the identity the client would give a connection (identity.hpp), having
    /// greeted with `helo_name` by `protocol`; empty when the policy tells the upstream nothing.
    std::string key(std::string_view helo_name, std::string_view protocol) const {
        if (settings_.identity == identity_policy::none) return {};
        const std::string addr = client_->port ? identity_address(client_->address.to_string()) : std::string(unavailable);
        return identity_key(addr, helo_name.empty() ? unavailable : helo_name, protocol);
    }

    /// The client, having greeted with `helo_name` by `protocol`. Its names are looked up once
    /// per session (kept in the peer, and cached per thread).
    asio::awaitable<const client_identity*> who(std::string_view helo_name, std::string_view protocol) {
        if (!identity_) {
            client_identity who;
            who.addr = who.name = who.reverse_name = std::string(unavailable);
            if (client_->port) {
                who.addr = identity_address(client_->address.to_string());
                who.port = client_->port;
                const dns::client_names* names = co_await look_up_names(*client_);
                who.name = names->name;
                who.reverse_name = names->reverse_name;
            }
            identity_ = std::move(who);
        }
        identity_->helo = helo_name.empty() ? std::string(unavailable) : std::string(helo_name);
        identity_->proto = std::string(protocol);
        co_return &*identity_;
    }

    /// XCLIENT on `upstream`, outside any transaction: the connection takes the identity of
    /// `who`, answers with a new greeting, and is greeted again with the client's own HELO
    /// name (`helo_name`), as Postfix reads it from that EHLO. True when taken; false when
    /// refused (logged); an error when the connection failed.
    asio::awaitable<result<bool>> take(client& upstream, const client_identity& who, std::string_view helo_name) {
        for (const std::string& line : identity_commands(identity_method::xclient, who, upstream.caps())) {
            auto r = co_await upstream.command(line, settings_.timeouts.upstream_command);
            if (!r) co_return r.error();
            if (!r->completion()) {
                diagnostics::report(diagnostics::level::error, "upstream",
                                    fmt::format("upstream {} refused XCLIENT for {}: {} {}", upstream.remote_name(),
                                                who.addr, r->code, r->lines.empty() ? "" : r->lines.back()));
                co_return false;
            }
        }
        auto hello = co_await upstream.hello(helo_name.empty() ? std::string_view(settings_.helo_name) : helo_name);
        if (!hello) co_return hello.error();
        if (!hello->completion()) co_return false;
        upstream.set_identity(who.key());
        co_return true;
    }

  private:
    const upstream::settings& settings_;
    grey::peer* client_;                       // the session's client
    std::optional<client_identity> identity_;  // its identity, once needed
};

/// @}
} // namespace grey::upstream
