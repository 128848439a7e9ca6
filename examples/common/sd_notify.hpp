// examples/common/sd_notify.hpp — tells systemd how a Type=notify service is doing, without
// libsystemd: the documented protocol (sd_notify(3), "NOTIFY_SOCKET") is one datagram of
// newline-separated VARIABLE=VALUE assignments to the AF_UNIX socket named in $NOTIFY_SOCKET,
// an abstract-namespace one when the name starts with '@'. Outside systemd the variable is
// unset and every call is a no-op, so the programs call it unconditionally.
//
//   examples::sd_notify("READY=1\nSTATUS=listening on 127.0.0.1:2525");
//   examples::sd_notify(examples::sd_reloading());   // on SIGHUP, then READY=1 when done
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

namespace examples {

/// Sends `state` to the socket named `socket_name` (a path, or '@' and an abstract name).
/// Returns false with `ec` set when the name is unusable or the send fails.
inline bool sd_notify_to(std::string_view socket_name, std::string_view state, std::error_code& ec) {
    ec.clear();
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    // A name must fit, and be a path or an abstract name ("vsock:" and relative names, which
    // newer systemd versions may pass to containers, are not for a service on this host).
    if (socket_name.size() < 2 || socket_name.size() > sizeof(address.sun_path) ||
        (socket_name[0] != '/' && socket_name[0] != '@')) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return false;
    }
    socket_name.copy(address.sun_path, socket_name.size());
    if (address.sun_path[0] == '@') address.sun_path[0] = '\0';
    // An abstract name is exactly as long as given; a path is NUL-terminated when it fits.
    auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_name.size());
    if (socket_name[0] == '/' && socket_name.size() < sizeof(address.sun_path)) ++length;

    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ec = std::error_code(errno, std::system_category());
        return false;
    }
    // One datagram: systemd reads each as a whole set of assignments.
    const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                  reinterpret_cast<const sockaddr*>(&address), length);
    if (sent < 0) ec = std::error_code(errno, std::system_category());
    ::close(fd);
    if (!ec && static_cast<std::size_t>(sent) != state.size()) ec = std::make_error_code(std::errc::message_size);
    return !ec;
}

/// Sends `state` to $NOTIFY_SOCKET. Returns false when there is none (not run by systemd, or
/// not as Type=notify) or the send failed; a service carries on either way.
inline bool sd_notify(std::string_view state) {
    const char* socket_name = std::getenv("NOTIFY_SOCKET");
    if (!socket_name || !*socket_name) return false;
    std::error_code ec;
    return sd_notify_to(socket_name, state, ec);
}

/// "RELOADING=1" with the CLOCK_MONOTONIC time systemd 253 and later ask for beside it (older
/// versions ignore the extra line). Follow it with "READY=1" once the reload is done.
inline std::string sd_reloading() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                      static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
    return fmt::format("RELOADING=1\nMONOTONIC_USEC={}", usec);
}

} // namespace examples
