// grey/smtp/command.hpp — SMTP command lines (RFC 5321 §4.1) parsed into typed commands.
// parse_command splits the verb from its argument and checks the argument's presence; the
// parse_* functions check each argument's grammar, with the MAIL and RCPT parameters of
// SMTPUTF8 (RFC 6531) and DSN (RFC 3461). Paths view the caller's line; parameter values Grey
// passes on are copied.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "../result.hpp"
#include "address.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// The commands Grey takes. parse_command() refuses any other verb: errc::not_implemented
/// for those of extensions Grey does not offer, errc::forbidden_command for other protocols'
/// requests, errc::unknown_command for the rest.
enum class verb { helo, ehlo, mail, rcpt, data, rset, noop, quit, vrfy, help, starttls, bdat };

/// A command line split in two: the verb, and its argument for the verb's own parser
/// (parse_helo, parse_mail, parse_rcpt, parse_bdat).
struct command {
    smtp::verb verb;            ///< which command
    std::string_view argument;  ///< what follows the verb and one space; may be empty
};

namespace detail {
struct verb_spelling {
    std::string_view name;
    smtp::verb verb;
    enum { none, optional, required } argument;
};
inline constexpr verb_spelling verbs[] = {
    {"HELO", verb::helo, verb_spelling::required}, {"EHLO", verb::ehlo, verb_spelling::required},
    {"MAIL", verb::mail, verb_spelling::required}, {"RCPT", verb::rcpt, verb_spelling::required},
    {"DATA", verb::data, verb_spelling::none},     {"RSET", verb::rset, verb_spelling::none},
    {"NOOP", verb::noop, verb_spelling::optional}, {"QUIT", verb::quit, verb_spelling::none},
    {"VRFY", verb::vrfy, verb_spelling::required}, {"HELP", verb::help, verb_spelling::optional},
    {"STARTTLS", verb::starttls, verb_spelling::none}, {"BDAT", verb::bdat, verb_spelling::required},
};
// Verbs of SMTP extensions Grey does not offer: known, so answered 502 rather than 500.
inline constexpr std::string_view unoffered[] = {"EXPN", "AUTH", "ETRN",
                                                 "TURN", "ATRN", "XCLIENT", "XFORWARD", "SEND",
                                                 "SOML", "SAML"};
// First words of other protocols' requests: a browser or proxy talking to an SMTP port is a
// cross-protocol attack, not a confused mail client (compare Postfix's smtpd_forbidden_commands).
inline constexpr std::string_view foreign[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS",
                                               "CONNECT", "PATCH", "TRACE"};
} // namespace detail

/// Splits "VERB[ argument]". Verbs are case-insensitive; exactly one space separates the
/// argument; a verb that takes no argument refuses one.
inline result<command> parse_command(std::string_view line) {
    const std::size_t space = line.find(' ');
    const std::string_view name = line.substr(0, space);
    const std::string_view argument =
        space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);

    for (const auto& v : detail::verbs) {
        if (!iequals(name, v.name)) continue;
        const bool has_argument = space != std::string_view::npos;
        if (v.argument == detail::verb_spelling::none && has_argument) return errc::syntax_error;
        if (v.argument == detail::verb_spelling::required && argument.empty())
            return errc::syntax_error;
        if (has_argument && (argument.empty() || argument.front() == ' ')) return errc::syntax_error;
        return command{v.verb, argument};
    }
    for (auto f : detail::foreign)
        if (iequals(name, f)) return errc::forbidden_command;
    if (line.find(" HTTP/") != std::string_view::npos) return errc::forbidden_command;
    for (auto u : detail::unoffered)
        if (iequals(name, u)) return errc::not_implemented;
    return errc::unknown_command;
}

/// HELO/EHLO argument: a host name (see is_helo_name) or an address literal.
struct helo_command {
    std::string_view domain;  ///< as the client wrote it
};

/// Checks the argument of HELO or EHLO; errc::bad_domain when it is neither a host name nor
/// an address literal.
inline result<helo_command> parse_helo(std::string_view argument) {
    if (is_helo_name(argument) || is_address_literal(argument)) return helo_command{argument};
    return errc::bad_domain;
}

/// BODY (RFC 6152; BINARYMIME: RFC 3030 §3, a body of any octets, sent only with BDAT).
enum class body_type { unspecified, seven_bit, eight_bit_mime, binary_mime };

