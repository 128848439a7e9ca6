// grey/policy/response.hpp — the answers a policy server gives Postfix: one `action=...`
// attribute and an empty line (SMTPD_POLICY_README). Greylisting needs three of the actions
// access(5) allows, the ones Postgrey gives:
//
//   action=DEFER_IF_PERMIT text   "450 4.7.1 <rcpt>: Recipient address rejected: text", unless a
//                                 later restriction rejects outright; a text that starts with
//                                 an enhanced status code ("4.3.0 ...") replaces 4.7.1
//   action=PREPEND header         accept as far as greylisting goes, and add the header
//   action=DUNNO                  no opinion: Postfix goes on with its restrictions
//
// No I/O. Texts come from the configuration: a CR, LF or NUL in one would end the answer early
// and start a bogus one, so each is replaced by a space before it is sent.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace grey::detail {
inline void policy_append_clean(std::string& out, std::string_view text) {
    for (char c : text) out += (c == '\r' || c == '\n' || c == '\0') ? ' ' : c;
}

inline std::string policy_action(std::string_view verb, std::string_view text) {
    std::string out = "action=";
    out += verb;
    if (!text.empty()) {
        out += ' ';
        policy_append_clean(out, text);
    }
    out += "\n\n";
    return out;
}
} // namespace grey::detail

namespace grey::policy {
/// @addtogroup group_policy
/// @{

/// No opinion: the request goes on to the next restriction.
inline std::string dunno() { return "action=DUNNO\n\n"; }

/// A temporary refusal, unless something later refuses for good: Postgrey's greylisting answer.
inline std::string defer_if_permit(std::string_view text) { return grey::detail::policy_action("DEFER_IF_PERMIT", text); }

/// A refusal for good, `text` starting with its enhanced status code ("5.7.1 ..."): Postfix
/// answers the client 550 and `text`.
inline std::string reject(std::string_view text) { return grey::detail::policy_action("550", text); }

/// Accept as far as this check goes, with `header` ("Name: value") prepended to the message.
inline std::string prepend(std::string_view header) { return grey::detail::policy_action("PREPEND", header); }

/// The action's word of an answer ("DEFER_IF_PERMIT" of "action=DEFER_IF_PERMIT text\n\n"),
/// for counting answers by what they said; empty when `answer` is not one.
inline std::string_view action_of(std::string_view answer) {
    constexpr std::string_view prefix = "action=";
    if (!answer.starts_with(prefix)) return {};
    answer.remove_prefix(prefix.size());
    return answer.substr(0, answer.find_first_of(" \n"));
}

/// A greylisting text with Postgrey's substitutions: %r is the recipient's domain, %s the
/// seconds until a retry can pass; "%%" is a '%'. Anything else is kept as it is.
inline std::string expand_text(std::string_view pattern, std::string_view recipient_domain, std::chrono::seconds wait) {
    std::string out;
    out.reserve(pattern.size() + recipient_domain.size());
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        const char next = i + 1 < pattern.size() ? pattern[i + 1] : '\0';
        if (pattern[i] == '%' && next == 'r') {
            out += recipient_domain;
        } else if (pattern[i] == '%' && next == 's') {
            out += std::to_string(wait.count() > 0 ? wait.count() : 0);
        } else if (pattern[i] == '%' && next == '%') {
            out += '%';
        } else {
            out += pattern[i];
            continue;
        }
        ++i;
    }
    return out;
}

/// @}
} // namespace grey::policy
