"""Judging first, tried as an administrator would: greylist_server as a Postfix policy service and
as the SMTP proxy (behind a PROXY-protocol listener, so that loopback can speak for other
addresses), asking the loopback unbound that serves tests/dns-zones/identity.conf (ctest starts it
and names it in GREY_TEST_DNS). A pool's retry from another /24 passes as the same sender; an
allowlisted client is not greylisted; a listed pool host waits the suspicious delay or, over a
refuse threshold, is refused; the log says why; a DNS server that never answers costs a decision
its budget and falls back to plain greylisting. Loopback only; every loop is bounded."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import PROGRAMS, Program, SmtpSink, end_process, free_port, wait_for_port

DNS = os.environ.get("GREY_TEST_DNS", "")
LISTS = ["--dnsbl", "bl.pool-test*2", "--dnsbl", "wl.pool-test=127.0.[0..255].[1..3]*-5"]


def policy_request(port, **attributes):
    """One smtpd_access_policy request at RCPT; the action line of the answer."""
    fields = dict(request="smtpd_access_policy", protocol_state="RCPT", protocol_name="ESMTP",
                  recipient="bob@example.com", instance="1")
    fields.update(attributes)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(("".join(f"{k}={v}\n" for k, v in fields.items()) + "\n").encode())
        answer = b""
        while not answer.endswith(b"\n\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode().strip()


def pool(address, name, sender="alice@big.pool-test"):
    return dict(client_address=address, helo_name=name, sender=sender)


class SilentDns:
    """A UDP socket on loopback that reads queries and never answers."""

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.where = f"127.0.0.1:{self.socket.getsockname()[1]}"

    def close(self):
        self.socket.close()


class LossyDns(threading.Thread):
    """A UDP DNS proxy on loopback in front of the tests' unbound: each query is forwarded after
    `delay` seconds, except every `drop`-th, which is dropped (0: none)."""

    def __init__(self, delay=0.0, drop=0):
        super().__init__(daemon=True)
        self.delay, self.drop = delay, drop
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.where = f"127.0.0.1:{self.socket.getsockname()[1]}"
        host, port = DNS.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.running = True
        self.seen = 0
        self.start()

    def run(self):
        while self.running:
            try:
                query, client = self.socket.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            self.seen += 1
            if self.drop and self.seen % self.drop == 0:
                continue
            threading.Timer(self.delay, self.forward, (query, client)).start()

    def forward(self, query, client):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(2)
            try:
                up.sendto(query, self.upstream)
                answer = up.recv(4096)
                if self.running:
                    self.socket.sendto(answer, client)
            except OSError:
                pass

    def close(self):
        self.running = False
        self.join(5)
        self.socket.close()


@unittest.skipUnless(DNS, "GREY_TEST_DNS must name the test unbound (ctest sets it)")
class PolicyServiceJudgesFirst(unittest.TestCase):
    def start(self, *args):
        self.dir = tempfile.mkdtemp(prefix="grey-reputation-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.log = os.path.join(self.dir, "grey.log")
        self.port = free_port()
        server = subprocess.Popen([PROGRAMS["greylist_server"], "--policy", f"inet:127.0.0.1:{self.port}", "--store",
                                   "memory", "--log", self.log, "--delay", "2", *args], cwd=self.dir,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(end_process, server, 10)
        wait_for_port(self.port)

    def log_lines(self):
        with open(self.log) as f:
            return f.read().splitlines()

    def test_a_mail_servers_first_message_is_not_greylisted(self):
        self.start("--resolver", DNS, *LISTS)
        answer = policy_request(self.port, **pool("198.18.5.1", "mail-1.out.big.pool-test"))
        self.assertEqual(answer, "action=DUNNO")
        self.assertIn("accepted (tier=trusted score=-1 fcrdns=ok:mail-1.out.big.pool-test spf=pass:big.pool-test)",
                      self.log_lines()[0])

    def test_a_pools_retry_from_another_24_passes_as_the_same_sender(self):
        # Greylisting mail servers too (a confirmed name and SPF pass score -1): the pool waits once.
        self.start("--resolver", DNS, *LISTS, "--allow-threshold", "-2")
        first = policy_request(self.port, **pool("198.18.5.1", "mail-1.out.big.pool-test"))
        self.assertTrue(first.startswith("action=DEFER_IF_PERMIT"), first)
        time.sleep(2.5)
        retry = policy_request(self.port, **pool("198.18.6.1", "mail-3.out.big.pool-test"))
        self.assertEqual(retry, "action=DUNNO")
        lines = self.log_lines()
        self.assertIn("spf=pass:big.pool-test", lines[0])
        self.assertIn("tier=normal", lines[0])
        self.assertRegex(lines[1], r"bob@example\.com accepted \(passed")

    def test_an_allowlisted_client_is_not_greylisted(self):
        self.start("--resolver", DNS, *LISTS)
        answer = policy_request(self.port, client_name="mail-2.out.big.pool-test",
                                reverse_client_name="mail-2.out.big.pool-test",
                                **pool("198.18.5.2", "mail-2.out.big.pool-test"))
        self.assertEqual(answer, "action=DUNNO")
        self.assertRegex(self.log_lines()[0], r"accepted \(tier=trusted score=-6 dnsbl-score=-5 dnswl=wl\.pool-test:127\.0\.5\.1")

    def test_a_listed_pool_host_waits_the_suspicious_delay(self):
        self.start("--resolver", DNS, *LISTS, "--suspicious-delay", "5")
        spam = pool("198.18.5.200", "bot.pool-test", sender="spam@forged.pool-test")
        first = policy_request(self.port, **spam)
        self.assertTrue(first.startswith("action=DEFER_IF_PERMIT"), first)
        time.sleep(2.5)  # past --delay, within --suspicious-delay
        self.assertTrue(policy_request(self.port, **spam).startswith("action=DEFER_IF_PERMIT"))
        time.sleep(3)
        self.assertEqual(policy_request(self.port, **spam), "action=DUNNO")
        line = self.log_lines()[0]
        for reason in ("tier=suspicious", "dnsbl=bl.pool-test:127.0.0.2", "generic=", "spf=fail"):
            self.assertIn(reason, line)

    def test_over_the_refuse_threshold_the_client_is_refused(self):
        self.start("--resolver", DNS, *LISTS, "--refuse-threshold", "2")
        answer = policy_request(self.port, **pool("198.18.5.200", "bot.pool-test", sender="spam@forged.pool-test"))
        self.assertRegex(answer, r"^action=550 5\.7\.1 ")
        self.assertIn("refused (tier=refused", self.log_lines()[0])

    def test_local_networks_and_reputation_off_are_greylisted_without_dns(self):
        self.start("--resolver", DNS, *LISTS, "--local-network", "198.18.5.0/24")
        answer = policy_request(self.port, **pool("198.18.5.2", "mail-2.out.big.pool-test"))
        self.assertTrue(answer.startswith("action=DEFER_IF_PERMIT"), answer)
        self.assertTrue(self.log_lines()[0].endswith("| bob@example.com greylisted (first seen) | policy"), self.log_lines()[0])

    def test_a_dns_server_that_never_answers_costs_the_budget_and_falls_back_to_plain_greylisting(self):
        silent = SilentDns()
        self.addCleanup(silent.close)
        self.start("--resolver", silent.where, *LISTS, "--dns-budget", "500")
        started = time.monotonic()
        first = policy_request(self.port, **pool("198.18.5.200", "bot.pool-test", sender="spam@forged.pool-test"))
        took = time.monotonic() - started
        self.assertTrue(first.startswith("action=DEFER_IF_PERMIT"), first)
        self.assertLess(took, 2.5, "the 500 ms budget, with a margin for a loaded machine")
        self.assertIn("tier=normal", self.log_lines()[0])
        self.assertIn("dns=incomplete", self.log_lines()[0])
        time.sleep(2.5)  # the plain delay, not the suspicious one
        self.assertEqual(policy_request(self.port, **pool("198.18.5.200", "bot.pool-test", sender="spam@forged.pool-test")),
                         "action=DUNNO")

    def test_a_slow_dns_still_gives_its_evidence_within_the_budget(self):
        slow = LossyDns(delay=0.05)
        self.addCleanup(slow.close)
        self.start("--resolver", slow.where, *LISTS, "--dns-budget", "2000")
        answer = policy_request(self.port, client_name="mail-2.out.big.pool-test",
                                reverse_client_name="mail-2.out.big.pool-test",
                                **pool("198.18.5.2", "mail-2.out.big.pool-test"))
        self.assertEqual(answer, "action=DUNNO", "50 ms per query: the allowlist's answer is in")

    def test_a_dns_that_answers_too_late_or_drops_falls_back_to_plain_greylisting_within_the_budget(self):
        for delay, drop in ((1.5, 0), (0.0, 2)):
            with self.subTest(delay=delay, drop=drop):
                lossy = LossyDns(delay=delay, drop=drop)
                self.addCleanup(lossy.close)
                self.start("--resolver", lossy.where, *LISTS, "--dns-budget", "700")
                started = time.monotonic()
                answer = policy_request(self.port, **pool("198.18.5.200", "bot.pool-test", sender="spam@forged.pool-test"))
                took = time.monotonic() - started
                self.assertTrue(answer.startswith("action=DEFER_IF_PERMIT"), answer)
                self.assertLess(took, 3, "the 700 ms budget, with a margin for a loaded machine")
                line = self.log_lines()[0]
                if "dns=incomplete" in line:
                    # What answered counts only if it is a list's: never trusted, at most the lists' tier.
                    self.assertNotIn("tier=trusted", line)
                    self.assertNotIn("tier=refused", line)


@unittest.skipUnless(DNS, "GREY_TEST_DNS must name the test unbound (ctest sets it)")
class ProxyJudgesFirst(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-reputation-proxy-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sink = SmtpSink()
        self.addCleanup(self.sink.cleanup)
        self.log = os.path.join(self.dir, "grey.log")
        self.port = free_port()
        server = Program("greylist_server", "--proxy-listen", f"127.0.0.1:{self.port}", "--proxy-from", "127.0.0.1",
                         "--upstream", f"127.0.0.1:{self.sink.port}", "--store", "memory", "--log", self.log,
                         "--delay", "2", "--resolver", DNS, *LISTS, "--allow-threshold", "-2", cwd=self.dir)
        self.addCleanup(server.cleanup)
        wait_for_port(self.port)

    def session(self, address, helo, sender, recipient="bob@example.com"):
        """A session claiming `address` in a PROXY header; the RCPT reply's code and text."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
            f = s.makefile("rwb")
            f.write(f"PROXY TCP4 {address} 127.0.0.1 40000 25\r\n".encode())
            f.flush()

            def reply():
                lines = []
                while True:
                    line = f.readline().decode()
                    lines.append(line)
                    if len(line) < 4 or line[3] != "-":
                        return int(line[:3]), "".join(lines)

            def command(text):
                f.write((text + "\r\n").encode())
                f.flush()
                return reply()

            self.assertEqual(reply()[0], 220)
            self.assertEqual(command(f"EHLO {helo}")[0], 250)
            self.assertEqual(command(f"MAIL FROM:<{sender}>")[0], 250)
            answer = command(f"RCPT TO:<{recipient}>")
            command("QUIT")
            return answer

    def test_an_allowlisted_client_goes_straight_through(self):
        code, _ = self.session("198.18.5.2", "mail-2.out.big.pool-test", "alice@big.pool-test")
        self.assertEqual(code, 250)

    def test_a_suspicious_client_is_told_when_to_retry_and_the_log_says_why(self):
        code, text = self.session("198.18.5.200", "bot.pool-test", "spam@forged.pool-test")
        self.assertEqual(code, 451)
        self.assertRegex(text, r"retry in 1200 s")
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline and "tier=" not in line:
            time.sleep(0.1)
            with open(self.log) as f:
                line = f.read()
        self.assertRegex(line, r"198\.18\.5\.200 \| spam@forged\.pool-test \| bob@example\.com greylisted \(first seen; "
                               r"tier=suspicious score=\d+ ")

    def test_a_pools_retry_from_another_address_passes(self):
        self.assertEqual(self.session("198.18.5.1", "mail-1.out.big.pool-test", "alice@big.pool-test")[0], 451)
        time.sleep(2.5)
        self.assertEqual(self.session("198.18.6.1", "mail-3.out.big.pool-test", "alice@big.pool-test")[0], 250)


