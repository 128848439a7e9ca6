#include <grey/smtp/command.hpp>

#include <doctest/doctest.h>

#include <string>

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
    CHECK(parse_command("BDAT 10 LAST")->argument == "10 LAST");
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
        CHECK(parse_mail("FROM:<a@b.example> BODY=binarymime")->parameters.body == body_type::binary_mime);
        CHECK(parse_mail("FROM:<a@b.example> BODY=BINARY").error() == errc::bad_parameter_value);
    }
    SUBCASE("bad parameters") {
        CHECK(parse_mail("FROM:<a@b.example> FOO=bar").error() == errc::unknown_parameter);
        CHECK(parse_mail("FROM:<a@b.example> AUTH=<>").error() == errc::unknown_parameter);
        CHECK(parse_mail("FROM:<a@b.example> SIZE=x").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> SIZE").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> SIZE=1 SIZE=2").error() == errc::bad_parameter_value);
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

TEST_CASE("RCPT takes a forward-path or <Postmaster>, and refuses parameters it does not know") {
    for (bool smtputf8 : {false, true}) {
        CAPTURE(smtputf8);
        CHECK(parse_rcpt("TO:<bob@example.com>", smtputf8)->forward_path.mailbox == "bob@example.com");
        CHECK(parse_rcpt("to:<Postmaster>", smtputf8)->forward_path.mailbox == "Postmaster");
        CHECK(parse_rcpt("TO:<postmaster>", smtputf8)->forward_path.domain.empty());
        CHECK_FALSE(parse_rcpt("TO:<bob@example.com>", smtputf8)->parameters.uses_dsn());
        CHECK(parse_rcpt("TO:<>", smtputf8).error() == errc::bad_recipient);
        CHECK(parse_rcpt("TO:<b@example.com> FOO=bar", smtputf8).error() == errc::unknown_parameter);
        CHECK(parse_rcpt("TO:<b@example.com> NOTIFY=NEVER FOO", smtputf8).error() == errc::unknown_parameter);
        CHECK(parse_rcpt("TO:<b@example.com> SIZE=10", smtputf8).error() == errc::unknown_parameter);
        CHECK(parse_rcpt("TO:<b@example.com> ", smtputf8).error() == errc::syntax_error);
        CHECK(parse_rcpt("FROM:<b@example.com>", smtputf8).error() == errc::syntax_error);
    }
}

TEST_CASE("MAIL takes a UTF-8 reverse-path only with the SMTPUTF8 parameter") {
    const std::string sender = "FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example>";
    CHECK(parse_mail(sender).error() == errc::needs_smtputf8);
    CHECK(grey::make_error_code(errc::needs_smtputf8).message() == "non-ASCII address without SMTPUTF8");
    const std::string line = sender + " SMTPUTF8";  // the path views the line: keep it alive
    auto m = parse_mail(line);
    REQUIRE(m);
    CHECK(m->parameters.smtputf8);
    CHECK(m->reverse_path.local_part == "j\xc3\xb6rg");
    CHECK(m->reverse_path.domain == "b\xc3\xbc" "cher.example");
    CHECK(parse_mail("FROM:<\xe7\x94\xa8\xe6\x88\xb7@example.com> smtputf8"));
    CHECK(parse_mail("FROM:<\"j\xc3\xb6rg doe\"@example.com> SMTPUTF8"));
    CHECK(parse_mail("FROM:<\"j\xc3\xb6rg doe\"@example.com>").error() == errc::needs_smtputf8);
    CHECK(parse_mail("FROM:<a@example.com> SMTPUTF8")->parameters.smtputf8);  // allowed, if not needed
    CHECK_FALSE(parse_mail("FROM:<a@example.com>")->parameters.smtputf8);
    CHECK(parse_mail("FROM:<> SMTPUTF8")->reverse_path.is_null());

    SUBCASE("SMTPUTF8 says nothing of BODY") {
        CHECK(parse_mail(sender + " SMTPUTF8")->parameters.body == body_type::unspecified);
        auto both = parse_mail(sender + " BODY=8BITMIME SMTPUTF8 SIZE=10");
        REQUIRE(both);
        CHECK(both->parameters.body == body_type::eight_bit_mime);
        CHECK(both->parameters.smtputf8);
        CHECK(*both->parameters.size == 10);
    }
    SUBCASE("SMTPUTF8 takes no value and comes once") {
        CHECK(parse_mail(sender + " SMTPUTF8=x").error() == errc::bad_parameter_value);
        CHECK(parse_mail(sender + " SMTPUTF8=YES").error() == errc::bad_parameter_value);
        CHECK(parse_mail(sender + " SMTPUTF8 SMTPUTF8").error() == errc::bad_parameter_value);
    }
    SUBCASE("ill-formed UTF-8 is a bad address, SMTPUTF8 or not") {
        for (std::string local : {"caf\xe9", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "caf\xc3"}) {
            CHECK(parse_mail("FROM:<" + local + "@example.com> SMTPUTF8").error() == errc::bad_sender);
            CHECK(parse_mail("FROM:<" + local + "@example.com>").error() == errc::bad_sender);
        }
    }
    SUBCASE("MAIL parameters stay ASCII") {
        CHECK(parse_mail("FROM:<a@example.com> SMTPUTF8 ENVID=caf\xc3\xa9").error() == errc::syntax_error);
    }
}

