// grey/policy/session.hpp — one Postfix policy client connection: requests in, answers out, in
// order, over any stream socket (TCP or a unix-domain socket).
//
// responder is the decision, with no socket: a RCPT request becomes a greylist::question (with
// relay control off: in this mode Postfix's own restrictions decide relaying) and is judged by
// greylist::judge, the engine, lists, normalisation and store the SMTP proxy uses; every other
// protocol state gets DUNNO. Each judged recipient is logged in the seed's line.
//
// session<Socket> is the thin loop around it: read what has come, answer every whole request in
// it (pipelined requests are answered in order, in one write), and go on until the client
// closes. A request that breaks the rules of request_parser closes the connection without an
// answer, with a warning on `report`: SMTPD_POLICY_README asks a server in trouble to "log a
// warning and disconnect", and Postfix then retries or applies its default action. One timer
// per connection keeps the deadlines: idle_timeout between requests, request_timeout within
// one and for a write; a graceful stop closes idle connections at once and lets a request that
// has begun be answered first.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../deadline.hpp"
#include "../detail/asio.hpp"
#include "../diagnostics.hpp"
#include "../greylist/judge.hpp"
#include "../greylist/judges_first.hpp"
#include "../metrics/server_metrics.hpp"
#include "../smtp/address.hpp"
#include "request.hpp"
#include "response.hpp"

namespace grey::policy {
/// @addtogroup group_policy
/// @{

using namespace std::chrono_literals;

/// The policy server's own settings; the greylisting ones are greylist::greylist_settings.
struct settings {
    std::string servername = "localhost";  ///< the name in the X-Greylist header
    unsigned threads = 0;                  ///< 0: one per core, each with its own io_context
    /// On SIGINT/SIGTERM, a request that has begun has this long to be answered.
    std::chrono::steady_clock::duration drain = 30s;
    /// Where the service counts its connections and decisions (metrics/server_metrics.hpp);
    /// none when null. It must outlive the server.
    metrics::server_metrics* metrics = nullptr;
    /// The text of a greylisting deferral; %r is the recipient's domain, %s the seconds until a
    /// retry can pass. Postfix answers "450 4.7.1 <rcpt>: Recipient address rejected: TEXT".
    std::string greylist_text = "Greylisted, please try again later";
    /// The text when the store does not answer; its leading 4.3.0 becomes Postfix's enhanced
    /// status code, as the proxy's "451 4.3.0" does.
    std::string unavailable_text = "4.3.0 Greylist temporarily unavailable, try again later";
    /// The text of a refusal on the client's reputation (only with a refuse threshold set):
    /// Postfix answers 550 and this.
    std::string refused_text = "5.7.1 Service unavailable; client refused on its reputation";
    request_limits limits{};  ///< what one request may hold
    /// Between requests. Postfix closes a connection idle for smtpd_policy_service_max_idle
    /// (300 s) itself: the server's limit is longer, so it rarely closes one Postfix is about
    /// to use (Postfix would reconnect and retry, at a cost).
    std::chrono::steady_clock::duration idle_timeout = 600s;
    /// For the rest of a request once it has begun, and for writing an answer: Postfix's own
    /// smtpd_policy_service_timeout is 100 s.
    std::chrono::steady_clock::duration request_timeout = 100s;
    std::size_t max_connections = 1000;  ///< more are closed at once
    /// Receives the service's own warnings: a client's malformed request, the connection
    /// limit reached, a session ended by an exception. Standard error through diagnostics
    /// (topic "policy", rate-limited) by default; none when empty. The store's outages go to
    /// the greylist configuration's `report`, as the proxy's do.
    std::function<void(diagnostics::level, const std::string&)> report = [](diagnostics::level l,
                                                                          const std::string& line) {
        diagnostics::report(l, "policy", line);
    };
};

/// What Postfix is told of a judged RCPT request. `header` is the X-Greylist header to prepend
/// to a message that was held back; empty when none is to be added.
inline std::string respond(const greylist::judgement& j, const request& r, const settings& s,
                           std::string_view header) {
    if (j.why == greylist::finding::store_unavailable) return defer_if_permit(s.unavailable_text);
    if (j.why == greylist::finding::reputation_refused) return reject(s.refused_text);
    if (!j.accepted()) return defer_if_permit(expand_text(s.greylist_text, r.recipient_domain(), j.wait));
    if (j.why == greylist::finding::passed && !header.empty()) return prepend(header);
    return dunno();
}

/// The answers of one connection. Keeps which message last got an X-Greylist header, so that
/// a message with several recipients, each asked about on this connection, gets one.
class responder {
  public:
    /// Judges with `g` and answers with `s`, both kept by reference; `client` names the peer
    /// in warnings.
    responder(const greylist::greylist_settings& g, const settings& s, std::string client)
        : greylist_(g), settings_(s), client_(std::move(client)) {}

