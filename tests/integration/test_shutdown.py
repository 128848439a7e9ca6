"""Graceful stop on SIGTERM: new connections are refused, idle sessions get 421 at once, a
message in progress may finish and is delivered, and the process exits 0."""
import signal
import smtplib
import threading
import time
import unittest

from harness import Client, MaildirSink, Program


class Shutdown(unittest.TestCase):
    def setUp(self):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", "--drain-seconds", "5")
        self.addCleanup(self.proxy.cleanup)

    def test_idle_sessions_get_421_and_new_connections_are_refused(self):
        idle = Client(self.proxy.port)
        self.addCleanup(idle.close)
        idle.command("EHLO client.example")
        self.proxy.signal(signal.SIGTERM)
        self.assertEqual(idle.reply()[:2], (421, "4.3.2"))
        self.assertTrue(idle.closed())
        self.assertEqual(self.proxy.proc.wait(timeout=10), 0)
        with self.assertRaises(OSError):
            Client(self.proxy.port)

    def test_a_message_in_progress_finishes_and_is_delivered(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.open_data()
        c.send(b"Subject: during shutdown\r\n\r\nfirst half\r\n")
        self.proxy.signal(signal.SIGTERM)
        time.sleep(0.5)
        c.send(b"second half\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[:2], (421, "4.3.2"), "no new transaction once the message is done")
        self.assertEqual(self.proxy.proc.wait(timeout=10), 0)
        self.assertEqual(self.sink.messages(), [b"Subject: during shutdown\r\n\r\nfirst half\r\nsecond half\r\n"])

    def test_a_transaction_past_the_drain_deadline_gets_421_and_is_not_delivered(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.open_data()
        c.send(b"Subject: too slow\r\n\r\nnever finished\r\n")
        start = time.time()
        self.proxy.signal(signal.SIGTERM)
        self.assertEqual(c.reply()[:2], (421, "4.3.2"))
        self.assertGreater(time.time() - start, 4)
        self.assertEqual(self.proxy.proc.wait(timeout=10), 0)
        self.assertEqual(self.sink.messages(), [])


class Swaks(unittest.TestCase):
    def test_swaks_delivers_through_the_proxy_with_pipelining(self):
        import subprocess
        sink = MaildirSink()
        self.addCleanup(sink.cleanup)
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}")
        self.addCleanup(proxy.cleanup)
        out = subprocess.run(["swaks", "--server", f"127.0.0.1:{proxy.port}", "--pipeline", "--helo", "swaks.example",
                              "--from", "alice@example.org", "--to", "bob@example.com,carol@example.com",
                              "--body", "Hello through Grey\n.leading dot"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"<-  250 2\.0\.0 Stored as")
        [message] = sink.messages()
        self.assertIn(b"\r\nHello through Grey\r\n.leading dot\r\n", message)


if __name__ == "__main__":
    unittest.main()