TEST_CASE("RCPT takes a UTF-8 forward-path only in an SMTPUTF8 transaction") {
    const std::string to = "TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95>";
    auto r = parse_rcpt(to, true);
    REQUIRE(r);
    CHECK(r->forward_path.domain == "\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95");
    CHECK(parse_rcpt(to, false).error() == errc::needs_smtputf8);
    CHECK(parse_rcpt("TO:<bob@b\xc3\xbc" "cher.example>", false).error() == errc::needs_smtputf8);
    CHECK(parse_rcpt("TO:<\"q\xc3\xa9\"@example.com>", true));
    CHECK(parse_rcpt("TO:<caf\xe9@example.com>", true).error() == errc::bad_recipient);
    CHECK(parse_rcpt("TO:<\xC0\xAF@example.com>", true).error() == errc::bad_recipient);
    CHECK(parse_rcpt("TO:<b@example.com> SMTPUTF8", true).error() == errc::unknown_parameter);  // MAIL's alone
}

static_assert(is_xtext("bob+2Bx@example.com") && !is_xtext("bob+2bx@example.com"));

TEST_CASE("xtext is xchars and upper-case hexchars") {
    CHECK(is_xtext(""));
    CHECK(is_xtext("QQ314159"));
    CHECK(is_xtext("bob+2Bx@example.com"));
    CHECK(is_xtext("+2B"));
    CHECK(is_xtext("+3D+20!~"));
    CHECK_FALSE(is_xtext("+2b"));   // hex digits are upper case (RFC 3461 §4)
    CHECK_FALSE(is_xtext("+"));
    CHECK_FALSE(is_xtext("a+"));
    CHECK_FALSE(is_xtext("a+2"));
    CHECK_FALSE(is_xtext("+GG"));
    CHECK_FALSE(is_xtext("a+b"));
    CHECK_FALSE(is_xtext("a=b"));
    CHECK_FALSE(is_xtext("a b"));
    CHECK_FALSE(is_xtext("\x7f"));
    CHECK_FALSE(is_xtext("caf\xc3\xa9"));
}

