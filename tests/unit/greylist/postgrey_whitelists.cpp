// Postgrey's whitelist files: every line shape Postgrey 1.37 reads, matched as its policy code
// matches them; the lines it cannot take, with file and line; and Debian's own files, as the
// postgrey package installs them.
#include <grey/greylist/postgrey_whitelists.hpp>

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace grey::greylist;

namespace {

postgrey_whitelists clients(std::string_view text) {
    postgrey_whitelists w;
    const auto errors = w.add_clients(text, "whitelist_clients");
    for (const auto& e : errors) FAIL_CHECK(e.message());
    return w;
}

postgrey_whitelists recipients(std::string_view text) {
    postgrey_whitelists w;
    const auto errors = w.add_recipients(text, "whitelist_recipients");
    for (const auto& e : errors) FAIL_CHECK(e.message());
    return w;
}

/// Debian's file: /etc/postgrey/NAME, as the package's postinst copies it there, or the copy the
/// package keeps in /usr/share/postgrey. Empty when postgrey is not installed.
std::filesystem::path debian_file(const std::string& name) {
    for (const std::string dir : {"/etc/postgrey/", "/usr/share/postgrey/"})
        if (std::filesystem::exists(dir + name)) return dir + name;
    return {};
}

} // namespace

TEST_CASE("Client names: the name and every name under it, in any case") {
    auto w = clients("debian.org\nMail.Example.COM\n");
    CHECK(w.client_name_listed("debian.org"));
    CHECK(w.client_name_listed("lists.debian.org"));
    CHECK(w.client_name_listed("a.b.LISTS.Debian.ORG"));
    CHECK(w.client_name_listed("mail.example.com"));
    CHECK(w.client_name_listed("smtp.mail.example.com"));
    CHECK_FALSE(w.client_name_listed("notdebian.org"));     // a label, not a suffix
    CHECK_FALSE(w.client_name_listed("debian.org.evil.example"));
    CHECK_FALSE(w.client_name_listed("example.com"));       // a name lists what is under it, not above
    CHECK_FALSE(w.client_name_listed(""));
    CHECK(w.matches_client_names());
    CHECK_FALSE(w.client_address_listed("192.0.2.1"));
    CHECK(w.client_entries() == 2);
}

TEST_CASE("Client regexes: Perl syntax, searched in the name, in any case") {
    auto w = clients("/^mail\\d+\\.telekom\\.de$/\n/\\.outbound\\.protection\\.outlook\\.com$/\n/(?:smtp|mx)-out/\n");
    CHECK(w.client_name_listed("mail7.telekom.de"));
    CHECK(w.client_name_listed("MAIL42.Telekom.DE"));
    CHECK_FALSE(w.client_name_listed("mail.telekom.de"));
    CHECK_FALSE(w.client_name_listed("xmail7.telekom.de"));
    CHECK(w.client_name_listed("mail-db5eur01on0101.outbound.protection.outlook.com"));
    CHECK(w.client_name_listed("a.smtp-out.example"));  // unanchored: Perl's =~ searches
    CHECK_FALSE(w.client_name_listed("smtp.example"));
    CHECK(w.matches_client_names());
}

TEST_CASE("Client addresses: IPv4 addresses, networks, partial addresses, IPv6") {
    auto w = clients("192.0.2.7\n198.51.100.0/24\n203.0.113\n10.20\n2001:db8:1::/48\n2001:db8:2::5\n");
    CHECK(w.client_address_listed("192.0.2.7"));
    CHECK_FALSE(w.client_address_listed("192.0.2.8"));
    CHECK(w.client_address_listed("198.51.100.200"));
    CHECK_FALSE(w.client_address_listed("198.51.101.1"));
    CHECK(w.client_address_listed("203.0.113.99"));  // "a.b.c": the /24
    CHECK_FALSE(w.client_address_listed("203.0.114.1"));
    CHECK(w.client_address_listed("10.20.30.40"));  // "a.b": the /16
    CHECK_FALSE(w.client_address_listed("10.21.0.1"));
    CHECK(w.client_address_listed("2001:db8:1:ffff::1"));
    CHECK_FALSE(w.client_address_listed("2001:db8:3::1"));
    CHECK(w.client_address_listed("2001:db8:2::5"));
    CHECK(w.client_address_listed("::ffff:192.0.2.7"));  // an IPv4 client on a dual-stack socket
    CHECK_FALSE(w.client_address_listed("not an address"));
    CHECK_FALSE(w.matches_client_names());  // no DNS look-up wanted for these
    CHECK(w.client_entries() == 6);
}

