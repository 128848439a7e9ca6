#include <grey/smtp/command.hpp>

#include <doctest/doctest.h>

using grey::errc;
using namespace grey::smtp;

TEST_CASE("Verbs are recognised whatever their case, with their argument") {
    auto c = parse_command("mail FROM:<a@b.example>");
    REQUIRE(c);
    CHECK(c->verb == verb::mail);
    CHECK(c->argument == "FROM:<a@b.example>");
    CHECK(parse_command("QuIt")->verb == verb::quit);
    CHECK(parse_command("NOOP")->argument.empty());
    CHECK(parse_command("NOOP anything")->verb == verb::noop);
    CHECK(parse_command("HELP MAIL")->verb == verb::help);
}

TEST_CASE("Arguments are required, allowed or refused as each verb says") {
    CHECK(parse_command("EHLO").error() == errc::syntax_error);
    CHECK(parse_command("EHLO ").error() == errc::syntax_error);
    CHECK(parse_command("EHLO  two.spaces").error() == errc::syntax_error);
    CHECK(parse_command("DATA now").error() == errc::syntax_error);
    CHECK(parse_command("RSET x").error() == errc::syntax_error);
    CHECK(parse_command("QUIT ").error() == errc::syntax_error);
    CHECK(parse_command("VRFY").error() == errc::syntax_error);
}

TEST_CASE("Unknown, unoffered and foreign commands are told apart") {
    CHECK(parse_command("FOO").error() == errc::unknown_command);
    CHECK(parse_command("").error() == errc::unknown_command);
    CHECK(parse_command("STARTTLS")->verb == verb::starttls);
    CHECK(parse_command("STARTTLS now").error() == errc::syntax_error);  // RFC 3207: no parameters
    CHECK(parse_command("AUTH PLAIN x").error() == errc::not_implemented);
    CHECK(parse_command("BDAT 10 LAST").error() == errc::not_implemented);
    CHECK(parse_command("EXPN list").error() == errc::not_implemented);
    CHECK(parse_command("GET / HTTP/1.1").error() == errc::forbidden_command);
    CHECK(parse_command("post /form HTTP/1.0").error() == errc::forbidden_command);
    CHECK(parse_command("CONNECT mx.example:25 HTTP/1.1").error() == errc::forbidden_command);
}

TEST_CASE("HELO and EHLO take host names with an underscore, as Windows hosts send them") {
    CHECK(parse_helo("mail_server.example")->domain == "mail_server.example");
    CHECK(parse_helo("EXCH_01.corp.example"));
    CHECK(parse_helo("_dmarc.example"));
    CHECK(parse_helo("host_"));
    CHECK(parse_helo("a.b_c-d.example"));
    CHECK(parse_helo("mail_-.example").error() == errc::bad_domain);
    CHECK(parse_helo("under_score..example").error() == errc::bad_domain);
    CHECK(parse_helo("bad/char_.example").error() == errc::bad_domain);
    CHECK(parse_helo(std::string(64, '_') + ".example").error() == errc::bad_domain);
    SUBCASE("a mailbox's domain stays a strict RFC 5321 domain") {
        CHECK_FALSE(is_domain("mail_server.example"));
        CHECK(parse_mail("FROM:<a@mail_server.example>").error() == errc::bad_sender);
    }
}

TEST_CASE("HELO and EHLO take a domain or an address literal") {
    CHECK(parse_helo("mx.example.com")->domain == "mx.example.com");
    CHECK(parse_helo("localhost"));
    CHECK(parse_helo("[192.0.2.1]"));
    CHECK(parse_helo("[IPv6:2001:db8::1]"));
    CHECK(parse_helo("bad..dots.example").error() == errc::bad_domain);
    CHECK(parse_helo("space in.example").error() == errc::bad_domain);
    CHECK(parse_helo("-leading.example").error() == errc::bad_domain);
    CHECK(parse_helo("trailing-.example").error() == errc::bad_domain);
    CHECK(parse_helo("[300.1.1.1]").error() == errc::bad_domain);
    CHECK(parse_helo("[IPv6:zz::1]").error() == errc::bad_domain);
}

TEST_CASE("MAIL takes a reverse-path and the SIZE and BODY parameters") {
    auto m = parse_mail("FROM:<alice@example.org>");
    REQUIRE(m);
    CHECK(m->reverse_path.mailbox == "alice@example.org");
    CHECK(m->reverse_path.local_part == "alice");
    CHECK(m->reverse_path.domain == "example.org");
    CHECK_FALSE(m->parameters.size);

    SUBCASE("the null reverse-path") { CHECK(parse_mail("FROM:<>")->reverse_path.is_null()); }
    SUBCASE("parameters") {
        auto p = parse_mail("from:<a@b.example> SIZE=1000 body=8BITMIME");
        REQUIRE(p);
        CHECK(*p->parameters.size == 1000);
        CHECK(p->parameters.body == body_type::eight_bit_mime);
        CHECK(parse_mail("FROM:<a@b.example> BODY=7bit")->parameters.body == body_type::seven_bit);
    }
    SUBCASE("bad parameters") {
        CHECK(parse_mail("FROM:<a@b.example> FOO=bar").error() == errc::unknown_parameter);
        CHECK(parse_mail("FROM:<a@b.example> SMTPUTF8").error() == errc::unknown_parameter);
        CHECK(parse_mail("FROM:<a@b.example> SIZE=x").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> SIZE").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> SIZE=1 SIZE=2").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> BODY=BINARYMIME").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> SIZE=12345678901234567890").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example>  SIZE=1").error() == errc::syntax_error);
        CHECK(parse_mail("FROM:<a@b.example> =x").error() == errc::syntax_error);
    }
    SUBCASE("bad paths") {
        CHECK(parse_mail("FROM: <a@b.example>").error() == errc::bad_sender);
        CHECK(parse_mail("FROM:a@b.example").error() == errc::bad_sender);
        CHECK(parse_mail("FROM:<a@b.example").error() == errc::bad_sender);
        CHECK(parse_mail("FROM:<Postmaster>").error() == errc::bad_sender);
        CHECK(parse_mail("TO:<a@b.example>").error() == errc::syntax_error);
    }
}

TEST_CASE("RCPT takes a forward-path, <Postmaster>, and no parameters") {
    CHECK(parse_rcpt("TO:<bob@example.com>")->forward_path.mailbox == "bob@example.com");
    CHECK(parse_rcpt("to:<Postmaster>")->forward_path.mailbox == "Postmaster");
    CHECK(parse_rcpt("TO:<postmaster>")->forward_path.domain.empty());
    CHECK(parse_rcpt("TO:<>").error() == errc::bad_recipient);
    CHECK(parse_rcpt("TO:<b@example.com> NOTIFY=NEVER").error() == errc::unknown_parameter);
    CHECK(parse_rcpt("TO:<b@example.com> ").error() == errc::syntax_error);
    CHECK(parse_rcpt("FROM:<b@example.com>").error() == errc::syntax_error);
}