TEST_CASE("MAIL takes RET and ENVID, kept as the client sent them") {
    auto m = parse_mail("FROM:<a@b.example> RET=hdrs ENVID=QQ314159");
    REQUIRE(m);
    CHECK(m->parameters.ret == "hdrs");
    CHECK(m->parameters.envid == "QQ314159");
    CHECK(m->parameters.uses_dsn());
    CHECK_FALSE(parse_mail("FROM:<a@b.example> SIZE=1")->parameters.uses_dsn());
    CHECK(parse_mail("FROM:<a@b.example> ENVID=x")->parameters.uses_dsn());

    SUBCASE("RET is FULL or HDRS in any case") {
        CHECK(parse_mail("FROM:<a@b.example> RET=FULL")->parameters.ret == "FULL");
        CHECK(parse_mail("FROM:<a@b.example> ret=Full")->parameters.ret == "Full");
        CHECK(parse_mail("FROM:<a@b.example> RET=HDRS")->parameters.ret == "HDRS");
        CHECK(parse_mail("FROM:<a@b.example> RET=NONE").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> RET").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> RET=FULL RET=HDRS").error() == errc::bad_parameter_value);
    }
    SUBCASE("ENVID is printable xtext of at most 100 octets") {
        CHECK(parse_mail("FROM:<a@b.example> ENVID=" + std::string(100, 'x'))->parameters.envid.size() == 100);
        CHECK(parse_mail("FROM:<a@b.example> ENVID=" + std::string(101, 'x')).error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> ENVID=" + std::string(97, 'x') + "+2B")->parameters.envid.size() == 100);
        CHECK(parse_mail("FROM:<a@b.example> ENVID=a+2B")->parameters.envid == "a+2B");
        CHECK(parse_mail("FROM:<a@b.example> ENVID=a+20b+09")->parameters.envid == "a+20b+09");
        CHECK(parse_mail("FROM:<a@b.example> ENVID=a+2b").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> ENVID=a+").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> ENVID=a+0D+0A").error() == errc::bad_parameter_value);  // CRLF
        CHECK(parse_mail("FROM:<a@b.example> ENVID=+00").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> ENVID").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> ENVID=a ENVID=b").error() == errc::bad_parameter_value);
        CHECK(parse_mail("FROM:<a@b.example> ENVID=a=b").error() == errc::syntax_error);
    }
    SUBCASE("all parameters together") {
        auto all = parse_mail("FROM:<a@b.example> SIZE=5 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=id+2B1");
        REQUIRE(all);
        CHECK(*all->parameters.size == 5);
        CHECK(all->parameters.body == body_type::eight_bit_mime);
        CHECK(all->parameters.smtputf8);
        CHECK(all->parameters.ret == "FULL");
        CHECK(all->parameters.envid == "id+2B1");
    }
    SUBCASE("the values outlive the line") {
        std::string line = "FROM:<a@b.example> RET=HDRS ENVID=abc";
        mail_parameters kept = parse_mail(line)->parameters;
        line.assign(line.size(), 'z');
        CHECK(kept.ret == "HDRS");
        CHECK(kept.envid == "abc");
    }
}

TEST_CASE("RCPT takes NOTIFY as NEVER or a set of SUCCESS, FAILURE and DELAY") {
    const auto notify = [](const std::string& value) { return parse_rcpt("TO:<b@example.com> NOTIFY=" + value, false); };
    for (const char* ok : {"NEVER", "never", "SUCCESS", "FAILURE", "DELAY", "SUCCESS,FAILURE", "FAILURE,DELAY",
                           "DELAY,SUCCESS,FAILURE", "success,Delay"}) {
        CAPTURE(ok);
        auto r = notify(ok);
        REQUIRE(r);
        CHECK(r->parameters.notify == ok);
        CHECK(r->parameters.uses_dsn());
    }
    for (const char* bad : {"NEVER,SUCCESS", "SUCCESS,NEVER", "NEVER,NEVER", "SUCCESS,SUCCESS", "SUCCESS,,FAILURE",
                            "SUCCESS,", ",SUCCESS", ",", "ALWAYS", "SUCCESS;DELAY"}) {
        CAPTURE(bad);
        CHECK(notify(bad).error() == errc::bad_parameter_value);
    }
    CHECK(parse_rcpt("TO:<b@example.com> NOTIFY", false).error() == errc::bad_parameter_value);
    CHECK(parse_rcpt("TO:<b@example.com> NOTIFY=", false).error() == errc::syntax_error);
    CHECK(parse_rcpt("TO:<b@example.com> NOTIFY=NEVER NOTIFY=NEVER", false).error() == errc::bad_parameter_value);
}

