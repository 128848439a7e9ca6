"""greylist_server end to end: a real smtplib client, the server's embedded Maildir sink as the
upstream, SQLite for the greylist, short delays. Loopback only; every process is stopped."""
import os
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import textwrap
import threading
import time
import unittest

from harness import end_process, free_port

SERVER = os.path.abspath(os.environ.get("GREY_GREYLIST_SERVER", "build/dev/examples/greylist_server"))
ADMIN = os.path.abspath(os.environ.get("GREY_GREYLIST_ADMIN", "build/dev/examples/greylist_admin"))


class GreylistServer:
    """greylist_server in a temporary directory, with the given TOML configuration. Its standard
    error joins standard output, or with `separate_stderr` goes to a file that errors() reads."""

    def __init__(self, config="", args=(), separate_stderr=False):
        self.dir = tempfile.mkdtemp(prefix="grey-greylist-")
        self.config = os.path.join(self.dir, "grey.toml")
        with open(self.config, "w") as f:
            f.write(textwrap.dedent(config))
        self.args = list(args)
        self.proc = None
        self.stderr_path = os.path.join(self.dir, "stderr") if separate_stderr else None

    def start(self):
        stderr = open(self.stderr_path, "w") if self.stderr_path else subprocess.STDOUT
        try:
            self.proc = subprocess.Popen(
                [SERVER, "--config", self.config, "--listen", "127.0.0.1:0", *self.args],
                cwd=self.dir, stdout=subprocess.PIPE, stderr=stderr, text=True)
        finally:
            if self.stderr_path:
                stderr.close()  # the child has its own copy
        deadline = time.time() + 10
        self.lines = []
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("greylist_server exited: " + "".join(self.lines))
            self.lines.append(line)
            m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return self
        raise RuntimeError("greylist_server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            end_process(self.proc, 10)
        if self.proc and not self.proc.stdout.closed:
            self.lines += self.proc.stdout.readlines()
            self.proc.stdout.close()
        return self.proc.returncode if self.proc else None

    def errors(self):
        with open(self.stderr_path) as f:
            return f.read()

    def delivered(self):
        new = os.path.join(self.dir, "Maildir", "new")
        if not os.path.isdir(new):
            return []
        found = []
        for name in sorted(os.listdir(new)):
            with open(os.path.join(new, name), "rb") as f:
                found.append(f.read())
        return found

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def send(port, sender, recipients, body=b"Subject: t\r\n\r\nhello\r\n", helo="client.example"):
    """One transaction. Returns ({recipient: code}, final code or None)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=10) as s:
        s.ehlo()
        code, _ = s.mail(sender)
        assert code == 250, code
        answers = {r: s.rcpt(r)[0] for r in recipients}
        final = None
        if any(c == 250 for c in answers.values()):
            final = s.data(body)[0]
        else:
            s.rset()
        return answers, final


BASE = """
    [greylist]
    delay = 2
    auto_whitelist_after = 0
    [maildir]
    listen = "127.0.0.1:0"
"""


class Greylisting(unittest.TestCase):
    def server(self, config=BASE, args=()):
        s = GreylistServer(config, args).start()
        self.addCleanup(s.cleanup)
        return s

    def test_first_attempt_is_deferred_then_passes_after_the_delay_exactly_once(self):
        s = self.server()
        answers, final = send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual(answers, {"bob@example.com": 451})
        self.assertEqual(s.delivered(), [], "a deferred recipient must not reach the upstream")

        answers, _ = send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual(answers["bob@example.com"], 451, "a retry before the delay is deferred")

        time.sleep(2.2)
        answers, final = send(s.port, "alice@example.org", ["bob@example.com"], b"Subject: t\r\n\r\nonce\r\n")
        self.assertEqual((answers["bob@example.com"], final), (250, 250))
        self.assertEqual(len(s.delivered()), 1)
        self.assertIn(b"once", s.delivered()[0])

        # Known now: passes at once, and is delivered again, once.
        answers, final = send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual((answers["bob@example.com"], final), (250, 250))
        self.assertEqual(len(s.delivered()), 2)

    def test_the_deferral_reply_is_the_seeds(self):
        s = self.server()
        with smtplib.SMTP("127.0.0.1", s.port, local_hostname="client.example", timeout=10) as c:
            c.ehlo()
            c.mail("alice@example.org")
            code, text = c.rcpt("bob@example.com")
        self.assertEqual((code, text), (451, b"4.7.1 Please try again later"))

    def test_relay_to_a_foreign_domain_is_refused(self):
        s = self.server(BASE + '[relay]\nallowed_domains = ["example.com"]\n')
        answers, _ = send(s.port, "alice@example.org", ["eve@elsewhere.example"])
        self.assertEqual(answers, {"eve@elsewhere.example": 550})
        answers, _ = send(s.port, "alice@example.org", ["bob@EXAMPLE.com"])
        self.assertEqual(answers, {"bob@EXAMPLE.com": 451}, "an allowed domain is greylisted, not refused")

    def test_allowed_sender_networks_relay_anywhere_without_greylisting(self):
        s = self.server(BASE + '[relay]\nallowed_domains = ["example.com"]\nallowed_sender_nets = ["127.0.0.0/8"]\n')
        answers, final = send(s.port, "alice@example.org", ["eve@elsewhere.example"])
        self.assertEqual((answers["eve@elsewhere.example"], final), (250, 250))

    def test_a_whitelisted_triple_passes_at_once(self):
        s = self.server(BASE + """
            [[whitelist]]
            peer = "127.0.0.1"
            sender = "alice@example.org"
            recipient = "bob@example.com"
            """)
        answers, final = send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual((answers["bob@example.com"], final), (250, 250))
        self.assertEqual(len(s.delivered()), 1)

    def test_a_nonstandard_triple_passes_at_once(self):
        s = self.server(BASE + """
            [[whitelist_nonstandard]]
            helo = "mx.bigsender.example"
            address_prefix = "127.0.0."
            recipient = "bob@example.com"
            """)
        answers, _ = send(s.port, "x@bigsender.example", ["bob@example.com"], helo="mx.bigsender.example")
        self.assertEqual(answers["bob@example.com"], 250)
        answers, _ = send(s.port, "x@bigsender.example", ["bob@example.com"], helo="other.example")
        self.assertEqual(answers["bob@example.com"], 451)

    def test_one_recipient_greylisted_and_one_passing_delivers_to_the_one(self):
        s = self.server()
        send(s.port, "alice@example.org", ["bob@example.com"])
        time.sleep(2.2)
        answers, final = send(s.port, "alice@example.org", ["bob@example.com", "carol@example.com"])
        self.assertEqual(answers, {"bob@example.com": 250, "carol@example.com": 451})
        self.assertEqual(final, 250)
        s.stop()
        self.assertEqual(len(s.delivered()), 1)
        delivered_line = [l for l in s.lines if l.startswith("delivered ")]
        self.assertEqual(len(delivered_line), 1)
        self.assertIn("to=<bob@example.com>", delivered_line[0])
        self.assertNotIn("carol", delivered_line[0])

    def test_sqlite_state_survives_a_restart(self):
        s = self.server()
        send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual(s.stop(), 0)
        time.sleep(2.2)
        again = GreylistServer(BASE)
        shutil.rmtree(again.dir)
        again.dir, again.config = s.dir, s.config  # same directory: same greylist.db
        again.start()
        self.addCleanup(again.stop)
        answers, final = send(again.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual((answers["bob@example.com"], final), (250, 250))

    def test_a_client_with_enough_passed_deliveries_is_auto_whitelisted(self):
        s = self.server(BASE.replace("auto_whitelist_after = 0", "auto_whitelist_after = 2"))
        for rcpt in ["bob@example.com", "carol@example.com"]:
            send(s.port, "alice@example.org", [rcpt])
        time.sleep(2.2)
        for rcpt in ["bob@example.com", "carol@example.com"]:
            self.assertEqual(send(s.port, "alice@example.org", [rcpt])[0][rcpt], 250)
        # Two deliveries from this client's /24 passed: a triplet never seen passes at once.
        answers, final = send(s.port, "zoe@another.example", ["dave@example.com"])
        self.assertEqual((answers["dave@example.com"], final), (250, 250))

    def test_mail_held_back_gets_an_x_greylist_header_when_asked(self):
        s = self.server(BASE.replace("delay = 2", "delay = 2\n    add_header = true"))
        send(s.port, "alice@example.org", ["bob@example.com"])
        time.sleep(2.2)
        send(s.port, "alice@example.org", ["bob@example.com"], b"Subject: t\r\n\r\nbody\r\n")
        send(s.port, "alice@example.org", ["bob@example.com"], b"Subject: t\r\n\r\nknown\r\n")
        first, second = s.delivered()
        self.assertRegex(first, rb"^X-Greylist: delayed [23] seconds by Grey at localhost; .*\r\nSubject: t\r\n")
        self.assertTrue(second.startswith(b"Subject: t"), "a triplet that was not held back gets no header")

    def test_privacy_mode_stores_no_addresses(self):
        s = self.server(BASE.replace("delay = 2", "delay = 2\n    privacy = true"))
        send(s.port, "alice@example.org", ["bob@example.com"])
        time.sleep(2.2)
        answers, _ = send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual(answers["bob@example.com"], 250, "hashed triplets still match")
        s.stop()
        raw = b""
        for name in os.listdir(s.dir):
            if name.startswith("greylist.db"):
                with open(os.path.join(s.dir, name), "rb") as f:
                    raw += f.read()
        self.assertGreater(len(raw), 0)
        for secret in [b"alice", b"bob@example.com", b"127.0.0"]:
            self.assertNotIn(secret, raw)

    def test_sighup_reloads_the_whitelists(self):
        s = self.server()
        answers, _ = send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual(answers["bob@example.com"], 451)
        with open(s.config, "a") as f:
            f.write('\n[[whitelist]]\npeer = "127.0.0.1"\nsender = "alice@example.org"\nrecipient = "bob@example.com"\n')
        s.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline:
            line = s.proc.stdout.readline()
            s.lines.append(line)
            if "lists reloaded" in line:
                break
        answers, final = send(s.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual((answers["bob@example.com"], final), (250, 250))

    def test_one_log_line_per_session_in_the_seeds_shape(self):
        s = self.server()
        send(s.port, "alice@example.org", ["bob@example.com"])
        s.stop()
        lines = [l for l in s.lines if " | " in l]
        self.assertEqual(len(lines), 1, s.lines)
        fields = [f.strip() for f in lines[0].split("|")]
        self.assertRegex(fields[0], r"^\d{14}$")
        self.assertEqual(fields[1:], ["client.example", "127.0.0.1", "alice@example.org",
                                      "bob@example.com greylisted (first seen)", "no message"])


class Administration(unittest.TestCase):
    """greylist_admin working on the live server's SQLite store."""

    def admin(self, server, *args):
        return subprocess.run([ADMIN, "--config", server.config, "--store", "sqlite:" +
                               os.path.join(server.dir, "greylist.db"), *args],
                              capture_output=True, text=True, timeout=20)

    def test_list_whitelist_remove_and_purge(self):
        s = GreylistServer(BASE).start()
        self.addCleanup(s.cleanup)
        send(s.port, "alice@example.org", ["bob@example.com"])
        listed = self.admin(s, "list")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertRegex(listed.stdout, r"127\.0\.0\.0/24\s+<alice@example\.org>\s+bob@example\.com\s+waiting")
        self.assertIn("1 entry", listed.stdout)

        # A whitelisted triple passes at once, without waiting for the delay.
        done = self.admin(s, "whitelist", "127.0.0.1", "carol@example.org", "bob@example.com")
        self.assertEqual(done.returncode, 0, done.stderr)
        answers, final = send(s.port, "carol@example.org", ["bob@example.com"])
        self.assertEqual((answers["bob@example.com"], final), (250, 250))

        found = self.admin(s, "search", "carol")
        self.assertIn("carol@example.org", found.stdout)
        self.assertNotIn("alice@example.org", found.stdout)

        removed = self.admin(s, "remove", "127.0.0.1", "carol@example.org", "bob@example.com")
        self.assertEqual(removed.returncode, 0, removed.stderr)
        answers, _ = send(s.port, "carol@example.org", ["bob@example.com"])
        self.assertEqual(answers["bob@example.com"], 451, "a removed triple is greylisted again")
        self.assertEqual(self.admin(s, "remove", "192.0.2.1", "nobody@example.org", "x@example.com").returncode, 1)

        purged = self.admin(s, "purge")
        self.assertEqual(purged.returncode, 0, purged.stderr)
        self.assertIn("purged 0 expired records", purged.stdout)


def start_redis(test, port):
    """A redis-server on loopback `port`, stopped and removed when `test` ends."""
    data = tempfile.mkdtemp(prefix="grey-redis-")
    test.addCleanup(shutil.rmtree, data, True)
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", data],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        redis.terminate()
        redis.wait(timeout=10)

    test.addCleanup(stop)
    deadline = time.time() + 10
    while time.time() < deadline:
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                          text=True).stdout.strip() == "PONG":
            return redis
        time.sleep(0.05)
    test.fail("redis-server did not start")


