// grey/error.hpp — Grey's error codes, registered as a std::error_category so that Grey's
// failures and Asio's (which are std::error_code in standalone Asio) compare alike.
#pragma once

#include <string>
#include <system_error>

namespace grey {
/// @addtogroup group_errors
/// @{

/// Grey's own failures, from framing to the upstream to the stores. Each is a
/// std::error_code in grey_category(), so it travels and compares like Asio's codes; only the
/// session loop turns one into a reply. The values start at 1, since 0 means success.
enum class errc {
    // Framing (smtp/line_reader.hpp)
    line_too_long = 1,      ///< a line longer than its limit (512 octets for commands, 1000 for text)
    bare_lf,                ///< LF not preceded by CR: refused, RFC 5321 §2.3.8
    bare_cr,                ///< CR not followed by LF: refused, RFC 5321 §2.3.8
    nul_byte,               ///< NUL in a command or in message text
    // Commands (smtp/command.hpp, smtp/address.hpp)
    unknown_command,        ///< a verb Grey does not know
    not_implemented,        ///< a verb Grey knows but does not offer (STARTTLS, AUTH, BDAT, EXPN…)
    forbidden_command,      ///< an HTTP request or similar cross-protocol probe
    syntax_error,           ///< malformed arguments
    bad_sender,             ///< malformed reverse-path
    bad_recipient,          ///< malformed forward-path
    bad_domain,             ///< malformed HELO/EHLO domain or address literal
    unknown_parameter,      ///< a MAIL/RCPT parameter not advertised
    bad_parameter_value,    ///< an advertised parameter with a value out of its syntax
    needs_smtputf8,         ///< a non-ASCII address in a transaction without SMTPUTF8 (RFC 6531 §3.4)
    bad_sequence,           ///< a command out of order (RFC 5321 §4.1.4)
    // Limits
    message_too_big,        ///< SIZE or the data stream exceeds the configured limit
    too_many_recipients,    ///< more RCPTs than the configured limit
    // Upstream
    upstream_unavailable,   ///< could not connect to, or greet, the upstream MTA
    upstream_protocol,      ///< the upstream sent something that is not an SMTP reply
    upstream_closed,        ///< the upstream connection ended
    upstream_timeout,       ///< the upstream did not answer within its timeout
    upstream_tls_failed,    ///< TLS to the upstream was required and could not be had
    // Session
    timeout,                ///< the client was silent longer than its timeout
    shutting_down,          ///< the server is stopping
    // Greylist stores
    store_failed,           ///< a greylist store could not answer
    // PROXY protocol (proxy_protocol.hpp): each closes the connection, unanswered
    proxy_header_missing,   ///< the connection does not open with a PROXY protocol signature
    proxy_header_malformed, ///< a PROXY protocol header that breaks the spec
    proxy_header_too_long,  ///< a PROXY header over its limit (107 octets for v1, a cap for v2)
};

namespace detail {
class grey_category : public std::error_category {
  public:
    const char* name() const noexcept override { return "grey"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::line_too_long: return "line too long";
        case errc::bare_lf: return "bare LF in input";
        case errc::bare_cr: return "bare CR in input";
        case errc::nul_byte: return "NUL byte in input";
        case errc::unknown_command: return "unknown command";
        case errc::not_implemented: return "command not implemented";
        case errc::forbidden_command: return "forbidden command";
        case errc::syntax_error: return "syntax error";
        case errc::bad_sender: return "bad sender address";
        case errc::bad_recipient: return "bad recipient address";
        case errc::bad_domain: return "bad domain";
        case errc::unknown_parameter: return "unknown parameter";
        case errc::bad_parameter_value: return "bad parameter value";
        case errc::needs_smtputf8: return "non-ASCII address without SMTPUTF8";
        case errc::bad_sequence: return "bad sequence of commands";
        case errc::message_too_big: return "message too big";
        case errc::too_many_recipients: return "too many recipients";
        case errc::upstream_unavailable: return "upstream unavailable";
        case errc::upstream_protocol: return "upstream protocol error";
        case errc::upstream_closed: return "upstream closed the connection";
        case errc::upstream_timeout: return "upstream timeout";
        case errc::upstream_tls_failed: return "TLS to the upstream failed";
        case errc::timeout: return "timeout";
        case errc::shutting_down: return "shutting down";
        case errc::store_failed: return "greylist store failed";
        case errc::proxy_header_missing: return "no PROXY protocol header";
        case errc::proxy_header_malformed: return "malformed PROXY protocol header";
        case errc::proxy_header_too_long: return "PROXY protocol header too long";
        }
        return "unknown grey error";
    }
};
} // namespace detail

/// The category of errc, named "grey". One instance for the process: error codes compare
/// their categories by address.
inline const std::error_category& grey_category() noexcept {
    static const detail::grey_category category;
    return category;
}

/// `e` as a std::error_code. Found by argument-dependent lookup, which is what lets an errc
/// convert implicitly (`std::error_code ec = errc::timeout;`).
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), grey_category()};
}

/// @}
} // namespace grey

/// Marks errc as an error code enum: it converts to std::error_code implicitly.
template <>
struct std::is_error_code_enum<grey::errc> : std::true_type {};
