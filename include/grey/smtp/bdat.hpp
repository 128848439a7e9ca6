// grey/smtp/bdat.hpp — CHUNKING (RFC 3030): the BDAT command and the octets of its chunks,
// with no I/O.
//
// "BDAT <chunk-size> [LAST]" is followed by exactly chunk-size octets of message, with no
// dot-stuffing and no end marker; LAST ends the message (RFC 3030 §2). parse_bdat reads the
// argument. bdat_scanner takes the message octets in whatever pieces they arrive, across
// chunk boundaries, and checks them, so that a relay can pass them on as BDAT or, through
// smtp::dot_stuffer, as DATA (RFC 5321 §4.5.2). bdat_receiver.hpp builds the session's
// receiving of a chunked message on it.
//
// A BDAT message gets the framing rules of a DATA message. Chunk sizes make an end marker
// needless, but the message may go out as DATA, and the next MTA may read CR or LF alone as
// a line end: a bare CR or a bare LF inside a chunk is refused (bare_cr, bare_lf), never
// turned into a line end nor passed on, so "\n.\n" can smuggle nothing through BDAT either
// (RFC 5321 §2.3.8; the "SMTP smuggling" attacks of 2023). NUL is refused (nul_byte), and a
// line longer than the text line limit (RFC 5321 §4.5.3.1.6) is refused (line_too_long).
// Errors are the ones line_reader gives for DATA, at the same octets.
//
// A BINARYMIME body (RFC 3030 §3) may hold any octet and has no lines: a scanner made for one
// only counts its octets, and must never become DATA text. It may only go on in BDAT chunks
// to an upstream that offers BINARYMIME, where no end marker exists to be smuggled.
//
// After an error the scanner keeps answering it. The session must still take the rest of
// the chunk off the wire before it replies, since the client sends those octets whatever
// happens (RFC 3030 §2), and the next command starts right after them.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "../result.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// BDAT's argument, parsed by parse_bdat().
struct bdat_command {
    std::uint64_t size;  ///< octets of message that follow the command line
    bool last;           ///< this chunk ends the message
};

/// The argument of BDAT (what follows "BDAT "): `chunk-size [SP "LAST"]`, RFC 3030 §2:
/// chunk-size = 1*DIGIT, "LAST" in any case (RFC 5321 §2.4). "0 LAST" is valid: it ends a
/// message without adding to it. More than 19 digits could overflow 64 bits and is refused;
/// a real chunk is bounded by the message size limit long before.
inline result<bdat_command> parse_bdat(std::string_view argument) noexcept {
    constexpr std::size_t max_digits = 19;  // 10^19 - 1 < 2^64
    std::size_t digits = 0;
    std::uint64_t size = 0;
    while (digits < argument.size() && argument[digits] >= '0' && argument[digits] <= '9') {
        if (digits == max_digits) return errc::syntax_error;
        size = size * 10 + static_cast<unsigned>(argument[digits] - '0');
        ++digits;
    }
    if (digits == 0) return errc::syntax_error;
    argument.remove_prefix(digits);
    if (argument.empty()) return bdat_command{size, false};
    constexpr std::string_view last = " LAST";
    if (argument.size() != last.size() || argument[0] != ' ') return errc::syntax_error;
    for (std::size_t i = 1; i < last.size(); ++i) {
        if ((argument[i] & ~0x20) != last[i]) return errc::syntax_error;  // ASCII upper case
    }
    return bdat_command{size, true};
}

/// Checks a message's octets as they arrive.
///
/// feed() each piece of chunk octets, in order, in any sizes; finish() after the LAST chunk.
/// A CR at the end of a piece is judged by the first octet of the next piece, or is bare
/// when the message ends there.
///
/// The outcome never depends on how the octets were split: the error reported is the one of
/// the first octet that breaks a rule, and a CR is judged by the octet after it (a CR that
/// ends the message is bare).
class bdat_scanner {
  public:
    /// Octets per line with its CRLF, not counting a transparency dot (RFC 5321
    /// §4.5.3.1.6, as limits::max_text_line).
    static constexpr std::size_t default_max_line = 1000;

