"""P1, nothing lost: the client gets 2xx for a recipient or a message only when the upstream
gave it; upstream refusals reach the client with their codes; an upstream that is down, slow
or gone gives 4xx."""
import time
import unittest

from harness import Client, Program, SmtpSink, free_port


class Lossless(unittest.TestCase):
    def proxy_to(self, port, *args):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{port}", *args)
        self.addCleanup(p.cleanup)
        return p

    def sink(self, *options):
        s = SmtpSink(*options)
        self.addCleanup(s.cleanup)
        return s

    def transaction(self, proxy, body=b"Subject: t\r\n\r\nbody\r\n"):
        """Returns the replies to RCPT, DATA and the final dot (None for those not reached)."""
        c = Client(proxy.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        rcpt = c.command("RCPT TO:<bob@example.com>")
        if rcpt[0] != 250:
            return rcpt, None, None
        data = c.command("DATA")
        if data[0] != 354:
            return rcpt, data, None
        c.send(body + b".\r\n")
        return rcpt, data, c.reply()

    def test_a_hard_refusal_of_the_recipient_reaches_the_client(self):
        rcpt, _, _ = self.transaction(self.proxy_to(self.sink("-f", "RCPT").port))
        self.assertEqual(rcpt[:2], (500, "5.3.0"))  # smtp-sink's hard refusal, passed on as it came

    def test_a_soft_refusal_of_the_recipient_reaches_the_client(self):
        rcpt, _, _ = self.transaction(self.proxy_to(self.sink("-r", "RCPT").port))
        self.assertEqual(rcpt[:2], (450, "4.3.0"))

    def test_a_hard_refusal_of_the_message_reaches_the_client(self):
        sink = self.sink("-f", ".")
        _, _, final = self.transaction(self.proxy_to(sink.port))
        self.assertEqual(final[:2], (500, "5.3.0"))

    def test_a_soft_refusal_of_the_message_reaches_the_client(self):
        _, _, final = self.transaction(self.proxy_to(self.sink("-r", ".").port))
        self.assertEqual(final[:2], (450, "4.3.0"))

    def test_an_upstream_that_is_down_gives_451_at_rcpt(self):
        rcpt, _, _ = self.transaction(self.proxy_to(free_port()))
        self.assertEqual(rcpt[:2], (451, "4.4.1"))

    def test_an_upstream_closing_at_the_final_dot_gives_4xx_not_250(self):
        sink = self.sink("-q", ".")
        rcpt, data, final = self.transaction(self.proxy_to(sink.port))
        self.assertEqual((rcpt[0], data[0]), (250, 354))
        self.assertEqual(final[:2], (451, "4.4.2"))

    def test_an_upstream_closing_at_data_gives_4xx(self):
        _, data, _ = self.transaction(self.proxy_to(self.sink("-q", "DATA").port))
        self.assertEqual(data[:2], (451, "4.4.2"))

    def test_an_upstream_slower_than_its_timeout_gives_4xx(self):
        sink = self.sink("-w", "4")  # waits 4 s before answering DATA
        proxy = self.proxy_to(sink.port, "--upstream-timeout", "1")
        start = time.time()
        _, data, _ = self.transaction(proxy)
        self.assertEqual(data[:2], (451, "4.4.2"))
        self.assertLess(time.time() - start, 3.5)

    def test_after_an_upstream_failure_the_rest_of_the_transaction_is_refused(self):
        # The sink drops the connection at the second RCPT: the first recipient was accepted on
        # the lost connection, so the message must not be relayed to a subset of recipients.
        sink = self.sink("-q", "RCPT")
        proxy = self.proxy_to(sink.port)
        c = Client(proxy.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[:2], (451, "4.4.2"))
        self.assertEqual(c.command("RCPT TO:<carol@example.com>")[:2], (451, "4.4.2"))
        self.assertEqual(c.command("DATA")[0], 503)  # no recipient was accepted
        self.assertEqual(sink.messages(), [])


if __name__ == "__main__":
    unittest.main()
