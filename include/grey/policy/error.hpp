// grey/policy/error.hpp — what can be wrong with the bytes a Postfix policy client sends
// (SMTPD_POLICY_README, "Protocol description"). Each is a reason to close the connection
// without an answer, as the README asks of a server in trouble: Postfix then logs it and
// retries the request on a new connection, or applies smtpd_policy_service_default_action.
#pragma once

#include <string>
#include <system_error>

namespace grey::policy {
/// @addtogroup group_policy
/// @{

/// What is wrong with a policy client's bytes; each closes its connection.
enum class error {
    line_too_long = 1,    ///< one name=value line longer than request_limits::max_line
    too_many_attributes,  ///< more lines in one request than request_limits::max_attributes
    request_too_large,    ///< more octets in one request than request_limits::max_request
    malformed_attribute,  ///< a line with no '=' or an empty name
    nul_byte,             ///< NUL, which no attribute may contain
};

/// @}
} // namespace grey::policy

namespace grey::detail {
class policy_error_category : public std::error_category {
  public:
    const char* name() const noexcept override { return "grey.policy"; }
    std::string message(int ev) const override {
        using grey::policy::error;
        switch (static_cast<error>(ev)) {
        case error::line_too_long: return "policy request line too long";
        case error::too_many_attributes: return "too many attributes in a policy request";
        case error::request_too_large: return "policy request too large";
        case error::malformed_attribute: return "malformed attribute in a policy request (not name=value)";
        case error::nul_byte: return "NUL byte in a policy request";
        }
        return "unknown policy error";
    }
};
} // namespace grey::detail

namespace grey::policy {
/// @addtogroup group_policy
/// @{

/// The category of policy::error ("grey.policy").
inline const std::error_category& error_category() noexcept {
    static const grey::detail::policy_error_category category;
    return category;
}

/// Makes a policy::error an std::error_code, which Grey's other codes compare with.
inline std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), error_category()}; }

/// @}
} // namespace grey::policy

/// @cond
template <>
struct std::is_error_code_enum<grey::policy::error> : std::true_type {};
/// @endcond
