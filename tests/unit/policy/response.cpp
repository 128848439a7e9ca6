#include <grey/policy/response.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace std::chrono_literals;
using grey::policy::expand_text;

TEST_CASE("Each answer is one action attribute and an empty line") {
    CHECK(grey::policy::dunno() == "action=DUNNO\n\n");
    CHECK(grey::policy::defer_if_permit("Greylisted, please try again later") ==
          "action=DEFER_IF_PERMIT Greylisted, please try again later\n\n");
    CHECK(grey::policy::defer_if_permit("") == "action=DEFER_IF_PERMIT\n\n");
    CHECK(grey::policy::prepend("X-Greylist: delayed 301 seconds by Grey at mx.example; Tue, 24 Nov 2026 22:12:44 +0000") ==
          "action=PREPEND X-Greylist: delayed 301 seconds by Grey at mx.example; Tue, 24 Nov 2026 22:12:44 +0000\n\n");
}

TEST_CASE("An answer's action word is read back for counting, without its text") {
    using grey::policy::action_of;
    CHECK(action_of(grey::policy::dunno()) == "DUNNO");
    CHECK(action_of(grey::policy::defer_if_permit("Greylisted, please try again later")) == "DEFER_IF_PERMIT");
    CHECK(action_of(grey::policy::defer_if_permit("")) == "DEFER_IF_PERMIT");
    CHECK(action_of(grey::policy::reject("5.7.1 refused")) == "550");
    CHECK(action_of(grey::policy::prepend("X-Greylist: delayed")) == "PREPEND");
    CHECK(action_of("garbage").empty());
}

TEST_CASE("A CR, LF or NUL in a configured text cannot end the answer early") {
    const std::string text = std::string("a\nb\rc\0d\n\ne", 10);
    CHECK(grey::policy::defer_if_permit(text) == "action=DEFER_IF_PERMIT a b c d  e\n\n");
    CHECK(grey::policy::prepend("X-A: 1\r\nX-B: 2") == "action=PREPEND X-A: 1  X-B: 2\n\n");
}

TEST_CASE("Greylisting texts take Postgrey's %r (recipient domain) and %s (seconds to wait)") {
    CHECK(expand_text("Greylisted, see http://postgrey.schweikert.ch/help/%r.html", "example.com", 300s) ==
          "Greylisted, see http://postgrey.schweikert.ch/help/example.com.html");
    CHECK(expand_text("try again in %s seconds", "example.com", 299s) == "try again in 299 seconds");
    CHECK(expand_text("%r %r %s%%", "d.example", 5s) == "d.example d.example 5%");
    SUBCASE("a negative wait is 0; other % sequences stay as they are") {
        CHECK(expand_text("%s", "", -3s) == "0");
        CHECK(expand_text("100% sure %x %", "", 0s) == "100% sure %x %");
    }
}
