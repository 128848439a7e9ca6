#include <grey/result.hpp>

#include <doctest/doctest.h>

#include <string>

using grey::errc;
using grey::result;

TEST_CASE("result holds a value or an error code, like std::expected") {
    result<std::string> ok = std::string("value");
    REQUIRE(ok.has_value());
    CHECK(*ok == "value");
    CHECK(ok->size() == 5);
    CHECK_FALSE(ok.error());

    result<std::string> failed = errc::bad_sender;
    CHECK_FALSE(failed);
    CHECK(failed.error() == errc::bad_sender);
    CHECK(failed.error().category().name() == std::string("grey"));
    CHECK(failed.error().message() == "bad sender address");

    result<void> done;
    CHECK(done);
    result<void> not_done = errc::timeout;
    CHECK(not_done.error() == errc::timeout);
}

TEST_CASE("Grey's error codes compare with std::error_code") {
    const std::error_code ec = grey::make_error_code(errc::upstream_closed);
    CHECK(ec == errc::upstream_closed);
    CHECK(ec != errc::upstream_timeout);
    CHECK(ec != std::make_error_code(std::errc::timed_out));
}
