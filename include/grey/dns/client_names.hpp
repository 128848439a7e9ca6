// grey/dns/client_names.hpp — what is known of a client's host names: the name its address
// resolves to, and whether that name resolves back to the address (Postfix's client_name and
// reverse_client_name). What is not known is said with Postfix's own keywords, which XCLIENT,
// XFORWARD and the policy protocol carry as they are. No I/O.
#pragma once

#include <string>
#include <string_view>

namespace grey::dns {
/// @addtogroup group_server
/// @{

/// Postfix's keyword for a name (or other value) that is not known.
inline constexpr std::string_view unavailable = "[UNAVAILABLE]";
/// Postfix's keyword for a name whose look-up failed for now.
inline constexpr std::string_view temporarily_unavailable = "[TEMPUNAVAIL]";

/// A client's host names, as Postfix's smtpd knows them.
struct client_names {
    std::string name;          ///< verified, or "[UNAVAILABLE]" / "[TEMPUNAVAIL]"
    std::string reverse_name;  ///< as the reverse look-up gave it, or the same keywords

    /// The verified name; "" when there is none (what a whitelist matches names against).
    std::string_view verified() const noexcept {
        return name == unavailable || name == temporarily_unavailable ? std::string_view{} : std::string_view(name);
    }
};

/// @}
} // namespace grey::dns
