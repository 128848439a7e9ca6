// grey/dns/spf_macro.hpp — SPF's macro language (RFC 7208 §7): checking a macro-string or a
// domain-spec against the grammar, and expanding one for a check. No I/O, no throwing: the
// text comes from a domain's owner and from the SMTP client, so every input is either expanded
// within a bound or refused (a refusal is the record's permerror).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

namespace grey::dns::spf {
/// @addtogroup group_dns
/// @{

/// Where a macro-string stands: the letters c, r and t are allowed in explanations only (§7.2).
enum class macro_context {
    domain,       ///< a domain-spec, or an unknown modifier's value
    explanation,  ///< the TXT record an exp= modifier names (explain-string: spaces allowed)
};

/// What the macro letters stand for during one check (§7.2).
struct macro_values {
    std::string_view sender;          ///< s: the sender, "local@domain"
    std::string_view local_part;      ///< l: its local part ("postmaster" when it had none)
    std::string_view sender_domain;   ///< o: its domain
    std::string_view domain;          ///< d: the domain whose record is being evaluated
    asio::ip::address ip;             ///< i, c, v: the client's address
    std::string_view helo;            ///< h: the HELO or EHLO name
    std::string_view receiver = "unknown";  ///< r: the host doing the check
    std::int64_t now = 0;             ///< t: seconds since the epoch
};

/// The longest name RFC 7208 §7.3 lets an expansion reach, in presentation form without the
/// final dot.
inline constexpr std::size_t max_domain_length = 253;

namespace detail {

constexpr char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? char(c + 32) : c; }
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_delimiter(char c) noexcept {
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}
// macro-literal: the visible characters but "%".
constexpr bool is_literal(char c) noexcept { return c >= 0x21 && c <= 0x7E && c != '%'; }

// One piece of a macro-string: literal text, or a macro with its transformers.
struct macro_token {
    bool is_macro = false;
    std::string_view literal;  // when !is_macro: literal text, or the fixed expansion of %% %_ %-
    char letter = 0;           // lower case
    bool url_escape = false;   // the letter was upper case
    std::size_t keep = 0;      // the DIGIT transformer; 0: every part
    bool reverse = false;
    std::string_view delimiters;  // empty: "."
};

inline macro_token literal_token(std::string_view text) {
    macro_token t;
    t.literal = text;
    return t;
}

// Reads the macro-string `s` into tokens; false with `error` set when it breaks §7.1's grammar.
// Each "%{" opens a macro that must close; '%' is followed by '{', '%', '_' or '-'.
inline bool tokenize(std::string_view s, macro_context ctx, std::vector<macro_token>& out, std::string& error) {
    std::size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (c == '%') {
            if (i + 1 >= s.size()) return error = "'%' at the end of a macro-string", false;
            const char n = s[i + 1];
            if (n == '%' || n == '_' || n == '-') {
                out.push_back(literal_token(n == '%' ? "%" : n == '_' ? " " : "%20"));
                i += 2;
                continue;
            }
            if (n != '{') return error = "'%' not followed by '{', '%', '_' or '-'", false;
            i += 2;
            if (i >= s.size()) return error = "unterminated macro", false;
            macro_token t;
            t.is_macro = true;
            t.letter = lower(s[i]);
            t.url_escape = s[i] >= 'A' && s[i] <= 'Z';
            if (std::string_view("slodiphcrtv").find(t.letter) == std::string_view::npos || !is_alpha(s[i]))
                return error = "unknown macro letter", false;
            if (ctx == macro_context::domain && (t.letter == 'c' || t.letter == 'r' || t.letter == 't'))
                return error = std::string("macro letter '") + t.letter + "' outside an explanation", false;
            ++i;
            const std::size_t digits = i;
            while (i < s.size() && is_digit(s[i])) {
                // 127 labels is the most a name has; more only means "all of them" (§7.3).
                if (t.keep <= 1000) t.keep = t.keep * 10 + std::size_t(s[i] - '0');
                ++i;
            }
            if (i > digits && t.keep == 0) return error = "a macro keeping zero parts", false;
            if (i < s.size() && lower(s[i]) == 'r') {
                t.reverse = true;
                ++i;
            }
            const std::size_t delimiters = i;
            while (i < s.size() && is_delimiter(s[i])) ++i;
            t.delimiters = s.substr(delimiters, i - delimiters);
            if (i >= s.size() || s[i] != '}') return error = "malformed macro", false;
            ++i;
            out.push_back(t);
            continue;
        }
        const std::size_t start = i;
        while (i < s.size() && (is_literal(s[i]) || (ctx == macro_context::explanation && s[i] == ' '))) ++i;
        if (i == start) {
            const auto octet = static_cast<unsigned char>(c);
            return error = octet >= 0x80 ? "non-ASCII octet" : "invalid character", false;
        }
        out.push_back(literal_token(s.substr(start, i - start)));
    }
    return true;
}

