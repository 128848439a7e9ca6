// grey/upstream/data_writer.hpp — a message's text on its way to the upstream, one writer per
// framing:
//
//   text_writer    DATA (RFC 5321 §4.1.1.4): whole dot-stuffed lines as MailHandler passes
//                  them on (data_codec.hpp recomputed the stuffing: P2), or a chunked
//                  message's octets stuffed on the way (smtp::dot_stuffer), then the final dot.
//   chunk_writer   BDAT (RFC 3030), to an upstream that offers CHUNKING: the octets as the
//                  client sent them, in chunks of the writer's own sizes, each chunk's reply
//                  read before the next chunk is sent, and "BDAT n LAST" at the end.
//
// Both hold a small message back, so that it leaves with its end (the final dot, or its LAST
// header) in one write; past held_limit, what is held and what comes leave together as they
// arrive, so memory stays bounded whatever the message's size (P5) and the client's octets
// are written from its own buffer, not copied. A writer sends; the relay decides what its
// results mean for the transaction (relay.hpp).
#pragma once

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "../config.hpp"
#include "../detail/asio.hpp"
#include "../result.hpp"
#include "../smtp/command_format.hpp"
#include "../smtp/data_codec.hpp"
#include "../smtp/message_data.hpp"
#include "../smtp/reply.hpp"
#include "client.hpp"

namespace grey::upstream {
/// @addtogroup group_upstream
/// @{

/// The most message text a writer holds back before it writes: most messages are smaller,
/// and leave in one write with their end.
inline constexpr std::size_t held_limit = 16 * 1024;

/// DATA's text, after the upstream's 354: whole CRLF-terminated, dot-stuffed lines, then the
/// final dot.
class text_writer {
  public:
    /// A writer whose waits are bounded by `t`'s upstream DATA timeouts (`t` must outlive it).
    explicit text_writer(const timeouts& t) noexcept : timeouts_(t) {}

    /// Holds the piece back, or writes it with what was held. DATA text goes as it is; a
    /// chunked message's octets are dot-stuffed into what is held first. An error when the
    /// connection failed.
    asio::awaitable<std::error_code> write(client& upstream, smtp::message_data data) {
        if (data.framing == smtp::framing::chunk_octets) {
            stuffer_.append(held_, data.octets);
            if (held_.size() <= held_limit) co_return std::error_code{};
            co_return co_await write_held(upstream);
        }
        if (held_.size() + data.octets.size() <= held_limit) {
            held_.append(data.octets);
            co_return std::error_code{};
        }
        const std::error_code ec = co_await upstream.write(held_, data.octets, timeouts_.upstream_data_block);
        held_.clear();
        co_return ec;
    }

    /// What is held and the final dot, then the upstream's answer to the message.
    asio::awaitable<result<smtp::reply>> finish(client& upstream) {
        held_.append(stuffer_.line_end_before_marker());
        const std::error_code ec =
            co_await upstream.write(held_, smtp::end_of_data_marker, timeouts_.upstream_data_block);
        clear();
        if (ec) co_return ec;
        co_return co_await upstream.read_reply(timeouts_.upstream_data_term);
    }

    /// Forgets what is held: the message will not be sent on this connection.
    void clear() noexcept {
        held_.clear();
        stuffer_.reset();
    }

  private:
    asio::awaitable<std::error_code> write_held(client& upstream) {
        const std::error_code ec = co_await upstream.write(held_, timeouts_.upstream_data_block);
        held_.clear();
        co_return ec;
    }

    const timeouts& timeouts_;
    std::string held_;  // text not yet written; its capacity is kept for the next message
    smtp::dot_stuffer stuffer_;  // where a chunked message's line starts are
};

/// A message in BDAT chunks. RFC 3030 §2: once the upstream refuses a chunk the transaction
/// has failed and no more chunks may follow; the refusal is kept and is the message's answer.
/// A pipelining client may send all its chunks at once, but the writer waits for each
/// chunk's reply before the next, so that a refusal stops the message where it happened.
class chunk_writer {
  public:
    /// A writer whose waits are bounded by `t`'s upstream DATA timeouts (`t` must outlive it).
    explicit chunk_writer(const timeouts& t) noexcept : timeouts_(t) {}

