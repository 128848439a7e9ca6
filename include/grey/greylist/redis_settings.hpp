// grey/greylist/redis_settings.hpp — the Redis store's settings are the Redis client's
// (redis/settings.hpp), named here too, where the store's users have always found them.
#pragma once

#include "../redis/settings.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

using redis::apply_redis_option;    ///< see redis/settings.hpp
using redis::check_redis_settings;  ///< see redis/settings.hpp
using redis::describe;              ///< see redis/settings.hpp
using redis::parse_redis_url;       ///< see redis/settings.hpp
using redis::redis_settings;        ///< see redis/settings.hpp
using redis::redis_url;             ///< see redis/settings.hpp

/// @}
} // namespace grey::greylist
