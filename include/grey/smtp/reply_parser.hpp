// grey/smtp/reply_parser.hpp — reads the upstream server's replies line by line, including
// multi-line replies (RFC 5321 §4.2.1), and splits off enhanced status codes (RFC 3463 / 2034).
// Fed with lines from a line_reader; no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include "../result.hpp"
#include "reply.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// Reads the upstream's replies one line at a time. Strict, since a reply Grey passes on must
/// be one: a code outside 200-559, a separator other than space or hyphen, or a code that
/// changes within a reply is errc::upstream_protocol.
class reply_parser {
  public:
    /// A reply longer than this many lines is refused rather than buffered.
    static constexpr std::size_t max_lines = 128;

    /// `text` is one reply line without its CRLF. Returns the reply when `text` was its last
    /// line, nullopt when more lines follow, errc::upstream_protocol on malformed input.
    result<std::optional<reply>> feed(std::string_view text) {
        if (text.size() < 3 || !digit(text[0], '2', '5') || !digit(text[1], '0', '5') ||
            !digit(text[2], '0', '9'))
            return errc::upstream_protocol;
        const auto code = static_cast<std::uint16_t>((text[0] - '0') * 100 + (text[1] - '0') * 10 +
                                                     (text[2] - '0'));
        bool last = true;
        if (text.size() > 3) {
            if (text[3] != ' ' && text[3] != '-') return errc::upstream_protocol;
            last = text[3] == ' ';
            text.remove_prefix(4);
        } else {
            text = {};
        }
        if (partial_.lines.empty()) {
            partial_.code = code;
            partial_.enhanced = std::string(enhanced_prefix(text, code));
        } else if (code != partial_.code || partial_.lines.size() >= max_lines) {
            return errc::upstream_protocol;
        }
        // Each line of a reply repeats the enhanced code: keep it once, on the reply.
        if (!partial_.enhanced.empty() && text.substr(0, partial_.enhanced.size()) == partial_.enhanced) {
            text.remove_prefix(partial_.enhanced.size());
            if (!text.empty() && text.front() == ' ') text.remove_prefix(1);
        }
        partial_.lines.emplace_back(text);
        if (!last) return std::optional<reply>{};
        std::optional<reply> done{std::move(partial_)};
        partial_ = reply{};
        return done;
    }

    /// The enhanced status code at the front of `text` ("2.1.5 Ok" → "2.1.5"), if its class
    /// matches the reply code's; empty otherwise.
    static std::string_view enhanced_prefix(std::string_view text, unsigned code) noexcept {
        const char klass = static_cast<char>('0' + code / 100);
        if (text.size() < 5 || text[0] != klass || text[1] != '.') return {};
        std::size_t i = 2, digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 3) ++i, ++digits;
        if (digits == 0 || i >= text.size() || text[i] != '.') return {};
        ++i;
        digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 3) ++i, ++digits;
        if (digits == 0 || (i < text.size() && text[i] != ' ')) return {};
        return text.substr(0, i);
    }

  private:
    static constexpr bool digit(char c, char lo, char hi) noexcept { return c >= lo && c <= hi; }
    reply partial_;
};

/// @}
} // namespace grey::smtp
