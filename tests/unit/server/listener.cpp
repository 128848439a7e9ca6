// The listening sockets every door shares: TCP on every address a name resolves to, unix-domain
// sockets that replace a dead server's file but never a live one's, and one accept loop.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <grey/server/listener.hpp>

namespace fs = std::filesystem;
using grey::server::listener;
using grey::server::local;

namespace {
/// A folder of its own under the system's temporary folder, gone with the test.
struct temp_dir {
    fs::path path = fs::temp_directory_path() / ("grey-listener-" + std::to_string(::getpid()));
    temp_dir() { fs::create_directories(path); }
    ~temp_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
};
} // namespace

TEST_CASE("A TCP endpoint with port 0 listens on a port the kernel chose, and says which") {
    asio::io_context ioc;
    listener<> l(ioc.get_executor());
    CHECK(l.empty());
    l.add_tcp({"127.0.0.1", 0});
    REQUIRE(l.tcp_endpoints().size() == 1);
    CHECK(l.tcp_endpoints().front().address().to_string() == "127.0.0.1");
    CHECK(l.tcp_endpoints().front().port() != 0);
    CHECK_FALSE(l.empty());
}

TEST_CASE("A name listens on every address it resolves to, IPv6 beside IPv4 on the same port") {
    asio::io_context ioc;
    listener<> first(ioc.get_executor());
    first.add_tcp({"127.0.0.1", 0});
    const auto port = first.tcp_endpoints().front().port();
    // The IPv6 socket is v6-only: it takes the port that the IPv4 socket holds.
    listener<> second(ioc.get_executor());
    asio::error_code ec;
    const bool has_v6 = [&] {
        asio::ip::tcp::socket probe(ioc);
        probe.open(asio::ip::tcp::v6(), ec);
        return !ec;
    }();
    if (!has_v6) return;  // a machine with IPv6 switched off
    second.add_tcp({"::1", port});
    CHECK(second.tcp_endpoints().front().port() == port);
}

TEST_CASE("An address that cannot be bound is an exception naming it") {
    asio::io_context ioc;
    listener<> taken(ioc.get_executor());
    taken.add_tcp({"127.0.0.1", 0});
    const auto port = taken.tcp_endpoints().front().port();
    listener<> again(ioc.get_executor());
    try {
        again.add_tcp({"127.0.0.1", port}, {}, "inet:127.0.0.1:" + std::to_string(port));
        FAIL("bound a port that is taken");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("cannot listen on inet:127.0.0.1:" + std::to_string(port)) != std::string::npos);
    }
}

TEST_CASE("Each door keeps the tag its server gave it") {
    asio::io_context ioc;
    listener<int> l(ioc.get_executor());
    l.add_tcp({"127.0.0.1", 0}, 7);
    REQUIRE(l.tcp().size() == 1);
    CHECK(l.tcp().front().tag == 7);
}

TEST_CASE("A unix-domain socket is made with its mode and removed with the listener") {
    temp_dir dir;
    const std::string path = (dir.path / "policy").string();
    asio::io_context ioc;
    {
        listener<> l(ioc.get_executor());
        l.add_local(path, fs::perms(0660));
        CHECK(fs::is_socket(path));
        CHECK((fs::status(path).permissions() & fs::perms::all) == fs::perms(0660));
        REQUIRE(l.local_paths().size() == 1);
        CHECK(l.local_paths().front() == path);
    }
    CHECK_FALSE(fs::exists(path));
}

TEST_CASE("A socket file left by a dead server is replaced; a live server's and a plain file are not") {
    temp_dir dir;
    const std::string path = (dir.path / "policy").string();
    asio::io_context ioc;
    SUBCASE("dead") {
        {
            // Bound and closed without removing its file, as a server that was killed leaves it.
            local::acceptor dead(ioc, local::endpoint(path));
        }
        REQUIRE(fs::is_socket(path));
        listener<> l(ioc.get_executor());
        CHECK_NOTHROW(l.add_local(path, fs::perms(0666)));
    }
    SUBCASE("live") {
        listener<> live(ioc.get_executor());
        live.add_local(path, fs::perms(0666));
        listener<> second(ioc.get_executor());
        CHECK_THROWS_WITH_AS(second.add_local(path, fs::perms(0666)),
                             doctest::Contains("another server is listening"), std::runtime_error);
        CHECK(fs::is_socket(path));
    }
    SUBCASE("not a socket") {
        std::ofstream(path) << "data";
        listener<> l(ioc.get_executor());
        CHECK_THROWS_WITH_AS(l.add_local(path, fs::perms(0666)), doctest::Contains("not a socket"),
                             std::runtime_error);
        CHECK(fs::is_regular_file(path));
    }
}

TEST_CASE("The accept loop hands each connection over and ends when the listener closes") {
    asio::io_context ioc;
    listener<> l(ioc.get_executor());
    l.add_tcp({"127.0.0.1", 0});
    const auto where = l.tcp_endpoints().front();
    int accepted = 0, picked = 0;
    bool ended = false;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            co_await grey::server::accept_each(
                l.tcp().front().acceptor,
                [&] {
                    ++picked;
                    return ioc.get_executor();
                },
                [&](asio::ip::tcp::socket s, const asio::ip::tcp::endpoint& peer) {
                    CHECK(s.is_open());
                    CHECK(peer.address().to_string() == "127.0.0.1");
                    if (++accepted == 3) l.close();
                });
            ended = true;
        },
        asio::detached);
    std::vector<asio::ip::tcp::socket> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(ioc);
        clients.back().async_connect(where, [](asio::error_code) {});
    }
    ioc.run_for(std::chrono::seconds(5));
    CHECK(accepted == 3);
    CHECK(picked >= 3);
    CHECK(ended);
}
