#include <grey/smtp/session_state.hpp>

#include <doctest/doctest.h>

using namespace grey::smtp;

TEST_CASE("Before HELO or EHLO, mail commands are refused with 503") {
    session_state s;
    CHECK(s.current() == phase::connected);
    CHECK(s.check(verb::mail) == &replies::need_helo);
    CHECK(s.check(verb::rcpt) == &replies::need_helo);
    CHECK(s.check(verb::data) == &replies::need_helo);
    for (verb v : {verb::helo, verb::ehlo, verb::rset, verb::noop, verb::quit, verb::vrfy, verb::help})
        CHECK(s.check(v) == nullptr);
}

TEST_CASE("A transaction goes MAIL, RCPT, DATA, end of data, in that order") {
    session_state s;
    s.on_helo();
    CHECK(s.check(verb::rcpt) == &replies::need_mail);
    CHECK(s.check(verb::data) == &replies::need_mail);
    CHECK(s.check(verb::mail) == nullptr);
    s.on_mail();
    CHECK(s.in_transaction());
    CHECK(s.check(verb::mail) == &replies::nested_mail);
    CHECK(s.check(verb::data) == &replies::need_rcpt);
    CHECK(s.check(verb::rcpt) == nullptr);
    s.on_rcpt();
    s.on_rcpt();
    CHECK(s.check(verb::data) == nullptr);
    s.on_data();
    CHECK(s.current() == phase::data);
    s.on_end_of_data();
    CHECK(s.current() == phase::greeted);
    CHECK_FALSE(s.in_transaction());
    CHECK(s.check(verb::mail) == nullptr);
}

TEST_CASE("RSET and a new HELO end the transaction but keep the greeting") {
    session_state s;
    s.on_helo();
    s.on_mail();
    s.on_rcpt();
    s.on_reset();
    CHECK(s.current() == phase::greeted);
    s.on_mail();
    s.on_helo();
    CHECK(s.current() == phase::greeted);
    SUBCASE("RSET before any greeting changes nothing") {
        session_state fresh;
        fresh.on_reset();
        CHECK(fresh.current() == phase::connected);
    }
}

TEST_CASE("Without PIPELINING every command ends its group; with it, only those RFC 2920 names") {
    for (verb v : {verb::helo, verb::ehlo, verb::mail, verb::rcpt, verb::data, verb::rset, verb::noop,
                   verb::vrfy, verb::help})
        CHECK(ends_pipelined_group(v, false));
    for (verb v : {verb::helo, verb::ehlo, verb::data, verb::vrfy, verb::noop}) CHECK(ends_pipelined_group(v, true));
    for (verb v : {verb::mail, verb::rcpt, verb::rset, verb::help}) CHECK_FALSE(ends_pipelined_group(v, true));
    SUBCASE("nothing behind QUIT is read, so nothing there is refused") {
        CHECK_FALSE(ends_pipelined_group(verb::quit, false));
        CHECK_FALSE(ends_pipelined_group(verb::quit, true));
    }
}

TEST_CASE("A BDAT message is opened after RCPT, takes only BDAT and session commands, and ends") {
    session_state s;
    s.on_helo();
    CHECK(s.check(verb::bdat) == &replies::need_mail);
    s.on_mail();
    CHECK(s.check(verb::bdat) == &replies::need_rcpt);
    s.on_rcpt();
    CHECK(s.check(verb::bdat) == nullptr);
    s.on_bdat();
    CHECK(s.in_transaction());
    CHECK(s.check(verb::bdat) == nullptr);
    CHECK(s.check(verb::data) == &replies::bad_sequence);
    CHECK(s.check(verb::rcpt) == &replies::bad_sequence);
    CHECK(s.check(verb::mail) == &replies::nested_mail);
    CHECK(s.check(verb::starttls) == &replies::bad_sequence);
    CHECK(s.check(verb::rset) == nullptr);
    s.on_end_of_data();
    CHECK(s.current() == phase::greeted);
}