// toplabel (§7.1): alphanumerics with a letter among them, or alphanumerics and hyphens that
// neither begin nor end with a hyphen; so "com" and "xn--p1ai", never "123" or "-com".
constexpr bool is_toplabel(std::string_view label) noexcept {
    if (label.empty()) return false;
    bool alpha = false, hyphen = false;
    for (char c : label) {
        if (c == '-') hyphen = true;
        else if (is_alpha(c)) alpha = true;
        else if (!is_digit(c)) return false;
    }
    if (hyphen) return label.front() != '-' && label.back() != '-';
    return alpha;
}

inline std::string ip_text(const asio::ip::address& ip, bool dotted_nibbles) {
    if (ip.is_v4()) return ip.to_v4().to_string();
    if (!dotted_nibbles) return ip.to_v6().to_string();
    // §7.3: an IPv6 address as 32 dot-separated nibbles, for %{ir} in the reverse tree's style.
    constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (const unsigned octet : ip.to_v6().to_bytes()) {
        if (!out.empty()) out += '.';
        out += hex[octet >> 4];
        out += '.';
        out += hex[octet & 0xF];
    }
    return out;
}

// The value a letter stands for, before its transformers.
inline std::string letter_value(char letter, const macro_values& v) {
    switch (letter) {
    case 's': return std::string(v.sender);
    case 'l': return std::string(v.local_part);
    case 'o': return std::string(v.sender_domain);
    case 'd': return std::string(v.domain);
    case 'i': return ip_text(v.ip, true);
    // The validated name of the client (§7.3) would cost look-ups that RFC 7208 asks no one to
    // spend ("p" SHOULD NOT be used); "unknown" is what it says when none validates.
    case 'p': return "unknown";
    case 'h': return std::string(v.helo);
    case 'c': return ip_text(v.ip, false);
    case 'r': return std::string(v.receiver);
    case 't': return std::to_string(v.now);
    case 'v': return v.ip.is_v4() ? "in-addr" : "ip6";
    default: return {};
    }
}

// RFC 3986 §2.3's unreserved characters stay, the rest are %XX (§7.3: an upper-case letter).
inline std::string url_escape(std::string_view s) {
    constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : s) {
        if (is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            const auto octet = static_cast<unsigned char>(c);
            out += '%';
            out += hex[octet >> 4];
            out += hex[octet & 0xF];
        }
    }
    return out;
}

// A macro's transformers (§7.3): split on the delimiters, reverse if asked, keep the rightmost
// parts, join with dots.
inline std::string transform(std::string_view value, const macro_token& t) {
    if (t.keep == 0 && !t.reverse && (t.delimiters.empty() || t.delimiters == ".")) return std::string(value);
    const std::string_view delimiters = t.delimiters.empty() ? std::string_view(".") : t.delimiters;
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= value.size(); ++i) {
        if (i == value.size() || delimiters.find(value[i]) != std::string_view::npos) {
            parts.push_back(value.substr(start, i - start));
            start = i + 1;
        }
    }
    if (t.reverse) parts = std::vector<std::string_view>(parts.rbegin(), parts.rend());
    const std::size_t first = t.keep != 0 && t.keep < parts.size() ? parts.size() - t.keep : 0;
    std::string out;
    for (std::size_t i = first; i < parts.size(); ++i) {
        if (i != first) out += '.';
        out += parts[i];
    }
    return out;
}

} // namespace detail

