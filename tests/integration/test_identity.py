"""The real client's identity upstream (Postfix's XCLIENT_README and XFORWARD_README): with
XCLIENT the upstream takes the client's address, name, HELO name and protocol for the
connection, answers with a new 220 and is greeted again with the client's HELO name; with
XFORWARD the attributes go before each MAIL. Against a recording upstream, then against a
private Postfix smtpd that trusts Grey's address: with XCLIENT its log, its Received: header
and its client checks see the real client; with XFORWARD its log does. Clients connect from 127.0.0.2 and 127.0.0.3, Grey stays on
127.0.0.1, so the upstream can tell them apart."""
import re
import time
import unittest

from harness import Client, Program, ScriptedUpstream, postfix_smtpd

XCLIENT = "XCLIENT NAME ADDR PORT PROTO HELO"
XFORWARD = "XFORWARD NAME ADDR PROTO HELO"


def send_one(port, source, helo="client.example", rcpt="bob@example.com"):
    """A session from `source`: (RCPT reply, final reply or None)."""
    c = Client(port, source=source)
    try:
        c.command(f"EHLO {helo}")
        c.command("MAIL FROM:<alice@example.org>")
        rcpt_reply = c.command(f"RCPT TO:<{rcpt}>")
        if rcpt_reply[0] != 250:
            return rcpt_reply, None
        c.command("DATA")
        final = c.command(b"Subject: identity\r\n\r\nhello\r\n.\r\n")
        c.command("QUIT")
        return rcpt_reply, final
    finally:
        c.close()


class Recorded(unittest.TestCase):
    def start(self, offered, *flags, pipelining=True):
        base = ["PIPELINING", "8BITMIME"] if pipelining else ["8BITMIME"]
        self.up = ScriptedUpstream(extensions=lambda n, tls: [*base, *offered])
        self.addCleanup(self.up.close)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.up.port}", "--threads", "1", *flags)
        self.addCleanup(self.proxy.cleanup)

    def commands_of(self, connection):
        return [c for n, c in self.up.all_commands if n == connection]

    def test_xclient_then_ehlo_with_the_clients_own_name(self):
        self.start([XCLIENT])
        self.assertEqual(send_one(self.proxy.port, "127.0.0.2")[1][0], 250)
        xclients = [c for _, c in self.up.all_commands if c.startswith("XCLIENT")]
        self.assertEqual(len(xclients), 1)
        self.assertRegex(xclients[0], r"^XCLIENT NAME=\S+ ADDR=127\.0\.0\.2 PORT=\d+ PROTO=ESMTP HELO=client\.example$")
        after = self.commands_of(self.up.connections)
        at = after.index(xclients[0])
        self.assertEqual(after[at + 1], "EHLO client.example", "Postfix takes the HELO name from the next EHLO")
        self.assertTrue(after[at + 2].startswith("MAIL FROM:<alice@example.org>"))
        self.assertEqual(len(self.up.messages), 1)

    def test_a_connection_that_took_an_identity_serves_only_that_identity_again(self):
        self.start([XCLIENT])
        for source in ("127.0.0.2", "127.0.0.2", "127.0.0.3"):
            self.assertEqual(send_one(self.proxy.port, source)[1][0], 250)
        xclients = [(n, c) for n, c in self.up.all_commands if c.startswith("XCLIENT")]
        self.assertEqual([re.search(r"ADDR=(\S+)", c).group(1) for _, c in xclients], ["127.0.0.2", "127.0.0.3"],
                         "the second session of 127.0.0.2 reused its connection with no new XCLIENT")
        self.assertNotEqual(xclients[0][0], xclients[1][0], "127.0.0.3 got a connection of its own")
        self.assertEqual(len(self.up.messages), 3)

    def test_a_new_helo_name_in_the_session_takes_a_new_connection(self):
        self.start([XCLIENT], "--upstream-pool", "0")
        c = Client(self.proxy.port, source="127.0.0.2")
        self.addCleanup(c.close)
        for helo in ("one.example", "two.example"):
            c.command(f"EHLO {helo}")
            c.command("MAIL FROM:<alice@example.org>")
            self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
            c.command("DATA")
            self.assertEqual(c.command(b"Subject: x\r\n\r\nx\r\n.\r\n")[0], 250)
        helos = [re.search(r"HELO=(\S+)", c).group(1) for _, c in self.up.all_commands if c.startswith("XCLIENT")]
        self.assertEqual(helos, ["one.example", "two.example"])

    def test_xclient_refused_gives_a_4xx_and_nothing_is_relayed(self):
        self.start([XCLIENT])
        self.up.xclient_reply = b"550 5.7.0 Error: insufficient authorization\r\n"
        rcpt, final = send_one(self.proxy.port, "127.0.0.2")
        self.assertEqual(rcpt[:2], (451, "4.7.0"))
        self.assertEqual(self.up.messages, [])
        self.assertFalse(any(c.startswith("MAIL") for _, c in self.up.all_commands))

    def test_xforward_before_each_mail_on_a_shared_connection(self):
        self.start([XFORWARD])
        for source in ("127.0.0.2", "127.0.0.3"):
            self.assertEqual(send_one(self.proxy.port, source)[1][0], 250)
        forwards = [(n, c) for n, c in self.up.all_commands if c.startswith("XFORWARD")]
        self.assertEqual([re.search(r"ADDR=(\S+)", c).group(1) for _, c in forwards], ["127.0.0.2", "127.0.0.3"])
        self.assertEqual(forwards[0][0], forwards[1][0], "XFORWARD lets both sessions share one connection")
        for _, c in forwards:
            self.assertRegex(c, r"^XFORWARD NAME=\S+ ADDR=127\.0\.0\.\d PROTO=ESMTP HELO=client\.example$")
            self.assertNotIn("PORT=", c, "only the attributes the upstream listed")
        commands = self.commands_of(forwards[1][0])
        at = commands.index(forwards[1][1])
        self.assertTrue(commands[at + 1].startswith("MAIL FROM:"))

    def test_without_pipelining_a_pooled_connection_gets_rset_then_xforward_mail_rcpt(self):
        self.start([XFORWARD], pipelining=False)
        for source in ("127.0.0.2", "127.0.0.3"):
            rcpt, final = send_one(self.proxy.port, source)
            self.assertEqual((rcpt[0], final[0] if final else None), (250, 250))
        forwards = [(n, c) for n, c in self.up.all_commands if c.startswith("XFORWARD")]
        self.assertEqual([re.search(r"ADDR=(\S+)", c).group(1) for _, c in forwards], ["127.0.0.2", "127.0.0.3"])
        self.assertEqual(forwards[0][0], forwards[1][0], "the second session took the pooled connection")
        commands = self.commands_of(forwards[1][0])
        at = commands.index(forwards[1][1])
        self.assertEqual(commands[at - 1], "RSET", "a pooled connection is reset before its next transaction")
        self.assertTrue(commands[at + 1].startswith("MAIL FROM:<alice@example.org>"))
        self.assertEqual(commands[at + 2], "RCPT TO:<bob@example.com>")
        self.assertEqual(len(self.up.messages), 2)

    def test_auto_prefers_xclient_and_none_sends_neither(self):
        self.start([XCLIENT, XFORWARD])
        send_one(self.proxy.port, "127.0.0.2")
        self.assertTrue(any(c.startswith("XCLIENT") for _, c in self.up.all_commands))
        self.assertFalse(any(c.startswith("XFORWARD") for _, c in self.up.all_commands))
        self.proxy.cleanup()
        self.up.all_commands.clear()
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.up.port}", "--upstream-identity", "none")
        self.addCleanup(self.proxy.cleanup)
        self.assertEqual(send_one(self.proxy.port, "127.0.0.2")[1][0], 250)
        self.assertFalse(any(c.startswith(("XCLIENT", "XFORWARD")) for _, c in self.up.all_commands))

    def test_auto_takes_xforward_when_xclient_cannot_say_the_address(self):
        self.start(["XCLIENT NAME HELO", XFORWARD])  # as Postfix's smtp-sink offers them
        send_one(self.proxy.port, "127.0.0.2")
        self.assertFalse(any(c.startswith("XCLIENT") for _, c in self.up.all_commands))
        self.assertTrue(any(c.startswith("XFORWARD") for _, c in self.up.all_commands))

    def test_helo_after_xclient_says_proto_smtp(self):
        self.start([XCLIENT], "--upstream-pool", "0")
        c = Client(self.proxy.port, source="127.0.0.2")
        self.addCleanup(c.close)
        c.command("HELO plain.example")
        c.command("MAIL FROM:<alice@example.org>")
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
        [xclient] = [c for _, c in self.up.all_commands if c.startswith("XCLIENT")]
        self.assertIn("PROTO=SMTP", xclient)
        self.assertIn("HELO=plain.example", xclient)


