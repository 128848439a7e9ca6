// grey/upstream/identity_policy.hpp — how the upstream learns who the client is: the choice
// server_config holds (what each choice does: identity.hpp).
#pragma once

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// How the upstream learns who the client is (server_config::upstream_identity).
enum class identity_policy {
    none,       ///< the upstream sees Grey as the client
    xclient,    ///< XCLIENT when the upstream offers it, else nothing
    xforward,   ///< XFORWARD when the upstream offers it, else nothing
    automatic,  ///< XCLIENT when the upstream offers it with ADDR, else XFORWARD, else nothing
};

/// @}
} // namespace grey::upstream
