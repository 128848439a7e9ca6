"""TLS to the upstream MTA, by policy: none, may, encrypt, verify. The upstream is aiosmtpd with
STARTTLS (a real, independent TLS server), or a scripted server for what no real one does on
purpose: a reply injected behind its 220 to STARTTLS, or plain text instead of a handshake.
A TLS failure under encrypt or verify gives the client 4xx and delivers nothing; under may,
Grey goes on in plain text."""
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import unittest

from harness import PROGRAMS, AiosmtpdUpstream, Program, ScriptedUpstream, make_certificate, peak_rss_kib

class UpstreamTls(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-uptls-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cert, self.key = make_certificate(self.dir)

    def upstream(self, *args):
        u = AiosmtpdUpstream(*args)
        self.addCleanup(u.cleanup)
        return u

    def proxy(self, port, *args):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{port}", *args)
        self.addCleanup(p.cleanup)
        return p

    def send(self, proxy, subject="uptls", recipients=("bob@example.com",)):
        """The client's answers: (RCPT code, final code or None)."""
        with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example", timeout=30) as s:
            s.ehlo()
            s.mail("alice@example.org")
            code, text = s.rcpt(recipients[0])
            if code != 250:
                return code, text, None
            code2, _ = s.data(f"Subject: {subject}\r\n\r\nbody\r\n".encode())
            return code, text, code2

    def test_encrypt_relays_over_tls(self):
        up = self.upstream("--cert", self.cert, "--key", self.key, "--require-starttls")
        p = self.proxy(up.port, "--upstream-tls", "encrypt")
        self.assertEqual(self.send(p)[0::2], (250, 250))
        [(message, facts)] = up.messages()
        self.assertTrue(facts["tls"], facts)
        self.assertIn(b"Subject: uptls", message)

    def test_verify_relays_when_the_certificate_carries_the_name_and_refuses_otherwise(self):
        up = self.upstream("--cert", self.cert, "--key", self.key)
        good = self.proxy(up.port, "--upstream-tls", "verify", "--upstream-ca", self.cert, "--upstream-tls-name", "localhost")
        self.assertEqual(self.send(good, "verified")[0::2], (250, 250))
        wrong_name = self.proxy(up.port, "--upstream-tls", "verify", "--upstream-ca", self.cert,
                                "--upstream-tls-name", "mx.other.example")
        code, text, final = self.send(wrong_name, "wrong-name")
        self.assertEqual((code, final), (451, None))
        self.assertIn(b"4.7.5", text)
        other_cert, _ = make_certificate(self.dir, "other")
        untrusted = self.proxy(up.port, "--upstream-tls", "verify", "--upstream-ca", other_cert,
                               "--upstream-tls-name", "localhost")
        self.assertEqual(self.send(untrusted, "untrusted")[0], 451)
        delivered = [m for m, _ in up.messages()]
        self.assertEqual(len(delivered), 1)
        self.assertIn(b"verified", delivered[0])

    def test_encrypt_without_starttls_upstream_gives_4xx_and_may_goes_on_in_plain_text(self):
        up = self.upstream()  # no certificate: STARTTLS not offered
        self.assertEqual(self.send(self.proxy(up.port, "--upstream-tls", "encrypt"))[0], 451)
        self.assertEqual(self.send(self.proxy(up.port, "--upstream-tls", "may"), "plain")[0::2], (250, 250))
        [(message, facts)] = up.messages()
        self.assertFalse(facts["tls"])

    def test_may_uses_tls_when_offered(self):
        up = self.upstream("--cert", self.cert, "--key", self.key)
        self.assertEqual(self.send(self.proxy(up.port, "--upstream-tls", "may"))[0::2], (250, 250))
        self.assertTrue(up.messages()[0][1]["tls"])

    def test_a_reply_injected_behind_the_upstreams_220_is_never_read(self):
        up = ScriptedUpstream(self.cert, self.key, behind_220=b"250-injected.example\r\n250 INJECTED\r\n")
        self.addCleanup(up.close)
        p = self.proxy(up.port, "--upstream-tls", "encrypt")
        self.assertEqual(self.send(p, "injected")[0::2], (250, 250))
        # The probe at start was the first connection (EHLO, QUIT); this is the session's.
        self.assertEqual([c.split(" ")[0] for c, _ in up.commands],
                         ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA"])
        self.assertTrue(all(tls for c, tls in up.commands[2:]), "everything after STARTTLS inside TLS")
        [(body, tls)] = up.messages
        self.assertTrue(tls)

    def test_a_failed_handshake_gives_4xx_under_encrypt_and_plain_text_under_may(self):
        up = ScriptedUpstream(self.cert, self.key, behind_220=b"this is not TLS\r\n", handshake=False)
        self.addCleanup(up.close)
        self.assertEqual(self.send(self.proxy(up.port, "--upstream-tls", "encrypt"))[0], 451)
        self.assertEqual(up.messages, [])
        self.assertEqual(self.send(self.proxy(up.port, "--upstream-tls", "may"), "fallback")[0::2], (250, 250))
        [(body, tls)] = up.messages
        self.assertFalse(tls)
        self.assertIn(b"fallback", body)

    def test_pooled_tls_connections_carry_later_sessions(self):
        up = self.upstream("--cert", self.cert, "--key", self.key, "--require-starttls")
        p = self.proxy(up.port, "--upstream-tls", "encrypt", "--threads", "1")
        for i in range(3):
            self.assertEqual(self.send(p, f"pooled-{i}")[0::2], (250, 250))
        messages = up.messages()
        self.assertEqual(len(messages), 3)
        self.assertTrue(all(facts["tls"] for _, facts in messages))

    def test_a_50_mib_message_over_tls_on_both_legs_in_bounded_memory(self):
        up = self.upstream("--cert", self.cert, "--key", self.key, "--require-starttls")
        p = self.proxy(up.port, "--upstream-tls", "encrypt", "--tls-cert", self.cert, "--tls-key", self.key,
                       "--max-message-size", str(128 << 20))
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789abcdef\r\n"
        body = b"Subject: big-tls\r\n\r\n" + line * ((50 << 20) // len(line))
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", p.port, local_hostname="big.example", timeout=120) as s:
            s.starttls(context=context)
            s.sendmail("alice@example.org", ["bob@example.com"], body)
        peak = peak_rss_kib(p.pid)
        [(message, facts)] = up.messages()
        self.assertTrue(facts["tls"])
        self.assertEqual(len(message), len(body))
        self.assertEqual(message, body)
        print(f"\n50 MiB over TLS on both legs: proxy peak RSS {peak} KiB")
        if not os.environ.get("GREY_SANITIZED"):
            self.assertLess(peak, 32 * 1024)

    def test_a_ca_file_that_cannot_be_read_stops_the_program(self):
        bad = os.path.join(self.dir, "not-a-ca.pem")
        with open(bad, "w") as f:
            f.write("nothing here\n")
        out = subprocess.run([PROGRAMS["spam_me"], "--listen", "127.0.0.1:0", "--upstream-tls", "verify",
                              "--upstream-ca", bad], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("CA file", out.stderr + out.stdout)


if __name__ == "__main__":
    unittest.main()
