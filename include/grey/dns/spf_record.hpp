// grey/dns/spf_record.hpp — an SPF record read with no I/O (RFC 7208 §4.5, §4.6, §5, §6, §12):
// which TXT strings are SPF records, and a record's terms as values the evaluator walks. The
// whole record is checked before any of it is used, since a syntax error anywhere is a
// permerror (§4.6): a record either parses entirely or says what is wrong. Never throws; fed
// anything by tests/fuzz.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "spf_macro.hpp"

namespace grey::dns::spf {
/// @addtogroup group_dns
/// @{

/// A directive's qualifier (§4.6.2): the result when its mechanism matches.
enum class qualifier : char {
    pass = '+',      ///< "+", the default
    fail = '-',      ///< "-"
    softfail = '~',  ///< "~"
    neutral = '?',   ///< "?"
};

/// The mechanisms of §5.
enum class mechanism_kind {
    all,      ///< always matches
    include,  ///< another domain's record passes
    a,        ///< an address of a name
    mx,       ///< an address of a mail exchanger of a name
    ptr,      ///< a validated reverse name within a domain
    ip4,      ///< an IPv4 network
    ip6,      ///< an IPv6 network
    exists,   ///< a name has an A record
};

/// One directive: a qualifier and a mechanism with its arguments.
struct mechanism {
    qualifier q = qualifier::pass;       ///< the result when it matches
    mechanism_kind kind = mechanism_kind::all;  ///< which mechanism
    std::string domain_spec;             ///< unexpanded; empty: the domain being evaluated
    asio::ip::address network;           ///< ip4, ip6: the network's address
    unsigned cidr4 = 32;                 ///< a, mx, ip4: the IPv4 prefix length
    unsigned cidr6 = 128;                ///< a, mx, ip6: the IPv6 prefix length
    std::string text;                    ///< the term as written, for reasons in logs

    /// Whether evaluating it asks the DNS, and so counts against §4.6.4's limit of ten.
    bool queries_dns() const noexcept {
        return kind != mechanism_kind::all && kind != mechanism_kind::ip4 && kind != mechanism_kind::ip6;
    }
};

/// A parsed SPF record: its directives in order, and the two modifiers RFC 7208 defines.
struct record {
    std::vector<mechanism> mechanisms;       ///< in the record's order
    std::optional<std::string> redirect;     ///< redirect=, unexpanded
    std::optional<std::string> explanation;  ///< exp=, unexpanded

    /// Whether an "all" is present: then redirect= is ignored wherever it stands (§5.1).
    bool has_all() const noexcept {
        for (const mechanism& m : mechanisms)
            if (m.kind == mechanism_kind::all) return true;
        return false;
    }
};

/// A record parsed, or why it is a permerror.
struct parsed_record {
    std::optional<spf::record> value;  ///< the record, when it parses
    std::string error;                 ///< otherwise what is wrong, for the log

