// grey/dns/registered_domain.hpp — the registered (organisational) domain of a host name: the
// public suffix it ends in, by the Public Suffix List, and one label more. mail-1.example.co.uk
// and mail-2.example.co.uk belong to example.co.uk, so a sender's pool of outbound hosts is one
// client for greylisting (DESIGN §10), while two customers of one hosting suffix
// (a.github.io, b.github.io) stay two. The list is libpsl's: the newest of its built-in copy
// and the system's (Debian's publicsuffix package), loaded once. Link grey::psl (libpsl).
#pragma once

#include <libpsl.h>

#include <optional>
#include <string>
#include <string_view>

#include <asio/ip/address.hpp>

namespace grey::dns {
/// @addtogroup group_dns
/// @{

namespace detail {

// Loaded on first use and kept for the program's life: libpsl's context is read-only once
// loaded, so every thread may share it.
inline const psl_ctx_t* public_suffixes() {
    static const psl_ctx_t* const list = [] {
        const psl_ctx_t* latest = psl_latest(nullptr);
        return latest ? latest : psl_builtin();
    }();
    return list;
}

} // namespace detail

/// The registered domain of `host`, lowercase, without a final dot: "example.co.uk" for
/// "Mail.Example.CO.UK."; nullopt for a public suffix itself ("co.uk"), an IP address (bare
/// or as an address literal), an empty or malformed name, or when no list could be loaded.
inline std::optional<std::string> registered_domain(std::string_view host) {
    std::string name(host);
    while (!name.empty() && name.back() == '.') name.pop_back();
    if (name.empty() || name.front() == '.' || name.find("..") != std::string::npos) return std::nullopt;
    if (name.front() == '[') return std::nullopt;  // an address literal (RFC 5321 §4.1.3)
    asio::error_code ec;
    (void)asio::ip::make_address(name, ec);
    if (!ec) return std::nullopt;
    for (char& c : name) {
        if (c == '\0' || c == ' ') return std::nullopt;
        c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    const psl_ctx_t* list = detail::public_suffixes();
    if (!list) return std::nullopt;
    const char* found = psl_registrable_domain(list, name.c_str());
    if (!found) return std::nullopt;
    return std::string(found);  // a pointer into `name`
}

/// @}
} // namespace grey::dns
