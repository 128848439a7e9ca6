// grey/server/listener.hpp — the listening sockets of every door Grey has (the SMTP proxy, the
// Postfix policy service, the metrics endpoint), opened one way, and the one accept loop they
// share.
//
// A TCP endpoint listens on every address its host resolves to ("localhost" is 127.0.0.1 and
// ::1), each IPv6 socket with IPV6_V6ONLY so that an IPv4 socket on the same port is not
// refused. A unix-domain socket may replace a socket file left by a server that died, never
// one a live server answers on, nor a file that is no socket; it is removed again when the
// listener goes. Errors at start are exceptions naming the address: a server must not run
// without a door it was told to open.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "../config.hpp"
#include "../detail/asio.hpp"

namespace grey::server {
/// @addtogroup group_server
/// @{

using local = asio::local::stream_protocol;  ///< unix-domain stream sockets

/// "127.0.0.1:25", "[::1]:25": a TCP endpoint as configuration and log lines spell it.
inline std::string format(const asio::ip::tcp::endpoint& ep) {
    return format_endpoint(ep.address().to_string(), ep.port());
}

/// Opens, binds and listens on every address `where` resolves to. Throws std::system_error
/// naming `shown_as` (the endpoint as the user wrote it) when it cannot.
inline std::vector<asio::ip::tcp::acceptor> open_tcp(const asio::any_io_executor& ex, const endpoint& where,
                                                      std::string_view shown_as) {
    using tcp = asio::ip::tcp;
    tcp::resolver resolver(ex);
    asio::error_code ec;
    const auto results = resolver.resolve(where.host, std::to_string(where.port), tcp::resolver::passive, ec);
    if (ec) throw std::system_error(ec, fmt::format("cannot resolve {}", where.host));
    std::vector<tcp::acceptor> acceptors;
    for (const auto& r : results) {
        tcp::acceptor a(ex);
        a.open(r.endpoint().protocol());
        a.set_option(tcp::acceptor::reuse_address(true));
        if (r.endpoint().address().is_v6()) a.set_option(asio::ip::v6_only(true));
        a.bind(r.endpoint(), ec);
        if (ec) throw std::system_error(ec, fmt::format("cannot listen on {}", shown_as));
        a.listen(asio::socket_base::max_listen_connections);
        acceptors.push_back(std::move(a));
    }
    return acceptors;
}

/// Opens, binds and listens on the unix-domain socket `path`, with file mode `mode` (a
/// Postfix smtpd runs as its own user and must be able to connect). Throws naming the path.
inline local::acceptor open_local(const asio::any_io_executor& ex, const std::string& path,
                                  std::filesystem::perms mode) {
    namespace fs = std::filesystem;
    std::error_code fec;
    const auto status = fs::symlink_status(path, fec);
    if (fs::exists(status)) {
        if (!fs::is_socket(status))
            throw std::runtime_error(fmt::format("cannot listen on unix:{}: exists and is not a socket", path));
        local::socket probe(ex);
        asio::error_code ec;
        probe.connect(local::endpoint(path), ec);
        if (!ec) throw std::runtime_error(fmt::format("cannot listen on unix:{}: another server is listening", path));
        fs::remove(path, fec);
    }
    local::acceptor a(ex);
    asio::error_code ec;
    a.open(local::endpoint(path).protocol(), ec);
    if (!ec) a.bind(local::endpoint(path), ec);
    if (ec) throw std::system_error(ec, fmt::format("cannot listen on unix:{}", path));
    fs::permissions(path, mode, fec);
    if (fec) {
        fs::remove(path, fec);
        throw std::system_error(fec, fmt::format("cannot set the mode of unix:{}", path));
    }
    a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        fs::remove(path, fec);
        throw std::system_error(ec, fmt::format("cannot listen on unix:{}", path));
    }
    return a;
}

/// The listening sockets of one server, TCP and unix-domain, each with the tag its server
/// gives it (the SMTP proxy's: which sources may send a PROXY header). Closing them is how a
/// server stops taking connections; the socket files go with the listener.
template <class Tag = std::monostate>
class listener {
  public:
    /// A TCP acceptor and its tag.
    struct tcp_door {
        asio::ip::tcp::acceptor acceptor;  ///< listening
        Tag tag;                           ///< what its server said of it
    };
    /// A unix-domain acceptor and its tag.
    struct local_door {
        local::acceptor acceptor;  ///< listening
        Tag tag;                   ///< what its server said of it
    };

    /// Nothing listened on yet; acceptors will run on `ex`.
    explicit listener(asio::any_io_executor ex) : executor_(std::move(ex)) {}
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;
    ~listener() {
        close();
        for (const auto& path : socket_files_) {
            std::error_code ignored;
            std::filesystem::remove(path, ignored);
        }
    }

    /// Listens on `where` (every address it resolves to); see open_tcp().
    void add_tcp(const endpoint& where, Tag tag = {}, std::string_view shown_as = {}) {
        const std::string shown = shown_as.empty() ? format_endpoint(where.host, where.port) : std::string(shown_as);
        for (auto& a : open_tcp(executor_, where, shown)) tcp_.push_back(tcp_door{std::move(a), tag});
    }

    /// Listens on the unix-domain socket `path`; see open_local().
    void add_local(const std::string& path, std::filesystem::perms mode, Tag tag = {}) {
        local_.push_back(local_door{open_local(executor_, path, mode), std::move(tag)});
        socket_files_.push_back(path);
    }

    /// Whether nothing is listened on yet.
    bool empty() const noexcept { return tcp_.empty() && local_.empty(); }

    /// The TCP doors, in the order they were added.
    std::vector<tcp_door>& tcp() noexcept { return tcp_; }
    /// The unix-domain doors, in the order they were added.
    std::vector<local_door>& unix_domain() noexcept { return local_; }

    /// The TCP addresses actually bound (a port of 0 is chosen by the kernel).
    std::vector<asio::ip::tcp::endpoint> tcp_endpoints() const {
        std::vector<asio::ip::tcp::endpoint> out;
        for (const auto& d : tcp_) out.push_back(d.acceptor.local_endpoint());
        return out;
    }
    /// The unix-domain socket paths listened on.
    std::vector<std::string> local_paths() const {
        std::vector<std::string> out;
        for (const auto& d : local_) out.push_back(d.acceptor.local_endpoint().path());
        return out;
    }

    /// Stops listening; connections already accepted go on. Call on the acceptors' executor.
    void close() noexcept {
        asio::error_code ignored;
        for (auto& d : tcp_) d.acceptor.close(ignored);
        for (auto& d : local_) d.acceptor.close(ignored);
    }

  private:
    asio::any_io_executor executor_;
    std::vector<tcp_door> tcp_;
    std::vector<local_door> local_;
    std::vector<std::string> socket_files_;
};

/// Accepts connections on `acceptor` until it is closed: each on the executor `next()` picks,
/// handed to `admit(socket, peer)`. A failure such as running out of descriptors backs off for
/// a moment instead of spinning.
template <class Acceptor, class NextExecutor, class Admit>
asio::awaitable<void> accept_each(Acceptor& acceptor, NextExecutor next, Admit admit) {
    for (;;) {
        typename Acceptor::protocol_type::endpoint peer;
        auto [ec, socket] = co_await acceptor.async_accept(next(), peer, detail::use_nothrow);
        if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
        if (ec) {
            asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(detail::use_nothrow);
            continue;
        }
        admit(std::move(socket), peer);
    }
}

/// @}
} // namespace grey::server
