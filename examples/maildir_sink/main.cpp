// maildir_sink — a final-delivery SMTP server built on grey::MailHandler: every message it
// accepts is stored in a Maildir, and only then answered 250. It is the default upstream of the
// demos, so a proxy can be tried with no MTA installed.
//
//   maildir_sink --listen 127.0.0.1:2526 --maildir ./Maildir
#include <grey/grey.hpp>

#include "../common/server_options.hpp"
#include "maildir_sink.hpp"

int main(int argc, char** argv) {
    maildir_config config;
    config.port = 2526;
    CLI::App app{"maildir_sink: an SMTP server that stores every message in a Maildir"};
    examples::server_options options;
    options.add_to(app, config, /*relays=*/false);
    app.add_option("--maildir", config.maildir, "Maildir to deliver into (created if missing)")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    try {
        options.apply(config);
        make_maildir(config.maildir);
    } catch (const CLI::Error& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        fmt::print(stderr, "error: {}\n", e.what());
        return 1;
    }
    grey::ServerCore<MaildirSink> server(config);
    return examples::serve(server);
}
