#include <doctest/doctest.h>

#include <grey/tls/context.hpp>
#include <grey/tls/ticket_keys.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

using namespace grey::tls;
using namespace std::chrono_literals;

namespace {

/// A self-signed P-256 certificate and its key in a directory of their own, removed at the end.
struct certificate_files {
    std::filesystem::path dir, cert, key;

    certificate_files() {
        dir = std::filesystem::temp_directory_path() / ("grey-ticket-keys-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        cert = dir / "cert.pem";
        key = dir / "key.pem";
        EVP_PKEY* pkey = EVP_EC_gen("P-256");
        REQUIRE(pkey);
        X509* x = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, pkey);
        X509_NAME* name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("mx.test"), -1, -1, 0);
        X509_set_issuer_name(x, name);
        REQUIRE(X509_sign(x, pkey, EVP_sha256()) > 0);
        std::FILE* c = std::fopen(cert.c_str(), "w");
        std::FILE* k = std::fopen(key.c_str(), "w");
        REQUIRE((c && k));
        PEM_write_X509(c, x);
        PEM_write_PrivateKey(k, pkey, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(c);
        std::fclose(k);
        X509_free(x);
        EVP_PKEY_free(pkey);
    }
    ~certificate_files() { std::filesystem::remove_all(dir); }

    server_settings settings() const {
        server_settings s;
        s.certificate_chain_file = cert;
        s.private_key_file = key;
        return s;
    }
};

using ssl_ptr = std::unique_ptr<SSL, decltype(&SSL_free)>;
using session_ptr = std::unique_ptr<SSL_SESSION, decltype(&SSL_SESSION_free)>;

/// A client's context: TLS 1.2 or 1.3 only, no certificate check (the server's is self-signed),
/// tickets or (`tickets` false) TLS 1.2 session IDs.
std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> client_context(int version, bool tickets = true) {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), &SSL_CTX_free);
    SSL_CTX_set_min_proto_version(ctx.get(), version);
    SSL_CTX_set_max_proto_version(ctx.get(), version);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    if (!tickets) SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    return ctx;
}

/// One handshake in memory between a client of `client` offering `earlier` (when given) and a
/// server of `server`. Returns whether the server resumed, and the session the client may offer
/// next time (null when it got none).
struct outcome {
    bool ok = false;
    bool resumed = false;
    session_ptr next{nullptr, &SSL_SESSION_free};
};

outcome handshake(SSL_CTX* client, asio::ssl::context& server, SSL_SESSION* earlier = nullptr) {
    ssl_ptr c(SSL_new(client), &SSL_free), s(SSL_new(server.native_handle()), &SSL_free);
    BIO *cb = nullptr, *sb = nullptr;
    REQUIRE(BIO_new_bio_pair(&cb, 0, &sb, 0) == 1);
    SSL_set_bio(c.get(), cb, cb);
    SSL_set_bio(s.get(), sb, sb);
    SSL_set_connect_state(c.get());
    SSL_set_accept_state(s.get());
    if (earlier) SSL_set_session(c.get(), earlier);
    outcome o;
    for (int round = 0; round < 20 && !o.ok; ++round) {
        const int rc = SSL_do_handshake(c.get());
        const int rs = SSL_do_handshake(s.get());
        o.ok = rc == 1 && rs == 1;
    }
    if (!o.ok) return o;
    // TLS 1.3 tickets come after the handshake: the client reads them before it keeps a session.
    unsigned char byte;
    SSL_read(c.get(), &byte, 1);
    o.resumed = SSL_session_reused(s.get()) == 1;
    if (SSL_SESSION* next = SSL_get1_session(c.get())) {
        if (SSL_SESSION_is_resumable(next)) o.next.reset(next);
        else SSL_SESSION_free(next);
    }
    // Closed as a client and server should: OpenSSL takes a session whose connection ended
    // without close_notify for a broken one, and never resumes it.
    SSL_shutdown(c.get());
    SSL_shutdown(s.get());
    return o;
}

const unsigned char* name_of(const ticket_keys::key& k) { return k.name.data(); }

} // namespace

