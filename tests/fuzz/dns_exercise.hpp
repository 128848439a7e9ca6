// exercise_dns(input): the fuzz checks of dns/message.hpp, for a libFuzzer entry to call. The
// input is read as a whole DNS response, and again as the sections behind a fixed header and
// question (counts from its first octets) so that the fuzzer reaches the records from any
// input. Any broken invariant aborts:
// - the parser reads only what it is given: the input copied to a buffer of its exact size
//   (ASan watches its end) gets the same answer, and so does every prefix, never a crash;
// - what parses is consistent: A and AAAA data of 4 and 16 octets, names within RFC 1035's
//   255 octets once escaped back (at most four characters an octet) and with no control
//   character or space, answers only of the type asked, a TTL within 2^31 - 1.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <grey/dns/message.hpp>

namespace grey_fuzz_dns {

inline void require(bool ok) {
    if (!ok) std::abort();
}

inline void check_name(std::string_view name) {
    require(name.size() <= 4 * 255);
    for (char c : name) require(static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f);
}

inline void check_message(const std::optional<grey::dns::message>& m) {
    using grey::dns::rr_type;
    if (!m) return;
    check_name(m->question);
    require(m->answer_ttl <= 0x7FFFFFFF);
    if (m->negative_ttl) require(*m->negative_ttl <= 0x7FFFFFFF);
    for (const auto& r : m->answers) {
        require(static_cast<std::uint16_t>(r.type) == m->question_type);
        require(r.ttl <= 0x7FFFFFFF && m->answer_ttl <= r.ttl);
        if (r.type == rr_type::a) require(r.data.size() == 4);
        if (r.type == rr_type::aaaa) require(r.data.size() == 16);
        if (r.type == rr_type::ptr || r.type == rr_type::cname || r.type == rr_type::mx) check_name(r.data);
    }
}

inline bool same(const std::optional<grey::dns::message>& a, const std::optional<grey::dns::message>& b) {
    if (!a || !b) return !a && !b;
    if (a->answers.size() != b->answers.size() || a->question != b->question || a->rcode != b->rcode) return false;
    for (std::size_t i = 0; i < a->answers.size(); ++i)
        if (a->answers[i].data != b->answers[i].data || a->answers[i].ttl != b->answers[i].ttl) return false;
    return a->negative_ttl == b->negative_ttl;
}

inline void parse_exact(std::span<const unsigned char> bytes, const std::optional<grey::dns::message>& expected) {
    const auto copy = std::make_unique<unsigned char[]>(bytes.size() + 1);  // +1: never a zero-size new
    if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
    const auto again = grey::dns::parse_message(std::span<const unsigned char>(copy.get(), bytes.size()));
    require(same(again, expected));
}

inline void exercise_dns(std::string_view input) {
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    const std::span<const unsigned char> whole(data, input.size());
    const auto m = grey::dns::parse_message(whole);
    check_message(m);
    parse_exact(whole, m);
    for (std::size_t n = 0; n < whole.size() && n < 600; n += 1 + n / 16) check_message(grey::dns::parse_message(whole.first(n)));

    // A response whose question is "a.test" of the type and counts the first octets say, the
    // rest of the input its sections: the fuzzer spends its time in records, not in headers.
    if (input.size() < 4) return;
    std::vector<unsigned char> packet = {0x12, 0x34, 0x81, static_cast<unsigned char>(data[0] & 0x0F),
                                         0, 1, 0, static_cast<unsigned char>(data[1] % 8),
                                         0, static_cast<unsigned char>(data[2] % 4), 0, 0,
                                         1, 'a', 4, 't', 'e', 's', 't', 0,
                                         0, static_cast<unsigned char>(data[3] % 32), 0, 1};
    packet.insert(packet.end(), data + 4, data + input.size());
    const auto framed = grey::dns::parse_message(packet);
    check_message(framed);
    parse_exact(packet, framed);
}

} // namespace grey_fuzz_dns

using grey_fuzz_dns::exercise_dns;
