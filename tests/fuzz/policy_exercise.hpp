// exercise_policy(input): the fuzz checks of policy/request.hpp, for a libFuzzer entry to call.
// The input is what a Postfix policy client sends on one connection; it is parsed whole, one
// octet at a time, and cut at a point the input chooses, with the default limits and with small
// ones. Any broken invariant aborts:
// - split independence: every way of cutting the input gives the same requests, in order,
//   and fails or not alike (which rule a bad line breaks first, a NUL or its length, may
//   depend on where it was cut: either closes the connection);
// - bounds: a request has at most max_attributes lines, and none of its kept values is longer
//   than a line may be;
// - a value holds no LF, and no NUL (a NUL is an error);
// - once the parser has failed, the connection is over: nothing after the error is parsed.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <grey/policy/request.hpp>

namespace grey_fuzz_policy {

inline void require(bool ok) {
    if (!ok) std::abort();
}

using grey::policy::request;
using grey::policy::request_limits;

/// What one connection's octets become: the requests, then the error, if any.
struct outcome {
    std::vector<request> requests;
    std::error_code error;
};

inline std::vector<const std::string*> values(const request& r) {
    return {&r.request, &r.protocol_state, &r.protocol_name, &r.helo_name, &r.queue_id,
            &r.sender, &r.recipient, &r.client_address, &r.client_name, &r.instance};
}

inline bool same_request(const request& a, const request& b) {
    const auto x = values(a), y = values(b);
    for (std::size_t i = 0; i < x.size(); ++i)
        if (*x[i] != *y[i]) return false;
    return a.attributes == b.attributes;
}

/// Offers `input` in pieces of `piece` octets (0: whole), as reads from a socket would.
inline outcome parse(std::string_view input, std::size_t piece, const request_limits& limits) {
    grey::policy::request_parser parser(limits);
    outcome out;
    std::size_t offered = 0;
    while (offered < input.size()) {
        const std::size_t n = piece == 0 ? input.size() - offered : std::min(piece, input.size() - offered);
        std::string_view in = input.substr(offered, n);
        for (;;) {
            auto r = parser.consume(in);
            if (!r) {
                out.error = r.error();
                return out;
            }
            if (!*r) {
                require(in.empty());  // more is needed only when all was taken
                break;
            }
            out.requests.push_back(std::move(**r));
        }
        offered += n;
    }
    return out;
}

inline void check_bounds(const outcome& o, const request_limits& limits) {
    for (const request& r : o.requests) {
        require(r.attributes <= limits.max_attributes);
        for (const std::string* v : values(r)) {
            require(v->size() < limits.max_line);
            require(v->find('\n') == std::string::npos);
            require(v->find('\0') == std::string::npos);
        }
    }
}

inline void exercise_policy(std::string_view input) {
    for (const request_limits limits : {request_limits{}, request_limits{64, 4, 256}}) {
        const outcome whole = parse(input, 0, limits);
        check_bounds(whole, limits);
        const std::size_t cut = input.empty() ? 1 : 1 + static_cast<unsigned char>(input[0]) % 31;
        for (const std::size_t piece : {std::size_t{1}, cut}) {
            const outcome split = parse(input, piece, limits);
            require(bool(split.error) == bool(whole.error));
            require(split.requests.size() == whole.requests.size());
            for (std::size_t i = 0; i < whole.requests.size(); ++i)
                require(same_request(split.requests[i], whole.requests[i]));
        }
    }
}

} // namespace grey_fuzz_policy

using grey_fuzz_policy::exercise_policy;
