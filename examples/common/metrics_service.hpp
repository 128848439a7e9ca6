// examples/common/metrics_service.hpp — `--metrics HOST:PORT`: Grey's metrics
// (grey/metrics/server_metrics.hpp) served for Prometheus at http://HOST:PORT/metrics, on a
// thread of their own so that a scrape never waits behind a session.
#pragma once

#include <thread>

#include <fmt/format.h>

#include <grey/config.hpp>
#include <grey/detail/asio.hpp>
#include <grey/metrics/http_endpoint.hpp>
#include <grey/metrics/server_metrics.hpp>

namespace examples {

class metrics_service {
  public:
    /// Listens now (throws std::system_error when it cannot) and serves at once.
    explicit metrics_service(const grey::endpoint& where)
        : http_(ioc_, where, [this] { return metrics_.registry().write(); }) {
        http_.start();
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~metrics_service() {
        ioc_.stop();
        thread_.join();
    }
    metrics_service(const metrics_service&) = delete;
    metrics_service& operator=(const metrics_service&) = delete;

    grey::metrics::server_metrics& metrics() noexcept { return metrics_; }
    grey::detail::tcp::endpoint local_endpoint() const { return http_.local_endpoint(); }

  private:
    asio::io_context ioc_{1};
    grey::metrics::server_metrics metrics_;
    grey::metrics::http_endpoint http_;
    std::thread thread_;
};

} // namespace examples
