// examples/common/privileges.hpp in this process: names resolved, refusals, and (as root) the
// effective-id switch around the files made at start. The drop for good is tested on the real
// program, in test_user.py: it cannot be undone in a test process.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <doctest/doctest.h>

#include "../../examples/common/privileges.hpp"

TEST_CASE("no --user is nothing to do") {
    examples::privileges p("", "");
    CHECK_FALSE(p.active());
    p.as_user();
    p.as_root();
    p.drop();
    CHECK(::geteuid() == ::getuid());
}

TEST_CASE("an unknown user or group, or --group alone, is refused before anything starts") {
    CHECK_THROWS_AS(examples::privileges("no-such-user-grey", ""), std::runtime_error);
    CHECK_THROWS_AS(examples::privileges("nobody", "no-such-group-grey"), std::runtime_error);
    CHECK_THROWS_AS(examples::privileges("", "nogroup"), std::runtime_error);
}

TEST_CASE("--user root, or oneself when not root, switches nothing") {
    if (::getuid() == 0) {
        examples::privileges p("root", "");
        CHECK_FALSE(p.active());
    } else {
        CHECK_THROWS_AS(examples::privileges("root", ""), std::runtime_error);
    }
}

TEST_CASE("as root, files made between as_user() and as_root() belong to the user") {
    if (::getuid() != 0) {
        MESSAGE("skipped: needs root");
        return;
    }
    examples::privileges p("nobody", "");
    REQUIRE(p.active());
    const auto dir = std::filesystem::temp_directory_path() / ("grey-privileges-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::filesystem::permissions(dir, std::filesystem::perms::all);
    p.as_user();
    const uid_t effective = ::geteuid();
    { std::ofstream(dir / "store") << "x"; }
    p.as_root();
    CHECK(::geteuid() == 0);
    CHECK(effective != 0);
    struct stat st {};
    REQUIRE(::stat((dir / "store").c_str(), &st) == 0);
    CHECK(st.st_uid == effective);
    std::filesystem::remove_all(dir);
}
