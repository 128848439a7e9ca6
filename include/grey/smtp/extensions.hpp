// grey/smtp/extensions.hpp — ESMTP extensions as a set: what an EHLO reply offers, read from its
// keywords (RFC 5321 §4.1.1.1), and what Grey can offer its clients given what the upstream
// offers. No I/O.
//
// Grey answers EHLO before it has talked to the upstream for the session (promise P3), so what
// it offers depends on what it knows of the upstream's extensions from earlier EHLO replies: an
// extension that changes what the upstream must accept (SMTPUTF8, DSN, BINARYMIME) is offered
// only when the upstream has it, since Grey cannot take it on the upstream's behalf. CHUNKING
// is offered whatever the upstream does: a BDAT message can always be sent on as DATA, never
// the reverse.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "address.hpp"
#include "reply.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// The ESMTP extensions Grey reads in EHLO replies or offers in its own: the members of an
/// extensions set, one bit each.
enum class extension : std::uint16_t {
    pipelining = 1 << 0,             ///< RFC 2920
    size = 1 << 1,                   ///< RFC 1870
    eight_bit_mime = 1 << 2,         ///< RFC 6152
    enhanced_status_codes = 1 << 3,  ///< RFC 2034
    starttls = 1 << 4,               ///< RFC 3207
    smtputf8 = 1 << 5,               ///< RFC 6531
    dsn = 1 << 6,                    ///< RFC 3461
    chunking = 1 << 7,               ///< RFC 3030
    binarymime = 1 << 8,             ///< RFC 3030
    xclient = 1 << 9,                ///< Postfix's XCLIENT_README
    xforward = 1 << 10,              ///< Postfix's XFORWARD_README
};

/// The attributes XCLIENT and XFORWARD list in EHLO (those Grey can fill).
enum class attribute : std::uint16_t {
    name = 1 << 0,
    reverse_name = 1 << 1,
    addr = 1 << 2,
    port = 1 << 3,
    proto = 1 << 4,
    helo = 1 << 5,
};

/// The attribute's keyword, as XCLIENT and XFORWARD spell it ("REVERSE_NAME").
constexpr std::string_view attribute_name(attribute a) noexcept {
    switch (a) {
    case attribute::name: return "NAME";
    case attribute::reverse_name: return "REVERSE_NAME";
    case attribute::addr: return "ADDR";
    case attribute::port: return "PORT";
    case attribute::proto: return "PROTO";
    case attribute::helo: return "HELO";
    }
    return "";
}

/// A set of ESMTP extensions, with what SIZE, XCLIENT and XFORWARD say after their keywords:
/// what an EHLO reply offers, or what Grey offers. A small value, copied freely.
class extensions {
  public:
    constexpr extensions() = default;

    /// The extensions an EHLO reply offers: the first word of each line after the first.
    static extensions from_ehlo(const reply& ehlo) {
        extensions e;
        for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
            const std::string_view line = ehlo.lines[i];
            const std::string_view keyword = line.substr(0, line.find(' '));
            for (const auto& [name, x] : names)
                if (iequals(keyword, name)) e.add(x);
            if (iequals(keyword, "XCLIENT")) e.xclient_attributes_ = attributes(line.substr(keyword.size()));
            if (iequals(keyword, "XFORWARD")) e.xforward_attributes_ = attributes(line.substr(keyword.size()));
            if (iequals(keyword, "SIZE")) {
                std::uint64_t n = 0;
                for (char c : line.substr(keyword.size()))
                    if (c >= '0' && c <= '9') n = n * 10 + static_cast<std::uint64_t>(c - '0');
                e.size_limit = n;
            }
        }
        return e;
    }

    /// The flags alone, as stored in an atomic: see upstream::known_extensions.
    static constexpr extensions from_bits(std::uint32_t bits) noexcept {
        extensions e;
        e.bits_ = static_cast<std::uint16_t>(bits);
        return e;
    }
    /// The flags alone, which from_bits() takes back.
    constexpr std::uint16_t bits() const noexcept { return bits_; }

    /// Whether `x` is in the set.
    constexpr bool has(extension x) const noexcept { return bits_ & static_cast<std::uint16_t>(x); }
    /// Puts `x` in the set.
    constexpr void add(extension x) noexcept { bits_ |= static_cast<std::uint16_t>(x); }

    /// SIZE's argument when SIZE was offered (0: no fixed limit).
    std::optional<std::uint64_t> size_limit;

    /// Whether XCLIENT / XFORWARD listed the attribute. Not kept by bits(): a server's
    /// knowledge of the upstream (known_extensions) needs only whether they are offered.
    constexpr bool xclient_offers(attribute a) const noexcept { return xclient_attributes_ & static_cast<std::uint16_t>(a); }
    /// As xclient_offers(), for XFORWARD.
    constexpr bool xforward_offers(attribute a) const noexcept { return xforward_attributes_ & static_cast<std::uint16_t>(a); }

  private:
    static std::uint16_t attributes(std::string_view list) {
        static constexpr attribute all[] = {attribute::name, attribute::reverse_name, attribute::addr,
                                            attribute::port, attribute::proto, attribute::helo};
        std::uint16_t found = 0;
        while (!list.empty()) {
            const std::size_t start = list.find_first_not_of(' ');
            if (start == std::string_view::npos) break;
            list.remove_prefix(start);
            const std::string_view word = list.substr(0, list.find(' '));
            list.remove_prefix(word.size());
            for (attribute a : all)
                if (iequals(word, attribute_name(a))) found |= static_cast<std::uint16_t>(a);
        }
        return found;
    }


    static constexpr std::pair<std::string_view, extension> names[] = {
        {"PIPELINING", extension::pipelining},   {"SIZE", extension::size},
        {"8BITMIME", extension::eight_bit_mime}, {"ENHANCEDSTATUSCODES", extension::enhanced_status_codes},
        {"STARTTLS", extension::starttls},       {"SMTPUTF8", extension::smtputf8},
        {"DSN", extension::dsn},                 {"CHUNKING", extension::chunking},
        {"BINARYMIME", extension::binarymime},   {"XCLIENT", extension::xclient},
        {"XFORWARD", extension::xforward},
    };
    std::uint16_t bits_ = 0;
    std::uint16_t xclient_attributes_ = 0;
    std::uint16_t xforward_attributes_ = 0;
};

/// Of the extensions that depend on the upstream, those Grey may offer: the ones the upstream
/// has; BINARYMIME only with CHUNKING, as its bodies go on in BDAT chunks alone. CHUNKING is
/// not among them (Grey converts BDAT to DATA when it must).
constexpr extensions relayable(extensions upstream) noexcept {
    extensions e;
    for (extension x : {extension::smtputf8, extension::dsn})
        if (upstream.has(x)) e.add(x);
    if (upstream.has(extension::binarymime) && upstream.has(extension::chunking)) e.add(extension::binarymime);
    return e;
}

/// @}
} // namespace grey::smtp