    /// A scanner for a text body whose lines hold at most `max_line` octets with their CRLF.
    explicit bdat_scanner(std::size_t max_line = default_max_line) : max_content_(max_line - 2) {
        assert(max_line >= 2);
    }

    /// A scanner for a BINARYMIME body: octets are counted, not checked, and never written
    /// as DATA text.
    static bdat_scanner binary() {
        bdat_scanner s;
        s.binary_ = true;
        return s;
    }

    /// Made by binary(): the octets are only counted.
    bool is_binary() const noexcept { return binary_; }

    /// Checks `bytes`, the next octets of the message. Returns bare_cr, bare_lf, nul_byte or
    /// line_too_long when the message breaks the framing, then again on every later call;
    /// the message is refused then.
    std::error_code feed(std::string_view bytes) {
        assert(!finished_);
        if (error_) return error_;
        octets_ += bytes.size();
        if (binary_) return {};
        const char* p = bytes.data();
        const char* const end = p + bytes.size();
        if (p == end) return {};
        if (pending_cr_) {
            if (*p != '\n') return fail(errc::bare_cr);
            pending_cr_ = false;
            line_length_ = 0;
            ++p;
        }
        // NUL is rare: one search over the piece spares one per line.
        const auto* nul = static_cast<const char*>(std::memchr(p, '\0', static_cast<std::size_t>(end - p)));
        while (p < end) {
            const auto* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
            const char* const stop = lf ? lf : end;
            const std::size_t n = static_cast<std::size_t>(stop - p);
            const bool ends_in_cr = n > 0 && stop[-1] == '\r';
            const std::size_t content = n - ends_in_cr;
            // Only the last octet before the LF (or before the end of the piece) may be a CR.
            const bool ok = (!lf || ends_in_cr) && !(nul && nul < stop) &&
                            line_length_ + content <= max_content_ &&
                            !std::memchr(p, '\r', content);
            if (!ok) return fail(first_error(p, lf ? lf + 1 : end));
            if (lf) {
                line_length_ = 0;
                p = lf + 1;
            } else {
                line_length_ += content;
                pending_cr_ = ends_in_cr;
                p = end;
            }
        }
        return {};
    }

    /// The message has ended (BDAT LAST): a CR that ends it is bare.
    std::error_code finish() {
        assert(!finished_);
        if (error_) return error_;
        if (pending_cr_) return fail(errc::bare_cr);
        finished_ = true;
        return {};
    }

    /// Message octets fed so far, as the client sent them:
    /// what counts against the message size limit.
    std::uint64_t octets() const noexcept { return octets_; }

    /// The first error met, if any.
    std::error_code error() const noexcept { return error_; }

  private:
    std::error_code fail(std::error_code ec) noexcept {
        error_ = ec;
        return ec;
    }

    // The slow path, octet by octet, taken only when a line is known to be faulty: finds
    // which rule the first bad octet breaks, so the error does not depend on the splits.
    // [p, end) starts inside a line of line_length_ octets, with no CR pending.
    std::error_code first_error(const char* p, const char* end) const noexcept {
        std::size_t length = line_length_;
        bool cr = false;
        for (; p < end; ++p) {
            if (cr && *p != '\n') return errc::bare_cr;
            if (cr) {
                cr = false;
                length = 0;
            } else if (*p == '\n') {
                return errc::bare_lf;
            } else if (*p == '\r') {
                cr = true;
            } else if (*p == '\0') {
                return errc::nul_byte;
            } else if (++length > max_content_) {
                return errc::line_too_long;
            }
        }
        assert(false && "first_error called on a line with no fault");
        return errc::syntax_error;
    }

    std::size_t max_content_;       // octets per line without its CRLF
    std::uint64_t octets_ = 0;
    std::size_t line_length_ = 0;   // octets of the current line so far, without CR or LF
    bool pending_cr_ = false;       // the last octet fed was a CR, judged by the next one
    bool finished_ = false;
    bool binary_ = false;           // a BINARYMIME body: counted only
    std::error_code error_;
};

/// @}
} // namespace grey::smtp
