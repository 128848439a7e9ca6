// grey/redis/resp.hpp — Redis's wire format (RESP) both ways: commands out, replies in.
//
// hiredis does the formatting and the parsing; Grey does the I/O (connection.hpp), so only
// these two helpers and the reply's copy touch hiredis's structures. A reply is copied out
// of hiredis's tree into plain strings and vectors at once, so that hiredis's memory never
// crosses a suspension. Link grey::redis (hiredis) to use it.
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "error.hpp"

namespace grey::redis {
/// @addtogroup group_greylist
/// @{

/// A command in RESP, formatted by hiredis; empty if it cannot be. Callers keep it in a
/// named variable across the co_await: GCC 12 mis-destroys temporaries and by-value
/// parameters that live across a suspension.
template <class... Args>
std::string command(const Args&... args) {
    const std::string_view parts[] = {std::string_view(args)...};
    const char* argv[sizeof...(Args)];
    std::size_t lengths[sizeof...(Args)];
    for (std::size_t i = 0; i < sizeof...(Args); ++i) argv[i] = parts[i].data(), lengths[i] = parts[i].size();
    char* formatted = nullptr;
    const int n = redisFormatCommandArgv(&formatted, int(sizeof...(Args)), argv, lengths);
    if (n < 0) return {};
    std::string out(formatted, static_cast<std::size_t>(n));
    redisFreeCommand(formatted);
    return out;
}

/// A reply, copied out of hiredis's structure.
struct reply {
    int type = 0;               ///< REDIS_REPLY_STRING, _INTEGER, _ARRAY, _NIL, _ERROR, _STATUS
    long long integer = 0;      ///< for REDIS_REPLY_INTEGER
    std::string text;           ///< for strings, status and error replies
    std::vector<reply> elements;  ///< for REDIS_REPLY_ARRAY

    /// A copy of hiredis's reply `r` and of all its elements.
    static reply copy(const redisReply& r) {
        reply out{r.type, r.integer, {}, {}};
        if (r.str) out.text.assign(r.str, r.len);
        for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(copy(*r.element[i]));
        return out;
    }
};

/// What an error reply, or a reply of the wrong type, means.
inline std::error_code reply_error(const reply& r) {
    if (r.type != REDIS_REPLY_ERROR) return redis_errc::unexpected_reply;
    // Redis's error replies start with a code word: the ones a store meets in production,
    // each its own diagnostic.
    static constexpr std::pair<std::string_view, redis_errc> known[] = {
        {"NOAUTH", redis_errc::auth_required},    {"WRONGPASS", redis_errc::auth_failed},
        {"READONLY", redis_errc::not_master},     {"LOADING", redis_errc::loading},
        {"BUSY", redis_errc::busy},               {"OOM", redis_errc::out_of_memory},
        {"MASTERDOWN", redis_errc::master_down},  {"CLUSTERDOWN", redis_errc::cluster_down},
        {"TRYAGAIN", redis_errc::try_again},
    };
    const std::string_view word = std::string_view(r.text).substr(0, r.text.find(' '));
    for (const auto& [code, e] : known)
        if (word == code) return e;
    // A script's own failure ("ERR user_script:12: ..." in Redis 7, "ERR Error running script"
    // before it).
    if (r.text.find("script") != std::string::npos) return redis_errc::script_error;
    return redis_errc::unexpected_reply;
}

/// @}
} // namespace grey::redis
