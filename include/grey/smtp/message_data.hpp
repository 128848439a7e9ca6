// grey/smtp/message_data.hpp — a piece of a message's text as it reaches a handler, with the
// framing it came in.
//
// DATA text and BDAT chunks carry the same message in two framings (RFC 5321 §4.5.2, RFC
// 3030 §2). The session passes each on in the framing it came in, so that a relay can send it
// on unchanged (BDAT as BDAT, with no dot-stuffing and no re-cutting) and a handler that
// stores the message reads its content either way with for_each_content. Both framings have
// been checked alike before a hook sees them: no NUL, no CR or LF outside CRLF, no line over
// the limit.
#pragma once

#include <string_view>

#include "data_codec.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// How a message's octets are framed.
enum class framing {
    /// DATA text: whole CRLF-terminated lines, dot-stuffed, without the final ".".
    data_text,
    /// The octets as the client sent them in BDAT chunks: not stuffed, and cut anywhere,
    /// even inside a CRLF. A BINARYMIME body (RFC 3030 §3) has no lines at all.
    chunk_octets,
};

/// The next piece of a message, for MailHandler's handleMessageData hook. The view lives
/// until the hook returns.
struct message_data {
    std::string_view octets;  ///< the piece, as framed
    smtp::framing framing;    ///< how `octets` is framed
};

/// Calls f(piece) with the message content `data` holds, in order: the transparency dots of
/// DATA text removed, line ends kept as CRLF. Writing every piece out stores the message as
/// the client meant it, whichever way it came.
template <class F>
void for_each_content(const message_data& data, F&& f) {
    if (data.framing == framing::chunk_octets) {
        if (!data.octets.empty()) f(data.octets);
        return;
    }
    std::string_view wire = data.octets;
    while (!wire.empty()) {
        const std::size_t eol = wire.find("\r\n");
        const std::size_t length = eol == std::string_view::npos ? wire.size() : eol + 2;
        std::string_view line = wire.substr(0, length);
        if (line.starts_with('.')) line.remove_prefix(1);
        f(line);
        wire.remove_prefix(length);
    }
}

/// @}
} // namespace grey::smtp
