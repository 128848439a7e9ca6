// grey/metrics/registry.hpp — counters, gauges and histograms, written out in Prometheus' text
// exposition format (version 0.0.4). No I/O: http_endpoint.hpp serves what write() composes.
//
// Built for the hot path: a metric is a few relaxed atomics that sessions on any thread bump
// without a lock; the registry only knows where they are and what they are called, for the
// scrape. A label set is fixed when the metric is made (labeled<N> keeps one counter per value),
// so an increment never looks anything up.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace grey::metrics {
/// @addtogroup group_metrics
/// @{

/// A count that only grows (a Prometheus counter): one relaxed atomic, bumped from any thread
/// without a lock.
class counter {
  public:
    /// Counts `n` more.
    void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    /// The count so far, for the scrape.
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down (sessions open now): one relaxed atomic, as counter.
class gauge {
  public:
    /// Moves the value by `n`, which may be negative.
    void add(std::int64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    /// Replaces the value with `n`.
    void set(std::int64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
    /// The value now, for the scrape.
    std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::int64_t> value_{0};
};

/// Counters for each value of one label, the values fixed at construction and named by index.
template <std::size_t N>
class labeled {
  public:
    /// `label` is the label's name, `values` its values by index. Both are kept as views, so
    /// they must outlive the metric: string literals do.
    labeled(std::string_view label, std::array<std::string_view, N> values) : label_(label), values_(values) {}
    /// The counter of value `i`.
    counter& operator[](std::size_t i) noexcept { return counters_[i]; }
    /// The counter of value `i`, read-only.
    const counter& operator[](std::size_t i) const noexcept { return counters_[i]; }
    /// The label's name ("reason").
    std::string_view label() const noexcept { return label_; }
    /// Value `i` as written in the exposition ("connection_limit").
    std::string_view value_name(std::size_t i) const noexcept { return values_[i]; }
    /// How many values the label has: N.
    static constexpr std::size_t size() noexcept { return N; }

  private:
    std::string_view label_;
    std::array<std::string_view, N> values_;
    std::array<counter, N> counters_;
};

/// Counters for each value of one label, the values known only when the program starts (the
/// upstreams it is given): at() adds a value under a lock, once, at setup, and its caller keeps
/// the counter it gets, so an increment still looks nothing up. Counters never move.
class dynamic_labeled {
  public:
    /// A family with no value yet, of the label named `label`.
    explicit dynamic_labeled(std::string_view label) : label_(label) {}
    dynamic_labeled(const dynamic_labeled&) = delete;
    dynamic_labeled& operator=(const dynamic_labeled&) = delete;

    /// The counter of `value`, made on first use; the same counter for the same value.
    counter& at(std::string_view value) {
        std::lock_guard lock(mutex_);
        for (entry& e : entries_)
            if (e.value == value) return e.count;
        entry& e = entries_.emplace_back();
        e.value = std::string(value);
        return e.count;
    }

    /// The label's name.
    std::string_view label() const noexcept { return label_; }

    /// Calls `f(value, counter)` for each value, in the order added.
    template <class F>
    void for_each(F&& f) const {
        std::lock_guard lock(mutex_);
        for (const entry& e : entries_) f(std::string_view(e.value), e.count);
    }

  private:
    struct entry {
        std::string value;
        counter count;
    };
    std::string label_;
    mutable std::mutex mutex_;
    std::deque<entry> entries_;  // a deque: entries stay where they are as more are added
};

/// A label value as the text format writes it: backslash, double quote and newline escaped.
inline std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (const char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

/// Observations in seconds into fixed buckets (their upper bounds, increasing).
class histogram {
  public:
    /// The most bounds a histogram holds, so that it needs no allocation; more are dropped.
    static constexpr std::size_t max_buckets = 16;

    /// Buckets with these upper bounds, in seconds, in increasing order; "+Inf" is implied.
    explicit histogram(std::initializer_list<double> bounds) {
        for (double b : bounds) {
            if (buckets_ == max_buckets) break;
            bounds_[buckets_++] = b;
        }
    }

    /// Counts `d` in the first bucket whose bound it does not exceed, and adds it to the sum.
    void observe(std::chrono::steady_clock::duration d) noexcept {
        const double seconds = std::chrono::duration<double>(d).count();
        std::size_t i = 0;
        while (i < buckets_ && seconds > bounds_[i]) ++i;
        counts_[i].fetch_add(1, std::memory_order_relaxed);  // counts_[buckets_]: above every bound
        sum_ns_.fetch_add(static_cast<std::uint64_t>(std::chrono::nanoseconds(d).count()), std::memory_order_relaxed);
    }

    /// Writes the `name`_bucket lines (cumulative, as the format has them), `name`_sum and
    /// `name`_count through the output iterator `out`; `labels` (`type="PTR"`), when given, go
    /// on every line.
    template <class Out>
    void write(Out& out, std::string_view name, std::string_view labels = {}) const {
        const std::string_view comma = labels.empty() ? "" : ",";
        const std::string own = labels.empty() ? std::string() : "{" + std::string(labels) + "}";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < buckets_; ++i) {
            cumulative += counts_[i].load(std::memory_order_relaxed);
            fmt::format_to(out, "{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, comma, bounds_[i], cumulative);
        }
        cumulative += counts_[buckets_].load(std::memory_order_relaxed);
        fmt::format_to(out, "{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, comma, cumulative);
        fmt::format_to(out, "{}_sum{} {}\n", name, own, static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9);
        fmt::format_to(out, "{}_count{} {}\n", name, own, cumulative);
    }

  private:
    std::array<double, max_buckets> bounds_{};
    std::size_t buckets_ = 0;
    std::array<std::atomic<std::uint64_t>, max_buckets + 1> counts_{};
    std::atomic<std::uint64_t> sum_ns_{0};
};

/// Latencies of a network round trip or a store call: 0.1 ms to 10 s.
inline histogram latency_histogram() { return histogram{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                        0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}; }

/// A latency_histogram() for each value of one label, the values fixed at construction.
template <std::size_t N>
class labeled_histograms {
  public:
    /// `label` is the label's name, `values` its values by index; both kept as views.
    labeled_histograms(std::string_view label, std::array<std::string_view, N> values)
        : label_(label), values_(values), histograms_(make(std::make_index_sequence<N>{})) {}
    /// The histogram of value `i`.
    histogram& operator[](std::size_t i) noexcept { return histograms_[i]; }
    /// The histogram of value `i`, read-only.
    const histogram& operator[](std::size_t i) const noexcept { return histograms_[i]; }
    /// The label's name.
    std::string_view label() const noexcept { return label_; }
    /// Value `i` as written in the exposition.
    std::string_view value_name(std::size_t i) const noexcept { return values_[i]; }

  private:
    template <std::size_t... I>
    static std::array<histogram, N> make(std::index_sequence<I...>) {
        return {((void)I, latency_histogram())...};
    }
    std::string_view label_;
    std::array<std::string_view, N> values_;
    std::array<histogram, N> histograms_;
};

/// Where a program's metrics are, by name, for the scrape. The metrics must outlive it.
class registry {
  public:
    /// Registers `c` as the counter `name`, `help` its HELP text.
    void add(std::string name, std::string help, const counter& c) {
        add_writer(std::move(name), std::move(help), "counter", [&c](std::string& out, std::string_view n) {
            fmt::format_to(std::back_inserter(out), "{} {}\n", n, c.value());
        });
    }
    /// Registers `g` as the gauge `name`.
    void add(std::string name, std::string help, const gauge& g) {
        add_writer(std::move(name), std::move(help), "gauge", [&g](std::string& out, std::string_view n) {
            fmt::format_to(std::back_inserter(out), "{} {}\n", n, g.value());
        });
    }
    /// Registers `l` as the counter `name`, one sample per value of its label.
    template <std::size_t N>
    void add(std::string name, std::string help, const labeled<N>& l) {
        add_writer(std::move(name), std::move(help), "counter", [&l](std::string& out, std::string_view n) {
            for (std::size_t i = 0; i < N; ++i)
                fmt::format_to(std::back_inserter(out), "{}{{{}=\"{}\"}} {}\n", n, l.label(), l.value_name(i), l[i].value());
        });
    }
    /// A counter family whose label values come at start; none written until one is added.
    void add(std::string name, std::string help, const dynamic_labeled& l) {
        add_writer(std::move(name), std::move(help), "counter", [&l](std::string& out, std::string_view n) {
            l.for_each([&](std::string_view value, const counter& c) {
                fmt::format_to(std::back_inserter(out), "{}{{{}=\"{}\"}} {}\n", n, l.label(), escape_label_value(value),
                               c.value());
            });
        });
    }
    /// Registers `h` as the histogram `name`.
    void add(std::string name, std::string help, const histogram& h) {
        add_writer(std::move(name), std::move(help), "histogram", [&h](std::string& out, std::string_view n) {
            auto it = std::back_inserter(out);
            h.write(it, n);
        });
    }
    /// Registers `h` as the histogram `name`, one series per value of its label.
    template <std::size_t N>
    void add(std::string name, std::string help, const labeled_histograms<N>& h) {
        add_writer(std::move(name), std::move(help), "histogram", [&h](std::string& out, std::string_view n) {
            auto it = std::back_inserter(out);
            for (std::size_t i = 0; i < N; ++i)
                h[i].write(it, n, fmt::format("{}=\"{}\"", h.label(), h.value_name(i)));
        });
    }
    /// A value computed at scrape time (a store's record count, say).
    void add_gauge(std::string name, std::string help, std::function<double()> read) {
        add_gauge(std::move(name), std::move(help), {}, std::move(read));
    }
    /// A value computed at scrape time, its one series carrying `labels` (`store="redis"`,
    /// as the exposition writes them; empty: none): what a program knows only at start.
    /// Register a name once: a second series of it would have its own HELP and TYPE.
    void add_gauge(std::string name, std::string help, std::string labels, std::function<double()> read) {
        add_writer(std::move(name), std::move(help), "gauge",
                   [labels = std::move(labels), read = std::move(read)](std::string& out, std::string_view n) {
                       if (labels.empty()) fmt::format_to(std::back_inserter(out), "{} {}\n", n, read());
                       else fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", n, labels, read());
                   });
    }

    /// Every metric, in the order added, as the text exposition format has it.
    std::string write() const {
        std::lock_guard lock(mutex_);
        std::string out;
        for (const auto& m : metrics_) {
            fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", m.name, m.help, m.name, m.type);
            m.write(out, m.name);
        }
        return out;
    }

  private:
    struct entry {
        std::string name, help;
        std::string_view type;
        std::function<void(std::string&, std::string_view)> write;
    };

    void add_writer(std::string name, std::string help, std::string_view type,
                    std::function<void(std::string&, std::string_view)> w) {
        std::lock_guard lock(mutex_);
        metrics_.push_back(entry{std::move(name), std::move(help), type, std::move(w)});
    }

    mutable std::mutex mutex_;
    std::vector<entry> metrics_;
};

/// @}
} // namespace grey::metrics
