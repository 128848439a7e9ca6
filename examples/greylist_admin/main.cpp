// greylist_admin — looks after a greylist store, as postgrey's and spamdb's users expect:
//
//   greylist_admin list                                   every triplet, oldest first
//   greylist_admin search bob@example.com                 triplets whose parts contain the text
//   greylist_admin whitelist 192.0.2.7 alice@example.org bob@example.com
//   greylist_admin remove    192.0.2.7 alice@example.org bob@example.com
//   greylist_admin purge                                  forget expired records now
//   greylist_admin spf 192.0.2.7 alice@example.org mx.example.org   RFC 7208's result and why
//   greylist_admin explain 192.0.2.7 alice@example.org bob@example.com mx.example.org
//                                                         the evidence, and the server's decision
//
// It reads the same configuration as greylist_server (--config grey.toml), so addresses are
// grouped and senders normalised exactly as the server does; --store overrides the store.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include <grey/greylist/open_store.hpp>

#include "../greylist_server/settings.hpp"  // the configuration file, read as the server reads it
#include "explain.hpp"

// After settings.hpp: dns/message.hpp's grey::dns::detail would hide grey::detail from
// dns/name_lookup.hpp, which settings.hpp includes.
#ifdef GREY_WITH_DNS
#include <grey/dns/spf.hpp>
#endif

namespace {

/// Runs one store call to completion.
template <class T>
T run(asio::awaitable<T> op) {
    asio::io_context ioc;
    std::optional<T> out;
    std::exception_ptr failure;
    asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T value) {
        failure = e;
        if (!e) out.emplace(std::move(value));
    });
    ioc.run();
    if (failure) std::rethrow_exception(failure);
    return std::move(*out);
}

std::string when(grey::greylist::clock::time_point t) {
    return fmt::format("{:%Y-%m-%d %H:%M:%S}", fmt::gmtime(grey::greylist::clock::to_time_t(t)));
}

void print(const std::vector<grey::greylist::entry>& entries) {
    std::size_t wc = 6, ws = 6, wr = 9;
    for (const auto& e : entries) {
        wc = std::max(wc, e.key.client.size());
        ws = std::max(ws, e.key.sender.size() + 2);
        wr = std::max(wr, e.key.recipient.size());
    }
    fmt::print("{:<{}}  {:<{}}  {:<{}}  {:<7}  {:<19}  {:<19}  {:>6}  {:>8}\n", "CLIENT", wc, "SENDER", ws,
               "RECIPIENT", wr, "STATE", "FIRST SEEN (UTC)", "LAST SEEN (UTC)", "PASSES", "ATTEMPTS");
    for (const auto& e : entries)
        fmt::print("{:<{}}  {:<{}}  {:<{}}  {:<7}  {:<19}  {:<19}  {:>6}  {:>8}\n", e.key.client, wc,
                   "<" + e.key.sender + ">", ws, e.key.recipient, wr, e.value.passed ? "passed" : "waiting",
                   when(e.value.first_seen), when(e.value.last_seen), e.value.passes, e.value.attempts);
    fmt::print("{} {}\n", entries.size(), entries.size() == 1 ? "entry" : "entries");
}

#ifdef GREY_WITH_DNS
/// The spf command: evaluate_sender() through a resolver of its own, the result printed as
/// RFC 7208 names it. Any result is a success; only bad arguments are not (2).
int check_spf(const std::string& address, const std::string& sender, const std::string& helo,
              const std::vector<std::string>& servers) {
    asio::error_code ec;
    const auto ip = asio::ip::make_address(address, ec);
    if (ec) {
        fmt::print(stderr, "greylist_admin: spf: \"{}\" is not an IP address\n", address);
        return 2;
    }
    for (const std::string& server : servers)
        if (!grey::dns::unbound_server(server)) {
            fmt::print(stderr, "greylist_admin: spf: --resolver \"{}\" is not IP:PORT\n", server);
            return 2;
        }
    asio::io_context ioc;
    grey::dns::resolver_settings settings;
    settings.servers = servers;
    grey::dns::resolver dns(ioc.get_executor(), settings);
    grey::dns::spf_result r;
    // RFC 7208 §4.6.4 asks that a check be allowed at least 20 seconds.
    asio::co_spawn(ioc, grey::dns::spf::evaluate_sender(dns, ip, sender, helo, grey::dns::budget::after(std::chrono::seconds(20))),
                   [&](std::exception_ptr e, grey::dns::spf_result value) {
                       if (e) std::rethrow_exception(e);
                       r = std::move(value);
                   });
    ioc.run();
    fmt::print("{} ({})\n", grey::dns::spf::to_string(r.value), r.why);
    if (!r.explanation.empty()) fmt::print("explanation: {}\n", r.explanation);
    return 0;
}
#endif

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"greylist_admin: list, search, whitelist, remove and purge greylist entries; check SPF; explain a decision"};
    app.require_subcommand(1);
    std::string config_file, store;
    app.add_option("--config", config_file, "greylist_server's TOML configuration")->check(CLI::ExistingFile);
    app.add_option("--store", store, "sqlite:PATH or a Redis URL (redis://..., rediss://..., redis+unix://..., redis-sentinel://..., redis-cluster://...; default: the configuration's)");

    auto* list = app.add_subcommand("list", "Show every triplet");
    std::string needle;
    auto* search = app.add_subcommand("search", "Show the triplets whose client, sender or recipient contains TEXT");
    search->add_option("text", needle)->required();
    std::string client, sender, recipient;
    auto triplet_args = [&](CLI::App* sub) {
        sub->add_option("client", client, "Client address (grouped as the server groups it)")->required();
        sub->add_option("sender", sender, "Envelope sender (\"\" for the null sender)")->required();
        sub->add_option("recipient", recipient)->required();
    };
    auto* whitelist = app.add_subcommand("whitelist", "Let a triplet pass from now on");
    triplet_args(whitelist);
    auto* remove = app.add_subcommand("remove", "Forget a triplet");
    triplet_args(remove);
    auto* purge = app.add_subcommand("purge", "Forget every expired record now");
    auto* explain = app.add_subcommand("explain", "Print what DNS says of a client and sender, and what the server "
                                                  "would decide for the recipient now (the store is only read)");
    std::string helo;
    std::vector<std::string> explain_resolvers;
    explain->add_option("client", client, "Client IP address")->required();
    explain->add_option("sender", sender, "Envelope sender (\"\" for the null sender)")->required();
    explain->add_option("recipient", recipient)->required();
    explain->add_option("helo", helo, "The client's HELO name");
    explain->add_option("--resolver", explain_resolvers,
                        "DNS server to ask, IP:PORT (repeatable; default: the configuration's [dns] resolvers)");
