// grey/server/proxy_header.hpp — reading the PROXY header (proxy_protocol.hpp) that opens a
// connection from a trusted load balancer, off the socket itself.
//
// The header is peeked at, and only its own octets are taken off the socket: the session that
// follows reads the client's first octets itself, through whatever stream it builds (plain, or
// TLS later), and no buffer has to be handed over.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "../detail/asio.hpp"
#include "../proxy_protocol.hpp"

namespace grey::server {
/// @addtogroup group_server
/// @{

/// The PROXY header at the start of `socket`, read into `room` (at least
/// proxy::default_max_v2_length octets); none when the connection closed, was closed (a
/// deadline), or sent something that is no valid header.
inline asio::awaitable<std::optional<proxy::header>> read_proxy_header(asio::ip::tcp::socket& socket,
                                                                       std::span<char> room) {
    std::size_t taken = 0;
    for (;;) {
        auto [wait_ec] = co_await socket.async_wait(asio::ip::tcp::socket::wait_read, detail::use_nothrow);
        if (wait_ec) co_return std::nullopt;
        asio::error_code ec;
        const std::size_t seen =
            socket.receive(asio::buffer(room.data() + taken, room.size() - taken), asio::ip::tcp::socket::message_peek, ec);
        if (ec || seen == 0) co_return std::nullopt;
        const auto parsed = proxy::parse_header(std::string_view(room.data(), taken + seen));
        if (!parsed) co_return std::nullopt;
        // Incomplete: all that is there is header, and is taken. Complete: its rest only.
        const std::size_t take = *parsed ? (*parsed)->length - taken : seen;
        if (asio::read(socket, asio::buffer(room.data() + taken, take), ec) != take) co_return std::nullopt;
        taken += take;
        if (*parsed) co_return **parsed;
    }
}

/// @}
} // namespace grey::server
