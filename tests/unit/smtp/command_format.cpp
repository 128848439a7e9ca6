#include <grey/smtp/command_format.hpp>

#include <grey/smtp/bdat.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

using namespace grey::smtp;

namespace {
extensions offering(std::initializer_list<extension> xs) {
    extensions e;
    for (const extension x : xs) e.add(x);
    return e;
}

const extensions everything = offering({extension::size, extension::eight_bit_mime, extension::smtputf8,
                                        extension::dsn, extension::chunking, extension::binarymime});

// The argument of a composed line, as the upstream's parser would get it: the line without
// its CRLF, through parse_command.
std::string_view argument_of(std::string_view line, verb expected) {
    REQUIRE(line.ends_with("\r\n"));
    const auto c = parse_command(line.substr(0, line.size() - 2));
    REQUIRE(c.has_value());
    CHECK(c->verb == expected);
    return c->argument;
}

// P2: the only CR or LF in a composed line is its final CRLF.
void check_one_line(std::string_view line) {
    CHECK(line.ends_with("\r\n"));
    CHECK(line.find_first_of("\r\n") == line.size() - 2);
}
} // namespace

TEST_CASE("MAIL carries every parameter to an upstream that offers them all") {
    mail_parameters p;
    p.size = 12345;
    p.body = body_type::eight_bit_mime;
    p.smtputf8 = true;
    p.ret = "HDRS";
    p.envid = "QQ314159+2B";
    std::string out;
    append_mail(out, "a@b.example", p, everything);
    CHECK(out == "MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159+2B\r\n");
}

TEST_CASE("MAIL drops SIZE and BODY=8BITMIME or 7BIT for an upstream that does not offer them") {
    mail_parameters p;
    p.size = 10;
    std::string out;
    SUBCASE("8BITMIME") {
        p.body = body_type::eight_bit_mime;
        append_mail(out, "s@x", p, offering({extension::size}));
        CHECK(out == "MAIL FROM:<s@x> SIZE=10\r\n");
    }
    SUBCASE("7BIT") {
        p.body = body_type::seven_bit;
        append_mail(out, "s@x", p, offering({extension::eight_bit_mime}));
        CHECK(out == "MAIL FROM:<s@x> BODY=7BIT\r\n");
    }
    SUBCASE("nothing offered") {
        p.body = body_type::seven_bit;
        append_mail(out, "s@x", p, extensions{});
        CHECK(out == "MAIL FROM:<s@x>\r\n");
    }
}

TEST_CASE("MAIL never drops what changes the upstream's duty: BINARYMIME, SMTPUTF8, RET, ENVID") {
    mail_parameters p;
    p.body = body_type::binary_mime;
    p.smtputf8 = true;
    p.ret = "full";
    p.envid = "x";
    std::string out;
    append_mail(out, "s@x", p, extensions{});
    CHECK(out == "MAIL FROM:<s@x> BODY=BINARYMIME SMTPUTF8 RET=full ENVID=x\r\n");
}

TEST_CASE("MAIL with the null reverse-path and a SIZE of 2^64 - 1") {
    mail_parameters p;
    p.size = std::numeric_limits<std::uint64_t>::max();
    std::string out;
    append_mail(out, "", p, everything);
    CHECK(out == "MAIL FROM:<> SIZE=18446744073709551615\r\n");
}

TEST_CASE("RCPT carries NOTIFY and ORCPT as the client sent them") {
    std::string out;
    SUBCASE("both") {
        append_rcpt(out, "bob@example.com", {"SUCCESS,FAILURE", "rfc822;bob+2Bx@example.com"});
        CHECK(out == "RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@example.com\r\n");
    }
    SUBCASE("ORCPT alone") {
        append_rcpt(out, "c@x", {"", "rfc822;c@x"});
        CHECK(out == "RCPT TO:<c@x> ORCPT=rfc822;c@x\r\n");
    }
    SUBCASE("none") {
        append_rcpt(out, "Postmaster", {});
        CHECK(out == "RCPT TO:<Postmaster>\r\n");
    }
}

