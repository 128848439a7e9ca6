// grey/dns/message.hpp — a DNS response read with no I/O (RFC 1035 §4): the records that answer
// its question, following the CNAME chain from the name asked, and how long a negative answer
// may be kept (RFC 2308 §5). Every length is checked against the octets given, a compressed
// name may only point backwards and has a bounded number of hops (a pointer loop is malformed,
// never an endless loop), so the parser can be fed anything: tests/fuzz does.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// The record types Grey asks for (RFC 1035 §3.2.2, RFC 3596 for AAAA).
enum class rr_type : std::uint16_t {
    a = 1,       ///< an IPv4 address
    ns = 2,      ///< a name server
    cname = 5,   ///< an alias
    soa = 6,     ///< the zone's start of authority
    ptr = 12,    ///< a name for an address (the reverse tree)
    mx = 15,     ///< a mail exchanger
    txt = 16,    ///< text, as SPF and DNSBLs publish it
    aaaa = 28,   ///< an IPv6 address
};

/// One record of the answer, its RDATA decoded.
struct record {
    rr_type type = rr_type::a;  ///< its type: the question's, or CNAME when that was asked
    std::uint32_t ttl = 0;      ///< seconds it may be kept
    /// A, AAAA: the 4 or 16 address octets in network order. CNAME, PTR, MX: the name, in
    /// presentation form without the final dot. TXT: its character-strings concatenated, as
    /// RFC 7208 §3.3 reads a record split in several. Any other type: the RDATA as it came.
    std::string data;
    std::uint16_t preference = 0;  ///< MX only: lower is preferred
};

/// What a response says.
struct message {
    std::uint8_t rcode = 0;                ///< 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...
    std::string question;                  ///< the name asked, in presentation form
    std::uint16_t question_type = 0;       ///< the type asked
    std::vector<record> answers;           ///< records of the type asked, at the end of the CNAME chain
    std::uint32_t answer_ttl = 0;          ///< the least TTL of those records and of the chain to them
    std::optional<std::uint32_t> negative_ttl;  ///< RFC 2308 §5: min(SOA TTL, SOA MINIMUM), if an SOA came
};

namespace detail {

inline constexpr std::size_t max_name_octets = 255;  // RFC 1035 §3.1
inline constexpr int max_pointer_hops = 64;          // more than any honest name needs (127 labels)
inline constexpr int max_chain = 16;                 // CNAMEs followed, as resolvers bound them

// A cursor that fails, and stays failed, instead of reading past the end.
struct reader {
    std::span<const unsigned char> p;
    std::size_t at = 0;
    bool ok = true;

    bool has(std::size_t n) const noexcept { return ok && at <= p.size() && p.size() - at >= n; }
    std::uint16_t u16() noexcept {
        if (!has(2)) return ok = false, 0;
        const auto v = static_cast<std::uint16_t>(p[at] << 8 | p[at + 1]);
        at += 2;
        return v;
    }
    std::uint32_t u32() noexcept {
        const std::uint32_t hi = u16(), lo = u16();
        return hi << 16 | lo;
    }
};

inline bool iequal(std::string_view a, std::string_view b) noexcept {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        return lower(x) == lower(y);
    });
}

// RFC 4343 §2.1 presentation: "." and "\" escaped, and any octet that is not a visible ASCII
// character as \DDD, so that no name read from the wire can smuggle a separator or a control
// character into a log line or a comparison.
inline void append_label(std::string& out, std::span<const unsigned char> label) {
    for (unsigned char c : label) {
        if (c == '.' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c <= 0x20 || c >= 0x7f) {
            out += '\\';
            out += static_cast<char>('0' + c / 100);
            out += static_cast<char>('0' + c / 10 % 10);
            out += static_cast<char>('0' + c % 10);
        } else {
            out += static_cast<char>(c);
        }
    }
}

