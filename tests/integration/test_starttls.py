"""STARTTLS from clients (RFC 3207), with real TLS clients: Python's smtplib and ssl, swaks and
openssl s_client. Offered only with a certificate and never once TLS is up; after the
handshake the session starts again; plaintext sent behind STARTTLS is dropped unread
(CVE-2011-0411); TLS 1.2 and 1.3 only; TLS can be required; the certificate is reloaded on
SIGHUP without dropping sessions."""
import concurrent.futures
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import Client, MaildirSink, Program, make_certificate


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TlsClient(Client):
    """Client that can switch its socket to TLS after the server's 220."""

    def starttls(self, context=None):
        reply = self.command("STARTTLS")
        if reply[0] != 220:
            return reply
        self.sock = (context or client_context()).wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        return reply


class Starttls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="grey-tls-")
        cls.cert, cls.key = make_certificate(cls.dir)
        cls.sink = MaildirSink()
        cls.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{cls.sink.port}",
                            "--tls-cert", cls.cert, "--tls-key", cls.key)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.cleanup()
        cls.sink.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def client(self):
        c = TlsClient(self.proxy.port)
        self.addCleanup(c.close)
        return c

    def delivered(self, marker):
        return [m for m in self.sink.messages() if marker in m]

    def test_ehlo_offers_starttls_before_tls_and_not_after(self):
        c = self.client()
        code, _, lines = c.command("EHLO client.example")
        self.assertEqual(code, 250)
        self.assertIn("STARTTLS", lines)
        self.assertEqual(c.starttls()[:2], (220, "2.0.0"))
        self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))
        code, _, lines = c.command("EHLO client.example")
        self.assertEqual(code, 250)
        self.assertNotIn("STARTTLS", lines)

    def test_smtplib_starttls_delivers_a_message(self):
        with smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="client.example", timeout=30) as s:
            s.starttls(context=client_context())
            s.sendmail("alice@example.org", ["bob@example.com"], b"Subject: smtplib-tls\r\n\r\nbody\r\n")
        self.assertEqual(len(self.delivered(b"smtplib-tls")), 1)

    def test_swaks_tls_delivers_a_message(self):
        out = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.proxy.port}", "--tls", "--helo", "swaks.example",
                              "--from", "alice@example.org", "--to", "bob@example.com",
                              "--header", "Subject: swaks-tls", "--body", "over TLS"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("TLS started", out.stdout)
        self.assertEqual(len(self.delivered(b"swaks-tls")), 1)

    def test_openssl_s_client_negotiates_tls_1_3_and_tls_1_2(self):
        for flag, version in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
            with self.subTest(version):
                out = subprocess.run(["openssl", "s_client", "-starttls", "smtp", flag, "-connect",
                                      f"127.0.0.1:{self.proxy.port}"], input="QUIT\n", capture_output=True,
                                     text=True, timeout=30)
                self.assertRegex(out.stdout, rf"(New, |Protocol\s*: ){version}\b", out.stderr[-800:])

    def test_tls_1_1_is_refused(self):
        c = self.client()
        c.command("EHLO client.example")
        ctx = client_context()
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            c.starttls(ctx)
            c.command("EHLO client.example")

    def test_plaintext_pipelined_behind_starttls_is_dropped_not_executed(self):
        # CVE-2011-0411: an attacker on the path appends a command to the client's STARTTLS.
        c = self.client()
        c.command("EHLO client.example")
        c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
        self.assertEqual(c.reply()[0], 220)
        c.sock = client_context().wrap_socket(c.sock, server_hostname="localhost")
        c.buf = b""
        self.assertEqual(c.command("EHLO client.example")[0], 250, "the first reply over TLS is EHLO's")
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[:2], (503, "5.5.1"),
                         "the injected MAIL was never executed")

    def test_the_session_starts_again_after_the_handshake(self):
        c = self.client()
        c.command("EHLO client.example")
        c.starttls()
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[:2], (503, "5.5.1"), "EHLO is needed again")

    def test_starttls_with_an_argument_inside_a_transaction_or_twice_is_refused(self):
        c = self.client()
        c.command("EHLO client.example")
        self.assertEqual(c.command("STARTTLS now")[:2], (501, "5.5.4"))
        c = self.client()
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        self.assertEqual(c.command("STARTTLS")[:2], (503, "5.5.1"))
        c.command("RSET")
        self.assertEqual(c.starttls()[0], 220, "after the transaction it may")
        c.command("EHLO client.example")
        self.assertEqual(c.command("STARTTLS")[:2], (502, "5.5.1"))
        c = self.client()
        self.assertEqual(c.command("STARTTLS")[:2], (503, "5.5.1"), "EHLO first")

    def test_a_client_that_never_starts_its_handshake_is_closed_after_the_handshake_timeout(self):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", "--tls-cert", self.cert,
                    "--tls-key", self.key, "--tls-handshake-timeout", "2")
        self.addCleanup(p.cleanup)
        c = TlsClient(p.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("STARTTLS")[0], 220)
        start = time.time()
        self.assertTrue(c.closed(timeout=10))
        self.assertGreater(time.time() - start, 1.5)

    def test_plain_text_instead_of_a_handshake_gets_no_answer_and_the_connection_closed(self):
        c = self.client()
        c.command("EHLO client.example")
        self.assertEqual(c.command("STARTTLS")[0], 220)
        c.send(b"MAIL FROM:<alice@example.org>\r\n")
        c.sock.settimeout(5)
        answered = b""
        try:
            while chunk := c.sock.recv(4096):
                answered += chunk
        except ConnectionError:
            pass  # closed: what matters is that it was
        self.assertNotIn(b"250", answered, "no SMTP reply in plain text")

    def test_twenty_concurrent_tls_sessions_are_each_delivered_once(self):
        def one(i):
            with smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="load.example", timeout=60) as s:
                s.starttls(context=client_context())
                s.sendmail("alice@example.org", [f"r{i}@example.com"],
                           f"Subject: tls-load\r\nX-Id: tls-{i}\r\n\r\nbody {i}\r\n".encode())
            return i

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            self.assertEqual(sorted(pool.map(one, range(20))), list(range(20)))
        ids = sorted(int(m.split(b"X-Id: tls-")[1].split(b"\r\n")[0]) for m in self.delivered(b"tls-load"))
        self.assertEqual(ids, list(range(20)))


