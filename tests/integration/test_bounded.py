"""P5, bounded: limits on lines, sizes, recipients, connections and time, each answered with a
clear SMTP error; memory that does not grow with a message; many sessions at once, each
delivered exactly once."""
import concurrent.futures
import hashlib
import os
import smtplib
import subprocess
import time
import unittest

from harness import Client, MaildirSink, Program, SmtpSink, peak_rss_kib


class Limits(unittest.TestCase):
    def setUp(self):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)

    def proxy(self, *args):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", *args)
        self.addCleanup(p.cleanup)
        return p

    def open_data(self, proxy):
        c = Client(proxy.port)
        self.addCleanup(c.close)
        c.open_data()
        return c

    def test_a_text_line_of_1000_octets_passes_and_1001_is_refused(self):
        p = self.proxy()
        c = self.open_data(p)
        c.send(b"x" * 998 + b"\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        c = self.open_data(p)
        c.send(b"Subject: long\r\n\r\n" + b"x" * 999 + b"\r\n.\r\n")
        self.assertEqual(c.reply()[:2], (500, "5.5.2"))
        self.assertTrue(c.closed())
        self.assertEqual(len(self.sink.messages()), 1, "the refused message must not be delivered")

    def test_the_text_line_limit_does_not_count_the_transparency_dot(self):
        # RFC 5321 §4.5.3.1.6: 998 octets of content + CRLF, plus a stuffed dot on the wire.
        p = self.proxy()
        for content, accepted in [(b"." + b"x" * 997, True), (b"." + b"x" * 998, False),
                                  (b".." + b"x" * 996, True), (b".." + b"x" * 997, False),
                                  (b"x" * 998, True), (b"x" * 999, False)]:
            with self.subTest(length=len(content), dotted=content[:1] == b"."):
                before = len(self.sink.messages())
                c = self.open_data(p)
                wire = b"." + content if content.startswith(b".") else content
                c.send(b"Subject: edge\r\n\r\n" + wire + b"\r\n.\r\n")
                reply = c.reply()
                if accepted:
                    self.assertEqual(reply[0], 250, reply)
                    delivered = self.sink.messages()
                    self.assertEqual(len(delivered), before + 1)
                    self.assertTrue(any(m.endswith(b"\r\n\r\n" + content + b"\r\n") for m in delivered))
                else:
                    self.assertEqual(reply[:2], (500, "5.5.2"), reply)
                    self.assertTrue(c.closed())
                    self.assertEqual(len(self.sink.messages()), before, "the refused message must not be delivered")

    def test_a_message_over_the_size_limit_is_refused_after_its_end_and_not_delivered(self):
        p = self.proxy("--max-message-size", "10000")
        c = self.open_data(p)
        c.send((b"y" * 100 + b"\r\n") * 200 + b".\r\n")
        self.assertEqual(c.reply()[:2], (552, "5.3.4"))
        self.assertEqual(c.command("NOOP")[0], 250, "the session goes on")
        self.assertEqual(self.sink.messages(), [])

    def test_recipients_past_the_limit_get_452(self):
        p = self.proxy("--max-recipients", "3")
        c = Client(p.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        codes = [c.command(f"RCPT TO:<r{i}@example.com>")[:2] for i in range(4)]
        self.assertEqual(codes, [(250, "2.1.5")] * 3 + [(452, "4.5.3")])

    def test_a_silent_client_gets_421_after_the_command_timeout(self):
        p = self.proxy("--command-timeout", "1")
        c = Client(p.port)
        self.addCleanup(c.close)
        start = time.time()
        self.assertEqual(c.reply()[:2], (421, "4.4.2"))
        self.assertGreater(time.time() - start, 0.8)
        self.assertTrue(c.closed())

    def test_a_client_silent_inside_data_gets_421_and_nothing_is_delivered(self):
        p = self.proxy("--command-timeout", "1")
        c = self.open_data(p)
        c.send(b"Subject: half\r\n\r\nhalf a message")
        self.assertEqual(c.reply()[:2], (421, "4.4.2"))
        self.assertEqual(self.sink.messages(), [])

    def test_connections_past_the_limits_get_421(self):
        for flag, expected in [("--max-connections", "4.7.0 Too many connections, try"),
                               ("--max-connections-per-ip", "4.7.0 Too many connections from your address")]:
            with self.subTest(flag):
                p = self.proxy(flag, "2")
                held = [Client(p.port), Client(p.port)]
                extra = Client(p.port, greeting=False)
                code, enhanced, text = extra.reply()
                self.assertEqual((code, enhanced), (421, "4.7.0"))
                self.assertTrue(text[0].startswith(expected))
                extra.close()
                held[0].command("QUIT")
                held[0].close()
                time.sleep(0.2)
                again = Client(p.port)
                self.assertEqual(again.greeting[0], 220, "a freed slot is usable again")
                again.close()
                held[1].close()


class ConnectionSlots(unittest.TestCase):
    """A connection counts against the limits while the client holds it, not while Grey still
    says QUIT to the upstream after the client has gone."""

    def test_100_sessions_at_a_time_at_default_limits_are_never_refused_and_each_delivered_once(self):
        sink = SmtpSink()
        self.addCleanup(sink.cleanup)
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}")  # default limits: 100 per address
        self.addCleanup(proxy.cleanup)
        # -N numbers the recipients 1..4000: each must arrive once.
        done = subprocess.run(["smtp-source", "-s", "100", "-m", "4000", "-N", "-f", "alice@example.org",
                               "-t", "bob@example.com", f"127.0.0.1:{proxy.port}"],
                              capture_output=True, text=True, timeout=240)
        self.assertEqual((done.returncode, done.stderr.strip()), (0, ""), "smtp-source saw a refusal")
        recipients = sorted(int(line.split(b"<")[1].split(b"bob@")[0])
                            for envelope, _ in sink.messages(settle=1) for line in envelope
                            if line.startswith(b"X-Rcpt-Args:"))
        self.assertEqual(recipients, list(range(1, 4001)), "each message once, none twice, none lost")

    def test_a_client_holding_101_connections_gets_421_on_the_101st(self):
        sink = SmtpSink()
        self.addCleanup(sink.cleanup)
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}")
        self.addCleanup(proxy.cleanup)
        held = []
        for _ in range(100):
            held.append(Client(proxy.port))
            self.addCleanup(held[-1].close)
        self.assertTrue(all(c.greeting[0] == 220 for c in held))
        extra = Client(proxy.port, greeting=False)
        self.addCleanup(extra.close)
        self.assertEqual(extra.reply()[:2], (421, "4.7.0"))
        self.assertEqual(held[0].command("QUIT")[0], 221)
        held[0].close()
        again = Client(proxy.port)
        self.addCleanup(again.close)
        self.assertEqual(again.greeting[0], 220, "a place freed by QUIT is free once 221 is read")