// The (possibly compressed) name at r.at, which moves past its octets in place. Each pointer
// must point before itself: with the hop bound, that ends every loop.
inline std::optional<std::string> read_name(reader& r) {
    if (!r.ok) return std::nullopt;
    std::string out;
    std::size_t pos = r.at, octets = 0;
    bool jumped = false;
    for (int hops = 0;;) {
        if (pos >= r.p.size()) return std::nullopt;
        const unsigned len = r.p[pos];
        if ((len & 0xC0) == 0xC0) {
            if (pos + 1 >= r.p.size() || ++hops > max_pointer_hops) return std::nullopt;
            const std::size_t target = (len & 0x3F) << 8 | r.p[pos + 1];
            if (target >= pos) return std::nullopt;
            if (!jumped) r.at = pos + 2;
            jumped = true;
            pos = target;
            continue;
        }
        if (len & 0xC0) return std::nullopt;  // RFC 6891 §5: the extended label types are obsolete
        octets += len + 1;
        if (octets > max_name_octets) return std::nullopt;
        if (len == 0) {
            if (!jumped) r.at = pos + 1;
            return out;
        }
        if (r.p.size() - pos - 1 < len) return std::nullopt;
        if (!out.empty()) out += '.';
        append_label(out, r.p.subspan(pos + 1, len));
        pos += 1 + len;
    }
}

// One resource record, its RDATA still in the packet.
struct raw_record {
    std::string owner;
    std::uint16_t type = 0, klass = 0;
    std::uint32_t ttl = 0;
    std::size_t rdata = 0, rdlength = 0;
};

inline std::optional<raw_record> read_record(reader& r) {
    raw_record rr;
    auto owner = read_name(r);
    if (!owner) return std::nullopt;
    rr.owner = std::move(*owner);
    rr.type = r.u16();
    rr.klass = r.u16();
    rr.ttl = r.u32();
    if (rr.ttl > 0x7FFFFFFF) rr.ttl = 0;  // RFC 2181 §8: a TTL with the top bit set is zero
    rr.rdlength = r.u16();
    if (!r.has(rr.rdlength)) return std::nullopt;
    rr.rdata = r.at;
    r.at += rr.rdlength;
    return rr;
}

// A name that must fill the RDATA exactly (CNAME, PTR, MX's exchange after its preference).
inline std::optional<std::string> rdata_name(std::span<const unsigned char> packet, std::size_t at, std::size_t end) {
    reader r{packet, at};
    auto name = read_name(r);
    if (!name || r.at != end) return std::nullopt;
    return name;
}

// The RDATA of a record of a type Grey reads; nullopt if it is malformed.
inline std::optional<record> decode(std::span<const unsigned char> packet, const raw_record& rr) {
    record out;
    out.type = static_cast<rr_type>(rr.type);
    out.ttl = rr.ttl;
    const std::size_t end = rr.rdata + rr.rdlength;
    const auto rdata = packet.subspan(rr.rdata, rr.rdlength);
    switch (out.type) {
    case rr_type::a:
    case rr_type::aaaa:
        if (rr.rdlength != (out.type == rr_type::a ? 4u : 16u)) return std::nullopt;
        out.data.assign(rdata.begin(), rdata.end());
        return out;
    case rr_type::cname:
    case rr_type::ptr:
    case rr_type::ns: {
        auto name = rdata_name(packet, rr.rdata, end);
        if (!name) return std::nullopt;
        out.data = std::move(*name);
        return out;
    }
    case rr_type::mx: {
        if (rr.rdlength < 3) return std::nullopt;
        out.preference = static_cast<std::uint16_t>(rdata[0] << 8 | rdata[1]);
        auto name = rdata_name(packet, rr.rdata + 2, end);
        if (!name) return std::nullopt;
        out.data = std::move(*name);
        return out;
    }
    case rr_type::txt:
        // RFC 1035 §3.3.14: one or more <character-string>s, each a length octet and its octets.
        if (rr.rdlength == 0) return std::nullopt;
        for (std::size_t i = 0; i < rdata.size();) {
            const std::size_t n = rdata[i];
            if (rdata.size() - i - 1 < n) return std::nullopt;
            out.data.append(reinterpret_cast<const char*>(rdata.data() + i + 1), n);
            i += 1 + n;
        }
        return out;
    default:  // a type Grey does not read: its RDATA as it came
        out.data.assign(rdata.begin(), rdata.end());
        return out;
    }
}