class Options(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-tls-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cert, self.key = make_certificate(self.dir)
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)

    def test_without_a_certificate_starttls_is_neither_offered_nor_accepted(self):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}")
        self.addCleanup(p.cleanup)
        c = Client(p.port)
        self.addCleanup(c.close)
        code, _, lines = c.command("EHLO client.example")
        self.assertNotIn("STARTTLS", lines)
        self.assertEqual(c.command("STARTTLS")[:2], (502, "5.5.1"))

    def test_required_tls_refuses_mail_in_plain_text(self):
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", "--tls-cert", self.cert,
                    "--tls-key", self.key, "--tls-required")
        self.addCleanup(p.cleanup)
        c = TlsClient(p.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[:2], (530, "5.7.0"))
        c.starttls()
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)

    def test_a_key_that_does_not_match_or_a_missing_file_stops_the_program(self):
        other_cert, other_key = make_certificate(self.dir, "other")
        for args, expected in [(("--tls-cert", self.cert, "--tls-key", other_key), "mismatch"),
                               (("--tls-cert", self.cert), "go together")]:
            with self.subTest(expected):
                out = subprocess.run([os.environ.get("GREY_SPAM_ME", "build/dev/examples/spam_me"), "--listen",
                                      "127.0.0.1:0", *args], capture_output=True, text=True, timeout=10)
                self.assertNotEqual(out.returncode, 0)
                self.assertIn(expected, out.stderr + out.stdout)

    def test_sighup_reloads_the_certificate_without_dropping_sessions(self):
        cert, key = os.path.join(self.dir, "live.crt"), os.path.join(self.dir, "live.key")
        shutil.copy(self.cert, cert)
        shutil.copy(self.key, key)
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", "--tls-cert", cert, "--tls-key", key)
        self.addCleanup(p.cleanup)
        before = TlsClient(p.port)
        self.addCleanup(before.close)
        before.command("EHLO client.example")
        before.starttls()
        old = before.sock.getpeercert(binary_form=True)
        renewed_cert, renewed_key = make_certificate(self.dir, "renewed")
        shutil.copy(renewed_cert, cert)
        shutil.copy(renewed_key, key)
        p.signal(signal.SIGHUP)
        time.sleep(0.5)
        self.assertEqual(before.command("EHLO client.example")[0], 250, "the encrypted session goes on")
        after = TlsClient(p.port)
        self.addCleanup(after.close)
        after.command("EHLO client.example")
        after.starttls()
        self.assertNotEqual(after.sock.getpeercert(binary_form=True), old, "a new session gets the new certificate")
        self.assertEqual(before.command("QUIT")[0], 221)


class GreylistServer(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-tls-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cert, self.key = make_certificate(self.dir)

    def test_greylist_server_takes_its_certificate_from_the_configuration_file(self):
        config = os.path.join(self.dir, "grey.toml")
        with open(config, "w") as f:
            f.write(f'[tls]\ncertificate = "{self.cert}"\nkey = "{self.key}"\n'
                    '[maildir]\nlisten = "127.0.0.1:0"\n')
        p = Program("greylist_server", "--config", config, "--store", "memory", cwd=self.dir)
        self.addCleanup(p.stop)
        with smtplib.SMTP("127.0.0.1", p.port, local_hostname="client.example", timeout=30) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("starttls"))
            s.starttls(context=client_context())
            s.ehlo()
            self.assertFalse(s.has_extn("starttls"))
            s.mail("alice@example.org")
            self.assertEqual(s.rcpt("bob@example.com")[0], 451, "greylisted over TLS as in plain text")

    def test_the_tls_1_2_cipher_list_comes_from_the_configuration_file(self):
        config = os.path.join(self.dir, "grey.toml")

        def start(ciphers):
            with open(config, "w") as f:
                f.write(f'[tls]\ncertificate = "{self.cert}"\nkey = "{self.key}"\nciphers = "{ciphers}"\n'
                        '[maildir]\nlisten = "127.0.0.1:0"\n')
            return Program("greylist_server", "--config", config, "--store", "memory", cwd=self.dir)

        with self.assertRaisesRegex(RuntimeError, r"no usable cipher in 'NO-SUCH-CIPHER'"):
            start("NO-SUCH-CIPHER")
        p = start("ECDHE-ECDSA-CHACHA20-POLY1305")
        self.addCleanup(p.stop)
        tls12 = client_context()
        tls12.maximum_version = ssl.TLSVersion.TLSv1_2
        with smtplib.SMTP("127.0.0.1", p.port, local_hostname="client.example", timeout=30) as s:
            s.starttls(context=tls12)
            self.assertEqual(s.sock.cipher()[0], "ECDHE-ECDSA-CHACHA20-POLY1305")
        with smtplib.SMTP("127.0.0.1", p.port, local_hostname="client.example", timeout=30) as s:
            s.starttls(context=client_context())  # Python offers AES-256-GCM first; Grey prefers its own order
            self.assertEqual(s.sock.cipher()[:2], ("TLS_AES_128_GCM_SHA256", "TLSv1.3"))


if __name__ == "__main__":
    unittest.main()