TEST_CASE("A ticket key seals for one lifetime, then a new one does, and the old one still opens for a lifetime") {
    ticket_keys ring(1h);
    const auto t0 = ticket_keys::clock::now();
    const auto first = ring.for_sealing(t0);
    REQUIRE(first);
    CHECK(ring.for_sealing(t0 + 59min)->name == first->name);
    const auto second = ring.for_sealing(t0 + 1h);
    REQUIRE(second);
    CHECK(second->name != first->name);
    CHECK(second->aes != first->aes);
    CHECK(ring.size() == 2);

    SUBCASE("the old key opens its tickets, and asks that they be renewed under the new one") {
        const auto found = ring.for_opening(name_of(*first), t0 + 1h + 59min);
        REQUIRE(found);
        CHECK(found->k.aes == first->aes);
        CHECK(found->renew);
        const auto current = ring.for_opening(name_of(*second), t0 + 1h + 59min);
        REQUIRE(current);
        CHECK_FALSE(current->renew);
    }
    SUBCASE("two lifetimes after it was made, a key is forgotten: its tickets get a full handshake") {
        CHECK_FALSE(ring.for_opening(name_of(*first), t0 + 2h));
        CHECK(ring.size() == 1);
        CHECK(ring.for_opening(name_of(*second), t0 + 2h));
    }
    SUBCASE("a key that stopped sealing with no successor yet is renewed, not trusted as current") {
        ticket_keys lone(1h);
        const auto only = lone.for_sealing(t0);
        const auto found = lone.for_opening(name_of(*only), t0 + 90min);
        REQUIRE(found);
        CHECK(found->renew);
        CHECK_FALSE(lone.for_opening(name_of(*only), t0 + 2h));
    }
    SUBCASE("a name never made here opens nothing") {
        const unsigned char stranger[16] = {};
        CHECK_FALSE(ring.for_opening(stranger, t0 + 1h));
    }
}

TEST_CASE("A server resumes a client's session by ticket in TLS 1.3 and 1.2, and by session ID in 1.2") {
    const certificate_files files;
    const auto server = make_server_context(files.settings());
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        CAPTURE(version);
        const auto client = client_context(version);
        const outcome first = handshake(client.get(), *server);
        REQUIRE(first.ok);
        CHECK_FALSE(first.resumed);
        REQUIRE(first.next);
        const outcome again = handshake(client.get(), *server, first.next.get());
        REQUIRE(again.ok);
        CHECK(again.resumed);
    }
    const auto ids_only = client_context(TLS1_2_VERSION, /*tickets=*/false);
    const outcome first = handshake(ids_only.get(), *server);
    REQUIRE(first.next);
    CHECK(handshake(ids_only.get(), *server, first.next.get()).resumed);
}

TEST_CASE("Tickets outlive a reload: the contexts of one reloadable_context share their keys") {
    const certificate_files files;
    reloadable_context reloadable(files.settings());
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        CAPTURE(version);
        const auto client = client_context(version);
        const outcome first = handshake(client.get(), *reloadable.current());
        REQUIRE(first.next);
        REQUIRE_FALSE(reloadable.reload());
        CHECK(handshake(client.get(), *reloadable.current(), first.next.get()).resumed);
        // A context of its own has keys of its own: the same ticket gets a full handshake there.
        const auto stranger = make_server_context(files.settings());
        const outcome elsewhere = handshake(client.get(), *stranger, first.next.get());
        REQUIRE(elsewhere.ok);
        CHECK_FALSE(elsewhere.resumed);
    }
}

TEST_CASE("With resumption off, no ticket is issued, no session is cached and every handshake is full") {
    const certificate_files files;
    server_settings s = files.settings();
    s.resumption = false;
    const auto server = make_server_context(s);
    SSL_CTX* native = server->native_handle();
    CHECK((SSL_CTX_get_options(native) & SSL_OP_NO_TICKET) != 0);
    CHECK(SSL_CTX_get_num_tickets(native) == 0);
    CHECK(SSL_CTX_get_session_cache_mode(native) == SSL_SESS_CACHE_OFF);
    for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
        CAPTURE(version);
        const auto client = client_context(version);
        const outcome first = handshake(client.get(), *server);
        REQUIRE(first.ok);
        CHECK_FALSE(first.next);
    }
}

TEST_CASE("The session lifetime and cache size reach OpenSSL") {
    const certificate_files files;
    server_settings s = files.settings();
    s.session_lifetime = 600s;
    s.session_cache_size = 100;
    const auto server = make_server_context(s);
    CHECK(SSL_CTX_get_timeout(server->native_handle()) == 600);
    CHECK(SSL_CTX_sess_get_cache_size(server->native_handle()) == 100);
    CHECK(SSL_CTX_get_session_cache_mode(server->native_handle()) == SSL_SESS_CACHE_SERVER);
    SUBCASE("a cache of no sessions is none, not OpenSSL's unlimited one: tickets still resume") {
        s.session_cache_size = 0;
        const auto tickets_only = make_server_context(s);
        CHECK(SSL_CTX_get_session_cache_mode(tickets_only->native_handle()) == SSL_SESS_CACHE_OFF);
        const auto client = client_context(TLS1_2_VERSION);
        const outcome first = handshake(client.get(), *tickets_only);
        REQUIRE(first.next);
        CHECK(handshake(client.get(), *tickets_only, first.next.get()).resumed);
        const auto ids_only = client_context(TLS1_2_VERSION, /*tickets=*/false);
        const outcome without = handshake(ids_only.get(), *tickets_only);
        CHECK_FALSE(without.next);
    }
}
