// grey/smtp/session_state.hpp — the order of commands RFC 5321 §4.1.4 requires, as a small
// state machine with no I/O. check() says whether a verb may come now, and which reply refuses
// it; the on_* transitions are applied once a command's hook has accepted it.
#pragma once

#include <cassert>
#include <cstddef>

#include "command.hpp"
#include "reply.hpp"

namespace grey::smtp {
/// @addtogroup group_smtp
/// @{

/// Where a session stands in the order of commands of RFC 5321 §4.1.4.
enum class phase {
    connected,  ///< greeted by us, no HELO/EHLO yet
    greeted,    ///< HELO/EHLO done, no transaction
    mail,       ///< MAIL accepted, no recipient yet
    rcpt,       ///< at least one recipient accepted
    data,       ///< inside the message text
    bdat,       ///< between the chunks of a message sent with BDAT (RFC 3030)
};

/// RFC 2920 §3.1: whether the client must wait for the reply to `v` before it sends anything
/// more. With PIPELINING offered, only the commands that change the session's state in ways the
/// client must see (EHLO, HELO, DATA, VRFY, NOOP) end a group; without it (after HELO, or
/// before any greeting) every command does. QUIT ends the session, so nothing behind it is
/// read at all; STARTTLS discards what follows it unread (RFC 3207 §4.2). Input already
/// waiting behind such a command was sent blind: real MTAs never do that; spam engines and
/// smuggling attempts do.
constexpr bool ends_pipelined_group(verb v, bool pipelining_offered) noexcept {
    switch (v) {
    case verb::quit:
    case verb::starttls: return false;
    case verb::helo:
    case verb::ehlo:
    case verb::data:
    case verb::vrfy:
    case verb::noop: return true;
    default: return !pipelining_offered;
    }
}

/// A session's phase, and what it allows. check() only asks; the caller applies a transition
/// once the command's hook has accepted it, so a refused command changes nothing.
class session_state {
  public:
    /// The phase the session is in.
    phase current() const noexcept { return phase_; }
    /// Whether a transaction is open between its commands: after MAIL, before the message
    /// ends or a reset. False inside DATA's text, which holds no commands.
    bool in_transaction() const noexcept {
        return phase_ == phase::mail || phase_ == phase::rcpt || phase_ == phase::bdat;
    }

    /// nullptr when `v` may come now; otherwise the reply that refuses it.
    const reply* check(verb v) const noexcept {
        assert(phase_ != phase::data);  // DATA text is not made of commands
        switch (v) {
        case verb::mail:
            if (phase_ == phase::connected) return &replies::need_helo;
            if (phase_ != phase::greeted) return &replies::nested_mail;
            return nullptr;
        case verb::rcpt:
            if (phase_ == phase::connected) return &replies::need_helo;
            if (phase_ == phase::greeted) return &replies::need_mail;
            if (phase_ == phase::bdat) return &replies::bad_sequence;
            return nullptr;
        case verb::data:  // RFC 3030 §2: not inside a BDAT message
        case verb::bdat:
            if (phase_ == phase::connected) return &replies::need_helo;
            if (phase_ == phase::greeted) return &replies::need_mail;
            if (phase_ == phase::mail) return &replies::need_rcpt;
            if (phase_ == phase::bdat && v == verb::data) return &replies::bad_sequence;
            return nullptr;
        case verb::starttls:  // RFC 3207: after EHLO, outside a transaction
            if (phase_ == phase::connected) return &replies::need_helo;
            if (phase_ != phase::greeted) return &replies::bad_sequence;
            return nullptr;
        default:  // HELO, EHLO, RSET, NOOP, QUIT, VRFY, HELP are valid in every phase
            return nullptr;
        }
    }

    /// HELO or EHLO accepted.
    void on_helo() noexcept { phase_ = phase::greeted; }  // also ends any transaction
    /// MAIL accepted: a transaction begins.
    void on_mail() noexcept { assert(phase_ == phase::greeted); phase_ = phase::mail; }
    /// A RCPT accepted.
    void on_rcpt() noexcept { assert(in_transaction()); phase_ = phase::rcpt; }
    /// DATA accepted: the message text follows.
    void on_data() noexcept { assert(phase_ == phase::rcpt); phase_ = phase::data; }
    /// The first BDAT of a message accepted: its chunks follow, up to the one marked LAST.
    void on_bdat() noexcept { assert(phase_ == phase::rcpt); phase_ = phase::bdat; }
    /// The message has ended (the final "." or BDAT LAST), whatever its reply: the
    /// transaction is over, the greeting stands.
    void on_end_of_data() noexcept {
        assert(phase_ == phase::data || phase_ == phase::bdat);
        phase_ = phase::greeted;
    }
    /// RSET, or a refused DATA: the transaction ends, the greeting stands (RFC 5321 §4.1.1.5).
    void on_reset() noexcept {
        if (phase_ != phase::connected) phase_ = phase::greeted;
    }

  private:
    phase phase_ = phase::connected;
};

/// @}
} // namespace grey::smtp
