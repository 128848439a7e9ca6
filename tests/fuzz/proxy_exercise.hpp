// exercise_proxy(input): the fuzz checks of proxy_protocol.hpp, for a libFuzzer entry to call.
// The input is what a connection delivers first; it is parsed as is, and again behind each
// signature ("PROXY" and v2's twelve octets) so that the fuzzer reaches the grammar behind
// them from any input, each with the default v2 cap and a small one. Any broken invariant
// aborts:
// - split independence: the input is offered as a session would, one octet more each time;
//   every prefix before the decision waits, and the decision is the one the whole input gets;
// - the parser reads only what it is given: a prefix copied to a buffer of its exact size
//   (ASan watches its end) gets the same answer, and a header is decided alike from its own
//   octets alone;
// - a complete header fits the input and its limits, ends where its format says (CRLF for v1,
//   16 + its length field for v2), and its fields agree (family and address kinds, LOCAL
//   only in v2, no endpoints without has_addresses);
// - refusal for a missing signature comes at the first octet that begins neither;
// - re-encoding a header's addresses as v1 text (as inet_ntop writes them) and as v2 gives
//   them back; a TCP4 line is its own re-encoding, since IPv4 text has one spelling;
// - the text address parsers agree with inet_pton(3), through Asio, on what they accept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <grey/proxy_protocol.hpp>

