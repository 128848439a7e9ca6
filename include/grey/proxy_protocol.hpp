// grey/proxy_protocol.hpp — HAProxy's PROXY protocol, versions 1 (text) and 2 (binary): the
// header a load balancer puts before the SMTP stream to say whose connection it relays. Parsed
// with no I/O, from HAProxy's doc/proxy-protocol.txt.
//
// The session reads from a new connection and calls parse_header() with all the octets
// received so far, until it answers with a header or an error. Once a header is complete, the
// octets after header::length are the client's first SMTP input and must be kept. The header
// comes before anything else and the server speaks first in SMTP, so the session sends no
// greeting until it has one (§2: "the receiver MUST NOT start processing the connection before
// it receives a complete and valid PROXY protocol header"), under a timeout of its own (§2
// asks for at least 3 seconds). Every error closes the connection unanswered (§2.1: "abort
// the connection"). A header that arrives in pieces is waited for rather than refused: §2
// recommends that tolerance, TCP may split anything, and the timeout bounds the wait.
//
// Only a listener configured for PROXY may call this, and only for peers known to be the
// proxy: a header from anyone else lets them choose the address the greylist judges (§5). A
// listener never guesses whether a header is there; that is why input that starts with
// neither signature (an SMTP client, a port scan) is refused at its first octet that differs
// (proxy_header_missing) rather than taken for SMTP.
//
// The decision never depends on how the octets were split: each check judges one octet by
// the octets up to it, and the checks run in the order of the octets, so a prefix is refused
// exactly when every input that starts with it is, with the same error, and a header is
// complete on its last octet.
//
// Why one header of this length: it is one specification with two wire forms, and the strict
// textual address readers v1 needs (getaddrinfo-style parsers accept what §2.1 forbids) serve
// nothing else; split, the rule that a prefix is judged as every input that starts with it
// would be kept in several places.
#pragma once

#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <tuple>
#include <string_view>

// The address types only: a parser needs none of Asio's I/O or coroutine machinery.
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>

#include "result.hpp"

namespace grey::proxy {
/// @addtogroup group_proxy
/// @{

/// What the header asks of the receiver.
enum class command : std::uint8_t {
    local,  ///< v2 LOCAL: the proxy's own connection (a health check); use the real endpoints
    proxy,  ///< the proxy relays a client: use the header's endpoints when it has usable ones
};

/// The addresses the header carries, as far as an SMTP session can use them.
enum class family : std::uint8_t {
    unspec,  ///< none usable: v1 UNKNOWN, v2 LOCAL or UNSPEC, v2 UDP and UNIX (see parse_v2)
    tcp4,    ///< TCP over IPv4
    tcp6,    ///< TCP over IPv6 (an IPv4-mapped address stays as sent, in IPv6 form)
};

/// A complete PROXY header, as parse_header() returns it.
struct header {
    std::uint8_t version = 1;  ///< 1 (text) or 2 (binary)
    proxy::command command = proxy::command::proxy;  ///< whether the header speaks for a client
    proxy::family family = proxy::family::unspec;    ///< the addresses source and destination hold
    asio::ip::tcp::endpoint source;       ///< the client, as the proxy saw it; unset unless has_addresses()
    asio::ip::tcp::endpoint destination;  ///< where the client connected to; unset unless has_addresses()
    std::size_t length = 0;               ///< octets the header took: what follows is SMTP input
    std::uint8_t v2_family_octet = 0;     ///< v2's 14th octet as sent (0x12: UDP over IPv4…), for logs; 0 in v1

