"""A real MTA behind Grey: Postfix's smtpd, from a private Postfix instance, as the upstream.
Postfix offers CHUNKING, so a message a client sends with BDAT goes on with BDAT (its log,
at debug level for Grey's address, shows the commands it received); Postfix queues it and
delivers it to the Maildir sink with the client's octets intact."""
import time
import unittest

from harness import Client, Program, postfix_smtpd


class PostfixBehindGrey(unittest.TestCase):
    def setUp(self):
        self.postfix, smtpd_port, self.sink = postfix_smtpd(self, "debug_peer_list = 127.0.0.1\n")
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{smtpd_port}")
        self.addCleanup(self.proxy.cleanup)

    def delivered(self, count=1, timeout=60):
        deadline = time.time() + timeout
        while len(self.sink.messages()) < count and time.time() < deadline:
            time.sleep(0.2)
        return self.sink.messages()

    def test_a_bdat_message_goes_on_as_bdat_and_is_delivered_intact(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
        first = b"Subject: chunked through postfix\r\n\r\n.\r\n..two dots\r\n"
        second = b"x" * 78 + b"\r\n" + b"last line\r\n"
        self.assertEqual(c.command(f"BDAT {len(first)}\r\n".encode() + first)[0], 250)
        self.assertEqual(c.command(f"BDAT {len(second)} LAST\r\n".encode() + second)[0], 250)
        c.command("QUIT")
        [stored] = self.delivered()
        # Postfix adds the header fields the message lacks; the body is the client's, octet for octet.
        self.assertIn(b"Subject: chunked through postfix\r\n", stored)
        self.assertEqual(stored.split(b"\r\n\r\n", 1)[1], b".\r\n..two dots\r\n" + second)
        bdat = r"< localhost\[127\.0\.0\.1\]: BDAT \d+ LAST"
        log = self.postfix.log_once_written(bdat)
        self.assertRegex(log, bdat)
        self.assertNotRegex(log, r"< localhost\[127\.0\.0\.1\]: DATA")

    def test_a_data_message_is_delivered_intact(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.open_data()
        self.assertEqual(c.command(b"Subject: plain\r\n\r\n..dot\r\n.\r\n")[0], 250)
        c.command("QUIT")
        [stored] = self.delivered()
        self.assertIn(b"Subject: plain\r\n", stored)
        self.assertEqual(stored.split(b"\r\n\r\n", 1)[1], b".dot\r\n")


if __name__ == "__main__":
    unittest.main()