    /// Whether the upstream refused a chunk: then nothing more is sent, and finish() answers
    /// with the refusal.
    bool refused() const noexcept { return refusal_.has_value(); }

    /// Holds `octets` back, or sends them with what was held as one chunk, once the chunk
    /// before it was accepted. An error when the connection failed.
    asio::awaitable<std::error_code> write(client& upstream, std::string_view octets) {
        if (refusal_) co_return std::error_code{};
        if (buffer_.empty()) buffer_.resize(slot);
        if (held() + octets.size() <= held_limit) {
            buffer_.append(octets);
            co_return std::error_code{};
        }
        if (const std::error_code ec = co_await answered(upstream); ec || refusal_) co_return ec;
        const std::string_view chunk = framed(held() + octets.size(), false);
        pending_ = true;
        const std::error_code ec = co_await upstream.write(chunk, octets, timeouts_.upstream_data_block);
        buffer_.resize(slot);
        co_return ec;
    }

    /// "BDAT n LAST" with what is held, once the chunk before it was accepted: the upstream's
    /// answer to the message, or its refusal of a chunk (never a completion then).
    asio::awaitable<result<smtp::reply>> finish(client& upstream) {
        if (!refusal_) {
            if (const std::error_code ec = co_await answered(upstream)) co_return ec;
        }
        if (!refusal_) {
            if (buffer_.empty()) buffer_.resize(slot);
            const std::error_code ec =
                co_await upstream.write(framed(held(), true), timeouts_.upstream_data_block);
            clear();
            if (ec) co_return ec;
            co_return co_await upstream.read_reply(timeouts_.upstream_data_term);
        }
        smtp::reply refused = std::move(*refusal_);
        clear();
        co_return refused;
    }

    /// Forgets what is held, a reply still owed, and a refusal: the message is over.
    void clear() noexcept {
        if (!buffer_.empty()) buffer_.resize(slot);
        pending_ = false;
        refusal_.reset();
    }

  private:
    // buffer_ keeps room for the longest chunk header before the octets it holds, so that the
    // header is written in front of them, not the octets moved behind it.
    static constexpr std::size_t slot = smtp::max_bdat_line;

    std::size_t held() const noexcept { return buffer_.size() - slot; }

    /// The chunk header of `size` octets, written just before the held octets: the header
    /// and the held octets, as one view.
    std::string_view framed(std::size_t size, bool last) {
        header_.clear();
        smtp::append_bdat(header_, size, last);
        const std::size_t at = slot - header_.size();
        std::memcpy(buffer_.data() + at, header_.data(), header_.size());
        return std::string_view(buffer_).substr(at);
    }

    /// Reads the reply to the chunk sent last, if it is still owed. A refusal is kept in
    /// refusal_ and what is held dropped; an error when the connection failed.
    asio::awaitable<std::error_code> answered(client& upstream) {
        if (!pending_) co_return std::error_code{};
        pending_ = false;
        auto r = co_await upstream.read_reply(timeouts_.upstream_data_block);
        if (!r) co_return r.error();
        if (!r->completion()) {
            refusal_ = std::move(*r);
            buffer_.resize(slot);
        }
        co_return std::error_code{};
    }

    const timeouts& timeouts_;
    std::string buffer_;   // [room for a header][octets not yet written]; empty until used
    std::string header_;   // the chunk header being composed
    bool pending_ = false;  // the chunk sent last has not been answered yet
    std::optional<smtp::reply> refusal_;  // the upstream's refusal of a chunk
};

/// @}
} // namespace grey::upstream
