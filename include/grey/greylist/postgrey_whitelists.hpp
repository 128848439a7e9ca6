// grey/greylist/postgrey_whitelists.hpp — Postgrey's whitelist files, read as Postgrey 1.37
// reads them (read_clients_whitelists, read_recipients_whitelists in /usr/sbin/postgrey) and
// matched as its policy code matches them, so that a site moving from Postgrey keeps Debian's
// /etc/postgrey/whitelist_clients and whitelist_recipients and its own .local files.
//
// Every line loses what follows a '#' and its surrounding blanks; empty lines are skipped.
//
// whitelist_clients, tried in this order:
//   /regex/       a Perl regex searched, in any case, in the client's verified host name
//   1.2.3.4       an IPv4 address, or a network with /LEN (1.2.3.0/24)
//   1.2.3         the /24 it starts; "1.2" is the /16 (Postgrey's comment says /16, its code
//                 makes a /24: Grey does what the comment and the file's users mean)
//   2001:db8::/32 an IPv6 address or network (any line with two colons)
//   example.com   that host name and every name under it (mail.example.com), in any case
//
// whitelist_recipients:
//   /regex/       a Perl regex searched, in any case, in the recipient address
//   user@domain   that address, and user+extension@domain
//   user@         the user (and user+extension) at any domain: postmaster@, abuse@
//   domain        any address at that domain or under it
//
// Where Postgrey warns and goes on (a line it cannot read) or silently drops a line (an
// address out of range, an IPv6 network it cannot parse), Grey reports a whitelist_error with
// the file and line, so that the program can refuse the file rather than run without the
// entry. Also refused: "@domain" (Postfix's access(5) form, which Postgrey takes as a recipient
// "@domain" that no mail has) and "//". A file that does not exist is an error too, except one
// whose name ends in ".local", which Postgrey reads when it is there and skips quietly when not.
//
// A client with no verified name (Postfix's "unknown") is matched by address only. Link
// grey::pcre2 (libpcre2-8) to use this header.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <asio/ip/address.hpp>

#include "../network.hpp"
#include "lists.hpp"
#include "perl_regex.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// A line of a whitelist file that Grey did not take, and why.
struct whitelist_error {
    std::string source;    ///< the file, as it was named
    std::size_t line = 0;  ///< 1 for the first line; 0 when the error is the whole file's
    std::string what;      ///< what is wrong, quoting the line

    /// "FILE:LINE: WHAT", or "FILE: WHAT" for the whole file.
    std::string message() const {
        return line ? source + ":" + std::to_string(line) + ": " + what : source + ": " + what;
    }
};

/// Postgrey's client and recipient whitelists, as one whitelist_files for lists::files. Filled
/// by the add_ and read_ calls, then shared read-only: matching is safe from any thread.
class postgrey_whitelists final : public whitelist_files {
  public:
    /// Adds the entries of `text`, in whitelist_clients' format; `source` names it in errors.
    /// Returns the lines it did not take (each skipped), in order; empty when all were taken.
    std::vector<whitelist_error> add_clients(std::string_view text, std::string_view source) {
        std::vector<whitelist_error> errors;
        each_line(text, [&](std::string_view entry, std::size_t number) {
            if (auto what = add_client(entry, {std::string(source), number}); !what.empty())
                errors.push_back({std::string(source), number, std::move(what)});
        });
        return errors;
    }

    /// Adds the entries of `text`, in whitelist_recipients' format; `source` names it in
    /// errors. Returns the lines it did not take (each skipped), in order.
    std::vector<whitelist_error> add_recipients(std::string_view text, std::string_view source) {
        std::vector<whitelist_error> errors;
        each_line(text, [&](std::string_view entry, std::size_t number) {
            if (auto what = add_recipient(entry, {std::string(source), number}); !what.empty())
                errors.push_back({std::string(source), number, std::move(what)});
        });
        return errors;
    }

    /// add_clients() with the text of `file`. A file that cannot be read is one error (line
    /// 0); a missing file named "*.local" is skipped with none, as Postgrey skips it.
    std::vector<whitelist_error> read_clients(const std::filesystem::path& file) {
        std::vector<whitelist_error> errors;
        if (auto text = read_text(file, errors)) return add_clients(*text, file.string());
        return errors;
    }

    /// add_recipients() with the text of `file`; a file that cannot be read as read_clients().
    std::vector<whitelist_error> read_recipients(const std::filesystem::path& file) {
        std::vector<whitelist_error> errors;
        if (auto text = read_text(file, errors)) return add_recipients(*text, file.string());
        return errors;
    }

    /// The entry of the listed network the client at `address` is in, or null. An IPv4-mapped
    /// IPv6 address counts as its IPv4 address; text that is no address is in none.
    const whitelist_entry* client_address_listed(std::string_view address) const override {
        if (networks_.empty()) return nullptr;
        asio::error_code ec;
        const auto a = asio::ip::make_address(std::string(address), ec);
        if (ec) return nullptr;
        for (const auto& [n, e] : networks_)
            if (n.contains(a)) return &e;
        return nullptr;
    }

