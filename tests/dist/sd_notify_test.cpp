// examples/common/sd_notify.hpp against a real AF_UNIX datagram socket standing in for
// systemd's: a path, an abstract name ('@'), $NOTIFY_SOCKET unset, and names it must refuse.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "../../examples/common/sd_notify.hpp"

namespace {

/// A bound datagram socket that reads what was sent to it.
class listener {
  public:
    /// `name` is a path, or '@' and an abstract name, as $NOTIFY_SOCKET gives them.
    explicit listener(const std::string& name) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        name.copy(a.sun_path, name.size());
        if (name[0] == '@') a.sun_path[0] = '\0';
        auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
        REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&a), length) == 0);
    }
    ~listener() { ::close(fd_); }

    /// The next datagram, or "" when none comes within a second.
    std::string receive() const {
        timeval timeout{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        char buffer[4096];
        const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
        return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
    }

  private:
    int fd_ = -1;
};

std::string temporary_socket_path() {
    return (std::filesystem::temp_directory_path() / ("grey-notify-" + std::to_string(::getpid()))).string();
}

/// Sets $NOTIFY_SOCKET for one test, and restores it.
struct notify_socket_env {
    explicit notify_socket_env(const char* value) {
        if (const char* old = std::getenv("NOTIFY_SOCKET")) saved_ = old;
        if (value) ::setenv("NOTIFY_SOCKET", value, 1);
        else ::unsetenv("NOTIFY_SOCKET");
    }
    ~notify_socket_env() {
        if (saved_.empty()) ::unsetenv("NOTIFY_SOCKET");
        else ::setenv("NOTIFY_SOCKET", saved_.c_str(), 1);
    }
    std::string saved_;
};

} // namespace

TEST_CASE("sd_notify sends its state as one datagram to the socket path in NOTIFY_SOCKET") {
    const std::string path = temporary_socket_path();
    std::filesystem::remove(path);
    {
        listener systemd(path);
        notify_socket_env env(path.c_str());
        CHECK(examples::sd_notify("READY=1\nSTATUS=listening on 127.0.0.1:2525"));
        CHECK(systemd.receive() == "READY=1\nSTATUS=listening on 127.0.0.1:2525");
    }
    std::filesystem::remove(path);
}

TEST_CASE("sd_notify reaches an abstract-namespace socket when NOTIFY_SOCKET starts with '@'") {
    const std::string name = "@grey-notify-test-" + std::to_string(::getpid());
    listener systemd(name);
    notify_socket_env env(name.c_str());
    CHECK(examples::sd_notify("READY=1"));
    CHECK(systemd.receive() == "READY=1");
    SUBCASE("a path socket of the same name gets nothing: the leading NUL is the name's") {
        CHECK_FALSE(std::filesystem::exists(name));
    }
}

TEST_CASE("sd_notify is a no-op returning false without NOTIFY_SOCKET") {
    notify_socket_env env(nullptr);
    CHECK_FALSE(examples::sd_notify("READY=1"));
    notify_socket_env empty("");
    CHECK_FALSE(examples::sd_notify("READY=1"));
}

TEST_CASE("sd_notify_to refuses names that are neither a path nor an abstract name") {
    std::error_code ec;
    for (const char* bad : {"relative/socket", "@", "vsock:2:1234", "x"}) {
        CAPTURE(bad);
        CHECK_FALSE(examples::sd_notify_to(bad, "READY=1", ec));
        CHECK(ec == std::errc::invalid_argument);
    }
    const std::string too_long = "/" + std::string(sizeof(sockaddr_un::sun_path), 'a');
    CHECK_FALSE(examples::sd_notify_to(too_long, "READY=1", ec));
    CHECK(ec == std::errc::invalid_argument);
}

TEST_CASE("sd_notify_to reports a socket nobody listens on") {
    std::error_code ec;
    CHECK_FALSE(examples::sd_notify_to(temporary_socket_path() + "-absent", "READY=1", ec));
    CHECK(ec == std::errc::no_such_file_or_directory);
}

TEST_CASE("a reload is announced with RELOADING=1 and the monotonic time in microseconds") {
    const std::string state = examples::sd_reloading();
    REQUIRE(state.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
    const std::string usec = state.substr(state.find('=', 12) + 1);
    CHECK_FALSE(usec.empty());
    CHECK(usec.find_first_not_of("0123456789") == std::string::npos);
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    CHECK(std::stoull(usec) <= static_cast<unsigned long long>(now.tv_sec + 1) * 1000000ULL);
}
