// exercise_mail_format(argument), exercise_rcpt_format(argument, smtputf8),
// exercise_bdat_format(argument): the fuzz checks of smtp/command_format.hpp, for a libFuzzer
// entry to call with the argument of a MAIL, RCPT or BDAT line, framed by line_reader or not
// (then it may hold any octet, CR and LF included). When the parser takes the argument, the
// line Grey would compose from what it read is checked. Any broken invariant aborts:
// - P2, nothing smuggled: the line ends in CRLF and holds no other CR or LF, and no NUL;
// - it parses back (parse_command, then the verb's parser) to the same values, and composing
//   those values again gives the same line, whatever the upstream offers.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

#include <grey/smtp/bdat.hpp>
#include <grey/smtp/command.hpp>
#include <grey/smtp/command_format.hpp>

namespace grey_fuzz_command_format {

inline void require(bool ok) {
    if (!ok) std::abort();
}

/// The argument of a composed line, read back as the upstream would read it; `expected` is
/// the verb the line must have.
inline std::string_view read_back(std::string_view line, grey::smtp::verb expected) {
    using namespace std::string_view_literals;
    require(line.size() > 2 && line.substr(line.size() - 2) == "\r\n");
    require(line.find_first_of("\r\n\0"sv) == line.size() - 2);
    const auto c = grey::smtp::parse_command(line.substr(0, line.size() - 2));
    require(c.has_value() && c->verb == expected);
    return c->argument;
}

inline grey::smtp::extensions offering_all() {
    using grey::smtp::extension;
    grey::smtp::extensions e;
    for (const extension x : {extension::size, extension::eight_bit_mime, extension::smtputf8, extension::dsn,
                              extension::chunking, extension::binarymime})
        e.add(x);
    return e;
}

} // namespace grey_fuzz_command_format

inline void exercise_mail_format(std::string_view argument) {
    using namespace grey::smtp;
    using namespace grey_fuzz_command_format;
    const auto parsed = parse_mail(argument);
    if (!parsed) return;
    const mail_parameters& p = parsed->parameters;
    std::string line;
    append_mail(line, parsed->reverse_path.mailbox, p, offering_all());
    const auto back = parse_mail(read_back(line, verb::mail));
    require(back.has_value() && back->reverse_path.mailbox == parsed->reverse_path.mailbox);
    const mail_parameters& q = back->parameters;
    require(q.size == p.size && q.body == p.body && q.smtputf8 == p.smtputf8 && q.ret == p.ret && q.envid == p.envid);
    std::string again;
    append_mail(again, back->reverse_path.mailbox, q, offering_all());
    require(again == line);
    // To an upstream that offers nothing, SIZE and BODY (but BINARYMIME) are left out; the
    // line still parses, to the same sender.
    line.clear();
    append_mail(line, parsed->reverse_path.mailbox, p, extensions{});
    const auto bare = parse_mail(read_back(line, verb::mail));
    require(bare.has_value() && bare->reverse_path.mailbox == parsed->reverse_path.mailbox);
    require(!bare->parameters.size && bare->parameters.smtputf8 == p.smtputf8);
    require((bare->parameters.body == body_type::binary_mime) == (p.body == body_type::binary_mime));
}

inline void exercise_rcpt_format(std::string_view argument, bool smtputf8) {
    using namespace grey::smtp;
    using namespace grey_fuzz_command_format;
    const auto parsed = parse_rcpt(argument, smtputf8);
    if (!parsed) return;
    std::string line;
    append_rcpt(line, parsed->forward_path.mailbox, parsed->parameters);
    const auto back = parse_rcpt(read_back(line, verb::rcpt), smtputf8);
    require(back.has_value() && back->forward_path.mailbox == parsed->forward_path.mailbox);
    require(back->parameters.notify == parsed->parameters.notify && back->parameters.orcpt == parsed->parameters.orcpt);
    std::string again;
    append_rcpt(again, back->forward_path.mailbox, back->parameters);
    require(again == line);
}

inline void exercise_bdat_format(std::string_view argument) {
    using namespace grey::smtp;
    using namespace grey_fuzz_command_format;
    const auto parsed = parse_bdat(argument);
    if (!parsed) return;
    std::string line;
    append_bdat(line, parsed->size, parsed->last);
    require(line.size() <= max_bdat_line);
    const auto back = parse_bdat(read_back(line, verb::bdat));
    require(back.has_value() && back->size == parsed->size && back->last == parsed->last);
}
