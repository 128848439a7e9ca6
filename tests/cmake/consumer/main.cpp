// A user's program: includes the umbrella header, declares the seed's handler, and checks
// that the library's pieces are usable. Exits 0 on success.
#include <grey/grey.hpp>

struct SpamMeHandler : grey::ConcreteMailHandler<SpamMeHandler> {
    using ConcreteMailHandler::ConcreteMailHandler;
    bool shouldWeAcceptMail() { return true; }
};

int main() {
    grey::ServerCore<SpamMeHandler> server({.port = 0, .smtp_ip = "127.0.0.1", .smtp_port = 25});
    server.listen();
    const auto bound = server.local_endpoints();
    auto cmd = grey::smtp::parse_command("MAIL FROM:<a@example.com>");
    return (bound.size() == 1 && bound[0].port() != 0 && cmd && cmd->verb == grey::smtp::verb::mail) ? 0 : 1;
}
