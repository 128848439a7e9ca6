// grey/dns/resolver_service.hpp — the resolver of an io_context: made the first time a session
// on it asks, kept for the io_context's life, shared by every session on it. A resolver belongs
// to one thread (resolver.hpp), and each of Grey's workers is an io_context run by one thread,
// so one per io_context is one per worker, with no lock on the way to a query. Link grey::dns.
#pragma once

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "../detail/asio.hpp"
#include "resolver.hpp"
#include "settings.hpp"

namespace grey::dns {
/// @addtogroup group_dns
/// @{

/// An io_context's resolvers, one per distinct resolver_settings; see the header's comment.
class resolver_service : public asio::execution_context::service {
  public:
    /// Asio's key for use_service().
    static inline asio::execution_context::id id;

    /// The service of `context`, with no resolver yet.
    explicit resolver_service(asio::execution_context& context) : service(context) {}

    /// The resolver with `settings` on `ex` (an executor of this service's io_context),
    /// made on first use. Throws what resolver's constructor throws.
    resolver& get(const asio::any_io_executor& ex, const resolver_settings& settings) {
        std::lock_guard lock(mutex_);
        for (const auto& [s, r] : resolvers_)
            if (s == settings) return *r;
        resolvers_.emplace_back(settings, std::make_unique<resolver>(ex, settings));
        return *resolvers_.back().second;
    }

  private:
    // With the io_context, before its scheduler: queries in flight end as failures.
    void shutdown() override {
        std::lock_guard lock(mutex_);
        resolvers_.clear();
    }

    std::mutex mutex_;  // a guest io_context may be run by several threads: get() stays safe
    std::vector<std::pair<resolver_settings, std::unique_ptr<resolver>>> resolvers_;
};

/// The resolver with `settings` of the io_context behind `ex`, made on first use.
inline resolver& resolver_for(const asio::any_io_executor& ex, const resolver_settings& settings) {
    asio::execution_context& context = asio::query(ex, asio::execution::context);
    return asio::use_service<resolver_service>(context).get(ex, settings);
}

/// @}
} // namespace grey::dns
