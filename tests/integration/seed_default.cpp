// A ConcreteMailHandler that keeps every default: shouldWeAcceptMail() is false, as in the seed,
// so every message is deferred at DATA. The integration tests run it against a real upstream.
#include <grey/grey.hpp>

#include "../../examples/common/server_options.hpp"

struct SeedDefault : grey::ConcreteMailHandler<SeedDefault> {
    using ConcreteMailHandler::ConcreteMailHandler;
};

int main(int argc, char** argv) {
    grey::server_config config;
    CLI::App app{"seed_default: ConcreteMailHandler with the seed's defaults"};
    examples::server_options options;
    options.add_to(app, config, /*relays=*/true);
    CLI11_PARSE(app, argc, argv);
    options.apply(config);
    grey::ServerCore<SeedDefault> server(config);
    return examples::serve(server);
}
