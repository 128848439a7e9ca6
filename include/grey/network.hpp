// grey/network.hpp — an IPv4 or IPv6 network, for the lists of addresses a server trusts: the
// greylist's allowed senders, the sources allowed to send a PROXY protocol header. No I/O.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include <asio/ip/address.hpp>

#include "result.hpp"

namespace grey {
/// @addtogroup group_server
/// @{

/// `a`, or the IPv4 address it maps when it is an IPv4-mapped IPv6 address (the prefix 0:0:0:0:0:ffff):
/// an IPv4 client seen through a dual-stack socket is the IPv4 client it is.
inline asio::ip::address unmapped(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

/// An IPv4 or IPv6 network in CIDR notation: "192.0.2.0/24", "2001:db8::/32", or one address.
class network {
  public:
    /// Reads "address/prefix", or one address alone (a prefix of 32 or 128). errc::syntax_error
    /// for anything else, a prefix longer than the address family's included.
    static result<network> parse(std::string_view text) {
        const auto slash = text.find('/');
        asio::error_code ec;
        const auto address = asio::ip::make_address(std::string(text.substr(0, slash)), ec);
        if (ec) return errc::syntax_error;
        const unsigned max = address.is_v4() ? 32 : 128;
        unsigned prefix = max;
        if (slash != std::string_view::npos) {
            const auto digits = text.substr(slash + 1);
            if (digits.empty() || digits.size() > 3) return errc::syntax_error;
            prefix = 0;
            for (char c : digits) {
                if (c < '0' || c > '9') return errc::syntax_error;
                prefix = prefix * 10 + unsigned(c - '0');
            }
            if (prefix > max) return errc::syntax_error;
        }
        return network(address, prefix);
    }

    /// Whether `a` is in the network. An IPv4-mapped IPv6 address counts as the IPv4 address
    /// it maps, so a list of IPv4 networks still matches clients of a dual-stack socket.
    bool contains(const asio::ip::address& a) const {
        if (a.is_v4() != address_.is_v4()) {
            const asio::ip::address v4 = unmapped(a);
            return v4 != a && contains(v4);
        }
        const auto lhs = bytes(a), rhs = bytes(address_);
        for (unsigned bit = 0; bit < prefix_; bit += 8) {
            const unsigned take = prefix_ - bit >= 8 ? 8 : prefix_ - bit;
            const unsigned mask = (0xFFu << (8 - take)) & 0xFFu;
            if ((lhs[bit / 8] & mask) != (rhs[bit / 8] & mask)) return false;
        }
        return true;
    }

    /// Whether the address written in `text` is in the network; false when it is no address.
    bool contains(std::string_view text) const {
        asio::error_code ec;
        const auto a = asio::ip::make_address(std::string(text), ec);
        return !ec && contains(a);
    }

    /// The same address and prefix as parsed: "192.0.2.1/24" and "192.0.2.0/24" differ.
    friend bool operator==(const network&, const network&) = default;

  private:
    network(asio::ip::address a, unsigned prefix) : address_(a), prefix_(prefix) {}

    static asio::ip::address_v6::bytes_type bytes(const asio::ip::address& a) {
        asio::ip::address_v6::bytes_type b{};
        if (a.is_v4()) {
            const auto v4 = a.to_v4().to_bytes();
            std::copy(v4.begin(), v4.end(), b.begin());
        } else {
            b = a.to_v6().to_bytes();
        }
        return b;
    }

    asio::ip::address address_;
    unsigned prefix_;
};

/// @}
} // namespace grey
