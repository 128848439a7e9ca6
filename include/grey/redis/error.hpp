// grey/redis/error.hpp — why a Redis connection could not answer, as std::error_code values.
//
// The system's own codes (connection refused, host not found, no such socket) pass through as
// they are; these are the failures only a Redis client knows of. They have their own category
// so that callers compare them like any other code, and so that the outage report prints the
// message below as it is. Needs nothing of hiredis: a caller may test for them without it.
#pragma once

#include <string>
#include <system_error>
#include <type_traits>

namespace grey::redis {
/// @addtogroup group_greylist
/// @{

/// Why a Redis connection could not answer, beyond the system's own codes (connection
/// refused, host not found, no such socket), which it passes on as they are. The message is
/// what the outage report says (`grey: greylist store unavailable: <message>`).
enum class redis_errc {
    auth_failed = 1,   ///< AUTH refused: wrong user or password, or the user is disabled
    auth_required,     ///< Redis wants AUTH (NOAUTH) and no password was configured
    select_failed,     ///< SELECT refused: the database number is beyond Redis's `databases`
    password_file,     ///< the password file could not be read
    tls_failed,        ///< the TLS handshake failed, or Redis's certificate did not verify
    connect_timeout,   ///< no usable connection within connect_timeout
    command_timeout,   ///< a command unanswered within command_timeout
    connection_lost,   ///< the connection broke: Redis stopped or restarted, or the network
    unexpected_reply,  ///< an error reply (OOM, READONLY...) or a reply of the wrong type
    protocol_error,    ///< bytes that are not RESP, or a reply no command asked for
    no_master,         ///< no sentinel answered with the master of the set
    not_master,        ///< the node the sentinels named is not (or no longer) a master (READONLY)
    loading,           ///< LOADING: Redis is still loading its data set after a start
    busy,              ///< BUSY: Redis is held by a script that runs too long
    out_of_memory,     ///< OOM: Redis refuses writes beyond its maxmemory
    master_down,       ///< MASTERDOWN: a replica that lost its link to its master
    cluster_down,      ///< CLUSTERDOWN: the cluster cannot serve the key's slot
    try_again,         ///< TRYAGAIN: the key's slot is being migrated
    script_error,      ///< the decision's script failed inside Redis
    too_many_redirections,  ///< a Redis Cluster sent the command on (MOVED, ASK) too many times
    sentinel_login,         ///< no sentinel named the master, and some refused Grey's login
};

namespace detail {
class redis_category : public std::error_category {
  public:
    const char* name() const noexcept override { return "grey.redis"; }
    std::string message(int ev) const override {
        switch (static_cast<redis_errc>(ev)) {
        case redis_errc::auth_failed: return "Redis refused AUTH: wrong user or password, or the user is disabled";
        case redis_errc::auth_required: return "Redis requires AUTH (NOAUTH) and no password is configured";
        case redis_errc::select_failed: return "Redis refused SELECT: no such database";
        case redis_errc::password_file: return "cannot read the Redis password file";
        case redis_errc::tls_failed: return "TLS handshake with Redis failed (or its certificate did not verify)";
        case redis_errc::connect_timeout: return "no connection to Redis within connect_timeout";
        case redis_errc::command_timeout: return "Redis did not answer within command_timeout";
        case redis_errc::connection_lost: return "connection to Redis lost";
        case redis_errc::unexpected_reply: return "Redis answered with an error or an unexpected reply";
        case redis_errc::protocol_error: return "Redis sent bytes that answer no command";
        case redis_errc::no_master: return "no Redis Sentinel named the master of the set (unreachable, or the set unknown to them)";
        case redis_errc::not_master: return "the Redis node is not a master (READONLY: a failover under way?)";
        case redis_errc::loading: return "Redis is loading its data set (LOADING)";
        case redis_errc::busy: return "Redis is busy running a script (BUSY)";
        case redis_errc::out_of_memory: return "Redis is out of memory and refuses writes (OOM: maxmemory)";
        case redis_errc::master_down: return "the Redis replica has lost its master (MASTERDOWN)";
        case redis_errc::cluster_down: return "the Redis Cluster cannot serve the key (CLUSTERDOWN)";
        case redis_errc::try_again: return "the key's Redis Cluster slot is being migrated (TRYAGAIN)";
        case redis_errc::script_error: return "Grey's decision script failed inside Redis";
        case redis_errc::too_many_redirections:
            return "the Redis Cluster redirected the command too many times (MOVED, ASK): its slots are moving";
        case redis_errc::sentinel_login:
            return "no Redis Sentinel named the master of the set: they refused the login "
                   "(sentinel_user, sentinel_password)";
        }
        return "unknown Redis error";
    }
};
} // namespace detail

/// The category of redis_errc ("grey.redis").
inline const std::error_category& redis_category() noexcept {
    static const detail::redis_category category;
    return category;
}

/// Makes a redis_errc an std::error_code, which the system's codes compare with.
inline std::error_code make_error_code(redis_errc e) noexcept { return {static_cast<int>(e), redis_category()}; }

/// @}
} // namespace grey::redis

/// @cond
template <>
struct std::is_error_code_enum<grey::redis::redis_errc> : std::true_type {};
/// @endcond
