// grey/tls/ticket_keys.hpp — the keys that seal TLS session tickets (RFC 5077; TLS 1.3's
// NewSessionTicket), kept by the server rather than by each OpenSSL context.
//
// OpenSSL makes random ticket keys for every context it creates, so a certificate reload (a new
// context) would turn every ticket clients hold into a full handshake. One ring, shared by each
// context a reloadable_context loads, keeps them valid; its keys rotate on their own, so that a
// key stolen from memory opens only the tickets of two lifetimes, not all since the start.
//
// The rule, with L the session lifetime: a key is made when the current one is L old (or at the
// first ticket), seals new tickets for at most L, then only opens tickets for L more, then is
// forgotten. A ticket is therefore never opened more than 2 × L after it was sealed; OpenSSL
// also refuses the session inside once its own lifetime (L, SSL_CTX_set_timeout) has passed, so
// in practice a ticket is good for L. A ticket opened with a retired key is answered with a new
// one sealed with the current key. The keys live in memory only: a restart forgets them.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

namespace grey::tls {
/// @addtogroup group_tls
/// @{

/// A rotating ring of session ticket keys (AES-256-CBC and HMAC-SHA256, as OpenSSL's own),
/// safe to use from any thread: handshakes on every worker ask it at once.
class ticket_keys {
  public:
    /// The keys' clock: they need only live in this process, which a restart ends.
    using clock = std::chrono::steady_clock;

    /// One key: its name (sent in the clear in each ticket, to find the key again), the cipher
    /// key and the MAC key, and when it was made.
    struct key {
        std::array<unsigned char, 16> name{};  ///< random, as OpenSSL's own
        std::array<unsigned char, 32> aes{};   ///< AES-256-CBC key, for the ticket's contents
        std::array<unsigned char, 32> hmac{};  ///< HMAC-SHA256 key, for its integrity
        clock::time_point made{};              ///< when it began to seal tickets
    };

    /// A key found for a ticket: `renew` when it no longer seals new tickets, so that the client
    /// gets a ticket under the current key.
    struct found {
        key k;               ///< the key that sealed the ticket
        bool renew = false;  ///< it seals no more: issue a new ticket under the current key
    };

    /// Keys that each seal tickets for `lifetime` (at least a second).
    explicit ticket_keys(std::chrono::seconds lifetime) : lifetime_(std::max(lifetime, std::chrono::seconds(1))) {}
    ticket_keys(const ticket_keys&) = delete;
    ticket_keys& operator=(const ticket_keys&) = delete;

    /// How long a key seals new tickets; it opens them for as long again.
    std::chrono::seconds lifetime() const noexcept { return lifetime_; }

    /// The key to seal a ticket with at `now`: the current one, or a new one when it is a
    /// lifetime old. Empty only when the system's random generator fails (no ticket then).
    std::optional<key> for_sealing(clock::time_point now = clock::now()) {
        std::lock_guard lock(mutex_);
        forget_expired(now);
        if (keys_.empty() || now - keys_.back().made >= lifetime_) {
            key fresh;
            fresh.made = now;
            if (RAND_bytes(fresh.name.data(), int(fresh.name.size())) != 1 ||
                RAND_bytes(fresh.aes.data(), int(fresh.aes.size())) != 1 ||
                RAND_bytes(fresh.hmac.data(), int(fresh.hmac.size())) != 1)
                return std::nullopt;
            keys_.push_back(fresh);
        }
        return keys_.back();
    }

    /// The key named `name`, if it may still open a ticket at `now`; empty when it was never
    /// made here (another server's, or before a restart) or has expired: a full handshake then.
    std::optional<found> for_opening(const unsigned char* name, clock::time_point now = clock::now()) {
        std::lock_guard lock(mutex_);
        forget_expired(now);
        for (std::size_t i = 0; i < keys_.size(); ++i) {
            if (std::memcmp(keys_[i].name.data(), name, keys_[i].name.size()) != 0) continue;
            const bool sealing = i + 1 == keys_.size() && now - keys_[i].made < lifetime_;
            return found{keys_[i], !sealing};
        }
        return std::nullopt;
    }

    /// Keys held now, sealing or only opening; for tests.
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return keys_.size();
    }

  private:
    // Kept while they may open a ticket: made less than two lifetimes ago. Oldest first; a
    // forgotten key is wiped, not left in freed memory.
    void forget_expired(clock::time_point now) {
        std::erase_if(keys_, [&](key& k) {
            if (now - k.made < 2 * lifetime_) return false;
            OPENSSL_cleanse(&k, sizeof k);
            return true;
        });
    }

    const std::chrono::seconds lifetime_;
    mutable std::mutex mutex_;
    std::vector<key> keys_;
};

namespace detail {

/// The ex_data slot of an SSL_CTX that holds its ring: a heap shared_ptr, freed with the
/// context, so that a context outliving the server that made it never points at nothing.
inline int ticket_keys_index() {
    static const int index = SSL_CTX_get_ex_new_index(
        0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
            delete static_cast<std::shared_ptr<ticket_keys>*>(ptr);
        });
    return index;
}

/// Sets the MAC's key and digest for a ticket.
inline bool set_mac(EVP_MAC_CTX* hctx, const ticket_keys::key& k) {
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(k.hmac.data()), k.hmac.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

/// OpenSSL's ticket callback. Sealing (enc = 1): 1, or 0 for no ticket this time. Opening:
/// 1, 2 (opened, and renew it), 0 (not ours or expired: a full handshake), -1 on error.
inline int ticket_key_callback(SSL* ssl, unsigned char name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                               EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* hctx, int enc) {
    auto* ring = static_cast<std::shared_ptr<ticket_keys>*>(
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_keys_index()));
    if (!ring || !*ring) return 0;
    const EVP_CIPHER* aes = EVP_aes_256_cbc();
    if (enc) {
        const auto k = (*ring)->for_sealing();
        if (!k) return 0;
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) return -1;
        std::memcpy(name, k->name.data(), k->name.size());
        if (EVP_EncryptInit_ex(cipher, aes, nullptr, k->aes.data(), iv) != 1 || !set_mac(hctx, *k)) return -1;
        return 1;
    }
    const auto f = (*ring)->for_opening(name);
    if (!f) return 0;
    if (!set_mac(hctx, f->k) || EVP_DecryptInit_ex(cipher, aes, nullptr, f->k.aes.data(), iv) != 1) return -1;
    return f->renew ? 2 : 1;
}

} // namespace detail

/// Seals and opens `native`'s session tickets with `ring` (shared with the other contexts that
/// use it) instead of the keys OpenSSL made for this context. Throws std::runtime_error when
/// OpenSSL refuses.
inline void use_ticket_keys(SSL_CTX* native, std::shared_ptr<ticket_keys> ring) {
    const int index = detail::ticket_keys_index();
    auto* before = static_cast<std::shared_ptr<ticket_keys>*>(SSL_CTX_get_ex_data(native, index));
    auto* held = new std::shared_ptr<ticket_keys>(std::move(ring));
    if (SSL_CTX_set_ex_data(native, index, held) != 1) {
        delete held;
        throw std::runtime_error("TLS: cannot attach the session ticket keys");
    }
    delete before;  // the slot's free function sees only what it holds when the context goes
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(native, detail::ticket_key_callback) != 1)
        throw std::runtime_error("TLS: cannot set the session ticket callback");
}

/// @}
} // namespace grey::tls