    /// Whether it parsed.
    explicit operator bool() const noexcept { return value.has_value(); }
};

namespace detail {

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

// Terms quoted in reasons are cut short: a record may be long, a log line should not be.
inline std::string quote_term(std::string_view term) {
    constexpr std::size_t most = 64;
    return "\"" + std::string(term.substr(0, most)) + (term.size() > most ? "...\"" : "\"");
}

// "/" then 1 to `max_digits` digits without a leading zero, at most `max`.
inline bool cidr_length(std::string_view digits, unsigned max, unsigned& out) {
    if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) return false;
    unsigned n = 0;
    for (char c : digits) {
        if (!is_digit(c)) return false;
        n = n * 10 + unsigned(c - '0');
    }
    if (n > max) return false;
    out = n;
    return true;
}

// The trailing digits of `s` after a "/" (or "//" when `twice`): their position, or npos.
inline std::size_t trailing_cidr(std::string_view s, bool twice) {
    std::size_t i = s.size();
    while (i > 0 && is_digit(s[i - 1])) --i;
    if (i == s.size() || i == 0 || s[i - 1] != '/') return std::string_view::npos;
    if (twice) return i >= 2 && s[i - 2] == '/' ? i - 2 : std::string_view::npos;
    return i >= 2 && s[i - 2] == '/' ? std::string_view::npos : i - 1;
}

// ip4-network (§5.6): four qnums, no leading zeros, nothing left out.
inline std::optional<asio::ip::address_v4> parse_ip4(std::string_view s) {
    asio::ip::address_v4::bytes_type b{};
    for (std::size_t part = 0; part < 4; ++part) {
        std::size_t n = 0;
        while (n < s.size() && is_digit(s[n])) ++n;
        if (n == 0 || n > 3 || (n > 1 && s[0] == '0')) return std::nullopt;
        unsigned v = 0;
        for (std::size_t i = 0; i < n; ++i) v = v * 10 + unsigned(s[i] - '0');
        if (v > 255) return std::nullopt;
        b[part] = static_cast<unsigned char>(v);
        s.remove_prefix(n);
        if (part < 3) {
            if (s.empty() || s[0] != '.') return std::nullopt;
            s.remove_prefix(1);
        }
    }
    if (!s.empty()) return std::nullopt;
    return asio::ip::address_v4(b);
}

// ip6-network (§5.6: RFC 4291's text forms); the characters are checked first, so that no
// scope or other suffix the system's parser may take gets in.
inline std::optional<asio::ip::address_v6> parse_ip6(std::string_view s) {
    if (s.empty() || s.size() > 45) return std::nullopt;
    for (char c : s)
        if (!is_digit(c) && !(lower(c) >= 'a' && lower(c) <= 'f') && c != ':' && c != '.') return std::nullopt;
    asio::error_code ec;
    const auto a = asio::ip::make_address_v6(std::string(s), ec);
    if (ec) return std::nullopt;
    return a;
}

// A directive (§4.6.1, §5) into `m`; false with `error` when it breaks the grammar.
inline bool parse_directive(std::string_view term, mechanism& m, std::string& error) {
    m.text = std::string(term);
    if (term[0] == '+' || term[0] == '-' || term[0] == '~' || term[0] == '?') {
        m.q = static_cast<qualifier>(term[0]);
        term.remove_prefix(1);
    }
    std::size_t n = 0;
    while (n < term.size() && term[n] != ':' && term[n] != '/') ++n;
    const std::string_view name = term.substr(0, n);
    std::string_view rest = term.substr(n);
    struct known { std::string_view name; mechanism_kind kind; };
    constexpr known names[] = {{"all", mechanism_kind::all},     {"include", mechanism_kind::include},
                               {"a", mechanism_kind::a},         {"mx", mechanism_kind::mx},
                               {"ptr", mechanism_kind::ptr},     {"ip4", mechanism_kind::ip4},
                               {"ip6", mechanism_kind::ip6},     {"exists", mechanism_kind::exists}};
    bool found = false;
    for (const known& k : names)
        if (iequals(name, k.name)) {
            m.kind = k.kind;
            found = true;
        }
    if (!found) return error = "unknown mechanism " + quote_term(m.text), false;

    const auto bad = [&](std::string_view why) { return error = std::string(why) + " in " + quote_term(m.text), false; };
    switch (m.kind) {
    case mechanism_kind::all:
        if (!rest.empty()) return bad("arguments to all");
        return true;
    case mechanism_kind::ip4:
    case mechanism_kind::ip6: {
        if (rest.empty() || rest[0] != ':') return bad("no network");
        rest.remove_prefix(1);
        const bool v4 = m.kind == mechanism_kind::ip4;
        if (const std::size_t at = trailing_cidr(rest, false); at != std::string_view::npos) {
            if (!cidr_length(rest.substr(at + 1), v4 ? 32 : 128, v4 ? m.cidr4 : m.cidr6)) return bad("bad prefix length");
            rest = rest.substr(0, at);
        }
        if (v4) {
            const auto a = parse_ip4(rest);
            if (!a) return bad("bad IPv4 network");
            m.network = *a;
        } else {
            const auto a = parse_ip6(rest);
            if (!a) return bad("bad IPv6 network");
            m.network = *a;
        }
        return true;
    }
    case mechanism_kind::a:
    case mechanism_kind::mx:
        // dual-cidr-length, read from the end: a domain-spec may itself hold "/".
        if (const std::size_t at = trailing_cidr(rest, true); at != std::string_view::npos) {
            if (!cidr_length(rest.substr(at + 2), 128, m.cidr6)) return bad("bad IPv6 prefix length");
            rest = rest.substr(0, at);
        }
        if (const std::size_t at = trailing_cidr(rest, false); at != std::string_view::npos) {
            if (!cidr_length(rest.substr(at + 1), 32, m.cidr4)) return bad("bad IPv4 prefix length");
            rest = rest.substr(0, at);
        }
        [[fallthrough]];
    case mechanism_kind::ptr:
        if (rest.empty()) return true;
        [[fallthrough]];
    case mechanism_kind::include:
    case mechanism_kind::exists: {
        if (rest.empty() || rest[0] != ':') return bad("no domain-spec");
        rest.remove_prefix(1);
        std::string why;
        if (!valid_domain_spec(rest, why)) return bad(why);
        m.domain_spec = std::string(rest);
        return true;
    }
    }
    return bad("unknown mechanism");
}

} // namespace detail