/// MAIL parameters Grey knows: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531) and the
/// DSN pair RET and ENVID (RFC 3461). The DSN values are kept as the client sent them, checked,
/// to be passed on unchanged; they are strings because the session keeps these parameters
/// after the line they came in is gone. Whether Grey offers SMTPUTF8 or DSN at all is the
/// session's question, not the parser's.
struct mail_parameters {
    std::optional<std::uint64_t> size;        ///< SIZE: the message's octets, as the client announces them
    body_type body = body_type::unspecified;  ///< BODY, or unspecified without one
    bool smtputf8 = false;  ///< the transaction may carry UTF-8 addresses (RFC 6531 §3.4)
    std::string ret;        ///< "FULL" or "HDRS" in the client's case, or empty (RFC 3461 §4.3)
    std::string envid;      ///< xtext, at most 100 octets, or empty (RFC 3461 §4.4)

    /// Whether MAIL asked for DSN (RET or ENVID), which only an upstream that offers DSN may get.
    bool uses_dsn() const noexcept { return !ret.empty() || !envid.empty(); }
};

/// RCPT parameters Grey knows: NOTIFY and ORCPT (RFC 3461), kept as sent, checked.
struct rcpt_parameters {
    std::string notify;  ///< "NEVER" or a list of SUCCESS, FAILURE, DELAY, or empty (§4.1)
    std::string orcpt;   ///< "addr-type;xtext", or empty (§4.2)

    /// Whether RCPT asked for DSN (NOTIFY or ORCPT), which only an upstream that offers DSN may get.
    bool uses_dsn() const noexcept { return !notify.empty() || !orcpt.empty(); }
};

/// MAIL's argument, parsed by parse_mail().
struct mail_command {
    path reverse_path;           ///< the sender; null for a bounce
    mail_parameters parameters;  ///< the parameters, checked
};

/// RCPT's argument, parsed by parse_rcpt().
struct rcpt_command {
    path forward_path;           ///< the recipient; "<Postmaster>" has an empty domain
    rcpt_parameters parameters;  ///< the parameters, checked
};

/// xtext = *( xchar / hexchar ) (RFC 3461 §4): xchar is ASCII 33-126 but '+' and '=';
/// hexchar is '+' and two upper-case hex digits. Syntax only: the empty string is xtext.
constexpr bool is_xtext(std::string_view s) noexcept {
    constexpr auto upper_hex = [](char c) { return detail::is_digit(c) || (c >= 'A' && c <= 'F'); };
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '+') {
            if (s.size() - i < 3 || !upper_hex(s[i + 1]) || !upper_hex(s[i + 2])) return false;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return true;
}

