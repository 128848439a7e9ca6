// grey/greylist/pipeline.hpp — a greylisting decision as an ordered list of small checks
// (DESIGN §9). Each check looks at the question, and at what the checks before it said, and
// either decides (a finding: the last word, no later check runs) or says what it found and
// passes on. What every check that ran said is kept in the judgement as evidence, for the log
// line and the metrics. judge() runs the configuration's pipeline (greylist_config::pipeline,
// else today's default), so the proxy and the Postfix policy server run the same checks.
//
// Why a vector of type-erased checks, built once per configuration, rather than a list composed
// at compile time: the list is the user's to change at start-up, and a compile-time list would
// make greylist_config, GreyListingPolicy and the policy server templates over it. Running it
// costs one indirect call per check and no allocation per check: a check that needs no I/O is
// a plain function, not a coroutine frame, and its answer is a short word that std::string
// keeps inline. The judgement's evidence is one allocation per decision, reserved up front.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/asio.hpp"
#include "../metrics/server_metrics.hpp"
#include "judgement.hpp"
#include "lists.hpp"

namespace grey::greylist {
/// @addtogroup group_greylist
/// @{

struct greylist_settings;  // greylist_config.hpp: it holds a pipeline, and checks read it

/// What a check is shown: the question, what it is judged by, and what came before.
struct inquiry {
    const greylist_settings& settings;           ///< the store, timings, lists and the rest
    const greylist::lists& lists;                ///< the session's snapshot of the lists
    const greylist::question& question;          ///< the recipient being judged
    std::span<const greylist::evidence> so_far;  ///< what the checks before this one said
    metrics::server_metrics* metrics = nullptr;  ///< where checks count; none when null
    /// What judging first concluded, when a check before this one did; null otherwise.
    const greylist::assessment* assessed = nullptr;
};

/// What a check says of an inquiry: its evidence, and the decision when it makes one.
struct check_answer {
    std::string said;                  ///< what it found, recorded as evidence: "listed", "first seen"
    std::optional<finding> decides{};  ///< set: the decision is made, and no later check runs
    std::chrono::seconds delayed{};    ///< with `passed`: how long the mail was held back
    std::chrono::seconds wait{};       ///< with `greylisted`: how long until a retry can pass
    /// Set by a check that judges the client first: later checks read it (inquiry::assessed),
    /// and the judgement keeps it.
    std::optional<greylist::assessment> assessed{};
};

/// A callable that answers at once, with no I/O.
template <class F>
concept immediate_check = std::invocable<const F&, const inquiry&> &&
                          std::same_as<std::invoke_result_t<const F&, const inquiry&>, check_answer>;
/// A callable that answers after I/O (the store, later DNS).
template <class F>
concept awaited_check = std::invocable<const F&, const inquiry&> &&
                        std::same_as<std::invoke_result_t<const F&, const inquiry&>, asio::awaitable<check_answer>>;

/// One check of a pipeline: a name for its evidence, and how it answers. A pipeline is shared
/// by every session, on every thread, so a check is called as const: it keeps no state of its
/// own, or keeps it safe to share.
class check {
  public:
    /// A check named `name`, which must outlive every judgement (a literal does), answered by
    /// `run`: a callable taking an inquiry and returning a check_answer or an
    /// asio::awaitable<check_answer>.
    template <class F>
        requires immediate_check<F> || awaited_check<F>
    check(std::string_view name, F run) : name_(name) {
        if constexpr (immediate_check<F>)
            immediate_ = std::move(run);
        else
            awaited_ = std::move(run);
    }

    /// A check of the type C, named C::name (checks/*.hpp): `pipeline{{relay_control{}, ...}}`.
    template <class C>
        requires(immediate_check<C> || awaited_check<C>) && requires { std::string_view{C::name}; }
    check(C c) : check(C::name, std::move(c)) {}  // implicit, so that a list of checks reads as one

    /// The name its evidence carries.
    std::string_view name() const noexcept { return name_; }

  private:
    friend struct pipeline;  // calls immediate_ directly, without a coroutine frame

    std::string_view name_;
    std::function<check_answer(const inquiry&)> immediate_;  // one of the two is set
    std::function<asio::awaitable<check_answer>(const inquiry&)> awaited_;
};

/// The checks a recipient goes through, in order: the first that decides has the last word.
struct pipeline {
    std::vector<check> checks;  ///< in the order they run

    /// The check named `name`, to insert before it or replace it; checks.end() when none is.
    std::vector<check>::iterator find(std::string_view name) {
        return std::ranges::find(checks, name, &check::name);
    }

    /// Runs the checks in order on `q` until one decides, counting in `m` (none when null), recording what each said. When none
    /// decides, the recipient is deferred as greylisted: Grey passes only what a check vouched
    /// for (the default pipeline's last check always decides).
    asio::awaitable<judgement> run(const greylist_settings& s, metrics::server_metrics* m, const lists& l,
                                   const question& q) const {
        judgement j;
        j.evidence.reserve(checks.size());
        for (const check& c : checks) {
            const inquiry in{s, l, q, j.evidence, m, j.assessed ? &*j.assessed : nullptr};
            check_answer a;
            if (c.immediate_)
                a = c.immediate_(in);
            else
                a = co_await c.awaited_(in);
            j.evidence.push_back(evidence{c.name_, std::move(a.said)});
            if (a.assessed) j.assessed = std::move(a.assessed);
            if (a.decides) {
                j.why = *a.decides;
                j.delayed = a.delayed;
                j.wait = a.wait;
                co_return j;
            }
        }
        j.why = finding::greylisted;
        co_return j;
    }
};

/// @}
} // namespace grey::greylist