TEST_CASE("Comments, blanks and empty lines are skipped, and CRLF files read as LF ones") {
    auto w = clients("# a comment\n\n   \t\n  debian.org   # trailing comment\r\n\t192.0.2.7\r\n/^mx\\d\\.example$/ # re\n"
                     "no-newline.example");
    CHECK(w.client_entries() == 4);
    CHECK(w.client_name_listed("debian.org"));
    CHECK(w.client_address_listed("192.0.2.7"));
    CHECK(w.client_name_listed("mx1.example"));
    CHECK(w.client_name_listed("no-newline.example"));
}

TEST_CASE("Client lines Grey cannot take are errors with file and line; the rest is taken") {
    postgrey_whitelists w;
    const auto errors = w.add_clients("good.example\n"
                                      "two words\n"          // 2: not one token
                                      "300.1.2.3\n"          // 3: out of range (Postgrey drops it silently)
                                      "192.0.2.0/33\n"       // 4: prefix too long
                                      "/unclosed(/\n"        // 5: bad regex
                                      "2001:db8::g/64\n"     // 6: not IPv6
                                      "//\n"                 // 7: empty regex
                                      "192.0.2/24\n"         // 8: a partial address takes no mask
                                      "192.0.2.9\n",
                                      "clients.txt");
    REQUIRE(errors.size() == 7);
    CHECK(errors[0].message() == "clients.txt:2: 'two words' does not look like a host name, an address or a /regex/");
    CHECK(errors[1].line == 3);
    CHECK(errors[1].message().find("is not an IPv4 address") != std::string::npos);
    CHECK(errors[2].line == 4);
    CHECK(errors[3].line == 5);
    CHECK(errors[3].message().find("clients.txt:5: '/unclosed(/' is not a valid regular expression: ") == 0);
    CHECK(errors[4].line == 6);
    CHECK(errors[4].message().find("is not an IPv6 address") != std::string::npos);
    CHECK(errors[5].line == 7);
    CHECK(errors[6].line == 8);
    CHECK(w.client_entries() == 2);
    CHECK(w.client_name_listed("good.example"));
    CHECK(w.client_address_listed("192.0.2.9"));
}

TEST_CASE("Recipients: user@domain and user+extension@domain, in any case") {
    auto w = recipients("postmaster@example.com\n");
    CHECK(w.recipient_listed("postmaster@example.com"));
    CHECK(w.recipient_listed("PostMaster@Example.COM"));
    CHECK(w.recipient_listed("postmaster+x@example.com"));
    CHECK(w.recipient_listed("postmaster+a+b@example.com"));
    CHECK_FALSE(w.recipient_listed("postmaster+@example.com"));
    CHECK_FALSE(w.recipient_listed("postmaster@example.org"));
    CHECK_FALSE(w.recipient_listed("postmaster@sub.example.com"));
    CHECK_FALSE(w.recipient_listed("xpostmaster@example.com"));
    CHECK_FALSE(w.recipient_listed("postmasterx@example.com"));
}

TEST_CASE("Recipients: user@ at any domain") {
    auto w = recipients("postmaster@\nabuse@\n");
    CHECK(w.recipient_listed("postmaster@example.com"));
    CHECK(w.recipient_listed("postmaster+x@example.com"));
    CHECK(w.recipient_listed("ABUSE@example.org"));
    CHECK_FALSE(w.recipient_listed("postmaster"));  // <Postmaster> has no domain, and no '@'
    CHECK_FALSE(w.recipient_listed("webmaster@example.com"));
    CHECK_FALSE(w.recipient_listed("abuser@example.com"));
}

TEST_CASE("Recipients: a domain and the domains under it") {
    auto w = recipients("example.com\n");
    CHECK(w.recipient_listed("bob@example.com"));
    CHECK(w.recipient_listed("bob@Sub.Example.Com"));
    CHECK_FALSE(w.recipient_listed("bob@notexample.com"));
    CHECK_FALSE(w.recipient_listed("bob@example.com.evil"));
}

TEST_CASE("Recipients: regexes searched in the whole address") {
    auto w = recipients("/^(?:list|bounce)-.*@lists\\.example\\.com$/\n");
    CHECK(w.recipient_listed("list-users@lists.example.com"));
    CHECK(w.recipient_listed("BOUNCE-7@LISTS.example.com"));
    CHECK_FALSE(w.recipient_listed("bob@lists.example.com"));
}