#ifdef GREY_WITH_DNS
    auto* spf = app.add_subcommand("spf", "Print the SPF result (RFC 7208) of ADDRESS sending as SENDER");
    std::string spf_address, spf_sender, spf_helo;
    std::vector<std::string> resolvers;
    spf->add_option("address", spf_address, "Client IP address")->required();
    spf->add_option("sender", spf_sender, "Envelope sender (\"\" for the null sender: postmaster@HELO)")->required();
    spf->add_option("helo", spf_helo, "The client's HELO name");
    spf->add_option("--resolver", resolvers, "DNS server to ask, IP:PORT (repeatable; default: resolve from the root)");
#endif
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        if (code != 0 && explain->parsed()) return 2;
#ifdef GREY_WITH_DNS
        if (code != 0 && spf->parsed()) return 2;
#endif
        return code;
    }
#ifdef GREY_WITH_DNS
    // No store: the check reads only the DNS.
    if (spf->parsed()) return check_spf(spf_address, spf_sender, spf_helo, resolvers);
#endif

    greylist_server::settings s;
    try {
        if (!config_file.empty()) greylist_server::load_file(config_file, s);
        if (!store.empty()) s.store = store;
        if (explain->parsed()) {
            asio::error_code ec;
            (void)asio::ip::make_address(client, ec);
            if (ec) {
                fmt::print(stderr, "greylist_admin: explain: \"{}\" is not an IP address\n", client);
                return 2;
            }
            for (const std::string& server : explain_resolvers)
                if (!grey::dns::unbound_server(server)) {
                    fmt::print(stderr, "greylist_admin: explain: --resolver \"{}\" is not IP:PORT\n", server);
                    return 2;
                }
            if (!explain_resolvers.empty()) s.server.reputation.resolver.servers = explain_resolvers;
            // A store that does not exist yet is an empty one: opening it would make it.
            std::shared_ptr<grey::greylist::store> db;
            const bool missing_file = s.store.starts_with("sqlite:") && !std::filesystem::exists(s.store.substr(7));
            if (s.store != "memory" && !missing_file) db = grey::greylist::open_store(s.store, {.redis = s.redis});
            return greylist_admin::explain(s, db, client, sender, recipient, helo);
        }
        if (s.store == "memory")
            throw greylist_server::config_error("a memory store lives inside its server: there is nothing to administer");
        const auto db = grey::greylist::open_store(s.store, {.redis = s.redis});
        const auto& g = s.server;
        const auto now = grey::greylist::clock::now();
        const auto key = [&] {
            auto t = grey::greylist::make_triplet(client, sender, recipient, g.grouping, g.normalisation);
            return g.transform ? g.transform(std::move(t)) : t;
        };

        if (list->parsed() || search->parsed()) {
            auto found = run(db->find(list->parsed() ? std::string() : needle));
            if (!found) throw std::runtime_error(found.error().message());
            std::sort(found->begin(), found->end(),
                      [](const auto& a, const auto& b) { return a.value.first_seen < b.value.first_seen; });
            print(*found);
        } else if (whitelist->parsed()) {
            const auto t = key();
            auto done = run(db->whitelist(t, g.timing, now));
            if (!done) throw std::runtime_error(done.error().message());
            fmt::print("whitelisted {} <{}> {}\n", t.client, t.sender, t.recipient);
        } else if (remove->parsed()) {
            const auto t = key();
            auto removed = run(db->remove(t));
            if (!removed) throw std::runtime_error(removed.error().message());
            fmt::print("{} {} <{}> {}\n", *removed ? "removed" : "not found:", t.client, t.sender, t.recipient);
            return *removed ? 0 : 1;
        } else if (purge->parsed()) {
            auto n = run(db->purge(g.timing, now));
            if (!n) throw std::runtime_error(n.error().message());
            fmt::print("purged {} expired {}\n", *n, *n == 1 ? "record" : "records");
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "greylist_admin: {}\n", e.what());
        return 1;
    }
    return 0;
}
