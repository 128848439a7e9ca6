// grey/protocol.hpp — what ServerCore<Protocol> asks of its Protocol, as a concept: one object
// per connection, built from the session_context ServerCore hands it, whose run() is the whole
// session. MailHandler and ConcreteMailHandler model it; so may any other line protocol.
//
// ServerCore checks each requirement in a static_assert of its own, so a type that misses one
// is named in a single line that says which, instead of a page of substitution failures.
#pragma once

#include <concepts>
#include <type_traits>

#include "config.hpp"
#include "detail/asio.hpp"
#include "session_context.hpp"

namespace grey {
/// @addtogroup group_server
/// @{

/// A Protocol that widens the configuration declares `using config_type = …;`, derived from
/// server_config; one that does not takes server_config itself.
template <class P>
concept declares_config_type = requires { typename P::config_type; };

/// The configuration a ServerCore<P> is constructed with: server_config.
template <class P>
struct protocol_config {
    using type = server_config;  ///< P declares no configuration of its own
};
/// The configuration a ServerCore<P> is constructed with: P's own config_type.
template <class P>
    requires declares_config_type<P>
struct protocol_config<P> {
    using type = typename P::config_type;  ///< derived from server_config, if P is a protocol
};

/// P can be built for a connection from the context ServerCore gives it.
template <class P>
concept session_constructible = std::constructible_from<P, session_context>;

/// P's run() is the session: an awaitable that ends when the session does.
template <class P>
concept runs_session = requires(P& p) {
    { p.run() } -> std::same_as<asio::awaitable<void>>;
};

/// P's configuration, if it declares one, is a server_config ServerCore can read and copy.
template <class P>
concept configurable = !declares_config_type<P> ||
                       (std::derived_from<typename P::config_type, server_config> &&
                        std::move_constructible<typename P::config_type>);

/// What ServerCore<P> needs of P.
template <class P>
concept protocol = session_constructible<P> && runs_session<P> && configurable<P>;

/// @}
} // namespace grey