namespace detail {
// esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 §4.1.2); with `utf8`, esmtp-value
// also takes UTF8-non-ascii (RFC 6531 §3.3), for ORCPT's utf-8 form.
struct esmtp_param {
    std::string_view keyword, value;
    bool has_value;
};

inline result<esmtp_param> take_param(std::string_view& rest, bool utf8 = false) {
    if (rest.empty() || rest.front() != ' ') return errc::syntax_error;
    rest.remove_prefix(1);
    const std::size_t end = std::min(rest.find(' '), rest.size());
    const std::string_view token = rest.substr(0, end);
    rest.remove_prefix(end);
    const std::size_t eq = token.find('=');
    esmtp_param p{token.substr(0, eq), {}, eq != std::string_view::npos};
    if (p.has_value) p.value = token.substr(eq + 1);
    if (p.keyword.empty() || !is_let_dig(p.keyword.front())) return errc::syntax_error;
    for (char c : p.keyword)
        if (!(is_let_dig(c) || c == '-')) return errc::syntax_error;
    if (p.has_value) {
        if (p.value.empty()) return errc::syntax_error;
        for (std::size_t i = 0; i < p.value.size(); ++i) {
            const char c = p.value[i];
            if (static_cast<unsigned char>(c) >= 0x80) {
                const std::size_t n = utf8 ? utf8_length(p.value.substr(i)) : 0;
                if (n == 0) return errc::syntax_error;
                i += n - 1;
            } else if (c < 33 || c > 126 || c == '=') {
                return errc::syntax_error;
            }
        }
    }
    return p;
}

inline std::optional<std::uint64_t> parse_size(std::string_view v) {
    if (v.empty() || v.size() > 19) return std::nullopt;  // 19 digits always fit 64 bits
    std::uint64_t n = 0;
    for (char c : v) {
        if (!is_digit(c)) return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

// ENVID and ORCPT's address decode to "printable (graphic and white space) characters from the
// US-ASCII repertoire" (RFC 3461 §4.2, §4.4): an encoded CR or LF would be written by the
// upstream into the header of the DSN it sends.
constexpr bool is_printable_xtext(std::string_view s) noexcept {
    if (!is_xtext(s)) return false;
    constexpr auto hex = [](char c) { return is_digit(c) ? c - '0' : c - 'A' + 10; };
    for (std::size_t i = s.find('+'); i != std::string_view::npos; i = s.find('+', i + 3)) {
        const int c = hex(s[i + 1]) * 16 + hex(s[i + 2]);
        if (!(c == '\t' || (c >= 0x20 && c <= 0x7E))) return false;
    }
    return true;
}

// HEXPOINT of RFC 6533 §3, the hex digits of "\x{...}": a code point no QCHAR can carry, in
// the fewest digits, two at least. The ABNF admits 01-09, 10-19 and 20 among the controls; we
// take every ASCII character QCHAR cannot carry but NUL, which is what the ABNF means.
constexpr bool is_hexpoint(std::string_view h) noexcept {
    if (h.size() < 2 || h.size() > 6) return false;
    std::uint32_t v = 0;
    for (char c : h) {
        const char u = (c >= 'a' && c <= 'f') ? char(c - 32) : c;  // HEXDIG is case-insensitive
        if (!(is_digit(u) || (u >= 'A' && u <= 'F'))) return false;
        v = v * 16 + static_cast<std::uint32_t>(is_digit(u) ? u - '0' : u - 'A' + 10);
    }
    const std::size_t fewest = v <= 0xFF ? 2 : v <= 0xFFF ? 3 : v <= 0xFFFF ? 4 : v <= 0xFFFFF ? 5 : 6;
    if (h.size() != fewest || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || v == 0) return false;
    return v >= 0x80 || v <= 0x20 || v == '+' || v == '=' || v == '\\' || v == 0x7F;
}

// utf-8-addr-xtext / utf-8-addr-unitext (RFC 6533 §3), the address of ORCPT=utf-8;...:
// 1*( QCHAR / UTF8-non-ascii / "\x{" HEXPOINT "}" ), QCHAR being xchar without '\'.
// UTF8-non-ascii (the unitext form) reaches here only in an SMTPUTF8 transaction: take_param
// refuses it otherwise. The dequoted address is not parsed again as a Mailbox.
constexpr bool is_utf8_addr_text(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (static_cast<unsigned char>(c) >= 0x80) {
            const std::size_t n = utf8_length(s.substr(i));
            if (n == 0) return false;
            i += n;
        } else if (c == '\\') {
            const std::size_t close = s.find('}', i);
            if (s.substr(i, 3) != "\\x{" || close == std::string_view::npos) return false;
            if (!is_hexpoint(s.substr(i + 3, close - i - 3))) return false;
            i = close + 1;
        } else if (c < 33 || c > 126 || c == '+' || c == '=') {
            return false;
        } else {
            ++i;
        }
    }
    return true;
}

// NOTIFY = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ) (RFC 3461 §4.1): NEVER alone, the
// others in any order, each at most once.
constexpr bool is_notify(std::string_view v) noexcept {
    constexpr std::string_view names[] = {"NEVER", "SUCCESS", "FAILURE", "DELAY"};
    unsigned seen = 0;
    for (;;) {
        const std::size_t comma = v.find(',');
        const std::string_view item = v.substr(0, comma);
        unsigned bit = 0;
        for (unsigned k = 0; k < 4; ++k)
            if (iequals(item, names[k])) bit = 1u << k;
        if (bit == 0 || (seen & bit)) return false;
        seen |= bit;
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
    return (seen & 1u) == 0 || seen == 1u;
}

// ORCPT = addr-type ";" xtext; addr-type = atom (RFC 3461 §4.2). The type "utf-8" carries
// RFC 6533's forms instead; any other registered type (rfc822, x400, unknown) an xtext.
constexpr bool is_orcpt(std::string_view v) noexcept {
    const std::size_t semi = v.find(';');
    if (semi == 0 || semi == std::string_view::npos) return false;
    const std::string_view type = v.substr(0, semi), address = v.substr(semi + 1);
    for (char c : type)
        if (!is_atext(c)) return false;
    if (iequals(type, "utf-8")) return is_utf8_addr_text(address);
    return !address.empty() && is_printable_xtext(address);
}

inline constexpr std::size_t max_envid_length = 100;  // RFC 3461 §4.4, counted as sent
} // namespace detail

/// "FROM:<reverse-path>[ SP mail-parameters]". No space is allowed after the colon. A path
/// with UTF-8 is parsed, then refused with needs_smtputf8 unless the parameters include
/// SMTPUTF8 (RFC 6531 §3.4); RFC 6531 §3.5 answers it with X.6.7.
inline result<mail_command> parse_mail(std::string_view argument) {
    if (!istarts_with(argument, "FROM:")) return errc::syntax_error;
    argument.remove_prefix(5);
    auto path = take_path(argument, path_kind::reverse, charset::utf8);
    if (!path) return errc::bad_sender;
    mail_command mail{*path, {}};
    mail_parameters& m = mail.parameters;
    while (!argument.empty()) {
        auto p = detail::take_param(argument);
        if (!p) return p.error();
        if (iequals(p->keyword, "SIZE")) {
            auto n = p->has_value ? detail::parse_size(p->value) : std::nullopt;
            if (!n || m.size) return errc::bad_parameter_value;
            m.size = n;
        } else if (iequals(p->keyword, "BODY")) {
            if (m.body != body_type::unspecified) return errc::bad_parameter_value;
            if (iequals(p->value, "7BIT")) m.body = body_type::seven_bit;
            else if (iequals(p->value, "8BITMIME")) m.body = body_type::eight_bit_mime;
            else if (iequals(p->value, "BINARYMIME")) m.body = body_type::binary_mime;
            else return errc::bad_parameter_value;
        } else if (iequals(p->keyword, "SMTPUTF8")) {
            if (p->has_value || m.smtputf8) return errc::bad_parameter_value;  // RFC 6531 §3.4: no value
            m.smtputf8 = true;
        } else if (iequals(p->keyword, "RET")) {
            if (!m.ret.empty() || !(iequals(p->value, "FULL") || iequals(p->value, "HDRS")))
                return errc::bad_parameter_value;
            m.ret = p->value;
        } else if (iequals(p->keyword, "ENVID")) {
            if (!m.envid.empty() || p->value.empty() || p->value.size() > detail::max_envid_length ||
                !detail::is_printable_xtext(p->value))
                return errc::bad_parameter_value;
            m.envid = p->value;
        } else {
            return errc::unknown_parameter;
        }
    }
    if (!m.smtputf8 && !is_ascii(mail.reverse_path.mailbox)) return errc::needs_smtputf8;
    return mail;
}

/// "TO:<forward-path>[ SP rcpt-parameters]", in a transaction whose MAIL did or did not carry
/// SMTPUTF8: a path with UTF-8 outside one is refused with needs_smtputf8 (RFC 6531 §3.4), and
/// so is, as a syntax error, UTF-8 in a parameter. NOTIFY and ORCPT are the only parameters;
/// any other is refused with 555.
inline result<rcpt_command> parse_rcpt(std::string_view argument, bool smtputf8_transaction) {
    if (!istarts_with(argument, "TO:")) return errc::syntax_error;
    argument.remove_prefix(3);
    auto path = take_path(argument, path_kind::forward, charset::utf8);
    if (!path) return errc::bad_recipient;
    rcpt_command rcpt{*path, {}};
    rcpt_parameters& r = rcpt.parameters;
    while (!argument.empty()) {
        auto p = detail::take_param(argument, smtputf8_transaction);
        if (!p) return p.error();
        if (iequals(p->keyword, "NOTIFY")) {
            if (!r.notify.empty() || !detail::is_notify(p->value)) return errc::bad_parameter_value;
            r.notify = p->value;
        } else if (iequals(p->keyword, "ORCPT")) {
            if (!r.orcpt.empty() || !detail::is_orcpt(p->value)) return errc::bad_parameter_value;
            r.orcpt = p->value;
        } else {
            return errc::unknown_parameter;
        }
    }
    if (!smtputf8_transaction && !is_ascii(rcpt.forward_path.mailbox)) return errc::needs_smtputf8;
    return rcpt;
}

/// @}
} // namespace grey::smtp
