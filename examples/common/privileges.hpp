// examples/common/privileges.hpp — --user NAME [--group NAME] for a server started as root
// without a service manager (systemd sets User= itself): the files it makes at start (the
// store, the log, the Maildir) are made as that user, it binds its ports as root (port 25 needs
// it), then gives root up for good — supplementary groups, group, user — before it serves a
// single connection. If root could still be regained afterwards, it refuses to run.
//
//   examples::privileges privs(user, group);   // resolves the names; throws if unknown
//   privs.as_user();  open files;  privs.as_root();
//   listen();  privs.drop();  serve();
#pragma once

#include <grp.h>
#include <pwd.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>

namespace examples {

class privileges {
  public:
    /// Nothing to do when `user` is empty. Throws std::runtime_error for an unknown user or
    /// group, or a --user other than the caller's when not started as root.
    privileges(const std::string& user, const std::string& group) {
        if (user.empty()) {
            if (!group.empty()) throw std::runtime_error("--group needs --user");
            return;
        }
        std::vector<char> buffer(16384);
        passwd pw{};
        passwd* found = nullptr;
        const int e = ::getpwnam_r(user.c_str(), &pw, buffer.data(), buffer.size(), &found);
        if (e != 0 || !found) throw std::runtime_error(fmt::format("--user: no user named '{}'", user));
        uid_ = pw.pw_uid;
        gid_ = pw.pw_gid;
        name_ = user;
        if (!group.empty()) {
            group_entry(group);
        }
        if (::getuid() != 0) {
            // Not root: nothing to give up, and nothing to become but oneself.
            if (uid_ != ::getuid() || gid_ != ::getgid())
                throw std::runtime_error(fmt::format("--user {}: only root can switch to another user", user));
            active_ = false;
            return;
        }
        active_ = uid_ != 0;
    }

    /// True when there is a switch to make: started as root with --user naming another user.
    bool active() const noexcept { return active_; }
    const std::string& user() const noexcept { return name_; }

    /// The effective ids become the user's: what is created now belongs to the user. The real
    /// and saved ids stay root, so as_root() can come back (glibc applies it to every thread).
    void as_user() const {
        if (!active_) return;
        check(::setegid(gid_), "setegid");
        check(::seteuid(uid_), "seteuid");
    }

    /// Back to root for what needs it: binding a port below 1024, a unix socket in /run.
    void as_root() const {
        if (!active_) return;
        check(::seteuid(0), "seteuid(0)");
        check(::setegid(0), "setegid(0)");
    }

    /// For good: only the user's groups (initgroups, or just --group's), then the group, then
    /// the user; then checks that root cannot be had back. Throws if any step fails: the
    /// caller must then exit rather than serve as root.
    void drop() const {
        if (!active_) return;
        as_root();
        if (explicit_group_) {
            check(::setgroups(1, &gid_), "setgroups");
        } else {
            check(::initgroups(name_.c_str(), gid_), "initgroups");
        }
        check(::setresgid(gid_, gid_, gid_), "setresgid");
        check(::setresuid(uid_, uid_, uid_), "setresuid");
        if (::setuid(0) == 0 || ::seteuid(0) == 0 || ::getuid() != uid_ || ::geteuid() != uid_ ||
            ::getgid() != gid_ || ::getegid() != gid_)
            throw std::runtime_error(fmt::format("could not give up root for user {}", name_));
    }

  private:
    void group_entry(const std::string& group) {
        std::vector<char> buffer(16384);
        struct group gr {};
        struct group* found = nullptr;
        const int e = ::getgrnam_r(group.c_str(), &gr, buffer.data(), buffer.size(), &found);
        if (e != 0 || !found) throw std::runtime_error(fmt::format("--group: no group named '{}'", group));
        gid_ = gr.gr_gid;
        explicit_group_ = true;
    }

    static void check(int result, const char* what) {
        if (result != 0) throw std::system_error(errno, std::system_category(), what);
    }

    std::string name_;
    uid_t uid_ = 0;
    gid_t gid_ = 0;
    bool explicit_group_ = false;
    bool active_ = false;
};

} // namespace examples
