#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include <grey/line_log.hpp>

namespace {
std::vector<std::string> lines_of(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}
} // namespace

TEST_CASE("The line log appends whole lines from many threads, each once, each thread's in order") {
    const auto path = std::filesystem::temp_directory_path() / fmt::format("grey-line-log-{}", ::getpid());
    std::filesystem::remove(path);
    {
        std::ofstream(path) << "before\n";  // appended to, not truncated
    }
    constexpr int threads = 4, per_thread = 5000;
    {
        grey::line_log log(path.string());
        std::vector<std::thread> writers;
        for (int t = 0; t < threads; ++t)
            writers.emplace_back([&log, t] {
                for (int i = 0; i < per_thread; ++i) log.write(fmt::format("thread {} line {} {}", t, i, std::string(40, 'x')));
            });
        for (auto& w : writers) w.join();
    }
    const auto lines = lines_of(path);
    std::filesystem::remove(path);
    REQUIRE(lines.size() == 1 + threads * per_thread);
    CHECK(lines.front() == "before");
    std::vector<int> next(threads, 0);
    for (std::size_t k = 1; k < lines.size(); ++k) {
        int t = -1, i = -1;
        REQUIRE(std::sscanf(lines[k].c_str(), "thread %d line %d", &t, &i) == 2);
        REQUIRE(t >= 0);
        REQUIRE(t < threads);
        CHECK(i == next[t]);  // neither lost, nor doubled, nor out of its thread's order
        next[t] = i + 1;
        CHECK(lines[k].ends_with(" " + std::string(40, 'x')));  // whole: no line cut by another
    }
    CHECK(next == std::vector<int>(threads, per_thread));
}

TEST_CASE("A log file that cannot be opened is named in the error") {
    CHECK_THROWS_WITH_AS(grey::line_log("/nonexistent-dir/grey.log"),
                         doctest::Contains("cannot open log file /nonexistent-dir/grey.log"), std::runtime_error);
}
