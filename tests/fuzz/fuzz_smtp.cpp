// One libFuzzer entry over Grey's I/O-free SMTP layer: the input is a byte stream as a client
// would send it, fed to a line_reader in pieces whose sizes come from the input itself; every
// line is parsed as a command (and MAIL/RCPT/HELO arguments, RCPT both in and out of an
// SMTPUTF8 transaction), decoded and re-encoded as DATA text, and fed to the reply parser; its
// UTF-8 is checked against a plain reference decoder. The same bytes, as the octets of a BDAT
// message, go through the chunk scanner (bdat_exercise.hpp), and, as the first octets of a
// connection, through the PROXY protocol parser (proxy_exercise.hpp), and, as what a Postfix
// policy client sends, through the policy request parser (policy_exercise.hpp). What MAIL,
// RCPT and BDAT arguments parse to is composed again as Grey would send it upstream and read
// back (command_format_exercise.hpp), for lines as line_reader frames them and for the whole
// input as one command, CR and LF included. The same bytes, as a DNS response, go through the
// DNS message parser (dns_exercise.hpp), as a DNS list's entry and a host name, through the
// reputation evidence that needs no I/O (reputation_exercise.hpp), and, as an SPF record and a
// macro-string, through the SPF parser and macro expander (spf_exercise.hpp). Any broken
// invariant aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <grey/smtp/command.hpp>
#include <grey/smtp/data_codec.hpp>
#include <grey/smtp/line_reader.hpp>
#include <grey/smtp/reply_parser.hpp>

#include "bdat_exercise.hpp"
#include "command_format_exercise.hpp"
#include "dns_exercise.hpp"
#include "policy_exercise.hpp"
#include "proxy_exercise.hpp"
#include "reputation_exercise.hpp"
#include "spf_exercise.hpp"

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}

