"""Postgrey's whitelist files in greylist_server: Debian's own /etc/postgrey/whitelist_clients and
whitelist_recipients given to the policy service (--whitelist-clients, --whitelist-recipients),
the grey.toml keys, SIGHUP's reload, a file with a bad line refused with its file and line, and
the SMTP proxy matching a client by the name its address resolves to. Loopback only; every
process is stopped by the test that started it."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from test_greylist import BASE, GreylistServer, send
from test_policy import DEFER, DUNNO, SERVER, PolicyClient, PolicyServer, rcpt


def debian_file(name):
    """Debian's file as the postgrey package installs it, or the copy the package keeps."""
    for d in ("/etc/postgrey", "/usr/share/postgrey"):
        path = os.path.join(d, name)
        if os.path.exists(path):
            return path
    raise unittest.SkipTest("Debian's postgrey package is not installed (scripts/install-deps.sh installs it)")


class PostgreyWhitelists(unittest.TestCase):
    def server(self, *args, **kwargs):
        s = PolicyServer(*args, **kwargs)
        self.addCleanup(s.cleanup)
        return s

    def client(self, server):
        c = PolicyClient(server.port)
        self.addCleanup(c.close)
        return c

    def scratch(self):
        d = tempfile.mkdtemp(prefix="grey-whitelists-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def test_debians_files_pass_their_clients_and_recipients_and_greylist_the_rest(self):
        s = self.server("--whitelist-clients", debian_file("whitelist_clients"),
                        "--whitelist-recipients", debian_file("whitelist_recipients"))
        c = self.client(s)
        self.assertEqual(c.ask(rcpt(client="198.51.100.9", client_name="mail7.telekom.de")), DUNNO,
                         "/^mail\\d+\\.telekom\\.de$/")
        self.assertEqual(c.ask(rcpt(client="198.51.100.10", client_name="lists.debian.org")), DUNNO, "debian.org")
        self.assertEqual(c.ask(rcpt("postmaster@example.com")), DUNNO, "postmaster@")
        self.assertEqual(c.ask(rcpt("postmaster+x@example.com", instance="1.2")), DUNNO, "postmaster@, extended")
        self.assertEqual(c.ask(rcpt(client="66.216.126.174")), DUNNO, "an address of the file")
        self.assertEqual(c.ask(rcpt()), DEFER, "an ordinary first sight")
        self.assertEqual(c.ask(rcpt(client="198.51.100.11", client_name="mail.telekom.de")), DEFER)
        self.assertEqual(c.ask(rcpt("bob@example.com", client="198.51.100.12", client_name="unknown")), DEFER)
        s.stop()
        lines = s.log_lines()
        self.assertEqual(len(lines), 8, s.lines)
        clients = debian_file("whitelist_clients")
        with open(clients, encoding="utf-8") as f:
            line = next(n for n, text in enumerate(f, 1) if text.strip() == r"/^mail\d+\.telekom\.de$/")
        self.assertTrue(lines[0].endswith(f"| bob@example.com accepted (client name, {clients}:{line}) | policy"),
                        lines[0])
        self.assertRegex(lines[5], r"\| bob@example\.com greylisted \(first seen; tier=normal [^|]*\) \| policy$")

    def test_the_files_are_named_in_grey_toml_and_reloaded_on_sighup(self):
        d = self.scratch()
        clients, recipients = os.path.join(d, "clients"), os.path.join(d, "recipients")
        with open(clients, "w") as f:
            f.write("# ours\n/^mx\\d+\\.partner\\.example$/\n")
        with open(recipients, "w") as f:
            f.write("abuse@\n")
        s = self.server(config=f'[greylist]\nwhitelist_clients = ["{clients}"]\n'
                               f'whitelist_recipients = ["{recipients}"]\n')
        c = self.client(s)
        self.assertEqual(c.ask(rcpt(client_name="mx3.partner.example")), DUNNO)
        self.assertEqual(c.ask(rcpt("abuse@example.com")), DUNNO)
        self.assertEqual(c.ask(rcpt("carol@example.com", client_name="mail.other.example")), DEFER)
        with open(clients, "a") as f:
            f.write("other.example\n")
        s.proc.send_signal(signal.SIGHUP)
        self.wait_for_error(s, "lists reloaded from")
        self.assertIn(clients, s.errors())
        self.assertEqual(c.ask(rcpt("carol@example.com", client_name="mail.other.example")), DUNNO)

        # A bad line at reload keeps the lists there were, and says where it is.
        with open(clients, "a") as f:
            f.write("not one name\n")
        s.proc.send_signal(signal.SIGHUP)
        self.wait_for_error(s, "reload failed")
        self.assertIn(f"keeping the old lists: {clients}:4: 'not one name' does not look like a host name", s.errors())
        self.assertEqual(c.ask(rcpt("dave@example.com", client_name="mail.other.example")), DUNNO)

    def test_a_file_with_a_line_grey_cannot_take_is_refused_with_its_file_and_line(self):
        d = self.scratch()
        clients = os.path.join(d, "whitelist_clients")
        with open(clients, "w") as f:
            f.write("good.example\n300.1.2.3\n")
        p = subprocess.run([SERVER, "--policy", "inet:127.0.0.1:0", "--store", "memory",
                            "--whitelist-clients", clients, "--whitelist-clients", clients + ".local",
                            "--whitelist-recipients", os.path.join(d, "missing")],
                           cwd=d, capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(f"{clients}:2: '300.1.2.3' is not an IPv4 address", p.stderr)
        self.assertIn(f"{d}/missing: cannot read: no such file", p.stderr)
        self.assertNotIn(".local", p.stderr, "a missing .local file is skipped, as Postgrey skips it")

    def wait_for_error(self, s, text, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in s.errors():
                return
            time.sleep(0.05)
        self.fail(f"no '{text}' on standard error: {s.errors()}")


class ProxyClientNames(unittest.TestCase):
    """The SMTP proxy has no client_name from Postfix: it looks the name up (reverse, then
    forward to verify, as for XCLIENT) when the files match names. 127.0.0.1 is "localhost" in
    /etc/hosts."""

    def test_a_client_listed_by_its_verified_name_passes_the_proxy_at_once(self):
        d = tempfile.mkdtemp(prefix="grey-whitelists-")
        self.addCleanup(shutil.rmtree, d, True)
        clients = os.path.join(d, "clients")
        with open(clients, "w") as f:
            f.write("/^localhost$/\n")
        s = GreylistServer(BASE, args=("--whitelist-clients", clients)).start()
        self.addCleanup(s.cleanup)
        answers, final = send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual((answers["bob@example.com"], final), (250, 250))
        self.assertEqual(len(s.delivered()), 1)

    def test_without_a_listed_name_or_address_the_proxy_greylists(self):
        d = tempfile.mkdtemp(prefix="grey-whitelists-")
        self.addCleanup(shutil.rmtree, d, True)
        clients = os.path.join(d, "clients")
        with open(clients, "w") as f:
            f.write("mail.example\n192.0.2.0/24\n")
        recipients = os.path.join(d, "recipients")
        with open(recipients, "w") as f:
            f.write("postmaster@\n")
        s = GreylistServer(BASE, args=("--whitelist-clients", clients, "--whitelist-recipients", recipients)).start()
        self.addCleanup(s.cleanup)
        answers, _ = send(s.port, "alice@example.org", ["bob@example.com", "postmaster@example.com"])
        self.assertEqual(answers, {"bob@example.com": 451, "postmaster@example.com": 250})


if __name__ == "__main__":
    unittest.main()
