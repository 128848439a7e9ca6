"""P3, upstream shielded: no upstream connection for a session before the policy has accepted a
recipient; refused recipients and deferred mail never reach the upstream. The one connection
a server makes at start, to learn the upstream's extensions (EHLO, QUIT), carries nothing of
any session and is counted apart."""
import socket
import threading
import time
import unittest

from harness import Client, Program


class ConnectionCounter:
    """A TCP listener that only counts who connects to it: it stands where the upstream
    would be, to show that no connection is made."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.running = True
        self.accepted = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.count += 1
                self.accepted.append(conn)
            except socket.timeout:
                pass

    def close(self):
        self.running = False
        self.thread.join(timeout=5)
        for c in self.accepted:
            c.close()
        self.sock.close()


class Shielded(unittest.TestCase):
    def setUp(self):
        self.upstream = ConnectionCounter()
        self.addCleanup(self.upstream.close)
        self.proxy = Program("custom_policy", "--upstream", f"127.0.0.1:{self.upstream.port}",
                             "--accept-domain", "example.com", "--block-helo", "spammer.example",
                             "--upstream-timeout", "1")
        self.addCleanup(self.proxy.cleanup)
        deadline = time.time() + 5
        while self.upstream.count < 1 and time.time() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.upstream.count, 1, "the probe at start")
        self.upstream.count = 0

    def test_greeting_ehlo_and_mail_do_not_contact_the_upstream(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        time.sleep(0.3)
        self.assertEqual(self.upstream.count, 0)

    def test_a_refused_recipient_never_reaches_the_upstream(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        self.assertEqual(c.command("RCPT TO:<eve@elsewhere.example>")[:2], (550, "5.7.1"))
        self.assertEqual(c.command("DATA")[0], 503)
        time.sleep(0.3)
        self.assertEqual(self.upstream.count, 0)

    def test_a_refused_helo_name_never_reaches_the_upstream(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        self.assertEqual(c.command("EHLO spammer.example")[:2], (550, "5.7.1"))
        self.assertTrue(c.closed())
        self.assertEqual(self.upstream.count, 0)

    def test_the_first_accepted_recipient_opens_the_upstream(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        # The counter never greets, so the proxy times out after 1 s: 4xx, and one connection.
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[:2], (451, "4.4.1"))
        self.assertEqual(self.upstream.count, 1)


class SeedDefault(unittest.TestCase):
    def test_a_handler_keeping_the_seeds_default_defers_at_data_and_disconnects(self):
        from harness import SmtpSink
        sink = SmtpSink()
        self.addCleanup(sink.cleanup)
        server = Program("seed_default", "--upstream", f"127.0.0.1:{sink.port}")
        self.addCleanup(server.cleanup)
        c = Client(server.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)  # the sink's answer
        self.assertEqual(c.command("DATA")[:2], (451, "4.7.1"))
        self.assertEqual(c.reply(), None, "deferMail() disconnects, as the seed does")
        self.assertEqual(sink.messages(), [])


if __name__ == "__main__":
    unittest.main()