/// Whether `s` is a macro-string (§7.1) allowed in `ctx`; if not, `error` says why.
inline bool valid_macro_string(std::string_view s, macro_context ctx, std::string& error) {
    std::vector<detail::macro_token> tokens;
    return detail::tokenize(s, ctx, tokens, error);
}

/// Whether `s` is a domain-spec (§7.1): a macro-string that ends in a macro or in "." and a
/// toplabel, a final dot allowed; if not, `error` says why. So "a:museum" and "a:example.123"
/// are refused, as the grammar refuses them.
inline bool valid_domain_spec(std::string_view s, std::string& error) {
    std::vector<detail::macro_token> tokens;
    if (s.empty()) return error = "empty domain-spec", false;
    if (!detail::tokenize(s, macro_context::domain, tokens, error)) return false;
    // A fixed expansion (%% %_ %-) is a macro-expand too, though it ends no real name.
    const detail::macro_token& last = tokens.back();
    const bool fixed = !last.is_macro && (last.literal == "%" || last.literal == " " || last.literal == "%20") &&
                       s.size() >= 2 && s[s.size() - 2] == '%';
    if (last.is_macro || fixed) return true;
    std::string_view tail = last.literal;
    if (tail.back() == '.') tail.remove_suffix(1);
    const std::size_t dot = tail.rfind('.');
    if (dot == std::string_view::npos || !detail::is_toplabel(tail.substr(dot + 1)))
        return error = "domain-spec does not end in a top-level label", false;
    return true;
}

/// `s` expanded for a check (§7.3), or nothing when it breaks the grammar for `ctx`. The output
/// is at most a few times the input's size times the longest value: nothing repeats a value.
inline std::optional<std::string> expand(std::string_view s, const macro_values& values, macro_context ctx) {
    std::vector<detail::macro_token> tokens;
    std::string error;
    if (!detail::tokenize(s, ctx, tokens, error)) return std::nullopt;
    std::string out;
    for (const detail::macro_token& t : tokens) {
        if (!t.is_macro) {
            out += t.literal;
            continue;
        }
        std::string value = detail::transform(detail::letter_value(t.letter, values), t);
        out += t.url_escape ? detail::url_escape(value) : value;
    }
    return out;
}

/// A domain-spec expanded into the name to look up: §7.3's truncation from the left, whole
/// labels at a time, until at most 253 octets remain; the final dot dropped. Nothing when the
/// spec breaks the grammar.
inline std::optional<std::string> expand_domain(std::string_view spec, const macro_values& values) {
    auto name = expand(spec, values, macro_context::domain);
    if (!name) return name;
    if (!name->empty() && name->back() == '.') name->pop_back();
    while (name->size() > max_domain_length) {
        const std::size_t dot = name->find('.');
        if (dot == std::string::npos) {
            name->clear();
            break;
        }
        name->erase(0, dot + 1);
    }
    return name;
}

/// Whether `name` can be asked of the DNS: labels of 1 to 63 octets, 253 octets in all, a final
/// dot allowed; visible ASCII only. At least two labels when `multi_label` (§4.3's domain).
constexpr bool valid_domain_name(std::string_view name, bool multi_label = false) noexcept {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > max_domain_length) return false;
    std::size_t label = 0, labels = 1;
    for (const char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            ++labels;
            continue;
        }
        if (c <= 0x20 || c >= 0x7F) return false;
        if (++label > 63) return false;
    }
    return label > 0 && (!multi_label || labels >= 2);
}

/// @}
} // namespace grey::dns::spf
