"""P2, nothing smuggled: a bare LF or bare CR never ends the message text, so the SMTP
smuggling sequences of 2023 can't hide a second message; the session is refused and closed,
and nothing at all reaches the upstream."""
import unittest

from harness import Client, MaildirSink, Program

SEQUENCES = {
    "lf_dot_lf": b"\n.\n",
    "crlf_dot_lf": b"\r\n.\n",
    "lf_dot_crlf": b"\n.\r\n",
    "cr_dot_cr": b"\r.\r",
}
SMUGGLED = (b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nspoofed\r\n.\r\n")


class Smuggling(unittest.TestCase):
    def setUp(self):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}")
        self.addCleanup(self.proxy.cleanup)

    def attempt(self, sequence):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.open_data()
        c.send(b"Subject: first\r\n\r\nfirst message" + sequence + SMUGGLED)
        replies = []
        while (r := c.reply()) is not None:
            replies.append(r)
        return replies

    def test_each_smuggling_sequence_is_refused_and_nothing_is_delivered(self):
        for name, sequence in SEQUENCES.items():
            with self.subTest(name):
                replies = self.attempt(sequence)
                self.assertEqual([r[:2] for r in replies], [(500, "5.5.2")], replies)
                self.assertIn("Bare CR or LF", replies[0][2][0])
        self.assertEqual(self.sink.messages(), [], "neither the first nor a smuggled message may arrive")

    def test_a_bare_lf_in_a_command_is_refused(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        self.assertEqual(c.command(b"EHLO client.example\n")[:2], (500, "5.5.2"))
        self.assertTrue(c.closed())

    def test_the_lone_dot_after_crlf_still_ends_the_message(self):
        # The control: the same text with proper CRLFs is one message, and only one.
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.open_data()
        c.send(b"Subject: first\r\n\r\nfirst message\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.command("QUIT")[0], 221)
        self.assertEqual(len(self.sink.messages()), 1)


if __name__ == "__main__":
    unittest.main()
