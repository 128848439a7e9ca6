// grey/smtp/command.hpp — SMTP command lines (RFC 5321 §4.1) parsed into typed commands.
// parse_command splits the verb from its argument and checks the argument's presence; the
// parse_* functions check each argument's grammar. Everything views the caller's line.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "../result.hpp"
#include "address.hpp"

namespace grey::smtp {

enum class verb { helo, ehlo, mail, rcpt, data, rset, noop, quit, vrfy, help, starttls };

struct command {
    smtp::verb verb;
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
    {"STARTTLS", verb::starttls, verb_spelling::none},
};
// Verbs of SMTP extensions Grey does not offer: known, so answered 502 rather than 500.
inline constexpr std::string_view unoffered[] = {"EXPN", "AUTH", "BDAT", "ETRN",
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
    std::string_view domain;
};

inline result<helo_command> parse_helo(std::string_view argument) {
    if (is_helo_name(argument) || is_address_literal(argument)) return helo_command{argument};
    return errc::bad_domain;
}

enum class body_type { unspecified, seven_bit, eight_bit_mime };

/// MAIL parameters Grey advertises: SIZE (RFC 1870) and BODY (RFC 6152).
struct mail_parameters {
    std::optional<std::uint64_t> size;
    body_type body = body_type::unspecified;
};

struct mail_command {
    path reverse_path;
    mail_parameters parameters;
};

struct rcpt_command {
    path forward_path;
};

namespace detail {
// esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 §4.1.2)
struct esmtp_param {
    std::string_view keyword, value;
    bool has_value;
};

inline result<esmtp_param> take_param(std::string_view& rest) {
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
        for (char c : p.value)
            if (c < 33 || c > 126 || c == '=') return errc::syntax_error;
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
} // namespace detail

/// "FROM:<reverse-path>[ SP mail-parameters]". No space is allowed after the colon.
inline result<mail_command> parse_mail(std::string_view argument) {
    if (!istarts_with(argument, "FROM:")) return errc::syntax_error;
    argument.remove_prefix(5);
    auto path = take_path(argument, path_kind::reverse);
    if (!path) return errc::bad_sender;
    mail_command mail{*path, {}};
    while (!argument.empty()) {
        auto p = detail::take_param(argument);
        if (!p) return p.error();
        if (iequals(p->keyword, "SIZE")) {
            auto n = p->has_value ? detail::parse_size(p->value) : std::nullopt;
            if (!n || mail.parameters.size) return errc::bad_parameter_value;
            mail.parameters.size = n;
        } else if (iequals(p->keyword, "BODY")) {
            if (mail.parameters.body != body_type::unspecified) return errc::bad_parameter_value;
            if (iequals(p->value, "7BIT")) mail.parameters.body = body_type::seven_bit;
            else if (iequals(p->value, "8BITMIME")) mail.parameters.body = body_type::eight_bit_mime;
            else return errc::bad_parameter_value;
        } else {
            return errc::unknown_parameter;
        }
    }
    return mail;
}

/// "TO:<forward-path>". Grey advertises no RCPT parameters, so any is refused with 555.
inline result<rcpt_command> parse_rcpt(std::string_view argument) {
    if (!istarts_with(argument, "TO:")) return errc::syntax_error;
    argument.remove_prefix(3);
    auto path = take_path(argument, path_kind::forward);
    if (!path) return errc::bad_recipient;
    if (!argument.empty()) {
        auto p = detail::take_param(argument);
        return p ? errc::unknown_parameter : p.error();
    }
    return rcpt_command{*path};
}

} // namespace grey::smtp
