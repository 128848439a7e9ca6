// spam_me — the seed's SpamMeHandler: a proxy that takes every message and relays it to the
// real SMTP server, transparently and without losing any: the client's 250 for a recipient
// and for the message is the upstream's own.
//
//   spam_me --listen 127.0.0.1:1025 --upstream 127.0.0.1:25
#include <grey/grey.hpp>

#include "../common/server_options.hpp"

struct SpamMeHandler : grey::ConcreteMailHandler<SpamMeHandler> {
    using ConcreteMailHandler::ConcreteMailHandler;
    bool shouldWeAcceptMail() { return true; }  // the seed's example
};

int main(int argc, char** argv) {
    grey::server_config config{.port = 1025, .smtp_ip = "127.0.0.1", .smtp_port = 25};
    CLI::App app{"spam_me: an SMTP proxy that accepts all mail and relays it upstream"};
    examples::server_options options;
    options.add_to(app, config, /*relays=*/true);
    CLI11_PARSE(app, argc, argv);
    try {
        options.apply(config);
    } catch (const CLI::Error& e) {
        return app.exit(e);
    }
    grey::ServerCore<SpamMeHandler> server(config);
    return examples::serve(server);
}