TEST_CASE("RCPT takes ORCPT as an address type and an xtext address") {
    const auto orcpt = [](const std::string& value, bool smtputf8 = false) {
        return parse_rcpt("TO:<b@example.com> ORCPT=" + value, smtputf8);
    };
    for (const char* ok : {"rfc822;bob@example.com", "rfc822;bob+2Bx@example.com", "RFC822;bob@example.com",
                           "x400;/C+3DUS/", "unknown;whatever", "rfc822;a+20b"}) {
        CAPTURE(ok);
        auto r = orcpt(ok);
        REQUIRE(r);
        CHECK(r->parameters.orcpt == ok);
        CHECK(r->parameters.uses_dsn());
        CHECK(orcpt(ok, true));
    }
    for (const char* bad : {"rfc822;bob+2bx@example.com", "rfc822;", ";bob@example.com", "bob@example.com",
                            "rfc822;a+", "rf(c;bob@example.com", "rfc822;a+0Db", "rfc822;a+7F"}) {
        CAPTURE(bad);
        CHECK(orcpt(bad).error() == errc::bad_parameter_value);
    }
    CHECK(orcpt("rfc822;j\xc3\xb6rg@example.com", true).error() == errc::bad_parameter_value);
    CHECK(orcpt("rfc822;j\xc3\xb6rg@example.com", false).error() == errc::syntax_error);
    CHECK(orcpt("rfc822;a@b.example ORCPT=rfc822;a@b.example").error() == errc::bad_parameter_value);

    auto both = parse_rcpt("TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.com", false);
    REQUIRE(both);
    CHECK(both->parameters.notify == "SUCCESS,FAILURE");
    CHECK(both->parameters.orcpt == "rfc822;b@example.com");
}

TEST_CASE("ORCPT of type utf-8 takes RFC 6533's forms, raw UTF-8 only with SMTPUTF8") {
    const auto orcpt = [](const std::string& value, bool smtputf8) {
        return parse_rcpt("TO:<b@example.com> ORCPT=" + value, smtputf8);
    };
    for (bool smtputf8 : {false, true}) {
        CAPTURE(smtputf8);
        for (const char* ok : {"utf-8;j\\x{F6}rg@example.com", "UTF-8;bob\\x{2B}tag@example.com",
                               "utf-8;\\x{1F600}@example.com", "utf-8;\\x{10FFFF}", "utf-8;a\\x{5C}b",
                               "utf-8;a\\x{f6}", "utf-8;a\\x{20}b", "utf-8;bob@example.com"}) {
            CAPTURE(ok);
            CHECK(orcpt(ok, smtputf8)->parameters.orcpt == ok);
        }
        for (const char* bad : {"utf-8;", "utf-8;bob+2Btag@example.com", "utf-8;a\\x{41}", "utf-8;a\\x{0F6}",
                                "utf-8;a\\x{00}", "utf-8;a\\x{D800}", "utf-8;a\\x{110000}", "utf-8;a\\x{F6",
                                "utf-8;a\\x{}", "utf-8;a\\b", "utf-8;a\\x{G0}"}) {
            CAPTURE(bad);
            CHECK(orcpt(bad, smtputf8).error() == errc::bad_parameter_value);
        }
    }
    CHECK(orcpt("utf-8;j\xc3\xb6rg@example.com", true)->parameters.orcpt == "utf-8;j\xc3\xb6rg@example.com");
    CHECK(orcpt("utf-8;j\xc3\xb6rg@example.com", false).error() == errc::syntax_error);
    CHECK(orcpt("utf-8;j\xc3" "rg@example.com", true).error() == errc::syntax_error);  // ill-formed
}