    /// The header names the client: the session must use its endpoints, not the connection's.
    bool has_addresses() const noexcept {
        return command == proxy::command::proxy && family != proxy::family::unspec;
    }
    /// The client's endpoint: the header's when it has one, else the connection's own peer.
    asio::ip::tcp::endpoint source_or(const asio::ip::tcp::endpoint& connection_peer) const {
        return has_addresses() ? source : connection_peer;
    }
    /// Where the client connected to: the header's when it has one, else the local endpoint.
    asio::ip::tcp::endpoint destination_or(const asio::ip::tcp::endpoint& connection_local) const {
        return has_addresses() ? destination : connection_local;
    }
};

/// The longest v1 line, CRLF included (§2.1: "PROXY UNKNOWN" and two full IPv6 addresses).
inline constexpr std::size_t max_v1_length = 107;
/// The longest v2 header the protocol can express: 16 fixed octets and a 16-bit length.
inline constexpr std::size_t max_v2_length = 16 + 65535;
/// Grey's default cap on a v2 header. The session must hold the whole header before it can
/// greet anyone, and Grey reads only the addresses (and checks a CRC32C when one is sent):
/// the TLVs that follow are skipped. 4096 octets hold the addresses with every TLV a proxy
/// commonly sends (ALPN, authority, a unique ID of up to 128 octets, TLS version, cipher and
/// client CN) and most client certificates; a sender that needs more is misconfigured for
/// SMTP, and refusing it keeps what an idle connection can make the server hold small.
inline constexpr std::size_t default_max_v2_length = 4096;

/// need more octets (an empty optional), a complete header, or why the input is refused.
using parse_result = result<std::optional<header>>;

namespace detail {

inline constexpr std::string_view v1_signature = "PROXY";
inline constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};
inline constexpr std::size_t v2_fixed_length = 16;

inline parse_result need_more() noexcept { return std::optional<header>{}; }
inline parse_result complete(const header& h) noexcept { return std::optional<header>{h}; }

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
inline int hex_value(char c) noexcept {
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// A decimal of 1 to `max_digits` digits with no leading zero, at most `max_value`. §2.1
/// forbids leading zeros in addresses and ports alike, "to avoid any possible confusion with
/// octal numbers": "010" is refused, not read as 10 or 8; "0" alone is fine.
inline std::optional<unsigned> parse_decimal(std::string_view s, std::size_t max_digits, unsigned max_value) noexcept {
    if (s.empty() || s.size() > max_digits || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    unsigned value = 0;
    for (const char c : s) {
        if (!is_digit(c)) return std::nullopt;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > max_value) return std::nullopt;
    return value;
}

/// Dotted-quad IPv4 as §2.1 has it: exactly four decimals 0-255, one dot between each, no
/// leading zeros.
inline std::optional<asio::ip::address_v4> parse_ipv4(std::string_view s) noexcept {
    asio::ip::address_v4::bytes_type bytes{};
    for (std::size_t i = 0; i < 4; ++i) {
        const std::size_t dot = i < 3 ? s.find('.') : s.size();
        if (dot == std::string_view::npos) return std::nullopt;
        const auto octet = parse_decimal(s.substr(0, dot), 3, 255);
        if (!octet) return std::nullopt;
        bytes[i] = static_cast<unsigned char>(*octet);
        s.remove_prefix(i < 3 ? dot + 1 : dot);
    }
    return asio::ip::address_v4(bytes);
}

/// IPv6 text: groups of 1 to 4 hex digits in either case, one "::" at most, the last 32 bits
/// optionally as a dotted quad; 128 bits exactly. §2.1 describes 4-digit groups, but senders
/// write what inet_ntop(3) writes ("2001:db8::1", "::ffff:192.0.2.1"), so that is accepted.
/// No zone ("%eth0"): a scope means nothing on the far side of a proxy.
inline std::optional<asio::ip::address_v6> parse_ipv6(std::string_view s) noexcept {
    std::array<unsigned, 8> groups{};
    std::size_t count = 0;           // groups read
    std::ptrdiff_t gap = -1;         // where "::" stands among them
    std::size_t at = 0;
    if (s.starts_with("::")) {
        gap = 0;
        at = 2;
    }
    while (at < s.size()) {
        std::size_t end = s.find(':', at);
        if (end == std::string_view::npos) end = s.size();
        const std::string_view piece = s.substr(at, end - at);
        if (piece.find('.') != std::string_view::npos) {
            // An IPv4 tail: only last, and only where two groups remain.
            const auto v4 = end == s.size() && count <= 6 ? parse_ipv4(piece) : std::nullopt;
            if (!v4) return std::nullopt;
            const auto b = v4->to_bytes();
            groups[count++] = static_cast<unsigned>(b[0] << 8 | b[1]);
            groups[count++] = static_cast<unsigned>(b[2] << 8 | b[3]);
            at = end;
            break;
        }
        if (piece.empty() || piece.size() > 4 || count == 8) return std::nullopt;
        unsigned value = 0;
        for (const char c : piece) {
            const int v = hex_value(c);
            if (v < 0) return std::nullopt;
            value = value << 4 | static_cast<unsigned>(v);
        }
        groups[count++] = value;
        at = end;
        if (at == s.size()) break;
        ++at;  // past ':'
        if (at == s.size()) return std::nullopt;  // a lone trailing ':'
        if (s[at] == ':') {
            if (gap >= 0) return std::nullopt;  // a second "::"
            gap = static_cast<std::ptrdiff_t>(count);
            ++at;
        }
    }
    // "::" stands for one group or more; without it there must be eight.
    if (gap < 0 ? count != 8 : count > 7) return std::nullopt;
    asio::ip::address_v6::bytes_type bytes{};
    const std::size_t head = gap < 0 ? count : static_cast<std::size_t>(gap);
    const std::size_t tail_start = 8 - (count - head);
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t slot = i < head ? i : tail_start + (i - head);
        bytes[2 * slot] = static_cast<unsigned char>(groups[i] >> 8);
        bytes[2 * slot + 1] = static_cast<unsigned char>(groups[i] & 0xFF);
    }
    return asio::ip::address_v6(bytes);
}

/// CRC32C (Castagnoli, RFC 4960 appendix B), bit by bit: it runs once per v2 header that
/// carries PP2_TYPE_CRC32C, over at most the configured cap. `crc` continues a running value.
inline std::uint32_t crc32c(std::string_view bytes, std::uint32_t crc = 0) noexcept {
    crc = ~crc;
    for (const char c : bytes) {
        crc ^= static_cast<unsigned char>(c);
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/// True while `prefix` could still begin `signature`; checks only the octets present.
inline bool may_begin(std::string_view prefix, std::string_view signature) noexcept {
    const std::size_t n = prefix.size() < signature.size() ? prefix.size() : signature.size();
    return prefix.substr(0, n) == signature.substr(0, n);
}

/// Reads the v1 line one field at a time, left to right, over at most max_v1_length octets.
class v1_reader {
  public:
    explicit v1_reader(std::string_view received) noexcept
        : line_(received.substr(0, max_v1_length)), cut_(received.size() >= max_v1_length) {}

    enum class status { ok, more, bad };

    /// A field of 1 to `max_size` octets, each one `allowed`, ended by `delimiter`; the reader
    /// moves past the delimiter. An octet that is neither refuses the line at once, as does a
    /// field grown past `max_size`: junk is refused before its line ends.
    template <class Allowed>
    status field(std::size_t max_size, Allowed allowed, char delimiter, std::string_view& out) noexcept {
        for (std::size_t i = at_; i < line_.size(); ++i) {
            const char c = line_[i];
            if (c == delimiter) {
                if (i == at_) return status::bad;  // an empty field: two spaces, or a space before CR
                out = line_.substr(at_, i - at_);
                at_ = i + 1;
                return status::ok;
            }
            if (i - at_ == max_size || !allowed(c)) return status::bad;
        }
        return status::more;
    }

    /// The LF of the CRLF whose CR the last field ended with.
    status lf() noexcept {
        if (at_ == line_.size()) return status::more;
        if (line_[at_] != '\n') return status::bad;  // a CR alone does not end the line (§2.1)
        ++at_;
        return status::ok;
    }

    /// Skips what follows "UNKNOWN " up to and including CRLF, unread (§2.1: "the receiver
    /// must ignore anything presented before the CRLF is found"); a bare CR or LF is refused.
    status skip_line() noexcept {
        for (; at_ < line_.size(); ++at_) {
            if (line_[at_] == '\n') return status::bad;
            if (line_[at_] == '\r') {
                ++at_;
                return lf();
            }
        }
        return status::more;
    }

    /// Octets read so far: the header's length once the line is done.
    std::size_t position() const noexcept { return at_; }

    /// Input ran out before the line was done: too long when the line already fills its
    /// 107 octets (the CRLF must be within them), else wait for more.
    parse_result out_of_input() const noexcept {
        if (cut_) return errc::proxy_header_too_long;
        return need_more();
    }

    void skip(std::size_t n) noexcept { at_ += n; }

  private:
    std::string_view line_;
    bool cut_;
    std::size_t at_ = 0;
};

inline parse_result parse_v1(std::string_view received) noexcept {
    using status = v1_reader::status;
    v1_reader reader(received);
    const auto verdict = [&](status s) -> parse_result {
        return s == status::more ? reader.out_of_input() : parse_result(errc::proxy_header_malformed);
    };
    // §2.1: "exactly one space", then the protocol: "TCP4", "TCP6" or "UNKNOWN", in capitals,
    // refused at the first octet that leaves none of them possible.
    constexpr std::string_view tcp4 = " TCP4 ", tcp6 = " TCP6 ", unknown_then_more = " UNKNOWN ",
                               unknown_alone = " UNKNOWN\r";
    const std::string_view rest = received.substr(v1_signature.size());
    std::string_view protocol;
    bool possible = false;
    for (const std::string_view candidate : {tcp4, tcp6, unknown_then_more, unknown_alone}) {
        if (!may_begin(rest, candidate)) continue;
        if (rest.size() < candidate.size()) possible = true;
        else protocol = candidate;
    }
    if (protocol.empty()) return possible ? need_more() : parse_result(errc::proxy_header_malformed);
    reader.skip(v1_signature.size() + protocol.size());

    header h;
    h.version = 1;
    h.command = command::proxy;
    if (protocol == unknown_then_more || protocol == unknown_alone) {
        // The real connection's endpoints apply; whatever the sender put here is not read.
        const status s = protocol == unknown_alone ? reader.lf() : reader.skip_line();
        if (s != status::ok) return verdict(s);
        h.family = family::unspec;
        h.length = reader.position();
        return complete(h);
    }
    const bool v4 = protocol == tcp4;

    // The addresses in the text of the family named, the family's characters only, so that
    // "TCP4 ::1" is refused at its first ':'.
    const auto ipv4_char = [](char c) { return is_digit(c) || c == '.'; };
    const auto ipv6_char = [](char c) { return hex_value(c) >= 0 || c == ':' || c == '.'; };
    constexpr std::size_t max_ipv4_text = 15;  // 255.255.255.255
    constexpr std::size_t max_ipv6_text = 45;  // ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255
    asio::ip::address addresses[2];
    for (auto& address : addresses) {
        std::string_view text;
        const status s = v4 ? reader.field(max_ipv4_text, ipv4_char, ' ', text)
                            : reader.field(max_ipv6_text, ipv6_char, ' ', text);
        if (s != status::ok) return verdict(s);
        if (v4) {
            const auto a = parse_ipv4(text);
            if (!a) return errc::proxy_header_malformed;
            address = *a;
        } else {
            const auto a = parse_ipv6(text);
            if (!a) return errc::proxy_header_malformed;
            address = *a;
        }
    }
    unsigned short ports[2] = {};
    for (std::size_t i = 0; i < 2; ++i) {
        std::string_view text;
        const status s = reader.field(5, is_digit, i == 0 ? ' ' : '\r', text);
        if (s != status::ok) return verdict(s);
        const auto port = parse_decimal(text, 5, 65535);
        if (!port) return errc::proxy_header_malformed;
        ports[i] = static_cast<unsigned short>(*port);
    }
    if (const status s = reader.lf(); s != status::ok) return verdict(s);
    h.family = v4 ? family::tcp4 : family::tcp6;
    h.source = {addresses[0], ports[0]};
    h.destination = {addresses[1], ports[1]};
    h.length = reader.position();
    return complete(h);
}

/// Octets of the v2 address block for each family/protocol octet §2.2 lists; the other
/// combinations "must be rejected as invalid by receivers" (-1).
inline int v2_address_block(std::uint8_t family_octet) noexcept {
    switch (family_octet) {
    case 0x00: return 0;    // UNSPEC: no addresses to read
    case 0x11:              // TCP over IPv4
    case 0x12: return 12;   // UDP over IPv4: 2 × 4 + 2 × 2
    case 0x21:              // TCP over IPv6
    case 0x22: return 36;   // UDP over IPv6: 2 × 16 + 2 × 2
    case 0x31:              // UNIX stream
    case 0x32: return 216;  // UNIX datagram: 2 × 108
    default: return -1;
    }
}

inline unsigned read16(std::string_view s, std::size_t at) noexcept {
    return static_cast<unsigned>(static_cast<unsigned char>(s[at]) << 8 | static_cast<unsigned char>(s[at + 1]));
}

/// The v2 address block of TCP over IPv4 or IPv6 (§2.2): source address, destination address,
/// source port, destination port, all in network order.
template <class Address>
void read_v2_addresses(std::string_view bytes, header& h) noexcept {
    typename Address::bytes_type source{}, destination{};
    constexpr std::size_t n = std::tuple_size_v<typename Address::bytes_type>;
    constexpr std::size_t at = v2_fixed_length;
    for (std::size_t i = 0; i < n; ++i) {
        source[i] = static_cast<unsigned char>(bytes[at + i]);
        destination[i] = static_cast<unsigned char>(bytes[at + n + i]);
    }
    h.source = {Address(source), static_cast<unsigned short>(read16(bytes, at + 2 * n))};
    h.destination = {Address(destination), static_cast<unsigned short>(read16(bytes, at + 2 * n + 2))};
}

/// Walks the TLVs of [begin, header.size()): each must fit whole, or the header is refused,
/// since a sender that cannot frame its TLVs cannot be trusted with the addresses either.
/// A PP2_TYPE_CRC32C (§2.2.3) is checked: the CRC of the whole header with its value zeroed.
inline bool check_tlvs(std::string_view header_bytes, std::size_t begin) noexcept {
    constexpr std::uint8_t pp2_type_crc32c = 0x03;
    bool crc_seen = false;
    std::size_t at = begin;
    while (at < header_bytes.size()) {
        if (header_bytes.size() - at < 3) return false;  // a type and length cut short
        const std::uint8_t type = static_cast<unsigned char>(header_bytes[at]);
        const std::size_t value_length = read16(header_bytes, at + 1);
        const std::size_t value = at + 3;
        if (value_length > header_bytes.size() - value) return false;  // runs past the header
        if (type == pp2_type_crc32c) {
            // One CRC, of 4 octets: two could not both be computed with "the" field zeroed.
            if (crc_seen || value_length != 4) return false;
            crc_seen = true;
            const std::uint32_t sent = static_cast<std::uint32_t>(read16(header_bytes, value)) << 16 |
                                       read16(header_bytes, value + 2);
            constexpr std::string_view zeros{"\0\0\0\0", 4};
            std::uint32_t crc = crc32c(header_bytes.substr(0, value));
            crc = crc32c(zeros, crc);
            crc = crc32c(header_bytes.substr(value + 4), crc);
            if (crc != sent) return false;  // §2.2.3: "MUST treat the TCP connection ... as invalid"
        }
        at = value + value_length;
    }
    return true;
}

inline parse_result parse_v2(std::string_view received, std::size_t max_length) noexcept {
    // The 13th octet: version 2, the only one a receiver "must only accept", and a command of
    // LOCAL or PROXY ("receivers must drop connections presenting unexpected values").
    if (received.size() < 13) return need_more();
    const std::uint8_t version_command = static_cast<unsigned char>(received[12]);
    if (version_command >> 4 != 2 || (version_command & 0x0F) > 1) return errc::proxy_header_malformed;
    header h;
    h.version = 2;
    h.command = (version_command & 0x0F) == 0 ? command::local : command::proxy;
    // The 14th: family and protocol. LOCAL ignores it (§2.2: "discard the protocol block
    // including the family"), so its block is skipped unread.
    if (received.size() < 14) return need_more();
    h.v2_family_octet = static_cast<unsigned char>(received[13]);
    const int block = v2_address_block(h.v2_family_octet);
    if (h.command == command::proxy && block < 0) return errc::proxy_header_malformed;
    // The 15th and 16th: the length of what follows, which is judged before it arrives.
    if (received.size() < v2_fixed_length) return need_more();
    const std::size_t length = v2_fixed_length + read16(received, 14);
    if (length > max_length) return errc::proxy_header_too_long;
    if (h.command == command::proxy && length - v2_fixed_length < static_cast<std::size_t>(block))
        return errc::proxy_header_malformed;  // a length that does not cover the addresses
    if (received.size() < length) return need_more();
    h.length = length;
    // §2.2: "the receiver must not start to parse an address before the whole address block
    // is received": the header is whole from here.
    if (h.command == command::local || h.v2_family_octet == 0x00) return complete(h);
    const std::string_view bytes = received.substr(0, length);
    if (!check_tlvs(bytes, v2_fixed_length + static_cast<std::size_t>(block))) return errc::proxy_header_malformed;
    if (h.v2_family_octet == 0x11) {
        h.family = family::tcp4;
        read_v2_addresses<asio::ip::address_v4>(bytes, h);
    } else if (h.v2_family_octet == 0x21) {
        h.family = family::tcp6;
        read_v2_addresses<asio::ip::address_v6>(bytes, h);
    }
    // UDP and UNIX: a valid header whose addresses an SMTP session over TCP cannot use. §2.2
    // lets a receiver that does not implement them fall back to UNSPEC, and so does Grey:
    // family stays unspec, and the session decides whether to use the real endpoints or refuse.
    return complete(h);
}

} // namespace detail

/// Parses the PROXY header at the start of `received`, all the octets the connection has
/// delivered so far. Returns an empty optional while the header is incomplete (call again
/// with more), the header once complete (`header::length` octets; keep the rest as SMTP
/// input), or an error: proxy_header_missing as soon as the input can begin neither
/// signature, proxy_header_too_long for a v1 line without CRLF in 107 octets or a v2 header
/// longer than `v2_length_cap` (at least 52, which holds TCP over IPv6 without TLVs; at most
/// 16 + 65535), proxy_header_malformed for anything else the spec does not allow. Reads no
/// octet past the header, allocates nothing, and is cheap to call again: a v1 line is at
/// most 107 octets, and a v2 header is read once it is whole.
inline parse_result parse_header(std::string_view received,
                                 std::size_t v2_length_cap = default_max_v2_length) noexcept {
    assert(v2_length_cap >= 16 + 36);
    if (received.empty()) return detail::need_more();
    // §2.2: v1 is recognised by "PROXY", v2 by its 12-octet signature, whose CR LF CR LF
    // start no v1 line; nothing else is covered, "and the connection must be dropped".
    if (received[0] == detail::v1_signature[0]) {
        if (!detail::may_begin(received, detail::v1_signature)) return errc::proxy_header_missing;
        if (received.size() < detail::v1_signature.size()) return detail::need_more();
        return detail::parse_v1(received);
    }
    if (!detail::may_begin(received, detail::v2_signature)) return errc::proxy_header_missing;
    if (received.size() < detail::v2_signature.size()) return detail::need_more();
    return detail::parse_v2(received, v2_length_cap);
}

/// @}
} // namespace grey::proxy
