// grey/policy/request.hpp — a Postfix policy delegation request (SMTPD_POLICY_README): lines of
// `name=value` ending in an empty line, parsed with no I/O.
//
// request_parser takes bytes as they come (whole, one at a time, or split anywhere) and gives
// each request when its empty line arrives; the bytes after it are left for the next call, so
// pipelined requests come out one by one, in order. Memory is bounded: a partial line is held
// up to max_line octets, and only the attributes greylisting reads are kept (the README asks a
// server to ignore the rest). A rule broken (a line too long, too many lines, a request too
// large, a line that is not name=value, a NUL) is an error: the connection is to be closed,
// since nothing after it can be trusted to start a request.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "../result.hpp"
#include "error.hpp"

namespace grey::policy {
/// @addtogroup group_policy
/// @{

/// Bounds on what one client may make the server hold. Postfix 3.12 sends about 35 attributes
/// in some 1,000 octets; its values (names, addresses, certificate subjects) fit a line easily.
struct request_limits {
    std::size_t max_line = 2048;        ///< octets of one name=value line, with its LF
    std::size_t max_attributes = 100;   ///< lines in one request, not counting the empty one
    std::size_t max_request = 16384;    ///< octets of one request, with its empty line
};

/// The attributes greylisting reads. An attribute not sent is empty, as one sent empty: the
/// README says a client may do either when a value is unavailable (the null sender is "").
struct request {
    std::string request;         ///< "smtpd_access_policy"
    std::string protocol_state;  ///< CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN
    std::string protocol_name;   ///< SMTP or ESMTP
    std::string helo_name;       ///< the name the SMTP client gave in HELO/EHLO
    std::string queue_id;        ///< Postfix's queue ID, once the message has one
    std::string sender;          ///< reverse-path without <>: "" for the null sender
    std::string recipient;       ///< forward-path without <>
    std::string client_address;  ///< the SMTP client's IP address
    std::string client_name;     ///< its verified name, or "unknown"
    std::string reverse_client_name;  ///< the name its address resolves to, verified or not, or "unknown"
    std::string instance;        ///< the same for every request about one message
    std::size_t attributes = 0;  ///< lines received, those ignored included

    /// The recipient's domain: what follows its last '@'; "" for `<postmaster>`.
    std::string_view recipient_domain() const {
        const auto at = recipient.rfind('@');
        return at == std::string::npos ? std::string_view{} : std::string_view(recipient).substr(at + 1);
    }
};

/// Bytes in, requests out, with no I/O: see the file's description.
class request_parser {
  public:
    /// Holds every request to `limits`.
    explicit request_parser(request_limits limits = {}) : limits_(limits) {}

    /// Takes bytes from the front of `in`. When they complete a request, returns it and leaves
    /// in `in` the bytes behind its empty line; otherwise takes all of `in` and returns an
    /// empty optional (more is needed). After an error the parser is spent.
    result<std::optional<request>> consume(std::string_view& in) {
        while (!in.empty()) {
            const auto lf = in.find('\n');
            const std::string_view piece = in.substr(0, lf == std::string_view::npos ? in.size() : lf + 1);
            // Limits are checked before anything is kept: an attacker's endless line costs
            // max_line octets, not memory without end.
            if (line_.size() + piece.size() > limits_.max_line) return fail(error::line_too_long);
            if (size_ + piece.size() > limits_.max_request) return fail(error::request_too_large);
            if (piece.find('\0') != std::string_view::npos) return fail(error::nul_byte);
            line_.append(piece);
            size_ += piece.size();
            in.remove_prefix(piece.size());
            if (lf == std::string_view::npos) return std::optional<request>{};

            std::string_view line(line_);
            line.remove_suffix(1);                                      // LF
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF, as Postgrey takes it
            if (line.empty()) {
                request done = std::move(current_);
                reset();
                return std::optional<request>(std::move(done));
            }
            if (++current_.attributes > limits_.max_attributes) return fail(error::too_many_attributes);
            const auto eq = line.find('=');
            if (eq == std::string_view::npos || eq == 0) return fail(error::malformed_attribute);
            // A name sent twice keeps its last value (the README allows first or last).
            if (std::string* field = field_for(line.substr(0, eq))) field->assign(line.substr(eq + 1));
            line_.clear();
        }
        return std::optional<request>{};
    }

    /// True while part of a request has arrived and its empty line has not.
    bool in_request() const noexcept { return size_ > 0; }

  private:
    result<std::optional<request>> fail(error e) {
        reset();
        return make_error_code(e);
    }

    void reset() {
        current_ = request{};
        line_.clear();
        size_ = 0;
    }

    std::string* field_for(std::string_view name) {
        if (name == "request") return &current_.request;
        if (name == "protocol_state") return &current_.protocol_state;
        if (name == "protocol_name") return &current_.protocol_name;
        if (name == "helo_name") return &current_.helo_name;
        if (name == "queue_id") return &current_.queue_id;
        if (name == "sender") return &current_.sender;
        if (name == "recipient") return &current_.recipient;
        if (name == "client_address") return &current_.client_address;
        if (name == "client_name") return &current_.client_name;
        if (name == "reverse_client_name") return &current_.reverse_client_name;
        if (name == "instance") return &current_.instance;
        return nullptr;
    }

    request_limits limits_;
    request current_;
    std::string line_;      // the line being received, LF included once it has come
    std::size_t size_ = 0;  // octets of the request so far
};

/// @}
} // namespace grey::policy
