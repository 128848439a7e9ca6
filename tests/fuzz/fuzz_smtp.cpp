// One libFuzzer entry over Grey's I/O-free SMTP layer: the input is a byte stream as a client
// would send it, fed to a line_reader in pieces whose sizes come from the input itself; every
// line is parsed as a command (and MAIL/RCPT/HELO arguments), decoded and re-encoded as DATA
// text, and fed to the reply parser. Any broken invariant aborts.
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

namespace {
void check(bool ok) {
    if (!ok) std::abort();
}

void exercise_line(const grey::smtp::line& l) {
    using namespace grey::smtp;
    // Framing invariants: a returned line ends in CRLF and holds no CR, LF or NUL.
    check(l.raw.size() == l.text.size() + 2 && l.raw.data() == l.text.data());
    check(l.raw.substr(l.text.size()) == "\r\n");
    check(l.text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos);

    if (auto cmd = parse_command(l.text)) {
        switch (cmd->verb) {
        case verb::mail:
            if (auto m = parse_mail(cmd->argument)) check(m->reverse_path.mailbox.size() <= max_path_length);
            break;
        case verb::rcpt:
            if (auto r = parse_rcpt(cmd->argument)) check(!r->forward_path.mailbox.empty());
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