class Load(unittest.TestCase):
    def test_200_concurrent_sessions_are_each_delivered_exactly_once(self):
        sink = MaildirSink("--max-connections-per-ip", "1000", "--max-connections", "1000")
        self.addCleanup(sink.cleanup)
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}",
                        "--max-connections-per-ip", "1000", "--max-connections", "1000")
        self.addCleanup(proxy.cleanup)

        def one(i):
            with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="load.example", timeout=60) as s:
                s.sendmail("alice@example.org", [f"rcpt{i}@example.com"],
                           f"Subject: {i}\r\nX-Id: message-{i}\r\n\r\nbody {i}\r\n".encode())
            return i

        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            done = list(pool.map(one, range(200)))
        self.assertEqual(sorted(done), list(range(200)))
        ids = sorted(int(m.split(b"X-Id: message-")[1].split(b"\r\n")[0]) for m in sink.messages())
        self.assertEqual(ids, list(range(200)), "each message once, none twice, none lost")


LINE_80 = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789abcdef\r\n"


class Memory(unittest.TestCase):
    def big_message_relay(self):
        """A Maildir sink and a proxy in front of it, both taking messages of up to 128 MiB."""
        sink = MaildirSink("--max-message-size", str(128 << 20))
        self.addCleanup(sink.cleanup)
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}", "--max-message-size", str(128 << 20))
        self.addCleanup(proxy.cleanup)
        return sink, proxy

    def test_a_50_mib_message_is_relayed_intact_in_bounded_memory(self):
        sink, proxy = self.big_message_relay()
        body = b"Subject: big\r\n\r\n" + LINE_80 * ((50 << 20) // len(LINE_80))
        expected = hashlib.sha256(body).hexdigest()
        before = peak_rss_kib(proxy.pid)
        with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="big.example", timeout=120) as s:
            s.sendmail("alice@example.org", ["bob@example.com"], body)
        peak = peak_rss_kib(proxy.pid)
        [stored] = sink.messages()
        self.assertEqual(hashlib.sha256(stored).hexdigest(), expected)
        print(f"\n50 MiB message: proxy peak RSS {peak} KiB (before the message: {before} KiB)")
        if os.environ.get("GREY_SANITIZED"):
            return  # AddressSanitizer's shadow memory and quarantine make RSS meaningless
        self.assertLess(peak, 32 * 1024, "the proxy's memory must not grow with the message")

    def test_a_50_mib_bdat_message_is_relayed_intact_in_bounded_memory(self):
        # Five chunks of 10 MiB: the proxy holds no chunk whole, and the Maildir sink, which has
        # no CHUNKING, gets the message as DATA.
        sink, proxy = self.big_message_relay()
        body = b"Subject: big in chunks\r\n\r\n" + LINE_80 * ((50 << 20) // len(LINE_80))
        c = Client(proxy.port, timeout=120)
        self.addCleanup(c.close)
        self.assertEqual(c.command("EHLO big.example")[0], 250)
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
        step = 10 << 20
        for at in range(0, len(body), step):
            chunk = body[at:at + step]
            last = " LAST" if at + step >= len(body) else ""
            self.assertEqual(c.command(f"BDAT {len(chunk)}{last}\r\n".encode() + chunk)[0], 250)
        peak = peak_rss_kib(proxy.pid)
        [stored] = sink.messages()
        self.assertEqual(hashlib.sha256(stored).hexdigest(), hashlib.sha256(body).hexdigest())
        print(f"\n50 MiB BDAT message: proxy peak RSS {peak} KiB")
        if os.environ.get("GREY_SANITIZED"):
            return
        self.assertLess(peak, 32 * 1024, "the proxy's memory must not grow with a chunk or the message")


if __name__ == "__main__":
    unittest.main()