// RFC 2308 §5: a negative answer lives as long as the SOA's TTL and its MINIMUM, the lesser.
inline std::optional<std::uint32_t> soa_negative_ttl(std::span<const unsigned char> packet, const raw_record& rr) {
    reader r{packet, rr.rdata};
    if (!read_name(r) || !read_name(r)) return std::nullopt;
    r.at += 16;  // serial, refresh, retry, expire
    const std::uint32_t minimum = r.u32();
    if (!r.ok || r.at != rr.rdata + rr.rdlength) return std::nullopt;
    return std::min(rr.ttl, minimum > 0x7FFFFFFF ? 0u : minimum);
}

} // namespace detail

/// Reads a whole DNS response; nullopt when it is malformed: truncated, a length past its end,
/// a name too long or looping, a record of the type asked whose RDATA does not parse, or not a
/// response to one question.
inline std::optional<message> parse_message(std::span<const unsigned char> packet) {
    using namespace detail;
    reader r{packet};
    message m;
    r.u16();  // id: libunbound matched it already
    const std::uint16_t flags = r.u16();
    const std::uint16_t qdcount = r.u16(), ancount = r.u16(), nscount = r.u16();
    r.u16();  // the additional section is not read
    if (!r.ok || !(flags & 0x8000) || qdcount != 1) return std::nullopt;
    m.rcode = static_cast<std::uint8_t>(flags & 0x0F);
    auto question = read_name(r);
    if (!question) return std::nullopt;
    m.question = std::move(*question);
    m.question_type = r.u16();
    r.u16();  // class
    if (!r.ok) return std::nullopt;

    std::vector<raw_record> answers;
    for (unsigned i = 0; i < ancount; ++i) {
        auto rr = read_record(r);
        if (!rr) return std::nullopt;
        if (rr->klass == 1) answers.push_back(std::move(*rr));
    }
    for (unsigned i = 0; i < nscount; ++i) {
        auto rr = read_record(r);
        if (!rr) return std::nullopt;
        if (rr->klass != 1 || rr->type != static_cast<std::uint16_t>(rr_type::soa)) continue;
        auto ttl = soa_negative_ttl(packet, *rr);
        if (!ttl) return std::nullopt;
        m.negative_ttl = m.negative_ttl ? std::min(*m.negative_ttl, *ttl) : *ttl;
    }

    // The records of the type asked, owned by the name asked or by the end of its CNAME chain
    // (RFC 1034 §3.6.2): records for other owners are not part of this answer.
    std::string owner = m.question;
    std::uint32_t ttl = 0xFFFFFFFF;
    for (int step = 0; step <= max_chain; ++step) {
        const raw_record* alias = nullptr;
        for (const raw_record& rr : answers) {
            if (!iequal(rr.owner, owner)) continue;
            if (rr.type == m.question_type) {
                auto rec = decode(packet, rr);
                if (!rec) return std::nullopt;
                ttl = std::min(ttl, rec->ttl);
                m.answers.push_back(std::move(*rec));
            } else if (rr.type == static_cast<std::uint16_t>(rr_type::cname) && !alias) {
                alias = &rr;
            }
        }
        if (!m.answers.empty() || !alias) break;
        auto target = decode(packet, *alias);
        if (!target) return std::nullopt;
        ttl = std::min(ttl, target->ttl);
        owner = std::move(target->data);
    }
    m.answer_ttl = m.answers.empty() ? 0 : ttl;
    return m;
}

/// @}
} // namespace grey::dns
