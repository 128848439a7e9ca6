// grey/upstream/opening.hpp — the commands that open an upstream transaction, composed one after
// the other in one buffer: RSET when a transaction was left open on the connection, XFORWARD
// when the client's identity goes with each MAIL (identity.hpp), MAIL, and the first RCPT.
// With PIPELINING (RFC 2920) the relay writes the buffer whole; without, one command at a time
// (RFC 5321 §4.3). No I/O. The buffer is kept, so that opening a transaction allocates nothing
// once it has grown.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "../smtp/command.hpp"
#include "../smtp/command_format.hpp"
#include "../smtp/extensions.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// [RSET] [XFORWARD...] MAIL RCPT, as one buffer and as separate commands.
class opening {
  public:
    /// Composes the commands: RSET first when `reset`; the `forward` lines (CRLF included);
    /// MAIL from `sender` with `mail` as an upstream that offered `offered` takes them
    /// (command_format.hpp); RCPT to `recipient` with `rcpt`.
    void compose(bool reset, const std::vector<std::string>& forward, std::string_view sender,
                 const smtp::mail_parameters& mail, std::string_view recipient, const smtp::rcpt_parameters& rcpt,
                 const smtp::extensions& offered) {
        wire_.clear();
        ends_.clear();
        resets_ = reset ? 1 : 0;
        if (reset) end(wire_.append(smtp::command_lines::rset));
        for (const std::string& line : forward) end(wire_.append(line));
        mail_ = ends_.size();
        smtp::append_mail(wire_, sender, mail, offered);
        end(wire_);
        smtp::append_rcpt(wire_, recipient, rcpt);
        end(wire_);
    }

    /// Every command, as one write.
    std::string_view wire() const noexcept { return wire_; }
    /// The `i`th command (CRLF included).
    std::string_view command(std::size_t i) const {
        const std::size_t begin = i == 0 ? 0 : ends_[i - 1];
        return std::string_view(wire_).substr(begin, ends_[i] - begin);
    }
    /// Which command is MAIL: those before it are RSET and XFORWARD, the one after it RCPT.
    std::size_t mail() const noexcept { return mail_; }
    /// Whether the `i`th command is the RSET.
    bool is_reset(std::size_t i) const noexcept { return i < resets_; }

  private:
    void end(const std::string& wire) { ends_.push_back(wire.size()); }

    std::string wire_;
    std::vector<std::size_t> ends_;  // where each command ends in wire_
    std::size_t resets_ = 0;         // 0 or 1
    std::size_t mail_ = 0;
};

/// @}
} // namespace grey::upstream
