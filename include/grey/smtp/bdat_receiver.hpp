// grey/smtp/bdat_receiver.hpp — one message received in BDAT chunks (RFC 3030), with no I/O:
// what the session does with each piece of a chunk, and what it answers after each chunk.
//
// The session reads a chunk's octets off the wire whatever happens (the next command starts
// right after them) and hands each piece to take(); the receiver says whether the piece goes
// to the handler, or whether the message has just failed and the handler must drop what it
// was given. Once failed, the message stays failed: its later chunks are read and get the
// same answer until LAST, as RFC 3030 §2 has the server answer every chunk. The DATA side of
// the same rules is line_reader and data_codec.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "../result.hpp"
#include "bdat.hpp"
#include "reply.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// One chunked message, from the handler's 354 to its end.
class bdat_receiver {
  public:
    /// What the session does next.
    enum class step {
        deliver,  ///< give the piece to the handler (or, from finish(), end the message)
        abort,    ///< the message failed just now: the handler drops what it was given
        skip,     ///< nothing: the message had failed already
    };

    /// A message whose text lines hold at most `max_text_line` octets with their CRLF, of at
    /// most `max_message_size` octets; a BINARYMIME body (`binary`) has no lines to check.
    bdat_receiver(std::size_t max_text_line, std::uint64_t max_message_size, bool binary)
        : scanner_(binary ? bdat_scanner::binary() : bdat_scanner(max_text_line)), max_size_(max_message_size) {}

    /// The next piece of a chunk's octets, in order.
    step take(std::string_view piece) {
        if (failure_) return step::skip;
        // RFC 1870 §6.3: a message over the limit is refused, its octets read on.
        if (scanner_.octets() + piece.size() > max_size_) return fail(replies::message_too_big);
        if (const std::error_code framing = scanner_.feed(piece)) return fail(failure_reply(framing));
        return step::deliver;
    }

    /// The LAST chunk has been taken: deliver means the message is whole and may be ended.
    step finish() {
        if (failure_) return step::skip;
        if (const std::error_code framing = scanner_.finish()) return fail(failure_reply(framing));
        return step::deliver;
    }

    /// The failure's reply, once take() or finish() said abort: every later chunk gets it.
    const std::optional<reply>& failure() const noexcept { return failure_; }

    /// Fails the message with `r` (the handler could not take it): abort, or skip when it had
    /// failed already.
    step fail(const reply& r) {
        if (failure_) return step::skip;
        failure_ = r;
        return step::abort;
    }

    /// The answer to a chunk that is not the last, while the message has not failed.
    static reply chunk_received(std::uint64_t size) {
        return {250, "2.0.0", std::to_string(size) + " octets received"};
    }

    /// Message octets taken so far.
    std::uint64_t octets() const noexcept { return scanner_.octets(); }

  private:
    static const reply& failure_reply(std::error_code ec) noexcept {
        if (ec == errc::line_too_long) return replies::line_too_long;
        if (ec == errc::nul_byte) return replies::nul_byte;
        return replies::bare_line_ending;
    }

    bdat_scanner scanner_;
    std::uint64_t max_size_;
    std::optional<reply> failure_;
};

/// @}
} // namespace grey::smtp