    /// The answer to one request: a RCPT is judged and logged; anything else gets DUNNO.
    asio::awaitable<std::string> answer(const request& r) {
        if (r.request != "smtpd_access_policy") {
            warn(fmt::format("request type '{}' is not smtpd_access_policy: answered DUNNO", r.request));
            co_return dunno();
        }
        // Only RCPT has a recipient to greylist; at DATA or END-OF-MESSAGE the recipients have
        // been judged already.
        if (!smtp::iequals(r.protocol_state, "RCPT")) co_return dunno();
        if (r.recipient.empty() || r.client_address.empty()) {
            warn("RCPT request without recipient or client_address: answered DUNNO");
            co_return dunno();
        }
        // The lists of this moment: a policy connection lives long, and SIGHUP's reload must
        // reach the requests it carries.
        const std::shared_ptr<const greylist::lists> lists = greylist_.lists->load();
        // Postfix's "unknown" is a client with no verified name: nothing for a name to match.
        const std::string_view name = r.client_name == "unknown" ? std::string_view{} : std::string_view(r.client_name);
        greylist::question q{r.client_address, r.helo_name, r.sender, r.recipient, r.recipient_domain(),
                             /*relay_control=*/false, name};
#if GREY_JUDGES_FIRST
        std::optional<greylist::request_reputation> reputation;
        if (greylist_.reputation.enabled) {
            reputation.emplace(greylist_.reputation, r.client_name, r.reverse_client_name);
            q.reputation = &*reputation;
        }
#endif
        const greylist::judgement j = co_await greylist::judge(greylist_, settings_.metrics, *lists, q);
        if (greylist_.log)
            greylist_.log(greylist::log_line(std::chrono::system_clock::now(), r.helo_name, r.client_address, r.sender,
                                             fmt::format("{} {}", r.recipient, j.log_text()), "policy"));
        std::string header;
        // Postfix sends every request about one message, with one instance, on one connection.
        if (j.why == greylist::finding::passed && greylist_.add_header &&
            (r.instance.empty() || r.instance != prepended_for_)) {
            header = greylist::x_greylist_header(j.delayed, settings_.servername, greylist_.now());
            prepended_for_ = r.instance;
        }
        co_return respond(j, r, settings_, header);
    }

    /// A warning about this client, on the settings' `report` (standard error).
    void warn(std::string_view what) const {
        if (settings_.report) settings_.report(diagnostics::level::warning, fmt::format("policy client {}: {}", client_, what));
    }

  private:
    const greylist::greylist_settings& greylist_;
    const settings& settings_;
    std::string client_;
    std::string prepended_for_;
};

/// One policy client connection over `Socket` (TCP or unix-domain): the loop around a
/// responder, with its deadlines and graceful stop.
template <class Socket>
class session {
  public:
    using clock = std::chrono::steady_clock;  ///< for the deadlines

    /// `client` names the peer in warnings: "127.0.0.1:40312", "unix:/run/grey/policy".
    session(Socket socket, const greylist::greylist_settings& g, const settings& s, std::string client)
        : socket_(std::move(socket)), deadline_(socket_.get_executor()), settings_(s),
          responder_(g, s, std::move(client)) {
        deadline_.guard(socket_);
    }

    session(const session&) = delete;
    session& operator=(const session&) = delete;

    /// Serves the connection until it ends; `self` keeps the session alive meanwhile.
    static asio::awaitable<void> run(std::shared_ptr<session> self) {
        self->deadline_.start(self);
        co_await self->serve();
        self->deadline_.stop();
        asio::error_code ignored;
        self->socket_.shutdown(Socket::shutdown_both, ignored);
        self->socket_.close(ignored);
    }

    /// A graceful stop, called on the session's executor: an idle connection is closed at
    /// once; a request that has begun is answered (until `drain_deadline`), then it is closed.
    void stop(clock::time_point drain_deadline) { deadline_.shutdown(drain_deadline); }

  private:
    asio::awaitable<void> serve() {
        request_parser parser(settings_.limits);
        std::array<char, 4096> buffer;
        std::string out;
        for (;;) {
            if (deadline_.shutting_down() && !parser.in_request()) co_return;
            const bool idle = !parser.in_request();
            deadline_.set_idle(idle);
            deadline_.expires_after(idle ? settings_.idle_timeout : settings_.request_timeout);
            auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer), detail::use_nothrow);
            deadline_.set_idle(false);
            if (ec) {
                if (deadline_.expired() && parser.in_request() && !deadline_.shutting_down())
                    responder_.warn("request not finished within request_timeout: connection closed");
                co_return;  // closed by the client, idle, timed out or stopped
            }
            std::string_view in(buffer.data(), n);
            while (!in.empty()) {
                auto next = parser.consume(in);
                if (!next) {
                    // Answers to the requests before the bad one are still owed.
                    co_await write(out);
                    responder_.warn(fmt::format("{}: connection closed", next.error().message()));
                    co_return;
                }
                if (!*next) break;
                const auto read = settings_.metrics ? clock::now() : clock::time_point{};
                std::string answer = co_await responder_.answer(**next);
                if (settings_.metrics) unwritten_.push_back({read, settings_.metrics->policy_action(action_of(answer))});
                out += answer;
            }
            const bool written = co_await write(out);  // awaited apart: GCC 12 (see detail/asio.hpp)
            if (!written) co_return;
        }
    }

    /// Sends and empties `out`; false when the connection failed. The answers it held are
    /// counted once written, each timed from its request's reading.
    asio::awaitable<bool> write(std::string& out) {
        if (out.empty()) co_return true;
        deadline_.expires_after(settings_.request_timeout);
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), detail::use_nothrow);
        (void)n;
        out.clear();
        if (!ec && settings_.metrics) {
            const auto written = clock::now();
            for (const unwritten& u : unwritten_) settings_.metrics->policy_answered(u.action, written - u.read);
        }
        unwritten_.clear();
        co_return !ec;
    }

    // An answer in `out`, not yet written: when its request was read, and its action
    // (server_metrics::policy_action).
    struct unwritten {
        clock::time_point read;
        std::size_t action;
    };

    Socket socket_;
    grey::deadline deadline_;
    const settings& settings_;
    responder responder_;
    std::vector<unwritten> unwritten_;  // for the metrics only: empty without them
};

/// @}
} // namespace grey::policy
