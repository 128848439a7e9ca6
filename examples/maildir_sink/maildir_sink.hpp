// examples/maildir_sink/maildir_sink.hpp — MaildirSink, a final-delivery SMTP handler on
// grey::MailHandler: every message it accepts is stored in a Maildir (tmp/ → fsync → new/), and
// only then answered 250. Used by the maildir_sink program and, as the embedded default
// upstream, by greylist_server.
//
// Files are written with ordinary blocking calls, which is fine for a demo sink; a server
// under real load would hand them to a thread pool as custom_policy does its lookups.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include <grey/mail_handler.hpp>
#include <grey/smtp/message_data.hpp>

struct maildir_config : grey::server_config {
    std::filesystem::path maildir = "Maildir";
};

class MaildirSink : public grey::MailHandler<MaildirSink> {
  public:
    using config_type = maildir_config;
    using MailHandler::MailHandler;

    ~MaildirSink() { discard(); }

    grey::smtp::reply handleData() {
        const auto& dir = static_cast<const maildir_config&>(config()).maildir;
        name_ = unique_name();
        tmp_path_ = dir / "tmp" / name_;
        file_ = std::fopen(tmp_path_.c_str(), "wb");
        if (!file_) return {451, "4.3.0", "Cannot store the message now"};
        size_ = 0;
        line_open_ = false;
        return grey::smtp::replies::start_data;
    }

    void handleMessageData(grey::smtp::message_data data) {
        grey::smtp::for_each_content(data, [this](std::string_view content) {
            std::fwrite(content.data(), 1, content.size(), file_);
            size_ += content.size();
            line_open_ = content.back() != '\n';  // an LF here always ends a CRLF
        });
    }

    grey::smtp::reply handleEndOfData() {
        // A message sent in chunks may end inside a line; a stored one ends with its line end.
        if (line_open_) {
            std::fwrite("\r\n", 1, 2, file_);
            size_ += 2;
        }
        // The 250 promises the message is stored: flush and fsync before saying it.
        const bool written = std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
        const bool closed = std::fclose(file_) == 0;
        file_ = nullptr;
        std::error_code ec;
        const auto final_path = tmp_path_.parent_path().parent_path() / "new" / name_;
        if (!written || !closed || (std::filesystem::rename(tmp_path_, final_path, ec), ec)) {
            std::filesystem::remove(tmp_path_, ec);
            return {451, "4.3.0", "Cannot store the message now"};
        }
        fmt::print("delivered new/{} from=<{}> to=<{}> size={}\n", name_, sender,
                   fmt::join(recipients, ">,<"), size_);
        std::fflush(stdout);
        return {250, "2.0.0", fmt::format("Stored as {}", name_)};
    }

    void handleAbortData() { discard(); }

  private:
    void discard() {
        if (!file_) return;
        std::fclose(file_);
        file_ = nullptr;
        std::error_code ec;
        std::filesystem::remove(tmp_path_, ec);
    }

    static std::string unique_name() {
        static std::atomic<unsigned long> counter{0};
        char host[256] = "localhost";
        ::gethostname(host, sizeof host - 1);
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        return fmt::format("{}.P{}Q{}.{}", std::chrono::duration_cast<std::chrono::seconds>(now).count(),
                           ::getpid(), counter++, host);
    }

    std::string name_;
    std::filesystem::path tmp_path_;
    std::FILE* file_ = nullptr;
    std::uint64_t size_ = 0;
    bool line_open_ = false;  // the last octets written do not end a line
};

/// Creates tmp/, new/ and cur/ under `dir`. Throws std::filesystem::filesystem_error.
inline void make_maildir(const std::filesystem::path& dir) {
    for (const char* sub : {"tmp", "new", "cur"}) std::filesystem::create_directories(dir / sub);
}
