// grey/smtp/data_codec.hpp — the DATA transparency procedure of RFC 5321 §4.5.2, line by line.
//
// Lines come from line_reader, so each one ended in CRLF: the end of data is recognised only
// as CRLF "." CRLF, never after a bare LF or CR. Decoding removes one leading dot; encoding
// adds one to any line that begins with a dot. encode(decode(raw)) is raw itself, or raw
// without its first byte when a client put a dot before a line that did not need one
// (".x" means "x"): canonical_data_line says which, as a view into raw, so a relay sends
// exactly the framing it recomputed without copying the text. dot_stuffer encodes a message
// that came in BDAT chunks, whose pieces need not end at a line end.
#pragma once

#include <cassert>
#include <string>
#include <string_view>

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// One line of DATA's text, decoded by decode_data_line().
struct data_line {
    bool end_of_data = false;  ///< the line was the lone "." that ends the message
    std::string_view content;  ///< the line's text with its transparency dot removed
};

/// `text` is one DATA line without its CRLF.
constexpr data_line decode_data_line(std::string_view text) noexcept {
    if (text == ".") return {true, {}};
    if (!text.empty() && text.front() == '.') text.remove_prefix(1);
    return {false, text};
}

/// Whether `content` must get a dot in front on the wire: it begins with one, and would
/// otherwise lose it, or end the message (RFC 5321 §4.5.2).
constexpr bool needs_dot_stuffing(std::string_view content) noexcept {
    return !content.empty() && content.front() == '.';
}

/// Appends one content line, dot-stuffed and CRLF-terminated.
inline void append_data_line(std::string& out, std::string_view content) {
    if (needs_dot_stuffing(content)) out.push_back('.');
    out.append(content);
    out.append("\r\n");
}

/// The line that ends DATA's text, sent after the CRLF of the last line (RFC 5321 §4.1.1.4).
inline constexpr std::string_view end_of_data_marker = ".\r\n";

/// The canonical wire form of one DATA line (`raw` with its CRLF, not the final "."):
/// append_data_line(decode_data_line(text).content), as a view into `raw`.
constexpr std::string_view canonical_data_line(std::string_view raw) noexcept {
    if (raw.size() > 3 && raw[0] == '.' && raw[1] != '.') raw.remove_prefix(1);
    return raw;
}

/// Calls f(content) for each line of `wire`: whole CRLF-terminated DATA lines, as
/// MailHandler::handleMessageData receives them, without their transparency dot or CRLF.
template <class F>
void for_each_data_line(std::string_view wire, F&& f) {
    while (!wire.empty()) {
        const std::size_t eol = wire.find("\r\n");
        assert(eol != std::string_view::npos);
        f(decode_data_line(wire.substr(0, eol)).content);
        wire.remove_prefix(eol + 2);
    }
}

/// DATA's text made from a message's octets as they came in BDAT chunks (RFC 3030), in
/// pieces cut anywhere: each line that begins with a dot gets one more (RFC 5321 §4.5.2).
/// The octets must already have passed smtp::bdat_scanner, so every CR is followed by an LF
/// and every LF follows a CR: a line ends at an LF, even one that starts the next piece.
class dot_stuffer {
  public:
    /// Appends `octets`, the next piece of the message, to `out` as DATA text.
    void append(std::string& out, std::string_view octets) {
        while (!octets.empty()) {
            if (at_line_start_ && octets.front() == '.') out.push_back('.');
            const std::size_t lf = octets.find('\n');
            if (lf == std::string_view::npos) {
                out.append(octets);
                at_line_start_ = false;
                return;
            }
            out.append(octets.substr(0, lf + 1));
            octets.remove_prefix(lf + 1);
            at_line_start_ = true;
        }
    }

    /// What goes between the last piece and the end of data: a CRLF when the message's last
    /// line lacks one, since DATA carries only whole lines (§4.1.1.4). An empty message needs
    /// none: after the DATA command's own CRLF, ".\r\n" alone is DATA's empty message.
    std::string_view line_end_before_marker() const noexcept { return at_line_start_ ? "" : "\r\n"; }

    /// Ready for the next message.
    void reset() noexcept { at_line_start_ = true; }

  private:
    bool at_line_start_ = true;
};

/// @}
} // namespace grey::smtp
