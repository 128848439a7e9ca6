// grey/dns/reverse_name.hpp — the name under which an address's PTR records live: in-addr.arpa
// (RFC 1035 §3.5) and ip6.arpa (RFC 3596 §2.5). An IPv4 address that an IPv6 socket mapped is
// looked up as the IPv4 address it is. No I/O.
#pragma once

#include <string>

#include <asio/ip/address.hpp>

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// "4.3.2.1.in-addr.arpa" for 1.2.3.4; an IPv6 address's 32 nibbles in reverse, dot-separated,
/// then "ip6.arpa".
inline std::string reverse_name(const asio::ip::address& address) {
    std::string name;
    if (address.is_v4() || (address.is_v6() && address.to_v6().is_v4_mapped())) {
        const auto v4 = address.is_v4() ? address.to_v4() : asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
        const auto b = v4.to_bytes();
        for (int i = 3; i >= 0; --i) name += std::to_string(b[static_cast<std::size_t>(i)]) + '.';
        return name + "in-addr.arpa";
    }
    constexpr char hex[] = "0123456789abcdef";
    const auto b = address.to_v6().to_bytes();
    for (int i = 15; i >= 0; --i) {
        const unsigned octet = b[static_cast<std::size_t>(i)];
        name += hex[octet & 0xF];
        name += '.';
        name += hex[octet >> 4];
        name += '.';
    }
    return name + "ip6.arpa";
}

/// @}
} // namespace grey::dns
