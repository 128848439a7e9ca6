// grey/greylist/open_store.hpp — the store factory the programs share: a greylist store from the
// words a user writes in --store or greylist.store ("memory", "sqlite:PATH", a Redis URL), so
// that greylist_server and greylist_admin read the same words the same way.
//
// The SQLite and Redis stores need their libraries (grey::sqlite, grey::redis), and a program
// that uses this factory must not have to link both. So each store is compiled in only where its
// target is linked: grey::sqlite defines GREY_WITH_SQLITE and grey::redis GREY_WITH_REDIS
// (CMakeLists.txt). A store that was left out is still recognised by its words, and asking for
// it throws "this program was built without the Redis store" instead of "unknown store", so the
// user learns that the program, not the spelling, is at fault.
#pragma once

#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "memory_store.hpp"
#include "redis_settings.hpp"
#include "store.hpp"
#if defined(GREY_WITH_SQLITE)
#include "sqlite_store.hpp"
#endif
#if defined(GREY_WITH_REDIS)
#include "redis_store.hpp"
#endif

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// What open_store() needs beyond the store's description.
struct store_options {
    /// Options of a Redis store in the words of a Redis URL's query (grey.toml's
    /// [greylist.redis]); the URL's own win over them.
    std::map<std::string, std::string> redis{};
    /// An environment variable holding the Redis password, read when neither the URL nor
    /// `redis` gives a password or a password file, so that the password is on no command line
    /// and in no file that others may read. Empty: none is read.
    std::string redis_password_variable = "GREY_REDIS_PASSWORD";
};

/// The description of the stores open_store() knows, for messages.
inline constexpr std::string_view store_forms =
    "memory, sqlite:PATH, redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], redis+unix:///PATH, "
    "redis-sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTERNAME[/DB] or "
    "redis-cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]";

/// The URL schemes of the Redis store.
inline constexpr std::string_view redis_schemes[] = {
    "redis://", "rediss://", "redis+unix://", "unix://", "redis-sentinel://", "rediss-sentinel://",
    "redis-cluster://", "rediss-cluster://"};

namespace detail {

/// A Redis store from its URL over `options` (redis_settings.hpp says what both may hold).
inline std::shared_ptr<store> open_redis_store(std::string_view url, const store_options& options) {
    redis_settings base;
    for (const auto& [key, value] : options.redis)
        if (auto e = apply_redis_option(base, key, value); !e.empty()) throw std::invalid_argument(e);
    auto parsed = parse_redis_url(url, std::move(base));
    if (!parsed)
        throw std::invalid_argument(
            fmt::format("bad Redis URL: {} (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTION=VALUE...], "
                        "redis+unix://[[USER]:PASSWORD@]/PATH[?db=N...] or "
                        "redis-sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTERNAME[/DB][?...] or "
                        "redis-cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][?...])",
                        parsed.error));
#if defined(GREY_WITH_REDIS)
    redis_settings& r = parsed.settings;
    if (r.password.empty() && r.password_file.empty() && !options.redis_password_variable.empty())
        if (const char* password = std::getenv(options.redis_password_variable.c_str())) r.password = password;
    return std::make_shared<redis_store>(std::move(r));
#else
    // The URL was checked first: a mistake in it is worth knowing before the program is rebuilt.
    throw std::invalid_argument("this program was built without the Redis store (link grey::redis)");
#endif
}

} // namespace detail

/// The store `spec` describes: "memory", "sqlite:PATH", or a Redis URL (redis://, rediss://,
/// redis+unix://, unix://, redis-sentinel://, rediss-sentinel://, redis-cluster://,
/// rediss-cluster://) over `options`. Throws std::invalid_argument when `spec` names no
/// store, names one this program was built without, or has a mistake; a store that cannot
/// open throws what its constructor throws (std::runtime_error).
inline std::shared_ptr<store> open_store(std::string_view spec, const store_options& options = {}) {
    if (spec == "memory") return std::make_shared<memory_store>();
    if (spec.starts_with("sqlite:") && spec.size() > 7) {
#if defined(GREY_WITH_SQLITE)
        return std::make_shared<sqlite_store>(std::string(spec.substr(7)));
#else
        throw std::invalid_argument("this program was built without the SQLite store (link grey::sqlite)");
#endif
    }
    for (std::string_view scheme : redis_schemes)
        if (spec.starts_with(scheme)) return detail::open_redis_store(spec, options);
    throw std::invalid_argument(fmt::format("unknown store '{}': use {}", spec, store_forms));
}

/// The kind of store `spec` describes, as open_store() reads it: "memory", "sqlite" or
/// "redis"; empty when it names none. For what is said of the store (grey_store_up's label),
/// never its path or URL, which may hold a password.
inline std::string_view store_kind(std::string_view spec) {
    if (spec == "memory") return "memory";
    if (spec.starts_with("sqlite:") && spec.size() > 7) return "sqlite";
    for (std::string_view scheme : redis_schemes)
        if (spec.starts_with(scheme)) return "redis";
    return {};
}

/// @}
} // namespace grey::greylist