@unittest.skipUnless(DNS, "GREY_TEST_DNS must name the test unbound (ctest sets it)")
class ExplainCommand(unittest.TestCase):
    """greylist_admin explain: the evidence and the decision, the configuration's lists applied,
    the store read and never written."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-explain-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.config = os.path.join(self.dir, "grey.toml")
        with open(self.config, "w") as f:
            f.write('[greylist]\nstore = "sqlite:%s/greylist.db"\ndelay = 60\n'
                    '[reputation]\ndnsbl_sites = ["bl.pool-test*2", "wl.pool-test=127.0.[0..255].[1..3]*-5"]\n'
                    'refuse_threshold = 2\n'
                    '[dns]\nresolvers = ["%s"]\n' % (self.dir, DNS))

    def explain(self, *args):
        return subprocess.run([PROGRAMS["greylist_admin"], "--config", self.config, "explain", *args],
                              capture_output=True, text=True, timeout=30)

    def test_a_pool_sender_is_explained_with_its_identity_and_its_tier(self):
        r = self.explain("198.18.5.1", "alice@big.pool-test", "bob@example.com", "mail-1.out.big.pool-test")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fcrdns=ok:mail-1.out.big.pool-test", r.stdout)
        self.assertIn("spf=pass (ip4:198.18.5.0/25 matched in big.pool-test)", r.stdout)
        self.assertIn("identity: spf:big.pool-test", r.stdout)
        self.assertIn("decision: accepted (tier=trusted score=-1", r.stdout)
        self.assertIn("reply: relayed to the upstream", r.stdout)
        nameless = self.explain("198.18.5.99", "alice@big.pool-test", "bob@example.com", "mail-1.out.big.pool-test")
        self.assertIn("decision: greylisted (first seen; tier=normal score=0 fcrdns=fail:no-ptr", nameless.stdout)
        self.assertIn("reply: 451 4.7.1 Please try again later (greylisted: retry in 60 s)", nameless.stdout)
        # Explaining is not seeing: the store was never made.
        self.assertFalse(os.path.exists(os.path.join(self.dir, "greylist.db")))

    def test_the_configurations_lists_and_thresholds_apply(self):
        listed = self.explain("198.18.5.200", "spam@forged.pool-test", "bob@example.com", "bot.pool-test")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("dnsbl=bl.pool-test:127.0.0.2", listed.stdout)
        self.assertIn("decision: refused (tier=refused", listed.stdout)
        self.assertIn("reply: 550 5.7.1", listed.stdout)
        trusted = self.explain("198.18.5.2", "alice@big.pool-test", "bob@example.com", "mail-2.out.big.pool-test")
        self.assertIn("decision: accepted (tier=trusted", trusted.stdout)

    def test_bad_arguments_exit_2(self):
        self.assertEqual(self.explain("not-an-address", "a@b.example", "c@d.example").returncode, 2)
        self.assertEqual(self.explain("192.0.2.1", "a@b.example").returncode, 2)
        self.assertEqual(self.explain("192.0.2.1", "a@b.example", "c@d.example", "--resolver", "dns.example").returncode, 2)


if __name__ == "__main__":
    unittest.main()