class PostfixSeesTheClient(unittest.TestCase):
    """Postfix's smtpd behind Grey, trusting 127.0.0.1 (Grey) for XCLIENT or XFORWARD."""

    def start(self, identity):
        self.postfix, smtpd_port, self.sink = postfix_smtpd(self, """\
smtpd_authorized_xclient_hosts = 127.0.0.1
smtpd_authorized_xforward_hosts = 127.0.0.1
smtpd_client_restrictions = check_client_access inline:{127.0.0.3=REJECT}
""")
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{smtpd_port}", "--upstream-identity", identity)
        self.addCleanup(self.proxy.cleanup)

    def delivered(self, count, timeout=60):
        deadline = time.time() + timeout
        while len(self.sink.messages()) < count and time.time() < deadline:
            time.sleep(0.2)
        return self.sink.messages()

    def test_xclient_postfix_logs_checks_and_stamps_the_real_client(self):
        self.start("xclient")
        self.assertEqual(send_one(self.proxy.port, "127.0.0.2")[1][0], 250)
        self.assertEqual(send_one(self.proxy.port, "127.0.0.2")[1][0], 250, "again, on the same identity")
        rcpt, _ = send_one(self.proxy.port, "127.0.0.3")
        self.assertEqual(rcpt[0], 554, "Postfix's client check applies to the real client, not to Grey")
        stored = self.delivered(2)
        self.assertEqual(len(stored), 2)
        for message in stored:
            self.assertRegex(message, rb"Received: from client\.example \([^)]*\[127\.0\.0\.2\]\)")
        client = r"client=[^\[]*\[127\.0\.0\.2\]"
        reject = r"reject: RCPT from [^\[]*\[127\.0\.0\.3\]"
        log = self.postfix.log_once_written(client, reject)
        self.assertRegex(log, client)
        self.assertRegex(log, reject)

    def test_xforward_postfix_logs_the_real_client(self):
        # XFORWARD changes no access decision and, in Postfix 3.7, no Received: header: the
        # queue file's log line names the original client.
        self.start("xforward")
        self.assertEqual(send_one(self.proxy.port, "127.0.0.2")[1][0], 250)
        self.assertEqual(len(self.delivered(1)), 1)
        orig_client = r"client=localhost\[127\.0\.0\.1\], orig_client=[^\[]*\[127\.0\.0\.2\]"
        self.assertRegex(self.postfix.log_once_written(orig_client), orig_client)


if __name__ == "__main__":
    unittest.main()