TEST_CASE("Recipient lines Grey cannot take are errors with file and line") {
    postgrey_whitelists w;
    const auto errors = w.add_recipients("bob @example.com\n@example.com\n/(/\nabuse@\n", "rcpts");
    REQUIRE(errors.size() == 3);
    CHECK(errors[0].message() == "rcpts:1: 'bob @example.com' does not look like an address, a domain or a /regex/");
    CHECK(errors[1].message() ==
          "rcpts:2: '@example.com' has no user: write 'example.com' for every address at that domain, 'user@' for a "
          "user at any domain");
    CHECK(errors[2].line == 3);
    CHECK(w.recipient_entries() == 1);
    CHECK(w.recipient_listed("abuse@example.net"));
}

TEST_CASE("Files: read whole; a missing file is an error unless it is a .local one") {
    const auto dir = std::filesystem::temp_directory_path() / "grey-postgrey-whitelists-test";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "clients") << "example.net\n192.0.2.0/24\nbad line\n";
    std::ofstream(dir / "recipients") << "abuse@\n";
    std::vector<whitelist_error> errors;
    auto w = read_postgrey_whitelists({dir / "clients", dir / "missing", dir / "whitelist_clients.local"},
                                      {dir / "recipients"}, errors);
    REQUIRE(w);
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].message() == (dir / "clients").string() + ":3: 'bad line' does not look like a host name, an address or a /regex/");
    CHECK(errors[1].message() == (dir / "missing").string() + ": cannot read: no such file");
    CHECK(w->client_name_listed("mx.example.net"));
    CHECK(w->client_address_listed("192.0.2.1"));
    CHECK(w->recipient_listed("abuse@example.org"));

    postgrey_whitelists d;
    const auto dir_errors = d.read_clients(dir);
    REQUIRE(dir_errors.size() == 1);
    CHECK(dir_errors[0].message() == dir.string() + ": cannot read: it is a directory");

    std::vector<whitelist_error> none;
    CHECK_FALSE(read_postgrey_whitelists({}, {}, none));  // no files: nothing to ask per recipient
    std::filesystem::remove_all(dir);
}

TEST_CASE("Debian's whitelist_clients and whitelist_recipients parse with no error and match") {
    const auto clients_file = debian_file("whitelist_clients");
    const auto recipients_file = debian_file("whitelist_recipients");
    REQUIRE_MESSAGE(!clients_file.empty(), "Debian's postgrey package is not installed (scripts/install-deps.sh)");
    REQUIRE(!recipients_file.empty());
    std::vector<whitelist_error> errors;
    auto w = read_postgrey_whitelists({clients_file}, {recipients_file}, errors);
    for (const auto& e : errors) FAIL_CHECK(e.message());
    REQUIRE(w);
    CHECK(w->client_entries() > 150);  // Postgrey 1.37's file: some 160 entries
    CHECK(w->recipient_entries() == 2);

    CHECK(w->client_name_listed("mail7.telekom.de"));   // /^mail\d+\.telekom\.de$/
    CHECK(w->client_name_listed("lists.debian.org"));   // debian.org
    CHECK_FALSE(w->client_name_listed("mail.telekom.de"));
    CHECK_FALSE(w->client_name_listed("client.example"));
    CHECK(w->client_address_listed("66.216.126.174"));  // an address of the file
    CHECK(w->client_address_listed("195.235.39.200"));  // "195.235.39"
    CHECK(w->client_address_listed("148.105.1.2"));     // 148.105.0.0/16
    CHECK_FALSE(w->client_address_listed("192.0.2.7"));

    CHECK(w->recipient_listed("postmaster@example.com"));
    CHECK(w->recipient_listed("postmaster+x@example.com"));
    CHECK(w->recipient_listed("abuse@example.org"));
    CHECK_FALSE(w->recipient_listed("bob@example.com"));
}

TEST_CASE("The lists ask the files only when there are files, and the name only when it is known") {
    lists l;
    CHECK_FALSE(l.whitelisted_by_files("192.0.2.7", "mail7.telekom.de", "postmaster@example.com"));
    CHECK_FALSE(l.wants_client_name());
    auto w = std::make_shared<postgrey_whitelists>();
    CHECK(w->add_clients("telekom.de\n192.0.2.0/24\n", "c").empty());
    CHECK(w->add_recipients("postmaster@\n", "r").empty());
    l.files = w;
    CHECK(l.wants_client_name());
    CHECK(l.whitelisted_by_files("198.51.100.1", "mail7.telekom.de", "bob@example.com"));
    CHECK(l.whitelisted_by_files("192.0.2.7", "", "bob@example.com"));
    CHECK(l.whitelisted_by_files("198.51.100.1", "", "postmaster@example.com"));
    CHECK_FALSE(l.whitelisted_by_files("198.51.100.1", "", "bob@example.com"));
}
