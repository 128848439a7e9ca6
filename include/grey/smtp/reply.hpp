// grey/smtp/reply.hpp — an SMTP reply (RFC 5321 §4.2): a code, an optional enhanced status
// code (RFC 3463), and one or more lines of text; its wire form; and the catalogue of the
// replies Grey gives itself. Hooks return replies, never strings: a reply's code decides what
// the session does next.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// An SMTP reply: what hooks return, what the catalogue (replies) holds, and what the
/// upstream's replies are read into and passed on as.
struct reply {
    std::uint16_t code = 0;          ///< the three-digit code, RFC 5321 §4.2.3
    std::string enhanced;            ///< "2.1.5", or empty when the reply has none
    std::vector<std::string> lines;  ///< text of each line, without code or enhanced code

    /// An empty reply, code 0: none yet.
    reply() = default;
    /// One line: reply{550, "5.7.1", "Not here"}; `enh` may be empty.
    reply(std::uint16_t c, std::string_view enh, std::string_view text)
        : code(c), enhanced(enh), lines{std::string(text)} {}
    /// Lines built elsewhere, in order.
    reply(std::uint16_t c, std::string_view enh, std::vector<std::string> text)
        : code(c), enhanced(enh), lines(std::move(text)) {}
    /// Multi-line, written in place: reply{550, "5.7.1", {"first", "second"}}. (A braced list
    /// prefers this overload, where it would be ambiguous between the other two.)
    reply(std::uint16_t c, std::string_view enh, std::initializer_list<std::string> text)
        : code(c), enhanced(enh), lines(text) {}

    /// The first digit, which decides what happens next: 2 done, 3 go on, 4 try again later,
    /// 5 do not.
    int klass() const noexcept { return code / 100; }
    /// 2xx or 3xx: the command was taken (3xx: send the rest, as after DATA).
    bool positive() const noexcept { return klass() == 2 || klass() == 3; }
    /// 2xx: the command was carried out.
    bool completion() const noexcept { return klass() == 2; }
    /// 4xx: refused for now; the client keeps the mail and tries again later.
    bool transient() const noexcept { return klass() == 4; }
    /// 5xx: refused; trying again would change nothing.
    bool permanent() const noexcept { return klass() == 5; }

    /// Same code, enhanced code and lines: how tests check a reply against the catalogue.
    friend bool operator==(const reply&, const reply&) = default;
};

/// Appends the wire form of `r` to `out`: "250-2.0.0 first\r\n250 2.0.0 last\r\n".
inline void append_wire(std::string& out, const reply& r) {
    const char digits[3] = {char('0' + r.code / 100 % 10), char('0' + r.code / 10 % 10),
                            char('0' + r.code % 10)};
    const std::size_t n = r.lines.empty() ? 1 : r.lines.size();
    for (std::size_t i = 0; i < n; ++i) {
        out.append(digits, 3);
        out.push_back(i + 1 == n ? ' ' : '-');
        if (!r.enhanced.empty()) {
            out.append(r.enhanced);
            out.push_back(' ');
        }
        if (!r.lines.empty()) out.append(r.lines[i]);
        out.append("\r\n");
    }
}

/// The wire form of `r`, as append_wire() writes it.
inline std::string to_wire(const reply& r) {
    std::string s;
    append_wire(s, r);
    return s;
}