/// Whether a TXT string is an SPF record (§4.5): "v=spf1", in any case, then a space or the end.
constexpr bool is_spf_record(std::string_view txt) noexcept {
    constexpr std::string_view version = "v=spf1";
    return txt.size() >= version.size() && detail::iequals(txt.substr(0, version.size()), version) &&
           (txt.size() == version.size() || txt[version.size()] == ' ');
}

/// `text`, an SPF record, parsed (§4.6.1): terms separated by spaces; directives with their
/// qualifiers; redirect= and exp= at most once each; other modifiers checked against the
/// grammar and ignored (§6). Anything else is a permerror, with the reason in `error`.
inline parsed_record parse_record(std::string_view text) {
    parsed_record out;
    const auto fail = [&](std::string why) {
        out.error = std::move(why);
        return std::move(out);
    };
    if (!is_spf_record(text)) return fail("not an SPF record");
    for (const char c : text) {
        const auto octet = static_cast<unsigned char>(c);
        if (octet >= 0x80) return fail("non-ASCII octet in the record");
        if (octet < 0x20 || octet == 0x7F) return fail("control character in the record");
    }
    record r;
    std::string_view rest = text.substr(6);
    while (!rest.empty()) {
        if (rest[0] == ' ') {
            rest.remove_prefix(1);
            continue;
        }
        const std::string_view term = rest.substr(0, rest.find(' '));
        rest.remove_prefix(term.size());

        // A modifier is a name, then "=" (§4.6.1): name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
        std::size_t n = 0;
        if (detail::is_alpha(term[0]))
            while (n < term.size() && (detail::is_alpha(term[n]) || detail::is_digit(term[n]) || term[n] == '-' ||
                                       term[n] == '_' || term[n] == '.'))
                ++n;
        if (n > 0 && n < term.size() && term[n] == '=') {
            const std::string_view name = term.substr(0, n), value = term.substr(n + 1);
            std::string why;
            const bool redirect = detail::iequals(name, "redirect"), exp = detail::iequals(name, "exp");
            if (redirect || exp) {
                std::optional<std::string>& slot = redirect ? r.redirect : r.explanation;
                if (slot) return fail("more than one " + std::string(redirect ? "redirect" : "exp") + " modifier");
                if (!valid_domain_spec(value, why)) return fail(why + " in " + detail::quote_term(term));
                slot = std::string(value);
            } else if (!valid_macro_string(value, macro_context::explanation, why)) {
                // Any letter may stand in a value nobody expands; the grammar still holds.
                return fail(why + " in " + detail::quote_term(term));
            }
            continue;
        }
        mechanism m;
        std::string why;
        if (!detail::parse_directive(term, m, why)) return fail(why);
        r.mechanisms.push_back(std::move(m));
    }
    out.value = std::move(r);
    return out;
}

/// @}
} // namespace grey::dns::spf
