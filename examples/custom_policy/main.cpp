// custom_policy — a proxy with rules of its own, to show the hooks a handler can replace:
//   * HELO/EHLO names on a block list are refused and disconnected   (handleHelo/handleEhlo)
//   * only recipients in the accepted domains are relayed             (shouldWeAcceptRecipient)
//   * recipients may be checked against a file of known users, read on a thread pool so the
//     event loop never blocks: an asynchronous decision, as a database lookup would be
//   * mail for some domains is taken only over TLS, and, with a client CA, only from clients
//     whose certificate it verifies: the hooks read what TLS negotiated   (tls())
//
//   custom_policy --listen 127.0.0.1:1025 --upstream 127.0.0.1:25
//                 --block-helo spammer.example --accept-domain example.com --users users.txt
//                 --tls-cert cert.pem --tls-key key.pem --tls-domain secure.example.com
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <grey/grey.hpp>

#include "../common/server_options.hpp"

struct policy_config : grey::server_config {
    std::vector<std::string> blocked_helo;
    std::vector<std::string> accepted_domains;  ///< empty: every domain
    std::string users_file;                     ///< empty: every user
    std::vector<std::string> tls_domains;       ///< taken only over TLS
    asio::thread_pool* lookups = nullptr;       ///< where blocking lookups run
};

inline const grey::smtp::reply relay_denied{550, "5.7.1", "Relaying denied"};
inline const grey::smtp::reply unknown_user{550, "5.1.1", "No such user here"};
inline const grey::smtp::reply helo_refused{550, "5.7.1", "Your HELO name is refused here"};
// RFC 5248's X.7.10, "Encryption Needed"; X.7.1 when the client did not prove who it is.
inline const grey::smtp::reply encryption_needed{550, "5.7.10", "Mail for this domain must come over TLS"};
inline const grey::smtp::reply certificate_needed{550, "5.7.1", "Mail for this domain needs a verified client certificate"};

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
        const auto domain = rcpt.forward_path.domain;
        const auto& domains = settings().accepted_domains;
        if (!domains.empty() && !listed(domains, domain)) co_return relay_denied;
        if (listed(settings().tls_domains, domain)) {
            const grey::tls_info* tls = this->tls();
            if (!tls) co_return encryption_needed;
            // Without a client CA, encryption is enough; with one, the certificate must verify.
            if (!settings().tls.client_ca_file.empty() && !tls->peer_verified) co_return certificate_needed;
            fmt::print("{} over {} {} from {}\n", rcpt.forward_path.mailbox, tls->version, tls->cipher,
                       tls->peer_subject.empty() ? "a client without a certificate" : tls->peer_subject);
            std::fflush(stdout);
        }
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

    static bool listed(const std::vector<std::string>& names, std::string_view name) {
        return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return grey::smtp::iequals(n, name); });
    }
    bool blocked(std::string_view helo) const { return listed(settings().blocked_helo, helo); }

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
    app.add_option("--tls-domain", config.tls_domains,
                   "Take mail for this domain only over TLS (and, with --tls-client-ca, only from a verified client)");
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
