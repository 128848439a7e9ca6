// custom_policy — a proxy with rules of its own, to show the hooks a handler can replace:
//   * HELO/EHLO names on a block list are refused and disconnected   (handleHelo/handleEhlo)
//   * only recipients in the accepted domains are relayed             (shouldWeAcceptRecipient)
//   * recipients may be checked against a file of known users, read on a thread pool so the
//     event loop never blocks: an asynchronous decision, as a database lookup would be
//
//   custom_policy --listen 127.0.0.1:1025 --upstream 127.0.0.1:25
//                 --block-helo spammer.example --accept-domain example.com --users users.txt
#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <grey/grey.hpp>

#include "../common/server_options.hpp"

struct policy_config : grey::server_config {
    std::vector<std::string> blocked_helo;
    std::vector<std::string> accepted_domains;  ///< empty: every domain
    std::string users_file;                     ///< empty: every user
    asio::thread_pool* lookups = nullptr;       ///< where blocking lookups run
};

inline const grey::smtp::reply relay_denied{550, "5.7.1", "Relaying denied"};
inline const grey::smtp::reply unknown_user{550, "5.1.1", "No such user here"};
inline const grey::smtp::reply helo_refused{550, "5.7.1", "Your HELO name is refused here"};

class CustomPolicy : public grey::ConcreteMailHandler<CustomPolicy> {
  public:
    using config_type = policy_config;
    using ConcreteMailHandler::ConcreteMailHandler;

    grey::smtp::reply handleHelo(const grey::smtp::helo_command& c) {
        return blocked(c.domain) ? error(helo_refused) : ConcreteMailHandler::handleHelo(c);
    }
    grey::smtp::reply handleEhlo(const grey::smtp::helo_command& c) {
        return blocked(c.domain) ? error(helo_refused) : ConcreteMailHandler::handleEhlo(c);
    }

    asio::awaitable<grey::verdict> shouldWeAcceptRecipient(const grey::smtp::rcpt_command& rcpt) {
        const auto& domains = settings().accepted_domains;
        const auto domain = rcpt.forward_path.domain;
        if (!domains.empty() && std::none_of(domains.begin(), domains.end(), [&](const std::string& d) {
                return grey::smtp::iequals(d, domain);
            }))
            co_return relay_denied;
        if (settings().users_file.empty()) co_return true;
        // Run the blocking lookup on the pool, then resume on this session's thread.
        const bool known = co_await asio::co_spawn(
            *settings().lookups,
            is_known_user(settings().users_file, std::string(rcpt.forward_path.mailbox)),
            asio::use_awaitable);
        co_return known ? grey::verdict(true) : grey::verdict(unknown_user);
    }

    bool shouldWeAcceptMail() { return true; }

  private:
    const policy_config& settings() const { return static_cast<const policy_config&>(config()); }

    bool blocked(std::string_view helo) const {
        const auto& names = settings().blocked_helo;
        return std::any_of(names.begin(), names.end(),
                           [&](const std::string& n) { return grey::smtp::iequals(n, helo); });
    }

    /// The file is read at each lookup, so it can be edited while the server runs.
    static asio::awaitable<bool> is_known_user(std::string path, std::string mailbox) {
        std::ifstream in(path);
        for (std::string line; std::getline(in, line);)
            if (grey::smtp::iequals(line, mailbox)) co_return true;
        co_return false;
    }
};

int main(int argc, char** argv) {
    policy_config config;
    CLI::App app{"custom_policy: an SMTP proxy with its own acceptance rules"};
    examples::server_options options;
    options.add_to(app, config, /*relays=*/true);
    app.add_option("--block-helo", config.blocked_helo, "Refuse clients that greet with this name");
    app.add_option("--accept-domain", config.accepted_domains, "Relay only to these domains");
    app.add_option("--users", config.users_file, "File of known recipients, one address a line");
    CLI11_PARSE(app, argc, argv);
    try {
        options.apply(config);
    } catch (const CLI::Error& e) {
        return app.exit(e);
    }
    asio::thread_pool lookups(1);
    config.lookups = &lookups;
    grey::ServerCore<CustomPolicy> server(config);
    const int status = examples::serve(server);
    lookups.join();
    return status;
}
