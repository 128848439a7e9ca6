#include <grey/smtp/data_codec.hpp>

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace grey::smtp;

TEST_CASE("Decoding removes one transparency dot and finds the end of data") {
    CHECK(decode_data_line(".").end_of_data);
    CHECK(decode_data_line("..").content == ".");
    CHECK(decode_data_line("...x").content == "..x");
    CHECK(decode_data_line(".x").content == "x");
    CHECK(decode_data_line("x.").content == "x.");
    CHECK(decode_data_line("").content.empty());
    CHECK_FALSE(decode_data_line("").end_of_data);
    CHECK_FALSE(decode_data_line(". ").end_of_data);
}

TEST_CASE("Encoding stuffs lines that begin with a dot, and round-trips with decoding") {
    for (std::string_view content : {"", ".", "..", ".x", "x", "x.y", " .", "...."}) {
        CAPTURE(content);
        std::string wire;
        append_data_line(wire, content);
        CHECK(wire.ends_with("\r\n"));
        CHECK(decode_data_line(std::string_view(wire).substr(0, wire.size() - 2)).content == content);
        CHECK(wire != ".\r\n");  // content never becomes the end marker
    }
}

TEST_CASE("The canonical form of a line is its re-encoding, as a view of the line") {
    for (std::string_view raw : {"x\r\n", "..x\r\n", ".x\r\n", "..\r\n", "\r\n", "...\r\n"}) {
        CAPTURE(raw);
        std::string wire;
        append_data_line(wire, decode_data_line(raw.substr(0, raw.size() - 2)).content);
        const std::string_view canonical = canonical_data_line(raw);
        CHECK(canonical == wire);
        CHECK(canonical.data() + canonical.size() == raw.data() + raw.size());
    }
    CHECK(canonical_data_line(".x\r\n") == "x\r\n");
    CHECK(canonical_data_line("..x\r\n") == "..x\r\n");
}

TEST_CASE("for_each_data_line gives the content of each wire line") {
    std::vector<std::string> seen;
    for_each_data_line("a\r\n..b\r\n\r\n.c\r\n", [&](std::string_view c) { seen.emplace_back(c); });
    CHECK(seen == std::vector<std::string>{"a", ".b", "", "c"});
}