TEST_CASE("BDAT headers give the chunk's size, and LAST for the chunk that ends the message") {
    std::string out;
    append_bdat(out, 0, true);
    CHECK(out == "BDAT 0 LAST\r\n");
    out.clear();
    append_bdat(out, 16384);
    CHECK(out == "BDAT 16384\r\n");
    out.clear();
    append_bdat(out, std::numeric_limits<std::uint64_t>::max(), true);
    CHECK(out == "BDAT 18446744073709551615 LAST\r\n");
    CHECK(out.size() == max_bdat_line);
    for (const bool last : {false, true}) {
        out.clear();
        append_bdat(out, 987654321, last);
        const auto b = parse_bdat(argument_of(out, verb::bdat));
        REQUIRE(b.has_value());
        CHECK(b->size == 987654321);
        CHECK(b->last == last);
    }
}

TEST_CASE("EHLO, HELO and the lines with no argument parse back as the commands they are") {
    std::string out;
    append_ehlo(out, "mx.example");
    CHECK(out == "EHLO mx.example\r\n");
    CHECK(argument_of(out, verb::ehlo) == "mx.example");
    out.clear();
    append_helo(out, "[192.0.2.1]");
    CHECK(argument_of(out, verb::helo) == "[192.0.2.1]");
    CHECK(argument_of(command_lines::data, verb::data).empty());
    CHECK(argument_of(command_lines::rset, verb::rset).empty());
    CHECK(argument_of(command_lines::quit, verb::quit).empty());
    CHECK(argument_of(command_lines::starttls, verb::starttls).empty());
}

TEST_CASE("Lines append to what the caller's buffer holds, and a kept buffer does not grow again") {
    std::string out = "RSET\r\n";
    append_mail(out, "a@b", {}, everything);
    append_rcpt(out, "c@d", {});
    CHECK(out == "RSET\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    const std::size_t capacity = out.capacity();
    const char* storage = out.data();
    for (int i = 0; i < 100; ++i) {
        out.clear();
        append_rcpt(out, "someone@example.org", {"NEVER", ""});
    }
    CHECK(out.capacity() == capacity);
    CHECK(out.data() == storage);
}

TEST_CASE("MAIL lines read back through parse_mail as the values they were made from") {
    for (const std::string_view line :
         {"FROM:<a@b.example>", "FROM:<>", "FROM:<a@b> SIZE=0", "FROM:<a@b> size=99 body=7bit",
          "FROM:<a@b> BODY=8BITMIME SMTPUTF8 RET=hdrs ENVID=QQ314159+2B", "FROM:<\"x y\"@[192.0.2.1]> BODY=BINARYMIME",
          "FROM:<@relay.example:u@d.example> RET=FULL", "FROM:<用户@例子.广告> SMTPUTF8"}) {
        CAPTURE(line);
        const auto parsed = parse_mail(line);
        REQUIRE(parsed.has_value());
        std::string out;
        append_mail(out, parsed->reverse_path.mailbox, parsed->parameters, everything);
        check_one_line(out);
        const auto back = parse_mail(argument_of(out, verb::mail));
        REQUIRE(back.has_value());
        CHECK(back->reverse_path.mailbox == parsed->reverse_path.mailbox);
        const mail_parameters &a = parsed->parameters, &b = back->parameters;
        CHECK(a.size == b.size);
        CHECK(a.body == b.body);
        CHECK(a.smtputf8 == b.smtputf8);
        CHECK(a.ret == b.ret);
        CHECK(a.envid == b.envid);
    }
}

TEST_CASE("RCPT lines read back through parse_rcpt as the values they were made from") {
    for (const bool utf8 : {false, true}) {
        for (const std::string_view line :
             {"TO:<bob@example.com>", "TO:<Postmaster>", "TO:<b@x> NOTIFY=never",
              "TO:<b@x> NOTIFY=DELAY,SUCCESS ORCPT=rfc822;b+2B@x", "TO:<@a.example,@b.example:b@x> ORCPT=utf-8;b\\x{2B}@x"}) {
            CAPTURE(line);
            CAPTURE(utf8);
            const auto parsed = parse_rcpt(line, utf8);
            REQUIRE(parsed.has_value());
            std::string out;
            append_rcpt(out, parsed->forward_path.mailbox, parsed->parameters);
            check_one_line(out);
            const auto back = parse_rcpt(argument_of(out, verb::rcpt), utf8);
            REQUIRE(back.has_value());
            CHECK(back->forward_path.mailbox == parsed->forward_path.mailbox);
            CHECK(back->parameters.notify == parsed->parameters.notify);
            CHECK(back->parameters.orcpt == parsed->parameters.orcpt);
        }
    }
}
