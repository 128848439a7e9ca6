"""RFC 2920 §3.1, improper pipelining: input a client sent without waiting for a reply where it
must wait (behind DATA, EHLO, HELO, NOOP, VRFY; behind anything when PIPELINING was not offered)
is refused with 554 5.5.0 and the connection closed, before any message text reaches the
upstream. Spam engines and smuggling attempts send ahead; real MTAs do not. The legal uses of
PIPELINING stay accepted, and --improper-pipelining allow turns the check off."""
import smtplib
import unittest

from harness import Client, MaildirSink, Program

MESSAGE = b"Subject: pipelined\r\n\r\nbody\r\n.\r\n"


class ImproperPipelining(unittest.TestCase):
    def setUp(self):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)

    def proxy(self, *args):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", *args)
        self.addCleanup(p.cleanup)
        return p

    def client(self, proxy):
        c = Client(proxy.port)
        self.addCleanup(c.close)
        return c

    def envelope(self, c):
        for line in ("EHLO client.example", "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.com>"):
            self.assertEqual(c.command(line)[0], 250, line)

    def assert_refused(self, c, reply):
        self.assertEqual(reply[:2], (554, "5.5.0"), reply)
        self.assertTrue(c.closed())

    def test_text_sent_behind_data_before_354_is_refused_and_never_relayed(self):
        c = self.client(self.proxy())
        self.envelope(c)
        c.send(b"DATA\r\n" + MESSAGE)
        self.assert_refused(c, c.reply())
        self.assertEqual(self.sink.messages(), [])

    def test_a_second_transaction_pipelined_behind_the_final_dot_with_its_text_is_refused(self):
        c = self.client(self.proxy())
        self.envelope(c)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send(MESSAGE + b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<carol@example.com>\r\nDATA\r\n"
               + b"Subject: smuggled\r\n\r\nsecond\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250, "the first message was sent correctly")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assert_refused(c, c.reply())
        messages = self.sink.messages()
        self.assertEqual(len(messages), 1)
        self.assertNotIn(b"smuggled", messages[0])

    def test_commands_sent_ahead_after_helo_are_refused(self):
        c = self.client(self.proxy())
        self.assertEqual(c.command("HELO client.example")[0], 250)
        c.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n")
        self.assert_refused(c, c.reply())

    def test_the_final_dot_followed_at_once_by_a_command_after_helo_is_refused_and_not_delivered(self):
        c = self.client(self.proxy())
        for line in ("HELO client.example", "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.com>"):
            self.assertEqual(c.command(line)[0], 250, line)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send(MESSAGE + b"MAIL FROM:<alice@example.org>\r\n")
        self.assert_refused(c, c.reply())
        self.assertEqual(self.sink.messages(), [])

    def test_commands_sent_behind_ehlo_or_before_any_greeting_are_refused(self):
        p = self.proxy()
        for first in (b"EHLO client.example\r\n", b"HELO client.example\r\n", b"NOOP\r\n"):
            with self.subTest(first):
                c = self.client(p)
                c.send(first + b"MAIL FROM:<alice@example.org>\r\n")
                self.assert_refused(c, c.reply())

    def test_commands_sent_behind_noop_in_a_pipelining_session_are_refused(self):
        c = self.client(self.proxy())
        self.assertEqual(c.command("EHLO client.example")[0], 250)
        c.send(b"NOOP\r\nMAIL FROM:<alice@example.org>\r\n")
        self.assert_refused(c, c.reply())


class LegalPipelining(unittest.TestCase):
    def setUp(self):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)

    def test_mail_rcpt_data_pipelined_after_ehlo_and_quit_after_the_final_dot_are_accepted(self):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}")
        self.addCleanup(p.cleanup)
        c = Client(p.port)
        self.addCleanup(c.close)
        self.assertEqual(c.command("EHLO client.example")[0], 250)
        c.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.com>\r\n"
               b"RCPT TO:<carol@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(4)], [250, 250, 250, 354])
        c.send(MESSAGE + b"QUIT\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 221)
        self.assertEqual(len(self.sink.messages()), 1)

    def test_rset_and_a_new_transaction_pipelined_after_ehlo_are_accepted(self):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}")
        self.addCleanup(p.cleanup)
        c = Client(p.port)
        self.addCleanup(c.close)
        self.assertEqual(c.command("EHLO client.example")[0], 250)
        c.send(b"MAIL FROM:<alice@example.org>\r\nRSET\r\nMAIL FROM:<alice@example.org>\r\n"
               b"RCPT TO:<bob@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(5)], [250, 250, 250, 250, 354])
        c.send(MESSAGE)
        self.assertEqual(c.reply()[0], 250)

    def test_smtplib_without_pipelining_is_unaffected(self):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}")
        self.addCleanup(p.cleanup)
        with smtplib.SMTP("127.0.0.1", p.port, local_hostname="client.example", timeout=30) as s:
            s.helo("client.example")
            s.sendmail("alice@example.org", ["bob@example.com"], b"Subject: helo\r\n\r\nbody\r\n")
        self.assertEqual(len(self.sink.messages()), 1)

    def test_allow_takes_text_sent_ahead_as_if_the_client_had_waited(self):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", "--improper-pipelining", "allow")
        self.addCleanup(p.cleanup)
        c = Client(p.port)
        self.addCleanup(c.close)
        for line in ("EHLO client.example", "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.com>"):
            self.assertEqual(c.command(line)[0], 250, line)
        c.send(b"DATA\r\n" + MESSAGE)
        self.assertEqual(c.reply()[0], 354)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(len(self.sink.messages()), 1)


if __name__ == "__main__":
    unittest.main()