class RedisShared(unittest.TestCase):
    """Two greylist servers (two MX hosts) sharing one redis-server started here."""

    def setUp(self):
        self.redis_port = free_port()
        start_redis(self, self.redis_port)

    def server(self):
        s = GreylistServer(BASE, ["--store", f"redis://127.0.0.1:{self.redis_port}"]).start()
        self.addCleanup(s.cleanup)
        return s

    def test_a_triplet_that_passed_on_one_server_passes_on_the_other(self):
        mx1, mx2 = self.server(), self.server()
        answers, _ = send(mx1.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual(answers["bob@example.com"], 451)
        answers, _ = send(mx2.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual(answers["bob@example.com"], 451, "the second server knows the first sighting: too soon")
        time.sleep(2.2)
        answers, final = send(mx2.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual((answers["bob@example.com"], final), (250, 250))
        answers, final = send(mx1.port, "alice@example.org", ["bob@example.com"])
        self.assertEqual((answers["bob@example.com"], final), (250, 250))
        self.assertEqual(len(mx1.delivered()) + len(mx2.delivered()), 2)

    def test_concurrent_first_sightings_on_two_servers_store_one_record(self):
        mx1, mx2 = self.server(), self.server()
        results = []

        def attempt(port):
            results.append(send(port, "racer@example.org", ["bob@example.com"])[0]["bob@example.com"])

        threads = [threading.Thread(target=attempt, args=(p,)) for p in [mx1.port, mx2.port] * 5]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
        self.assertEqual(results, [451] * 10)
        keys = subprocess.run(["redis-cli", "-p", str(self.redis_port), "--scan", "--pattern", "grey:t:*"],
                              capture_output=True, text=True).stdout.splitlines()
        self.assertEqual(len(keys), 1, keys)
        record = subprocess.run(["redis-cli", "-p", str(self.redis_port), "get", keys[0]],
                                capture_output=True).stdout[:-1]  # raw octets, less redis-cli's line end
        # 28 octets (redis_store.hpp): 1, three 6-octet times, attempts and passes (4 octets each), passed.
        self.assertEqual(len(record), 28, record)
        self.assertEqual(int.from_bytes(record[19:23], "big"), 10, "every attempt is counted on the one record")


class StoreUnavailable(unittest.TestCase):
    """The Redis store pointed at a closed loopback port: nothing listens there."""

    UNAVAILABLE = (451, b"4.3.0 Greylist temporarily unavailable, try again later")
    RECIPIENTS = ["bob@example.com", "carol@example.com", "dave@example.com"]

    def setUp(self):
        self.redis_port = free_port()  # bound and released: closed
        self.s = GreylistServer(BASE, ["--store", f"redis://127.0.0.1:{self.redis_port}"],
                                separate_stderr=True).start()
        self.addCleanup(self.s.cleanup)

    def rcpts(self, recipients):
        """One session: MAIL, then each RCPT; [(code, text)] of the RCPTs."""
        with smtplib.SMTP("127.0.0.1", self.s.port, local_hostname="client.example", timeout=10) as c:
            c.ehlo()
            self.assertEqual(c.mail("alice@example.org")[0], 250)
            return [c.rcpt(r) for r in recipients]

    def outage_sessions(self):
        """Several sessions of several recipients, some at once (on the server's threads)."""
        self.assertEqual(self.rcpts(self.RECIPIENTS), [self.UNAVAILABLE] * 3)
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.rcpts(self.RECIPIENTS)))
                   for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        self.assertEqual(results, [[self.UNAVAILABLE] * 3] * 6)

    def session_lines(self):
        return [l for l in self.s.lines if " | " in l]

    def test_recipients_get_451_4_3_0_logged_as_store_unavailable_and_reported_once(self):
        self.outage_sessions()
        self.s.stop()
        lines = self.session_lines()
        self.assertEqual(len(lines), 7, self.s.lines)
        for line in lines:
            self.assertNotIn("greylisted", line)
            self.assertEqual(line.split(" | ")[4],
                             ", ".join(f"{r} tempfail (store unavailable)" for r in self.RECIPIENTS))
        errors = self.s.errors()
        self.assertEqual(len(re.findall(r"(?m)^grey: error: greylist store unavailable: \S.*$", errors)), 1, errors)
        self.assertNotIn("available again", errors)

    def test_the_store_coming_back_is_reported_once_and_greylisting_resumes(self):
        self.outage_sessions()
        start_redis(self, self.redis_port)
        # The store tries Redis again once its reconnection backoff has passed (at most 5 s):
        # until then it still answers 4.3.0 at once.
        deadline = time.time() + 8
        answer = self.rcpts(["bob@example.com"])
        while answer == [self.UNAVAILABLE] and time.time() < deadline:
            time.sleep(0.1)
            answer = self.rcpts(["bob@example.com"])
        self.assertEqual(answer, [(451, b"4.7.1 Please try again later")])
        self.assertEqual(self.rcpts(["carol@example.com"]), [(451, b"4.7.1 Please try again later")])
        self.s.stop()
        # Sessions on different threads may write their lines in either order.
        self.assertTrue(any(l.rstrip().endswith("carol@example.com greylisted (first seen) | no message")
                            for l in self.session_lines()), self.session_lines())
        reported = [l for l in self.s.errors().splitlines() if l.startswith("grey: ")]
        self.assertEqual(len(reported), 2, reported)
        self.assertRegex(reported[0], r"^grey: error: greylist store unavailable: \S")
        self.assertEqual(reported[1], "grey: notice: greylist store available again")


class Stopping(unittest.TestCase):
    """SIGTERM is the proxy's alone: the embedded Maildir sink must not take it, or the proxy
    may never hear it (a signal that comes between the two starts) and would drain into a sink
    already gone."""

    def test_sigterm_at_any_moment_after_start_stops_the_server(self):
        s = GreylistServer(BASE)
        self.addCleanup(s.cleanup)
        for attempt in range(30):
            s.start()
            s.proc.terminate()
            try:
                code = s.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.fail(f"start {attempt + 1}: still running 5 s after SIGTERM")
            self.assertEqual(code, 0)
            s.stop()

    def test_a_message_in_progress_at_sigterm_reaches_the_embedded_maildir(self):
        s = GreylistServer(BASE + '    [relay]\n    allowed_sender_nets = ["127.0.0.0/8"]\n').start()
        self.addCleanup(s.cleanup)
        c = smtplib.SMTP("127.0.0.1", s.port, local_hostname="client.example", timeout=10)
        self.addCleanup(c.close)
        c.ehlo()
        self.assertEqual(c.mail("alice@example.org")[0], 250)
        self.assertEqual(c.rcpt("bob@elsewhere.example")[0], 250)
        self.assertEqual(c.docmd("DATA")[0], 354)
        c.send(b"Subject: during shutdown\r\n\r\nfirst half\r\n")
        s.proc.terminate()
        time.sleep(0.5)
        c.send(b"second half\r\n.\r\n")
        self.assertEqual(c.getreply()[0], 250)
        self.assertEqual(c.getreply()[0], 421, "no new transaction once the message is done")
        self.assertEqual(s.proc.wait(timeout=10), 0)
        self.assertEqual(len(s.delivered()), 1)
        self.assertIn(b"first half\r\nsecond half\r\n", s.delivered()[0])


class BadConfiguration(unittest.TestCase):
    def run_with(self, config, *args):
        d = tempfile.mkdtemp(prefix="grey-badconf-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "grey.toml")
        with open(path, "w") as f:
            f.write(textwrap.dedent(config))
        p = subprocess.run([SERVER, "--config", path, "--listen", "127.0.0.1:0", *args], cwd=d,
                           capture_output=True, text=True, timeout=10)
        return p.returncode, p.stderr

    def test_an_unknown_option_is_named_with_its_line(self):
        code, err = self.run_with("[greylist]\ndelay = 2\ndealy = 3\n")
        self.assertNotEqual(code, 0)
        self.assertRegex(err, r"grey\.toml:3: unknown option 'greylist\.dealy'")

    def test_a_bad_cidr_is_named_with_its_line(self):
        code, err = self.run_with('[relay]\nallowed_domains = ["example.com"]\nallowed_sender_nets = ["10.0.0.0/33"]\n')
        self.assertNotEqual(code, 0)
        self.assertRegex(err, r"grey\.toml:3: .*'10\.0\.0\.0/33' is not a network")

    def test_a_value_of_the_wrong_type_is_named_with_its_line(self):
        code, err = self.run_with('\n[server]\nthreads = "many"\n')
        self.assertNotEqual(code, 0)
        self.assertRegex(err, r"grey\.toml:3: 'server\.threads' must be a whole number")

    def test_improper_pipelining_is_refuse_or_allow(self):
        code, err = self.run_with('[server]\nimproper_pipelining = "sometimes"\n')
        self.assertNotEqual(code, 0)
        self.assertRegex(err, r"grey\.toml:2: 'server\.improper_pipelining' must be one of allow, refuse, not 'sometimes'")

    def test_the_upstream_tls_policy_is_one_of_four(self):
        code, err = self.run_with('[upstream_tls]\npolicy = "sometimes"\n')
        self.assertNotEqual(code, 0)
        self.assertRegex(err, r"grey\.toml:2: 'upstream_tls\.policy' must be one of encrypt, may, none, verify")

    def test_a_certificate_that_cannot_be_read_is_a_configuration_error_like_the_others(self):
        code, err = self.run_with('[tls]\ncertificate = "/nonexistent/cert.pem"\nkey = "/nonexistent/key.pem"\n')
        self.assertEqual(code, 1)
        self.assertRegex(err, r"^greylist_server: \S*grey\.toml:2: 'tls\.certificate': cannot read /nonexistent/cert\.pem: "
                              r"No such file or directory\n$")
        code, err = self.run_with("", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem")
        self.assertEqual(code, 1)
        self.assertRegex(err, r"^greylist_server: --tls-cert: File does not exist: /nonexistent/cert\.pem\n$")
        self.assertNotIn("--help", err)

    def test_reputation_settings_are_checked_with_their_lines(self):
        code, err = self.run_with('[reputation]\ndnsbl_sites = ["zen.example*x"]\n')
        self.assertEqual(code, 1)
        self.assertRegex(err, r"grey\.toml:2: 'reputation\.dnsbl_sites': 'zen\.example\*x' is not DOMAIN")
        code, err = self.run_with('[dns]\nresolvers = ["dns.example"]\n')
        self.assertEqual(code, 1)
        self.assertRegex(err, r"grey\.toml:2: 'dns\.resolvers': 'dns\.example' is not IP:PORT")
        code, err = self.run_with("", "--dnsbl", "bad site")
        self.assertEqual(code, 1)
        self.assertRegex(err, r"^greylist_server: --dnsbl: 'bad site' is not SITE")

    def test_the_shipped_grey_toml_is_accepted_as_it_is(self):
        shipped = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "greylist_server", "grey.toml")
        with open(shipped) as f:
            config = f.read()
        d = tempfile.mkdtemp(prefix="grey-shipped-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "grey.toml")
        with open(path, "w") as f:
            f.write(config.replace('"127.0.0.1:2525"', '"127.0.0.1:0"').replace('"127.0.0.1:2526"', '"127.0.0.1:0"'))
        p = subprocess.Popen([SERVER, "--config", path], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
        try:
            out = [p.stdout.readline() for _ in range(3)]
            self.assertRegex(out[0], r"^delivering to the embedded Maildir sink on 127\.0\.0\.1:\d+")
            self.assertRegex(out[1], r"^STARTTLS not offered: give a certificate")
            self.assertRegex(out[2], r"^listening on 127\.0\.0\.1:\d+")
        finally:
            end_process(p, 15)
            p.stdout.close()
        self.assertEqual(p.returncode, 0)

    def test_an_unreadable_file_is_refused(self):
        p = subprocess.run([SERVER, "--config", "/nonexistent/grey.toml"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/nonexistent/grey.toml", p.stderr)

    def test_a_non_loopback_listener_without_allowed_domains_refuses_to_start(self):
        d = tempfile.mkdtemp(prefix="grey-badconf-")
        self.addCleanup(shutil.rmtree, d, True)
        p = subprocess.run([SERVER, "--listen", "0.0.0.0:0"], cwd=d, capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("open relay", p.stderr)


if __name__ == "__main__":
    unittest.main()
