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

struct reply {
    std::uint16_t code = 0;
    std::string enhanced;            ///< "2.1.5", or empty when the reply has none
    std::vector<std::string> lines;  ///< text of each line, without code or enhanced code

    reply() = default;
    reply(std::uint16_t c, std::string_view enh, std::string_view text)
        : code(c), enhanced(enh), lines{std::string(text)} {}
    reply(std::uint16_t c, std::string_view enh, std::vector<std::string> text)
        : code(c), enhanced(enh), lines(std::move(text)) {}
    /// Multi-line, written in place: reply{550, "5.7.1", {"first", "second"}}. (A braced list
    /// prefers this overload, where it would be ambiguous between the other two.)
    reply(std::uint16_t c, std::string_view enh, std::initializer_list<std::string> text)
        : code(c), enhanced(enh), lines(text) {}

    int klass() const noexcept { return code / 100; }
    bool positive() const noexcept { return klass() == 2 || klass() == 3; }
    bool completion() const noexcept { return klass() == 2; }
    bool transient() const noexcept { return klass() == 4; }
    bool permanent() const noexcept { return klass() == 5; }

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

inline std::string to_wire(const reply& r) {
    std::string s;
    append_wire(s, r);
    return s;
}

/// The replies Grey gives itself. Upstream replies are passed on as they came.
namespace replies {
// clang-format off
inline const reply ok                 {250, "2.0.0", "OK"};
inline const reply sender_ok          {250, "2.1.0", "Sender OK"};
inline const reply recipient_ok       {250, "2.1.5", "Recipient OK"};
inline const reply reset_ok           {250, "2.0.0", "Reset OK"};
inline const reply cannot_vrfy        {252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery"};
inline const reply help               {214, "2.0.0", "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"};
inline const reply bye                {221, "2.0.0", "Bye"};
inline const reply start_data         {354, "", "End data with <CR><LF>.<CR><LF>"};
inline const reply ready_for_tls      {220, "2.0.0", "Ready to start TLS"};

inline const reply shutting_down      {421, "4.3.2", "Service shutting down, closing connection"};
inline const reply timeout            {421, "4.4.2", "Timeout exceeded, closing connection"};
inline const reply internal_error     {421, "4.3.0", "Internal error, closing connection"};
inline const reply too_many_connections {421, "4.7.0", "Too many connections, try again later"};
inline const reply too_many_from_peer {421, "4.7.0", "Too many connections from your address, try again later"};
inline const reply upstream_unavailable {451, "4.4.1", "Upstream mail server unavailable, try again later"};
inline const reply upstream_failed    {451, "4.4.2", "Connection to upstream mail server lost, try again later"};
inline const reply upstream_tls_failed {451, "4.7.5", "TLS to the upstream mail server failed, try again later"};
inline const reply upstream_identity_refused {451, "4.7.0", "The upstream mail server refused the client's identity, try again later"};
inline const reply upstream_lost_extension {451, "4.3.0", "The upstream mail server no longer offers an extension this transaction uses, try again later"};
inline const reply try_again_later    {451, "4.7.1", "Please try again later"};
inline const reply too_many_recipients {452, "4.5.3", "Too many recipients"};

inline const reply unknown_command    {500, "5.5.1", "Command unrecognized"};
inline const reply line_too_long      {500, "5.5.2", "Line too long"};
inline const reply bare_line_ending   {500, "5.5.2", "Bare CR or LF received: lines must end in CRLF (RFC 5321 section 2.3.8)"};
inline const reply nul_byte           {500, "5.5.2", "NUL byte received"};
inline const reply syntax_error       {501, "5.5.4", "Syntax error in parameters or arguments"};
inline const reply bad_domain         {501, "5.5.4", "Invalid domain or address literal"};
inline const reply bad_sender         {501, "5.1.7", "Invalid sender address"};
inline const reply bad_recipient      {501, "5.1.3", "Invalid recipient address"};
inline const reply not_implemented    {502, "5.5.1", "Command not implemented"};
inline const reply bad_sequence       {503, "5.5.1", "Bad sequence of commands"};
inline const reply tls_active         {502, "5.5.1", "TLS is already active"};
inline const reply must_start_tls     {530, "5.7.0", "Must issue a STARTTLS command first"};
inline const reply need_helo          {503, "5.5.1", "Send HELO or EHLO first"};
inline const reply need_mail          {503, "5.5.1", "Send MAIL first"};
inline const reply nested_mail        {503, "5.5.1", "Sender already given"};
inline const reply need_rcpt          {503, "5.5.1", "Send RCPT first"};
inline const reply message_too_big    {552, "5.3.4", "Message size exceeds fixed maximum message size"};
inline const reply no_delivery        {554, "5.3.2", "This server delivers no mail"};
inline const reply talked_too_soon    {554, "5.5.1", "Protocol error: you talked before my greeting"};
inline const reply forbidden_command  {554, "5.7.0", "This is an SMTP server: closing connection"};
inline const reply improper_pipelining {554, "5.5.0", "Protocol synchronization error: improper use of SMTP command pipelining"};
inline const reply too_many_errors    {421, "4.7.0", "Too many errors, closing connection"};
inline const reply unknown_parameter  {555, "5.5.4", "MAIL or RCPT parameter not recognized or not implemented"};
inline const reply bad_parameter_value {501, "5.5.4", "Invalid parameter value"};
inline const reply needs_smtputf8     {553, "5.6.7", "Non-ASCII address given without SMTPUTF8"};        // RFC 6531 §3.5
inline const reply needs_smtputf8_sender {550, "5.6.7", "Non-ASCII sender given without SMTPUTF8"};
inline const reply cannot_relay_8bit  {550, "5.6.3", "8-bit message content cannot be relayed to the upstream server"};
inline const reply binary_needs_bdat  {503, "5.5.1", "BODY=BINARYMIME requires BDAT, not DATA"};  // RFC 3030 §3
inline const reply cannot_take_binary {554, "5.6.3", "Binary message content cannot be handled here"};
// clang-format on
} // namespace replies

} // namespace grey::smtp
