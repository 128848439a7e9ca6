// grey/smtp/command_format.hpp — the command lines Grey composes for the upstream, the other
// half of command.hpp: MAIL and RCPT with the parameters that travel, BDAT chunk headers, EHLO
// and HELO, and the lines with no argument. No I/O.
//
// Promise P2 (nothing smuggled) rests here: the upstream hears only lines composed from values
// the parsers checked, so a line holds no CR or LF but its final CRLF, and what it says reads
// back through command.hpp's parsers as the same values (tests/fuzz checks both).
//
// Each function appends to the caller's string, so a buffer the caller keeps composes line
// after line with no allocation once it has grown.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "command.hpp"
#include "extensions.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// Command lines with no argument, CRLF included.
namespace command_lines {
inline constexpr std::string_view data = "DATA\r\n";          ///< RFC 5321 §4.1.1.4
inline constexpr std::string_view rset = "RSET\r\n";          ///< RFC 5321 §4.1.1.5
inline constexpr std::string_view quit = "QUIT\r\n";          ///< RFC 5321 §4.1.1.10
inline constexpr std::string_view starttls = "STARTTLS\r\n";  ///< RFC 3207 §4
} // namespace command_lines

namespace detail {
inline void append_number(std::string& out, std::uint64_t n) {
    char digits[20];  // 2^64 - 1 has 20 digits: to_chars cannot run out of room
    const auto converted = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, converted.ptr);
}
} // namespace detail

/// "MAIL FROM:<sender>" and the client's parameters as an upstream that offered `offered` may
/// take them. SIZE goes only to an upstream that offers SIZE (RFC 1870 §6), BODY=8BITMIME and
/// BODY=7BIT only to one that offers 8BITMIME (RFC 6152 §3). BODY=BINARYMIME, SMTPUTF8, RET and
/// ENVID change what the upstream must do, so they are never dropped: the caller refuses the
/// transaction before composing it when the upstream lacks them (relay.hpp).
inline void append_mail(std::string& out, std::string_view sender, const mail_parameters& p,
                        const extensions& offered) {
    out.append("MAIL FROM:<").append(sender).push_back('>');
    if (p.size && offered.has(extension::size)) {
        out.append(" SIZE=");
        detail::append_number(out, *p.size);
    }
    const bool eight_bit = offered.has(extension::eight_bit_mime);
    if (p.body == body_type::eight_bit_mime && eight_bit) out.append(" BODY=8BITMIME");
    else if (p.body == body_type::seven_bit && eight_bit) out.append(" BODY=7BIT");
    else if (p.body == body_type::binary_mime) out.append(" BODY=BINARYMIME");
    if (p.smtputf8) out.append(" SMTPUTF8");
    if (!p.ret.empty()) out.append(" RET=").append(p.ret);
    if (!p.envid.empty()) out.append(" ENVID=").append(p.envid);
    out.append("\r\n");
}

/// "RCPT TO:<recipient>" with the DSN parameters as the client sent them (RFC 3461 §4: they
/// travel with the recipient).
inline void append_rcpt(std::string& out, std::string_view recipient, const rcpt_parameters& p) {
    out.append("RCPT TO:<").append(recipient).push_back('>');
    if (!p.notify.empty()) out.append(" NOTIFY=").append(p.notify);
    if (!p.orcpt.empty()) out.append(" ORCPT=").append(p.orcpt);
    out.append("\r\n");
}

/// The longest line append_bdat() writes: "BDAT", 20 digits, " LAST", CRLF.
inline constexpr std::size_t max_bdat_line = 5 + 20 + 5 + 2;

/// "BDAT size\r\n", or "BDAT size LAST\r\n" for the chunk that ends the message (RFC 3030 §2):
/// the header of `size` octets that follow it as they are.
inline void append_bdat(std::string& out, std::uint64_t size, bool last = false) {
    out.append("BDAT ");
    detail::append_number(out, size);
    out.append(last ? " LAST\r\n" : "\r\n");
}

/// "EHLO domain\r\n" (RFC 5321 §4.1.1.1).
inline void append_ehlo(std::string& out, std::string_view domain) {
    out.append("EHLO ").append(domain).append("\r\n");
}

/// "HELO domain\r\n", for a server that refuses EHLO (RFC 5321 §3.2).
inline void append_helo(std::string& out, std::string_view domain) {
    out.append("HELO ").append(domain).append("\r\n");
}

/// @}
} // namespace grey::smtp