    /// The entry that lists `name` or a domain above it, or the first client regex that matches
    /// it; null when none does.
    const whitelist_entry* client_name_listed(std::string_view name) const override {
        if (name.empty()) return nullptr;
        if (!names_.empty())
            if (const auto* e = under_listed_domain(names_, lowered(name), '.')) return e;
        for (const auto& [r, e] : client_regexes_)
            if (r.search(name)) return &e;
        return nullptr;
    }

    /// Whether any client entry is a name or a regex.
    bool matches_client_names() const override { return !names_.empty() || !client_regexes_.empty(); }

    /// The entry that lists `recipient`: by domain, by address or `user@`, or by regex; null
    /// when none does.
    const whitelist_entry* recipient_listed(std::string_view recipient) const override {
        if (!domains_.empty())
            if (const auto* e = under_listed_domain(domains_, lowered(recipient), '@')) return e;
        for (const auto& m : mailboxes_)
            if (m.matches(recipient)) return &m.entry;
        for (const auto& [r, e] : recipient_regexes_)
            if (r.search(recipient)) return &e;
        return nullptr;
    }

    /// Entries taken from whitelist_clients texts.
    std::size_t client_entries() const noexcept { return client_regexes_.size() + names_.size() + networks_.size(); }
    /// Entries taken from whitelist_recipients texts.
    std::size_t recipient_entries() const noexcept {
        return recipient_regexes_.size() + domains_.size() + mailboxes_.size();
    }

  private:
    // Heterogeneous look-up: a suffix of the name is a view, and needs no string of its own.
    struct text_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using domain_set = std::unordered_map<std::string, whitelist_entry, text_hash, std::equal_to<>>;

    // user@domain, user@ (domain empty): Postgrey's ^\Quser\E(?:\+[^@]+)?\@\Qdomain\E$, in any case.
    struct mailbox {
        std::string user;
        std::string domain;  // empty: any domain
        whitelist_entry entry;

        bool matches(std::string_view r) const {
            if (!smtp::istarts_with(r, user)) return false;
            r.remove_prefix(user.size());
            if (!r.empty() && r.front() == '+') {
                const auto at = r.find('@');
                if (at == std::string_view::npos || at == 1) return false;
                r.remove_prefix(at);
            }
            if (r.empty() || r.front() != '@') return false;
            return domain.empty() || smtp::iequals(r.substr(1), domain);
        }
    };

    static constexpr std::string_view blanks = " \t\n\r\f\v";

    static std::string lowered(std::string_view s) {
        std::string out(s);
        for (char& c : out) c = smtp::detail::to_lower(c);
        return out;
    }

    // Whether `text` (lower case) is a listed domain, or ends in one after a dot or after
    // `separator`: Postgrey's (?:^|\.)\Qname\E$ for clients, (?:\@|\.)\Qdomain\E$ for
    // recipients (where the whole address is no domain, so '^' is not a start).
    static const whitelist_entry* under_listed_domain(const domain_set& set, std::string_view text, char separator) {
        if (separator == '.')
            if (const auto it = set.find(text); it != set.end()) return &it->second;
        for (std::size_t i = 0; i < text.size(); ++i)
            if (text[i] == '.' || text[i] == separator)
                if (const auto it = set.find(text.substr(i + 1)); it != set.end()) return &it->second;
        return nullptr;
    }

    // Postgrey: s/#.*$//; s/^\s+//; s/\s+$//; next if $_ eq ''.
    template <class Take>
    static void each_line(std::string_view text, Take&& take) {
        std::size_t number = 0;
        while (!text.empty()) {
            const auto lf = text.find('\n');
            std::string_view line = text.substr(0, lf);
            text.remove_prefix(lf == std::string_view::npos ? text.size() : lf + 1);
            ++number;
            line = line.substr(0, line.find('#'));
            const auto first = line.find_first_not_of(blanks);
            if (first == std::string_view::npos) continue;
            line = line.substr(first, line.find_last_not_of(blanks) - first + 1);
            take(line, number);
        }
    }

    static bool has_blank(std::string_view s) { return s.find_first_of(blanks) != std::string_view::npos; }

    static bool all_digits(std::string_view s, std::size_t min, std::size_t max) {
        if (s.size() < min || s.size() > max) return false;
        for (char c : s)
            if (c < '0' || c > '9') return false;
        return true;
    }

    // Whether `s` is 2 to 4 dot-separated groups of 1 to 3 digits; how many in `count`.
    static bool dotted_digits(std::string_view s, std::size_t& count) {
        count = 0;
        while (true) {
            const auto dot = s.find('.');
            if (!all_digits(s.substr(0, dot), 1, 3)) return false;
            ++count;
            if (dot == std::string_view::npos) return count >= 2 && count <= 4;
            s.remove_prefix(dot + 1);
        }
    }

    // /regex/ as Postgrey recognises it: ^\/(\S+)\/$ (the line has no blank by then, or is no regex).
    static bool is_regex(std::string_view entry) {
        return entry.size() >= 3 && entry.front() == '/' && entry.back() == '/' && !has_blank(entry);
    }

