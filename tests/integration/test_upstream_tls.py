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

from harness import PROGRAMS, Program, make_certificate, peak_rss_kib

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-aiosmtpd is installed for this one


class AiosmtpdUpstream:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="grey-aiosmtpd-")
        script = os.path.join(os.path.dirname(__file__), "aiosmtpd_upstream.py")
        self.proc = subprocess.Popen([SYSTEM_PYTHON, script, self.dir, *args], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on 127.0.0.1:"):
            raise RuntimeError(f"aiosmtpd upstream did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def messages(self):
        """[(message bytes, facts)] in arrival order."""
        out = []
        for n in range(1, 10000):
            base = os.path.join(self.dir, str(n))
            if not os.path.exists(base + ".json"):
                break
            with open(base + ".eml", "rb") as m, open(base + ".json") as j:
                out.append((m.read(), json.load(j)))
        return out

    def cleanup(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class ScriptedUpstream(threading.Thread):
    """A small SMTP server that offers STARTTLS and, after its 220, sends `behind_220` (a reply
    an attacker slipped in) and then does the handshake, or with handshake=False sends plain
    text and hangs up. Later connections are served in plain text. `commands` records what it
    received, with whether TLS was up."""

    def __init__(self, cert, key, behind_220=b"", handshake=True):
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.behind_220, self.handshake = behind_220, handshake
        self.commands, self.messages = [], []
        self.start()

    def run(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                self.serve(conn)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()

    def serve(self, conn):
        tls = False
        reader = conn.makefile("rb")
        conn.sendall(b"220 scripted.example ESMTP\r\n")
        while line := reader.readline():
            verb = line.strip().split(b" ")[0].upper()
            self.commands.append((line.strip().decode(), tls))
            if verb == b"EHLO":
                conn.sendall(b"250-scripted.example\r\n250-PIPELINING\r\n" + (b"250 8BITMIME\r\n" if tls else b"250 STARTTLS\r\n"))
            elif verb == b"STARTTLS":
                conn.sendall(b"220 2.0.0 Go ahead\r\n" + self.behind_220)
                if not self.handshake:
                    return
                conn = self.context.wrap_socket(conn, server_side=True)
                reader, tls = conn.makefile("rb"), True
            elif verb == b"DATA":
                conn.sendall(b"354 Go on\r\n")
                body = b""
                while (chunk := reader.readline()) not in (b".\r\n", b""):
                    body += chunk
                self.messages.append((body, tls))
                conn.sendall(b"250 2.0.0 Queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 Bye\r\n")
                return
            else:
                conn.sendall(b"250 2.0.0 OK\r\n")

    def close(self):
        self.listener.close()


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
