"""TLS session resumption after STARTTLS, as MTAs with a TLS session cache (Postfix's
smtp_tls_session_cache_database) make it: a client that comes back with the session of its
last connection resumes it, by ticket in TLS 1.3 and 1.2 and by session ID in 1.2, with
Python's ssl and with openssl s_client; not with --tls-resumption off; tickets survive a
certificate reload on SIGHUP; grey_tls_handshakes_total counts resumed and full handshakes
apart. greylist_server takes the settings from grey.toml's [tls], and names the line of a
wrong one. Loopback only; certificates made at test time."""
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import PROGRAMS, Client, MaildirSink, Program, make_certificate, metric_value, scrape

VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def client_context(version, tickets=True):
    """A client of one TLS version that checks no certificate (the server's is self-signed)
    and keeps sessions: by ticket, or (`tickets` false, TLS 1.2) by session ID only."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


def session(port, ctx, earlier=None):
    """One STARTTLS session offering `earlier`: (resumed, the session to offer next, the
    server's certificate). EHLO is answered inside TLS before the session is taken, so that a
    TLS 1.3 ticket, sent after the handshake, has arrived."""
    c = Client(port)
    try:
        if c.command("EHLO client.example")[0] != 250 or c.command("STARTTLS")[0] != 220:
            raise AssertionError("STARTTLS refused")
        c.sock = ctx.wrap_socket(c.sock, server_hostname="localhost", session=earlier)
        c.buf = b""
        if c.command("EHLO client.example")[0] != 250:
            raise AssertionError("EHLO refused inside TLS")
        resumed, kept, cert = c.sock.session_reused, c.sock.session, c.sock.getpeercert(binary_form=True)
        c.command("QUIT")
        return resumed, kept, cert
    finally:
        c.close()


def handshakes(metrics_port):
    """grey_tls_handshakes_total's (full, resumed) counts now."""
    _, text = scrape(metrics_port)
    return (metric_value(text, "grey_tls_handshakes_total", '{resumed="no"}'),
            metric_value(text, "grey_tls_handshakes_total", '{resumed="yes"}'))


class Resumption(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-tls-resumption-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cert, self.key = make_certificate(self.dir)
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)

    def proxy(self, *options, cert=None, key=None):
        """spam_me with STARTTLS and its metrics on: (program, metrics port)."""
        p = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", "--tls-cert", cert or self.cert,
                    "--tls-key", key or self.key, "--metrics", "127.0.0.1:0", *options)
        self.addCleanup(p.cleanup)
        m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", "".join(p.output))
        self.assertIsNotNone(m, p.output)
        return p, int(m.group(1))

    def test_a_client_resumes_its_session_by_ticket_in_tls_1_2_and_1_3(self):
        p, metrics = self.proxy()
        for version in VERSIONS:
            with self.subTest(version=version):
                ctx = client_context(version)
                before = handshakes(metrics)
                resumed, kept, _ = session(p.port, ctx)
                self.assertFalse(resumed, "the first session is a full handshake")
                self.assertTrue(kept.has_ticket, "the server issued a ticket")
                resumed, kept, _ = session(p.port, ctx, kept)
                self.assertTrue(resumed, "the second session resumed the first")
                resumed, _, _ = session(p.port, ctx, kept)
                self.assertTrue(resumed, "and the third the second")
                full, fast = handshakes(metrics)
                self.assertEqual((full - before[0], fast - before[1]), (1, 2))

    def test_a_tls_1_2_client_without_tickets_resumes_by_session_id(self):
        p, metrics = self.proxy()
        ctx = client_context("TLSv1.2", tickets=False)
        resumed, kept, _ = session(p.port, ctx)
        self.assertFalse(resumed)
        self.assertFalse(kept.has_ticket)
        self.assertTrue(kept.id)
        resumed, _, _ = session(p.port, ctx, kept)
        self.assertTrue(resumed)
        self.assertEqual(handshakes(metrics), (1, 1))

    def test_with_resumption_off_every_handshake_is_full(self):
        p, metrics = self.proxy("--tls-resumption", "off")
        for version in VERSIONS:
            for tickets in (True, False):
                with self.subTest(version=version, tickets=tickets):
                    ctx = client_context(version, tickets)
                    resumed, kept, _ = session(p.port, ctx)
                    self.assertFalse(resumed)
                    self.assertFalse(kept.has_ticket, "no ticket is issued")
                    resumed, _, _ = session(p.port, ctx, kept)
                    self.assertFalse(resumed)
        self.assertEqual(handshakes(metrics), (8, 0))

    def test_tickets_survive_a_certificate_reload(self):
        cert, key = os.path.join(self.dir, "live.crt"), os.path.join(self.dir, "live.key")
        shutil.copy(self.cert, cert)
        shutil.copy(self.key, key)
        p, metrics = self.proxy(cert=cert, key=key)
        contexts = {version: client_context(version) for version in VERSIONS}
        tickets = {}
        for version, ctx in contexts.items():
            _, tickets[version], old = session(p.port, ctx)
        renewed_cert, renewed_key = make_certificate(self.dir, "renewed")
        shutil.copy(renewed_cert, cert)
        shutil.copy(renewed_key, key)
        p.signal(signal.SIGHUP)
        # Reloaded once a new client gets the new certificate.
        deadline = time.time() + 10
        while session(p.port, client_context("TLSv1.3"))[2] == old:
            self.assertLess(time.time(), deadline, "the certificate was not reloaded")
            time.sleep(0.1)
        before = handshakes(metrics)
        for version, ctx in contexts.items():
            with self.subTest(version=version):
                resumed, _, _ = session(p.port, ctx, tickets[version])
                self.assertTrue(resumed, "a ticket issued before the reload resumes after it")
        self.assertEqual(handshakes(metrics)[1] - before[1], 2)

    def test_openssl_s_client_resumes_with_its_saved_session(self):
        p, metrics = self.proxy()
        for version, flag in (("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")):
            with self.subTest(version=version):
                saved = os.path.join(self.dir, f"session-{version}.pem")
                first = self.s_client(p.port, flag, "-sess_out", saved)
                self.assertRegex(first, rf"New, {version}")
                self.assertTrue(os.path.getsize(saved))
                again = self.s_client(p.port, flag, "-sess_in", saved)
                self.assertRegex(again, rf"Reused, {version}")
        self.assertEqual(handshakes(metrics), (2, 2))

    def s_client(self, port, *options):
        """openssl s_client through STARTTLS, saying EHLO and QUIT inside TLS: its output. It reads
        on until the server closes (-ign_eof), so that a TLS 1.3 ticket, sent after the
        handshake, reaches -sess_out."""
        done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-starttls", "smtp", "-crlf",
                               "-ign_eof", "-servername", "localhost", *options],
                              input="EHLO client.example\nQUIT\n", capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr


class GreylistServerSettings(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-tls-resumption-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cert, self.key = make_certificate(self.dir)

    def config(self, tls_lines):
        path = os.path.join(self.dir, "grey.toml")
        with open(path, "w") as f:
            f.write(f'[tls]\ncertificate = "{self.cert}"\nkey = "{self.key}"\n{tls_lines}'
                    '[maildir]\nlisten = "127.0.0.1:0"\n')
        return path

    def server(self, tls_lines, *flags):
        p = Program("greylist_server", "--config", self.config(tls_lines), "--store", "memory", *flags, cwd=self.dir)
        self.addCleanup(p.stop)
        return p

    def resumes(self, port):
        ctx = client_context("TLSv1.3")
        _, kept, _ = session(port, ctx)
        return session(port, ctx, kept)[0]

    def test_resumption_is_on_by_default_and_the_file_turns_it_off(self):
        self.assertTrue(self.resumes(self.server("").port))
        self.assertFalse(self.resumes(self.server("resumption = false\nsession_lifetime = 600\n").port))

    def test_the_command_line_wins_over_the_file(self):
        self.assertTrue(self.resumes(self.server("resumption = false\n", "--tls-resumption", "on").port))
        self.assertFalse(self.resumes(self.server("", "--tls-resumption", "off").port))

    def test_a_wrong_setting_names_its_line(self):
        for lines, error in [("resumption = \"maybe\"\n", r"grey\.toml:4: 'tls\.resumption' must be true or false"),
                             ("session_lifetime = 0\n", r"grey\.toml:4: 'tls\.session_lifetime' must be at least 1"),
                             ("session_cache_size = -1\n", r"grey\.toml:4: 'tls\.session_cache_size' must be a whole")]:
            with self.subTest(lines=lines):
                done = subprocess.run([PROGRAMS["greylist_server"], "--config",
                                       self.config(lines), "--store", "memory"],
                                      capture_output=True, text=True, timeout=30, cwd=self.dir)
                self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
                self.assertRegex(done.stderr, error)

    def test_a_lifetime_of_zero_seconds_is_refused_on_the_command_line(self):
        done = subprocess.run([PROGRAMS["greylist_server"], "--config",
                               self.config(""), "--store", "memory", "--tls-session-lifetime", "0"],
                              capture_output=True, text=True, timeout=30, cwd=self.dir)
        self.assertNotEqual(done.returncode, 0)
        self.assertIn("--tls-session-lifetime", done.stderr + done.stdout)


if __name__ == "__main__":
    unittest.main()
