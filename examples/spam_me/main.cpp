// spam_me — the seed's SpamMeHandler: a proxy that takes every message and relays it to the
// real SMTP server, transparently and without losing any: the client's 250 for a recipient
// and for the message is the upstream's own.
//
//   spam_me --listen 127.0.0.1:1025 --upstream 127.0.0.1:25
#include <optional>

#include <grey/grey.hpp>

#include "../common/metrics_service.hpp"
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
    std::string metrics_at;
    app.add_option("--metrics", metrics_at, "Serve Prometheus metrics at http://HOST:PORT/metrics")->type_name("HOST:PORT");
    CLI11_PARSE(app, argc, argv);
    std::optional<examples::metrics_service> metrics;
    try {
        options.apply(config);
        if (!metrics_at.empty()) {
            metrics.emplace(examples::endpoint_or_throw(metrics_at));
            config.metrics = &metrics->metrics();
            fmt::print("metrics on http://{}/metrics\n", grey::ServerCore<SpamMeHandler>::format(metrics->local_endpoint()));
        }
    } catch (const CLI::Error& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        fmt::print(stderr, "spam_me: {}\n", e.what());
        return 1;
    }
    grey::ServerCore<SpamMeHandler> server(config);
    return examples::serve(server);
}
