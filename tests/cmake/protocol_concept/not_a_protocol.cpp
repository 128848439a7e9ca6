// A program that gets its Protocol wrong, one way per NOT_A_PROTOCOL value, and uses it as a
// program would. It must not compile, and the compiler must say why in one error line.
#include <grey/grey.hpp>

#if NOT_A_PROTOCOL == 1  // no constructor from session_context
struct Wrong {
    asio::awaitable<void> run() { co_return; }
};
#elif NOT_A_PROTOCOL == 2  // no run()
struct Wrong {
    explicit Wrong(grey::session_context) {}
};
#elif NOT_A_PROTOCOL == 3  // run() that is not the session's awaitable
struct Wrong {
    explicit Wrong(grey::session_context) {}
    void run() {}
};
#elif NOT_A_PROTOCOL == 4  // a configuration that is not a server_config
struct Wrong {
    struct config_type {
        int port = 25;
    };
    explicit Wrong(grey::session_context) {}
    asio::awaitable<void> run() { co_return; }
};
#endif

int main() {
#if NOT_A_PROTOCOL == 4
    grey::ServerCore<Wrong> server(Wrong::config_type{});
#else
    grey::ServerCore<Wrong> server({.port = 0});
#endif
    server.run();
}
