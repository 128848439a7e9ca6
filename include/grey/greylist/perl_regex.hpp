// grey/greylist/perl_regex.hpp — a Perl regular expression, as Postgrey's whitelist files write
// them (/^mail\d+\.telekom\.de$/), compiled with PCRE2: Perl's syntax, and JIT-compiled where
// the machine allows, so that a list of them costs little per request. std::regex has neither.
//
// Matching is a search, as Perl's =~ is: unanchored unless the pattern anchors itself. Text is
// bytes (no UTF mode), as Postgrey reads its files and Postfix sends names.
//
// Link grey::pcre2 (libpcre2-8) to use it.
#pragma once

// The 8-bit library by its explicit names (pcre2_compile_8, ...), so that a program that
// includes pcre2.h for another code unit width still compiles this.
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <memory>
#include <string>
#include <string_view>

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

/// A compiled Perl regular expression; copies share the compiled code, which is read-only and
/// safe to match from any thread.
class perl_regex {
  public:
    /// Compiles `pattern`, case-insensitive when `caseless` (Perl's /i). On failure returns an
    /// empty perl_regex and sets `error` to PCRE2's reason and where in the pattern it is.
    static perl_regex compile(std::string_view pattern, bool caseless, std::string& error) {
        int code = 0;
        PCRE2_SIZE offset = 0;
        pcre2_code_8* compiled =
            pcre2_compile_8(reinterpret_cast<PCRE2_SPTR8>(pattern.data()), pattern.size(),
                            caseless ? PCRE2_CASELESS : 0u, &code, &offset, nullptr);
        if (!compiled) {
            PCRE2_UCHAR8 message[256];
            pcre2_get_error_message_8(code, message, sizeof message);
            error = std::string(reinterpret_cast<const char*>(message)) + " at offset " + std::to_string(offset);
            return perl_regex{};
        }
        // Without JIT (a machine or build without it) the interpreter matches the same.
        pcre2_jit_compile_8(compiled, PCRE2_JIT_COMPLETE);
        perl_regex r;
        r.code_ = std::shared_ptr<const pcre2_code_8>(compiled, [](const pcre2_code_8* c) {
            pcre2_code_free_8(const_cast<pcre2_code_8*>(c));
        });
        r.pattern_ = std::string(pattern);
        return r;
    }

    /// Whether compile() succeeded.
    explicit operator bool() const noexcept { return code_ != nullptr; }

    /// The pattern as written, without the slashes.
    const std::string& pattern() const noexcept { return pattern_; }

    /// Whether the pattern matches somewhere in `text`. A match that PCRE2 gives up on (its
    /// backtracking limit) is no match: a whitelist must not pass what it could not decide.
    bool search(std::string_view text) const {
        if (!code_) return false;
        // One pair of offsets is all a yes or no needs, whatever the pattern's groups; kept per
        // thread so that matching allocates nothing.
        thread_local const std::unique_ptr<pcre2_match_data_8, decltype(&pcre2_match_data_free_8)> data(
            pcre2_match_data_create_8(1, nullptr), &pcre2_match_data_free_8);
        if (!data) return false;
        // PCRE2 before 10.43 refuses a null subject even when it is empty.
        const char* subject = text.data() ? text.data() : "";
        return pcre2_match_8(code_.get(), reinterpret_cast<PCRE2_SPTR8>(subject), text.size(), 0, 0, data.get(),
                             nullptr) >= 0;
    }

  private:
    std::shared_ptr<const pcre2_code_8> code_;
    std::string pattern_;
};

/// @}
} // namespace grey::greylist
