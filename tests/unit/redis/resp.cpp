#include <grey/greylist/redis_store.hpp>
#include <grey/redis/error.hpp>
#include <grey/redis/resp.hpp>

#include <doctest/doctest.h>

#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

using namespace grey::redis;

TEST_CASE("Commands are formatted as RESP arrays of bulk strings, binary-safe") {
    CHECK(command("PING") == "*1\r\n$4\r\nPING\r\n");
    CHECK(command("GET", "grey:t:k") == "*2\r\n$3\r\nGET\r\n$8\r\ngrey:t:k\r\n");
    const std::string with_tab_and_nul("a\tb\0c", 5);
    CHECK(command("SET", with_tab_and_nul, "") == "*3\r\n$3\r\nSET\r\n$5\r\n" + with_tab_and_nul + "\r\n$0\r\n\r\n");
}

namespace {
const std::string redis_errc_message_unknown = "unknown Redis error";
}

TEST_CASE("Error replies name what Redis refused; other unexpected replies are unexpected_reply") {
    CHECK(reply_error({REDIS_REPLY_ERROR, 0, "NOAUTH Authentication required.", {}}) == redis_errc::auth_required);
    CHECK(reply_error({REDIS_REPLY_ERROR, 0, "WRONGPASS invalid username-password pair", {}}) == redis_errc::auth_failed);
    // Redis 7.0's own texts.
    const std::pair<const char*, redis_errc> known[] = {
        {"OOM command not allowed when used memory > 'maxmemory'.", redis_errc::out_of_memory},
        {"LOADING Redis is loading the dataset in memory", redis_errc::loading},
        {"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", redis_errc::busy},
        {"READONLY You can't write against a read only replica.", redis_errc::not_master},
        {"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", redis_errc::master_down},
        {"CLUSTERDOWN The cluster is down", redis_errc::cluster_down},
        {"TRYAGAIN Multiple keys request during rehashing of slot", redis_errc::try_again},
        {"ERR user_script:3: Script attempted to access nonexistent global variable 'x' script: 9f2e", redis_errc::script_error},
        {"ERR Error running script (call to f_9f2e): @user_script:3: attempt to compare nil", redis_errc::script_error},
        {"ERR unknown command 'EVALSHA'", redis_errc::unexpected_reply},
        {"BUSYKEY Target key name already exists.", redis_errc::unexpected_reply},  // a word, not a prefix
    };
    for (const auto& [text, code] : known) {
        CAPTURE(text);
        const std::error_code e = reply_error({REDIS_REPLY_ERROR, 0, text, {}});
        CHECK(e == code);
        CHECK(e.message() != redis_errc_message_unknown);
    }
    CHECK(reply_error({REDIS_REPLY_INTEGER, 1, {}, {}}) == redis_errc::unexpected_reply);
}

TEST_CASE("The Redis errors keep their category and messages under both namespaces") {
    static_assert(std::is_same_v<grey::greylist::redis_errc, grey::redis::redis_errc>);
    const std::error_code e = grey::greylist::redis_errc::connection_lost;
    CHECK(e.category().name() == std::string("grey.redis"));
    CHECK(&e.category() == &grey::greylist::redis_category());
    CHECK(e.message() == "connection to Redis lost");
    CHECK(e != std::error_code(static_cast<int>(redis_errc::connection_lost), std::generic_category()));
}