// RFC 3629 the long way: decode the code point, then judge it, as utf8_length must agree.
std::size_t reference_utf8_length(std::string_view s) {
    if (s.empty()) return 0;
    const unsigned lead = static_cast<unsigned char>(s[0]);
    if (lead < 0x80) return 1;
    const std::size_t n = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || s.size() < n) return 0;
    std::uint32_t cp = lead & (0x7Fu >> n);
    for (std::size_t i = 1; i < n; ++i) {
        const unsigned c = static_cast<unsigned char>(s[i]);
        if ((c & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (c & 0x3F);
    }
    const std::uint32_t least = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

// An ORCPT value Grey passes on: "addr-type;address", the address an xtext, or with the
// utf-8 type one of RFC 6533's forms (an xtext too, unless raw UTF-8 was allowed).
void check_orcpt(std::string_view v, bool smtputf8) {
    using namespace grey::smtp;
    const std::size_t semi = v.find(';');
    check(semi != std::string_view::npos && semi > 0);
    const std::string_view type = v.substr(0, semi), address = v.substr(semi + 1);
    check(!address.empty() && is_ascii(type));
    if (iequals(type, "utf-8")) check(smtputf8 ? is_utf8(address) : is_xtext(address));
    else check(is_xtext(address));
}

void check_rcpt(const grey::result<grey::smtp::rcpt_command>& r, bool smtputf8) {
    using namespace grey::smtp;
    if (!r) return;
    const path& p = r->forward_path;
    check(!p.mailbox.empty() && p.mailbox.size() <= max_path_length);
    check(smtputf8 ? is_utf8(p.mailbox) : is_ascii(p.mailbox));
    const rcpt_parameters& q = r->parameters;
    check(q.uses_dsn() == (!q.notify.empty() || !q.orcpt.empty()));
    if (!q.notify.empty()) check(is_ascii(q.notify) && q.notify.find(' ') == std::string::npos);
    if (!q.orcpt.empty()) check_orcpt(q.orcpt, smtputf8);
}

void exercise_line(const grey::smtp::line& l) {
    using namespace grey::smtp;
    for (std::size_t i = 0; i < l.text.size(); ++i)
        check(utf8_length(l.text.substr(i)) == reference_utf8_length(l.text.substr(i)));
    // Framing invariants: a returned line ends in CRLF and holds no CR, LF or NUL.
    check(l.raw.size() == l.text.size() + 2 && l.raw.data() == l.text.data());
    check(l.raw.substr(l.text.size()) == "\r\n");
    check(l.text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos);

    if (auto cmd = parse_command(l.text)) {
        switch (cmd->verb) {
        case verb::mail:
            if (auto m = parse_mail(cmd->argument)) {
                const mail_parameters& q = m->parameters;
                check(m->reverse_path.mailbox.size() <= max_path_length);
                check(q.smtputf8 ? is_utf8(m->reverse_path.mailbox) : is_ascii(m->reverse_path.mailbox));
                check(q.ret.empty() || iequals(q.ret, "FULL") || iequals(q.ret, "HDRS"));
                check(q.envid.size() <= 100 && is_xtext(q.envid));
                check(q.uses_dsn() == (!q.ret.empty() || !q.envid.empty()));
            }
            exercise_mail_format(cmd->argument);
            break;
        case verb::rcpt: {
            const auto ascii = parse_rcpt(cmd->argument, false);
            const auto utf8 = parse_rcpt(cmd->argument, true);
            check_rcpt(ascii, false);
            check_rcpt(utf8, true);
            // SMTPUTF8 only widens the grammar: what parses without it parses alike with it,
            // and a path refused for want of it is accepted with it.
            if (ascii) {
                check(utf8 && utf8->forward_path.mailbox == ascii->forward_path.mailbox);
                check(utf8->parameters.notify == ascii->parameters.notify);
                check(utf8->parameters.orcpt == ascii->parameters.orcpt);
            }
            if (ascii.error() == grey::errc::needs_smtputf8) check(utf8.has_value());
            exercise_rcpt_format(cmd->argument, false);
            exercise_rcpt_format(cmd->argument, true);
            break;
        }
        case verb::bdat:
            exercise_bdat_format(cmd->argument);
            break;
        case verb::helo:
        case verb::ehlo:
            if (auto h = parse_helo(cmd->argument)) check(!h->domain.empty());
            break;
        default:
            break;
        }
    }

    // DATA transparency: the canonical form, a view into the line, is the re-encoding of its
    // decoded content, and decodes to the same content.
    const data_line d = decode_data_line(l.text);
    if (!d.end_of_data) {
        std::string wire;
        append_data_line(wire, d.content);
        const std::string_view canonical = canonical_data_line(l.raw);
        check(wire == canonical);
        check(canonical.data() >= l.raw.data() && canonical.data() + canonical.size() == l.raw.data() + l.raw.size());
        check(decode_data_line(canonical.substr(0, canonical.size() - 2)).content == d.content);
    } else {
        check(l.text == ".");
    }

    reply_parser replies;
    (void)replies.feed(l.text);
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    // The same bytes as the octets of a BDAT message, in pieces (bdat_exercise.hpp).
    exercise_bdat(std::string_view(reinterpret_cast<const char*>(data), size));
    // The same bytes as what a connection delivers before SMTP (proxy_exercise.hpp).
    exercise_proxy(std::string_view(reinterpret_cast<const char*>(data), size));
    // The same bytes as a DNS response (dns_exercise.hpp).
    exercise_dns(std::string_view(reinterpret_cast<const char*>(data), size));
    // The same bytes as a DNSBL site entry and a host name (reputation_exercise.hpp).
    exercise_reputation(std::string_view(reinterpret_cast<const char*>(data), size));
    // The same bytes as an SPF record and as a macro-string (spf_exercise.hpp).
    exercise_spf(std::string_view(reinterpret_cast<const char*>(data), size));
    // The same bytes as requests on a policy service connection (policy_exercise.hpp).
    exercise_policy(std::string_view(reinterpret_cast<const char*>(data), size));
    // The rest as one command line that no line_reader framed: whatever it holds, what is
    // composed from what parses must be one line (command_format_exercise.hpp).
    if (auto cmd = grey::smtp::parse_command(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1))) {
        if (cmd->verb == grey::smtp::verb::mail) exercise_mail_format(cmd->argument);
        if (cmd->verb == grey::smtp::verb::rcpt) {
            exercise_rcpt_format(cmd->argument, false);
            exercise_rcpt_format(cmd->argument, true);
        }
        if (cmd->verb == grey::smtp::verb::bdat) exercise_bdat_format(cmd->argument);
    }
    // The first byte chooses the line limit and the size of each piece the "socket" delivers.
    const std::size_t max_line = 2 + data[0] % 126 * 8;
    const std::size_t piece = 1 + data[0] % 17;
    grey::smtp::line_reader reader(1024);
    std::size_t at = 1;
    while (at < size) {
        auto space = reader.prepare();
        check(!space.empty());
        const std::size_t n = std::min({piece, space.size(), size - at});
        std::memcpy(space.data(), data + at, n);
        reader.commit(n);
        at += n;
        for (;;) {
            auto next = reader.next(max_line);
            if (!next) return 0;  // a framing error ends the session
            if (!*next) break;
            check((*next)->raw.size() <= max_line);
            exercise_line(**next);
        }
        check(reader.buffered() < max_line);
    }
    return 0;
}