/// The replies Grey gives itself. Upstream replies are passed on as they came.
namespace replies {
// clang-format off
/// The default answer to NOOP and to the end of a message.
inline const reply ok                 {250, "2.0.0", "OK"};
/// MAIL accepted (MailHandler's default).
inline const reply sender_ok          {250, "2.1.0", "Sender OK"};
/// RCPT accepted (MailHandler's default).
inline const reply recipient_ok       {250, "2.1.5", "Recipient OK"};
/// RSET done: the transaction is dropped.
inline const reply reset_ok           {250, "2.0.0", "Reset OK"};
/// VRFY: Grey verifies no address, and says so without refusing (RFC 5321 §3.5.3).
inline const reply cannot_vrfy        {252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery"};
/// The answer to HELP.
inline const reply help               {214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"};
/// The answer to QUIT; the connection closes.
inline const reply bye                {221, "2.0.0", "Bye"};
/// DATA accepted: send the message.
inline const reply start_data         {354, "", "End data with <CR><LF>.<CR><LF>"};
/// STARTTLS accepted: the handshake follows.
inline const reply ready_for_tls      {220, "2.0.0", "Ready to start TLS"};

/// The server is stopping; the connection closes.
inline const reply shutting_down      {421, "4.3.2", "Service shutting down, closing connection"};
/// The client was silent too long; the connection closes.
inline const reply timeout            {421, "4.4.2", "Timeout exceeded, closing connection"};
/// A hook threw: the session ends, and the client tries again later.
inline const reply internal_error     {421, "4.3.0", "Internal error, closing connection"};
/// The server's connection limit is reached.
inline const reply too_many_connections {421, "4.7.0", "Too many connections, try again later"};
/// The client's address has its share of connections.
inline const reply too_many_from_peer {421, "4.7.0", "Too many connections from your address, try again later"};
/// No upstream connection could be had.
inline const reply upstream_unavailable {451, "4.4.1", "Upstream mail server unavailable, try again later"};
/// The upstream connection broke: for the rest of the transaction.
inline const reply upstream_failed    {451, "4.4.2", "Connection to upstream mail server lost, try again later"};
/// TLS to the upstream was required and failed.
inline const reply upstream_tls_failed {451, "4.7.5", "TLS to the upstream mail server failed, try again later"};
/// The upstream refused the XCLIENT identity Grey passed on.
inline const reply upstream_identity_refused {451, "4.7.0", "The upstream mail server refused the client's identity, try again later"};
/// The upstream no longer offers an extension the transaction uses (SMTPUTF8, DSN,
/// BINARYMIME), which Grey offered from an earlier EHLO reply of it.
inline const reply upstream_lost_extension {451, "4.3.0", "The upstream mail server no longer offers an extension this transaction uses, try again later"};
/// A recipient or message deferred: greylisted, a verdict of false, deferMail().
inline const reply try_again_later    {451, "4.7.1", "Please try again later"};
/// RCPT over the limit; the client sends the rest in another transaction (RFC 5321 §4.5.3.1.10).
inline const reply too_many_recipients {452, "4.5.3", "Too many recipients"};

/// The reply to errc::unknown_command.
inline const reply unknown_command    {500, "5.5.1", "Command unrecognized"};
/// A command or text line over its limit.
inline const reply line_too_long      {500, "5.5.2", "Line too long"};
/// A bare CR or LF (errc::bare_cr, errc::bare_lf): refused, never taken for a line end.
inline const reply bare_line_ending   {500, "5.5.2", "Bare CR or LF received: lines must end in CRLF (RFC 5321 section 2.3.8)"};
/// NUL in a command or in text.
inline const reply nul_byte           {500, "5.5.2", "NUL byte received"};
/// The reply to errc::syntax_error, and to any argument error without a reply of its own.
inline const reply syntax_error       {501, "5.5.4", "Syntax error in parameters or arguments"};
/// The reply to errc::bad_domain: HELO/EHLO's argument.
inline const reply bad_domain         {501, "5.5.4", "Invalid domain or address literal"};
/// The reply to errc::bad_sender: MAIL's path.
inline const reply bad_sender         {501, "5.1.7", "Invalid sender address"};
/// The reply to errc::bad_recipient: RCPT's path.
inline const reply bad_recipient      {501, "5.1.3", "Invalid recipient address"};
/// The reply to errc::not_implemented, and to STARTTLS or BDAT when not offered.
inline const reply not_implemented    {502, "5.5.1", "Command not implemented"};
/// A command out of order that has no more precise reply.
inline const reply bad_sequence       {503, "5.5.1", "Bad sequence of commands"};
/// STARTTLS on a connection already encrypted.
inline const reply tls_active         {502, "5.5.1", "TLS is already active"};
/// MAIL before STARTTLS where TLS is required.
inline const reply must_start_tls     {530, "5.7.0", "Must issue a STARTTLS command first"};
/// A command before HELO/EHLO.
inline const reply need_helo          {503, "5.5.1", "Send HELO or EHLO first"};
/// RCPT, DATA or BDAT before MAIL.
inline const reply need_mail          {503, "5.5.1", "Send MAIL first"};
/// MAIL inside a transaction.
inline const reply nested_mail        {503, "5.5.1", "Sender already given"};
/// DATA or BDAT before an accepted RCPT.
inline const reply need_rcpt          {503, "5.5.1", "Send RCPT first"};
/// SIZE or the message itself over the limit.
inline const reply message_too_big    {552, "5.3.4", "Message size exceeds fixed maximum message size"};
/// DATA to MailHandler's default, which delivers nothing and so takes nothing.
inline const reply no_delivery        {554, "5.3.2", "This server delivers no mail"};
/// The client spoke before the greeting, as spam engines do; the connection closes.
inline const reply talked_too_soon    {554, "5.5.1", "Protocol error: you talked before my greeting"};
/// An HTTP request or other protocol's probe (errc::forbidden_command); the connection closes.
inline const reply forbidden_command  {554, "5.7.0", "This is an SMTP server: closing connection"};
/// Input sent before a reply it had to wait for (RFC 2920 §3.1): behind a command that
/// ends a pipelined group (ends_pipelined_group), or behind the final dot without PIPELINING.
inline const reply improper_pipelining {554, "5.5.0", "Protocol synchronization error: improper use of SMTP command pipelining"};
/// The session's error limit is reached; the connection closes.
inline const reply too_many_errors    {421, "4.7.0", "Too many errors, closing connection"};
/// The reply to errc::unknown_parameter, and to a parameter of an extension not offered.
inline const reply unknown_parameter  {555, "5.5.4", "MAIL or RCPT parameter not recognized or not implemented"};
/// The reply to errc::bad_parameter_value.
inline const reply bad_parameter_value {501, "5.5.4", "Invalid parameter value"};
/// The reply to errc::needs_smtputf8: a non-ASCII recipient.
inline const reply needs_smtputf8     {553, "5.6.7", "Non-ASCII address given without SMTPUTF8"};        // RFC 6531 §3.5
/// A non-ASCII sender without SMTPUTF8.
inline const reply needs_smtputf8_sender {550, "5.6.7", "Non-ASCII sender given without SMTPUTF8"};
/// BODY=8BITMIME to an upstream that does not offer 8BITMIME.
inline const reply cannot_relay_8bit  {550, "5.6.3", "8-bit message content cannot be relayed to the upstream server"};
/// DATA for a BODY=BINARYMIME message.
inline const reply binary_needs_bdat  {503, "5.5.1", "BODY=BINARYMIME requires BDAT, not DATA"};  // RFC 3030 §3
/// A BINARYMIME message to a handler that does not take the octets as received: a binary
/// body has no DATA form.
inline const reply cannot_take_binary {554, "5.6.3", "Binary message content cannot be handled here"};
// clang-format on
} // namespace replies

/// @}
} // namespace grey::smtp