    static std::string compile(std::string_view entry, whitelist_entry where,
                               std::vector<std::pair<perl_regex, whitelist_entry>>& into) {
        std::string why;
        perl_regex r = perl_regex::compile(entry.substr(1, entry.size() - 2), /*caseless=*/true, why);
        if (!r) return "'" + std::string(entry) + "' is not a valid regular expression: " + why;
        into.emplace_back(std::move(r), std::move(where));
        return {};
    }

    // One entry of whitelist_clients; what is wrong with it, or "".
    std::string add_client(std::string_view entry, whitelist_entry where) {
        if (is_regex(entry)) return compile(entry, std::move(where), client_regexes_);
        const std::string quoted = "'" + std::string(entry) + "'";
        if (entry == "//") return quoted + " is an empty regular expression";
        // An IPv4 address, network or partial address: Postgrey's \d{1,3}(\.\d{1,3}){1,3}(/\d{1,2})?
        const auto slash = entry.find('/');
        std::size_t groups = 0;
        if (dotted_digits(entry.substr(0, slash), groups)) {
            std::string text(entry);
            if (groups == 3) text += ".0/24";
            else if (groups == 2) text += ".0.0/16";
            const bool mask_ok = slash == std::string_view::npos || (groups == 4 && all_digits(entry.substr(slash + 1), 1, 2));
            auto n = network::parse(text);
            if (!mask_ok || !n) return quoted + " is not an IPv4 address, network (a.b.c.d/len) or partial address (a.b.c)";
            networks_.emplace_back(*n, std::move(where));
            return {};
        }
        // IPv6: Postgrey takes any line with two colons for one.
        if (const auto colon = entry.find(':'); colon != std::string_view::npos && entry.find(':', colon + 1) != std::string_view::npos) {
            auto n = network::parse(entry);
            if (!n) return quoted + " is not an IPv6 address or network (2001:db8::/32)";
            networks_.emplace_back(*n, std::move(where));
            return {};
        }
        if (has_blank(entry)) return quoted + " does not look like a host name, an address or a /regex/";
        names_.try_emplace(lowered(entry), std::move(where));  // the first line that lists it
        return {};
    }

    // One entry of whitelist_recipients; what is wrong with it, or "".
    std::string add_recipient(std::string_view entry, whitelist_entry where) {
        if (is_regex(entry)) return compile(entry, std::move(where), recipient_regexes_);
        const std::string quoted = "'" + std::string(entry) + "'";
        if (entry == "//") return quoted + " is an empty regular expression";
        if (has_blank(entry)) return quoted + " does not look like an address, a domain or a /regex/";
        const auto at = entry.find('@');
        if (at == std::string_view::npos) {
            domains_.try_emplace(lowered(entry), std::move(where));
            return {};
        }
        if (at == 0)
            return quoted + " has no user: write '" + std::string(entry.substr(1)) +
                   "' for every address at that domain, 'user@' for a user at any domain";
        mailboxes_.push_back({std::string(entry.substr(0, at)), std::string(entry.substr(at + 1)), std::move(where)});
        return {};
    }

    static std::optional<std::string> read_text(const std::filesystem::path& file, std::vector<whitelist_error>& errors) {
        std::error_code ec;
        const auto status = std::filesystem::status(file, ec);
        if (status.type() == std::filesystem::file_type::not_found) {
            if (file.extension() != ".local") errors.push_back({file.string(), 0, "cannot read: no such file"});
            return std::nullopt;
        }
        if (std::filesystem::is_directory(status)) {
            errors.push_back({file.string(), 0, "cannot read: it is a directory"});
            return std::nullopt;
        }
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            errors.push_back({file.string(), 0, std::string("cannot read: ") + std::strerror(errno)});
            return std::nullopt;
        }
        std::ostringstream text;
        text << in.rdbuf();
        if (in.bad()) {
            errors.push_back({file.string(), 0, "cannot read: read error"});
            return std::nullopt;
        }
        return std::move(text).str();
    }

    std::vector<std::pair<perl_regex, whitelist_entry>> client_regexes_;
    domain_set names_;  // lower case
    std::vector<std::pair<network, whitelist_entry>> networks_;
    std::vector<std::pair<perl_regex, whitelist_entry>> recipient_regexes_;
    domain_set domains_;  // lower case
    std::vector<mailbox> mailboxes_;
};

/// Reads Postgrey's files into one whitelist for lists::files: `clients` in whitelist_clients'
/// format, `recipients` in whitelist_recipients', each in order. Null when no file is named, so
/// that a site without them pays nothing per recipient. Every file's errors go to `errors`.
inline std::shared_ptr<const postgrey_whitelists>
read_postgrey_whitelists(const std::vector<std::filesystem::path>& clients,
                         const std::vector<std::filesystem::path>& recipients, std::vector<whitelist_error>& errors) {
    if (clients.empty() && recipients.empty()) return nullptr;
    auto w = std::make_shared<postgrey_whitelists>();
    for (const auto& f : clients)
        for (auto& e : w->read_clients(f)) errors.push_back(std::move(e));
    for (const auto& f : recipients)
        for (auto& e : w->read_recipients(f)) errors.push_back(std::move(e));
    return w;
}

/// @}
} // namespace grey::greylist