namespace grey_fuzz_proxy {

inline void require(bool ok) {
    if (!ok) std::abort();
}

using grey::proxy::header;

inline bool same_header(const header& a, const header& b) {
    return a.version == b.version && a.command == b.command && a.family == b.family && a.source == b.source &&
           a.destination == b.destination && a.length == b.length && a.v2_family_octet == b.v2_family_octet;
}

struct decision {
    std::error_code error;
    std::optional<header> parsed;
    std::size_t at = 0;  // octets offered when the parser decided (the input's size if never)
};

inline decision to_decision(const grey::proxy::parse_result& r, std::size_t at) {
    decision d;
    d.at = at;
    if (!r) d.error = r.error();
    else if (*r) d.parsed = **r;
    return d;
}

inline bool same_decision(const grey::proxy::parse_result& r, const decision& d) {
    if (!r) return r.error() == d.error;
    if (!*r) return !d.error && !d.parsed;
    return d.parsed && same_header(**r, *d.parsed);
}

/// Parses a copy of `bytes` in a buffer of exactly their size, so that ASan sees any read past it.
inline grey::proxy::parse_result parse_exact(std::string_view bytes, std::size_t cap) {
    const auto copy = std::make_unique<char[]>(bytes.size() + (bytes.empty() ? 1 : 0));
    if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
    return grey::proxy::parse_header(std::string_view(copy.get(), bytes.size()), cap);
}

/// One octet more each time, as a session that reads one at a time would offer them.
inline decision decide_bytewise(std::string_view input, std::size_t cap) {
    for (std::size_t n = 0; n <= input.size(); ++n) {
        const decision d = to_decision(grey::proxy::parse_header(input.substr(0, n), cap), n);
        // Exact-size copies for the short prefixes, where v1 is decided; not for all of a
        // long v2 header, which would make each run quadratic.
        if (n <= 128) require(same_decision(parse_exact(input.substr(0, n), cap), d));
        if (d.error || d.parsed) return d;
    }
    return decision{{}, {}, input.size()};
}

inline unsigned read16(std::string_view s, std::size_t at) {
    return static_cast<unsigned>(static_cast<unsigned char>(s[at]) << 8 | static_cast<unsigned char>(s[at + 1]));
}

inline void check_fields(const header& h, std::string_view input, std::size_t cap) {
    using grey::proxy::command;
    using grey::proxy::family;
    require(h.length <= input.size());
    require(h.version == 1 || h.version == 2);
    if (h.version == 1) {
        require(h.length >= 15 && h.length <= grey::proxy::max_v1_length);  // "PROXY UNKNOWN\r\n"
        require(input.starts_with("PROXY ") && input.substr(h.length - 2, 2) == "\r\n");
        require(input.substr(0, h.length - 2).find_first_of("\r\n") == std::string_view::npos);
        require(h.command == command::proxy && h.v2_family_octet == 0);
    } else {
        require(h.length >= 16 && h.length <= cap);
        require(h.length == 16 + read16(input, 14));
    }
    if (h.command == command::local) require(h.version == 2 && h.family == family::unspec);
    require(h.has_addresses() == (h.family != family::unspec));
    switch (h.family) {
    case family::unspec:
        require(h.source == asio::ip::tcp::endpoint() && h.destination == asio::ip::tcp::endpoint());
        break;
    case family::tcp4:
        require(h.source.address().is_v4() && h.destination.address().is_v4());
        if (h.version == 2) require(h.v2_family_octet == 0x11);
        break;
    case family::tcp6:
        require(h.source.address().is_v6() && h.destination.address().is_v6());
        if (h.version == 2) require(h.v2_family_octet == 0x21);
        break;
    }
}

inline std::string encode_v1(const header& h) {
    const bool v4 = h.family == grey::proxy::family::tcp4;
    return std::string(v4 ? "PROXY TCP4 " : "PROXY TCP6 ") + h.source.address().to_string() + " " +
           h.destination.address().to_string() + " " + std::to_string(h.source.port()) + " " +
           std::to_string(h.destination.port()) + "\r\n";
}

inline std::string encode_v2(const header& h) {
    const bool v4 = h.family == grey::proxy::family::tcp4;
    std::string out("\r\n\r\n\0\r\nQUIT\n\x21", 13);
    out.push_back(v4 ? '\x11' : '\x21');
    out.push_back('\0');
    out.push_back(static_cast<char>(v4 ? 12 : 36));
    const auto append_address = [&](const asio::ip::address& a) {
        if (v4) {
            for (const unsigned char b : a.to_v4().to_bytes()) out.push_back(static_cast<char>(b));
        } else {
            for (const unsigned char b : a.to_v6().to_bytes()) out.push_back(static_cast<char>(b));
        }
    };
    append_address(h.source.address());
    append_address(h.destination.address());
    for (const unsigned short port : {h.source.port(), h.destination.port()}) {
        out.push_back(static_cast<char>(port >> 8));
        out.push_back(static_cast<char>(port & 0xFF));
    }
    return out;
}

inline void check_reencoding(const header& h, std::string_view input) {
    if (!h.has_addresses()) return;
    for (const std::string& encoded : {encode_v1(h), encode_v2(h)}) {
        const auto r = grey::proxy::parse_header(encoded);
        require(r && *r);
        const header& again = **r;
        require(again.length == encoded.size() && again.family == h.family);
        require(again.source == h.source && again.destination == h.destination);
    }
    // IPv4 text and ports have one spelling each: a TCP4 line can only be its own encoding.
    if (h.version == 1 && h.family == grey::proxy::family::tcp4) require(input.substr(0, h.length) == encode_v1(h));
}

/// parse_ipv4/parse_ipv6 against inet_pton, through Asio, on the same text.
inline void check_address_text(std::string_view text) {
    if (text.size() > 64 || text.find('\0') != std::string_view::npos) return;
    const std::string s(text);
    std::error_code ec4, ec6;
    const auto v4 = asio::ip::make_address_v4(s.c_str(), ec4);
    const auto ours4 = grey::proxy::detail::parse_ipv4(text);
    require(ours4.has_value() == !ec4);
    if (ours4) require(*ours4 == v4);
    if (text.find('%') != std::string_view::npos) {
        require(!grey::proxy::detail::parse_ipv6(text));  // no zones
        return;
    }
    const auto v6 = asio::ip::make_address_v6(s.c_str(), ec6);
    const auto ours6 = grey::proxy::detail::parse_ipv6(text);
    require(ours6.has_value() == !ec6);
    if (ours6) require(*ours6 == v6);
}

inline void exercise_one(std::string_view input, std::size_t cap) {
    const decision d = decide_bytewise(input, cap);
    const auto whole = grey::proxy::parse_header(input, cap);
    require(same_decision(whole, d));
    if (!d.error && !d.parsed) {
        require(d.at == input.size());  // waiting: only ever for more input
        return;
    }
    // A decision stands whatever follows it.
    if (d.at < input.size()) require(same_decision(grey::proxy::parse_header(input.substr(0, d.at + 1), cap), d));
    if (d.error == grey::errc::proxy_header_missing) {
        // Refused at the first octet that begins neither signature, not later.
        const auto begins_either = [](std::string_view p) {
            return grey::proxy::detail::may_begin(p, grey::proxy::detail::v1_signature) ||
                   grey::proxy::detail::may_begin(p, grey::proxy::detail::v2_signature);
        };
        require(d.at >= 1 && !begins_either(input.substr(0, d.at)) && begins_either(input.substr(0, d.at - 1)));
    }
    if (d.error == grey::errc::proxy_header_too_long) require(d.at == grey::proxy::max_v1_length || d.at == 16);
    if (!d.parsed) return;
    const header& h = *d.parsed;
    require(d.at == h.length);  // decided on the header's last octet, not before nor after
    check_fields(h, input, cap);
    require(same_decision(parse_exact(input.substr(0, h.length), cap), d));
    check_reencoding(h, input);
}

} // namespace grey_fuzz_proxy

inline void exercise_proxy(std::string_view input) {
    using namespace grey_fuzz_proxy;
    constexpr std::string_view v2_signature = grey::proxy::detail::v2_signature;
    const std::size_t small_cap = 52 + (input.empty() ? 0 : static_cast<unsigned char>(input.back()));
    const std::string behind_v1 = "PROXY " + std::string(input);
    const std::string behind_v2 = std::string(v2_signature) + std::string(input);
    for (const std::string_view variant : {input, std::string_view(behind_v1), std::string_view(behind_v2)}) {
        exercise_one(variant, grey::proxy::default_max_v2_length);
        exercise_one(variant, small_cap);
    }
    // The input's first field, as an address text for each parser.
    check_address_text(input.substr(0, input.find(' ')));
}
