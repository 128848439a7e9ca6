// grey/greylist/privacy.hpp — privacy mode: a triplet whose parts are replaced by one-way
// hashes (SHA-256, hex), so that a store holds no addresses. Greylisting needs only equality,
// which hashes keep; the administration tool can still whitelist or remove a triplet by
// hashing the one it is given, but cannot list who wrote to whom.
//
// Link grey::privacy (OpenSSL's libcrypto) to use it.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

#include "triplet.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// SHA-256 of `text`, in lower-case hex.
inline std::string sha256_hex(std::string_view text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(length * 2);
    for (unsigned i = 0; i < length; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0xF]);
    }
    return out;
}

/// `t` with each part replaced by its sha256_hex: what privacy mode stores in its place.
inline triplet hashed(const triplet& t) {
    return {sha256_hex(t.client), sha256_hex(t.sender), sha256_hex(t.recipient)};
}

/// @}
} // namespace grey::greylist
