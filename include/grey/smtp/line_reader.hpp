// grey/smtp/line_reader.hpp — bytes in, CRLF-terminated lines out, with no I/O.
//
// The owner reads from its socket into prepare(), calls commit(n), then takes lines with
// next() until it answers "need more". Every line next() returns ends in CRLF and holds no
// CR, LF or NUL inside it: a bare CR or LF is never taken for a line end (RFC 5321 §2.3.8;
// the "SMTP smuggling" attacks of 2023 hide a second message behind "\n.\n"), and is reported
// as an error as soon as it is seen. Lines that exceed the caller's limit are reported before
// the buffer fills, so the memory used is fixed: it never grows with input. The buffer exists
// only while there is input to hold: it is taken at the first prepare() and given back by
// release(), so a connection waiting for its client costs no buffer at all.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "../result.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// A line from line_reader::next(): its text, and its octets as received.
struct line {
    std::string_view text;  ///< the line without its CRLF
    std::string_view raw;   ///< the line with its CRLF: raw.data() == text.data()
};

/// Frames a connection's input into CRLF-terminated lines, with no I/O, in a buffer of fixed
/// size held only while there is input: a bare CR or LF, a NUL, or a line over its limit is
/// an error, never a line end.
class line_reader {
  public:
    /// The buffer's size unless the owner asks for another; buffers of this size are reused.
    static constexpr std::size_t default_capacity = 64 * 1024;

    /// A reader whose buffer holds `capacity` octets, the most any line limit may be.
    explicit line_reader(std::size_t capacity = default_capacity) : capacity_(capacity) {}

    /// Space to read into. Moves unread bytes to the front when that makes room: views
    /// returned by next() before this call are invalidated.
    std::span<char> prepare() {
        if (!buffer_) buffer_ = take_buffer(capacity_);
        if (begin_ == end_) begin_ = scan_ = end_ = 0;
        // Compact when the free tail is small: reads stay large, and the bytes moved are at
        // most one partial line plus whatever the caller has not taken yet.
        if (begin_ > 0 && capacity_ - end_ < capacity_ / 4) {
            std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
            scan_ -= begin_;
            end_ -= begin_;
            begin_ = 0;
        }
        return {buffer_.get() + end_, capacity_ - end_};
    }

    /// Counts `n` octets, read into the space prepare() gave, as received.
    void commit(std::size_t n) {
        assert(n <= capacity_ - end_);
        end_ += n;
    }

    /// The next complete line, no larger than `max_line` octets including its CRLF; nullopt
    /// when more input is needed; an error (line_too_long, bare_cr, bare_lf, nul_byte) when the
    /// input breaks the framing. After an error the reader's content is unspecified: the
    /// session is expected to answer and close.
    result<std::optional<line>> next(std::size_t max_line) {
        assert(max_line >= 2 && max_line <= capacity_);
        if (begin_ == end_) return std::optional<line>{};
        const char* base = buffer_.get();
        const char* line_start = base + begin_;
        const char* scan = base + scan_;
        const char* end = base + end_;

        const auto* lf = static_cast<const char*>(std::memchr(scan, '\n', end - scan));
        if (!lf) {
            // Report a bare CR or a NUL now rather than when the line ends: a client that
            // never sends LF must not be able to park bytes here until the limit.
            if (auto ec = check_partial(scan, end)) return ec;
            if (static_cast<std::size_t>(end - line_start) >= max_line) return errc::line_too_long;
            // A CR at the very end is judged when the next byte comes: scan it again then.
            scan_ = end > line_start && end[-1] == '\r' ? end_ - 1 : end_;
            return std::optional<line>{};
        }
        const std::size_t length = static_cast<std::size_t>(lf - line_start) + 1;
        if (length > max_line) return errc::line_too_long;
        if (lf == line_start || lf[-1] != '\r') return errc::bare_lf;
        const std::string_view text(line_start, length - 2);
        if (text.find('\r') != std::string_view::npos) return errc::bare_cr;
        if (text.find('\0') != std::string_view::npos) return errc::nul_byte;
        begin_ += length;
        scan_ = begin_;
        return std::optional<line>{line{text, std::string_view(line_start, length)}};
    }

    /// Up to `max` unread octets, as received, taken as they are: the octets of a BDAT chunk
    /// (RFC 3030 §2), which follow their command line in the same reads, are no lines and are
    /// framed by their count alone. The view is valid until the next prepare() or release().
    /// next() goes on right after them: a CR taken last and an LF left first make no CRLF,
    /// so that LF is bare.
    std::string_view take(std::size_t max) noexcept {
        const std::size_t n = std::min(max, end_ - begin_);
        const std::string_view taken(buffer_.get() + begin_, n);
        begin_ += n;
        // Bytes already scanned and not taken still hold no LF; the rest are scanned anew.
        if (scan_ < begin_) scan_ = begin_;
        return taken;
    }

    /// Drops every byte received and not yet returned: input that must not be trusted (what
    /// a client sent in plain text behind STARTTLS).
    void discard() noexcept { begin_ = scan_ = end_ = 0; }

    /// Gives the buffer back when it holds nothing unread; the next prepare() takes a new one.
    void release() noexcept {
        if (begin_ != end_ || !buffer_) return;
        give_back(std::move(buffer_), capacity_);
        begin_ = scan_ = end_ = 0;
    }

    /// Whether a buffer is held: without one, nothing is buffered and prepare() allocates.
    bool holds_buffer() const noexcept { return buffer_ != nullptr; }

    /// Bytes received and not yet returned as lines.
    std::size_t buffered() const noexcept { return end_ - begin_; }
    /// The buffer's size: no line limit may exceed it.
    std::size_t capacity() const noexcept { return capacity_; }

    /// Moves the buffer and the input not yet returned.
    line_reader(line_reader&&) = default;
    /// Moves the buffer and the input not yet returned.
    line_reader& operator=(line_reader&&) = default;
    ~line_reader() { release(); }

  private:
    // Sessions take a buffer per transaction and give it back between: a few spare buffers
    // per thread spare the allocator (and the page faults of fresh memory) that churn, while
    // idle connections still hold none.
    static constexpr std::size_t spares_kept = 16;
    using buffer_list = std::vector<std::unique_ptr<char[]>>;
    static buffer_list& spares() {
        thread_local buffer_list list;
        return list;
    }
    static std::unique_ptr<char[]> take_buffer(std::size_t capacity) {
        buffer_list& list = spares();
        if (capacity != default_capacity || list.empty())
            return std::make_unique_for_overwrite<char[]>(capacity);
        auto b = std::move(list.back());
        list.pop_back();
        return b;
    }
    static void give_back(std::unique_ptr<char[]> b, std::size_t capacity) {
        buffer_list& list = spares();
        if (capacity == default_capacity && list.size() < spares_kept) list.push_back(std::move(b));
    }

    static std::error_code check_partial(const char* p, const char* end) {
        if (std::memchr(p, '\0', end - p)) return errc::nul_byte;
        for (const char* cr = p; (cr = static_cast<const char*>(std::memchr(cr, '\r', end - cr)));
             ++cr) {
            if (cr + 1 < end && cr[1] != '\n') return errc::bare_cr;
        }
        return {};
    }

    std::unique_ptr<char[]> buffer_;
    std::size_t capacity_;
    std::size_t begin_ = 0;  // first unread byte
    std::size_t scan_ = 0;   // bytes before this hold no LF (since begin_)
    std::size_t end_ = 0;    // one past the last received byte
};

/// @}
} // namespace grey::smtp
