// exercise_bdat(input): the fuzz checks of smtp/bdat.hpp, for a libFuzzer entry to call.
// The input is a message's octets as BDAT chunks would carry them, fed to bdat_scanner in
// pieces whose sizes come from the input's own bytes, with dot_stuffer writing DATA text from
// the checked pieces, once checking only, once whole, and once through bdat_receiver. Any
// broken invariant aborts:
// - the error is the same every way, and is the one a plain octet-by-octet reading finds;
// - the receiver delivers every piece before the fault, aborts once at it, and skips the rest;
// - without error, the DATA text is the same every way; it holds no NUL and no CR or LF
//   outside CRLF; it ends in "\r\n.\r\n" or is ".\r\n" alone; no line before the end is a
//   lone "."; every line is in canonical stuffed form, and decoding the lines gives back the
//   message (with a CRLF added when its last line lacked one); no line is over the limit.
// parse_bdat is given the input too: what it accepts must be digits and an optional " LAST".
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>

#include <grey/smtp/bdat.hpp>
#include <grey/smtp/bdat_receiver.hpp>
#include <grey/smtp/data_codec.hpp>

namespace grey_fuzz_bdat {

inline void require(bool ok) {
    if (!ok) std::abort();
}

/// The rules read one octet at a time: the error of the first octet that breaks one.
inline std::error_code reference_error(std::string_view message, std::size_t max_line) {
    std::size_t length = 0;
    bool cr = false;
    for (const char c : message) {
        if (cr && c != '\n') return grey::errc::bare_cr;
        if (cr) {
            cr = false;
            length = 0;
        } else if (c == '\n') {
            return grey::errc::bare_lf;
        } else if (c == '\r') {
            cr = true;
        } else if (c == '\0') {
            return grey::errc::nul_byte;
        } else if (++length > max_line - 2) {
            return grey::errc::line_too_long;
        }
    }
    if (cr) return grey::errc::bare_cr;
    return {};
}

/// Feeds `message` in pieces of sizes taken from `sizes` (cycled; 0 feeds an empty piece),
/// then finishes. Returns the first error; `data_out`, when not null, gets the DATA text.
inline std::error_code scan(std::string_view message, std::string_view sizes, std::size_t max_line,
                            std::string* data_out) {
    grey::smtp::bdat_scanner scanner(max_line);
    grey::smtp::dot_stuffer stuffer;
    std::error_code ec;
    std::size_t at = 0, k = 0, empty_run = 0;
    while (!ec && at < message.size()) {
        std::size_t n = sizes.empty() ? message.size() : static_cast<unsigned char>(sizes[k++ % sizes.size()]) % 17;
        if (n == 0 && ++empty_run > 2) n = 1;
        if (n != 0) empty_run = 0;
        if (n > message.size() - at) n = message.size() - at;
        ec = scanner.feed(message.substr(at, n));
        if (!ec && data_out) stuffer.append(*data_out, message.substr(at, n));
        at += n;
        require(ec || scanner.octets() == at);
    }
    if (!ec) ec = scanner.finish();
    if (ec) {
        require(scanner.error() == ec);
        require(scanner.feed("x") == ec);  // an error stays
    } else if (data_out) {
        data_out->append(stuffer.line_end_before_marker());
        data_out->append(grey::smtp::end_of_data_marker);
    }
    return ec;
}

/// The same pieces through bdat_receiver: deliver until the fault, abort once, then skip.
/// Returns whether the message ended delivered.
inline bool receive(std::string_view message, std::string_view sizes, std::size_t max_line) {
    using step = grey::smtp::bdat_receiver::step;
    grey::smtp::bdat_receiver receiver(max_line, message.size(), false);
    int aborts = 0;
    bool failed = false;
    std::size_t at = 0, k = 0;
    while (at < message.size()) {
        std::size_t n = sizes.empty() ? message.size() : 1 + static_cast<unsigned char>(sizes[k++ % sizes.size()]) % 23;
        if (n > message.size() - at) n = message.size() - at;
        const step s = receiver.take(message.substr(at, n));
        at += n;
            require(!failed || s == step::skip);
        if (s == step::abort) ++aborts, failed = true;
    }
    const step end = receiver.finish();
    if (end == step::abort) ++aborts, failed = true;
    require(aborts == (failed ? 1 : 0));
    require(failed == receiver.failure().has_value());
    return !failed;
}

inline void check_data(std::string_view message, std::string_view data, std::size_t max_line) {
    using namespace grey::smtp;
    require(data.find('\0') == std::string_view::npos);
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (data[i] == '\r') require(i + 1 < data.size() && data[i + 1] == '\n');
        if (data[i] == '\n') require(i > 0 && data[i - 1] == '\r');
    }
    require(data == end_of_data_marker || data.ends_with("\r\n.\r\n"));
    std::string_view body = data.substr(0, data.size() - end_of_data_marker.size());
    std::string decoded;
    while (!body.empty()) {
        const std::size_t eol = body.find("\r\n");
        require(eol != std::string_view::npos);
        const std::string_view raw = body.substr(0, eol + 2);
        const data_line d = decode_data_line(raw.substr(0, eol));
        require(!d.end_of_data);
        require(d.content.size() + 2 <= max_line);
        std::string canonical;
        append_data_line(canonical, d.content);
        require(canonical == raw);
        decoded.append(d.content);
        decoded.append("\r\n");
        body.remove_prefix(eol + 2);
    }
    // DATA carries only whole lines: a last line without CRLF gets one.
    if (!message.empty() && !message.ends_with("\r\n")) {
        require(decoded.size() == message.size() + 2 && decoded.ends_with("\r\n"));
        decoded.resize(message.size());
    }
    require(decoded == message);
}

inline void check_parse(std::string_view input) {
    const auto b = grey::smtp::parse_bdat(input);
    if (!b) return;
    std::string_view digits = input;
    if (b->last) {
        require(digits.size() > 5);
        digits.remove_suffix(5);
    }
    require(!digits.empty() && digits.size() <= 19);
    std::uint64_t value = 0;
    for (const char c : digits) {
        require(c >= '0' && c <= '9');
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    require(value == b->size);
}

} // namespace grey_fuzz_bdat

inline void exercise_bdat(std::string_view input) {
    using namespace grey_fuzz_bdat;
    check_parse(input);
    // The first byte picks the line limit: often the real one, else a small one that the
    // fuzzer's short inputs can reach.
    const std::size_t max_line =
        input.empty() || (input[0] & 1) ? grey::smtp::bdat_scanner::default_max_line
                                      : 2 + static_cast<unsigned char>(input[0]) % 40;
    const std::string_view message = input;

    std::string split_data, whole_data;
    const std::error_code split_error = scan(message, input, max_line, &split_data);
    const std::error_code checked_error = scan(message, input.substr(input.size() / 2), max_line, nullptr);
    const std::error_code whole_error = scan(message, {}, max_line, &whole_data);
    require(split_error == checked_error && split_error == whole_error);
    require(receive(message, input, max_line) == !split_error);
    require(split_error == reference_error(message, max_line));
    if (split_error) return;
    require(split_data == whole_data);
    check_data(message, split_data, max_line);
}
