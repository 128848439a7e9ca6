"""Metrics in Prometheus' text format (`--metrics HOST:PORT`, GET /metrics): what the server,
the sessions, the relay, greylisting, the policy service and the DNS resolver counted, checked
against what the test did; the store's health through a Redis that stops and comes back; the
build; and the whole exposition accepted by Prometheus' own `promtool check metrics`."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import PROGRAMS, Client, MaildirSink, Program, end_process, free_port, metric_value, scrape, wait_for_port
from test_greylist import start_redis
from test_reputation import LISTS, SilentDns, policy_request, pool

DNS = os.environ.get("GREY_TEST_DNS", "")
VERSION_HPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "grey", "version.hpp")
UNAVAILABLE = "action=DEFER_IF_PERMIT 4.3.0 Greylist temporarily unavailable, try again later"


def sessions_open_once_settled(port, seconds=10):
    """grey_sessions_open once it reads 0, or after `seconds`: a session is counted closed when
    its coroutine has ended, a moment after the client has seen its last reply."""
    deadline = time.monotonic() + seconds
    while True:
        _, text = scrape(port)
        open_now = metric_value(text, "grey_sessions_open")
        if open_now == 0 or time.monotonic() >= deadline:
            return open_now
        time.sleep(0.05)


class Metrics(unittest.TestCase):
    def promtool(self, text):
        if not shutil.which("promtool"):
            self.skipTest("promtool is not installed (apt-get install prometheus)")
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True,
                                 timeout=30)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)

    def test_the_proxy_counts_what_its_sessions_did(self):
        started = time.monotonic()
        sink = MaildirSink()
        self.addCleanup(sink.cleanup)
        port = free_port()
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}", "--metrics", f"127.0.0.1:{port}")
        self.addCleanup(proxy.cleanup)
        c = Client(proxy.port)
        c.open_data()
        body = b"Subject: counted\r\n\r\nhello\r\n"
        self.assertEqual(c.command(body + b".\r\n")[0], 250)
        self.assertEqual(c.command("FOO")[0], 500)
        self.assertEqual(c.command("RCPT TO:<x@example.com>")[0], 503)
        c.command("QUIT")
        c.close()
        kind, text = scrape(port)
        self.assertTrue(kind.startswith("text/plain; version=0.0.4"), kind)
        self.promtool(text)
        self.assertEqual(metric_value(text, "grey_connections_accepted_total"), 1)
        self.assertEqual(metric_value(text, "grey_messages_relayed_total"), 1)
        self.assertEqual(metric_value(text, "grey_messages_failed_total"), 0)
        self.assertEqual(metric_value(text, "grey_relayed_bytes_total"), len(body))
        self.assertEqual(metric_value(text, "grey_commands_refused_total", '{code="500"}'), 1)
        self.assertEqual(metric_value(text, "grey_commands_refused_total", '{code="503"}'), 1)
        self.assertEqual(metric_value(text, "grey_upstream_pool_misses_total"), 1)
        self.assertGreaterEqual(metric_value(text, "grey_upstream_connects_total"), 1)
        self.assertGreaterEqual(metric_value(text, "grey_upstream_reply_seconds_count"), 4, "MAIL, RCPT, DATA, the dot")
        # Every reply, the greeting of each upstream connection included, was timed within this
        # test: no sample is longer than the test itself.
        wall = time.monotonic() - started
        count = metric_value(text, "grey_upstream_reply_seconds_count")
        self.assertLessEqual(metric_value(text, "grey_upstream_reply_seconds_sum"), wall * count)
        self.assertEqual(metric_value(text, "grey_upstream_reply_seconds_bucket", '{le="10"}'), count,
                         "no sample over 10 s in a test that took " + f"{wall:.1f} s")
        self.assertEqual(sessions_open_once_settled(port), 0)

    def test_a_recipient_grey_accepted_but_the_upstream_could_not_take_is_not_counted_accepted(self):
        closed = free_port()  # nothing listens there: the upstream is down
        port = free_port()
        d = tempfile.mkdtemp(prefix="grey-metrics-")
        self.addCleanup(shutil.rmtree, d, True)
        config, log = os.path.join(d, "grey.toml"), os.path.join(d, "grey.log")
        with open(config, "w") as f:
            f.write('[relay]\nallowed_senders = ["127.0.0.1"]\n')  # not greylisted: straight to the upstream
        proxy = Program("greylist_server", "--config", config, "--upstream", f"127.0.0.1:{closed}", "--store", "memory",
                        "--metrics", f"127.0.0.1:{port}", "--log", log)
        self.addCleanup(proxy.cleanup)
        c = Client(proxy.port)
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        code, enhanced, _ = c.command("RCPT TO:<bob@example.com>")
        self.assertEqual((code, enhanced), (451, "4.4.1"))
        c.command("QUIT")
        c.close()
        _, scraped = scrape(port)
        self.promtool(scraped)
        self.assertEqual(metric_value(scraped, "grey_recipients_total", '{verdict="upstream_unavailable"}'), 1)
        self.assertEqual(metric_value(scraped, "grey_recipients_total", '{verdict="accepted"}'), 0)
        self.assertEqual(metric_value(scraped, "grey_decisions_total", '{reason="relays_anywhere"}'), 1)
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline and "bob@example.com" not in line:
            time.sleep(0.1)
            with open(log) as f:
                line = f.read()
        self.assertRegex(line, r"\| bob@example\.com tempfail \(upstream unavailable: 451 4\.4\.1; allowed sender\) \| no message")

    def test_greylisting_verdicts_and_store_latency(self):
        sink = MaildirSink()
        self.addCleanup(sink.cleanup)
        port = free_port()
        proxy = Program("greylist_server", "--upstream", f"127.0.0.1:{sink.port}", "--store", "memory",
                        "--metrics", f"127.0.0.1:{port}", "--log", "/dev/null")
        self.addCleanup(proxy.cleanup)
        c = Client(proxy.port)
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 451)
        c.close()
        _, text = scrape(port)
        self.promtool(text)
        self.assertEqual(metric_value(text, "grey_recipients_total", '{verdict="greylisted"}'), 1)
        self.assertEqual(metric_value(text, "grey_greylist_first_seen_total"), 1)
        self.assertGreaterEqual(metric_value(text, "grey_store_seconds_count"), 1)

    def test_the_policy_server_counts_its_verdicts_too(self):
        policy_port, port = free_port(), free_port()
        server = subprocess.Popen([PROGRAMS["greylist_server"], "--policy", f"inet:127.0.0.1:{policy_port}",
                                   "--store", "memory", "--metrics", f"127.0.0.1:{port}", "--log", "/dev/null",
                                   "--reputation", "off"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(server.wait, 10)
        self.addCleanup(server.terminate)
        wait_for_port(policy_port, 10)
        with socket.create_connection(("127.0.0.1", policy_port), timeout=10) as s:
            s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
                      b"sender=alice@example.org\nrecipient=bob@example.com\n\n")
            self.assertTrue(s.recv(1000).startswith(b"action=DEFER_IF_PERMIT"))
        _, text = scrape(port)
        self.promtool(text)
        self.assertEqual(metric_value(text, "grey_recipients_total", '{verdict="greylisted"}'), 1)
        self.assertGreaterEqual(metric_value(text, "grey_store_seconds_count"), 1)
        self.assertEqual(metric_value(text, "grey_connections_accepted_total"), 2, "wait_for_port's, then the request's")
        self.assertEqual(sessions_open_once_settled(port), 0)

    def policy_service(self, *args):
        """greylist_server as a policy service with its metrics on; (policy port, metrics port)."""
        policy_port, port = free_port(), free_port()
        server = subprocess.Popen([PROGRAMS["greylist_server"], "--policy", f"inet:127.0.0.1:{policy_port}",
                                   "--metrics", f"127.0.0.1:{port}", "--log", "/dev/null", *args],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(end_process, server, 10)
        wait_for_port(policy_port, 10)
        wait_for_port(port, 10)
        return policy_port, port

    def test_policy_requests_are_counted_by_action_and_timed(self):
        policy_port, port = self.policy_service("--store", "memory", "--reputation", "off")
        rcpt = "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\nsender=alice@example.org\n"
        pipelined = "".join(f"{rcpt}recipient={r}@example.com\n\n" for r in ("bob", "carol", "dave"))
        pipelined += "request=smtpd_access_policy\nprotocol_state=DATA\n\n"
        with socket.create_connection(("127.0.0.1", policy_port), timeout=10) as s:
            s.sendall(pipelined.encode())
            answers = b""
            while answers.count(b"\n\n") < 4:
                chunk = s.recv(4096)
                self.assertTrue(chunk, answers)
                answers += chunk
        self.assertEqual([a.split(b" ")[0] for a in answers.split(b"\n\n")[:4]],
                         [b"action=DEFER_IF_PERMIT"] * 3 + [b"action=DUNNO"])
        self.assertTrue(policy_request(policy_port, client_address="192.0.2.1",
                                       sender="alice@example.org").startswith("action=DEFER_IF_PERMIT"))
        # An answer is counted once its write has completed on the server's thread, which a
        # loaded machine may run a moment after the client has read the answer.
        deadline = time.monotonic() + 10
        _, text = scrape(port)
        while metric_value(text, "grey_policy_request_seconds_count") < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
            _, text = scrape(port)
        self.promtool(text)
        self.assertEqual(metric_value(text, "grey_policy_requests_total", '{action="DEFER_IF_PERMIT"}'), 4)
        self.assertEqual(metric_value(text, "grey_policy_requests_total", '{action="DUNNO"}'), 1)
        for action in ("PREPEND", "550", "other"):
            self.assertEqual(metric_value(text, "grey_policy_requests_total", f'{{action="{action}"}}'), 0)
        self.assertEqual(metric_value(text, "grey_policy_request_seconds_count"), 5)
        self.assertEqual(metric_value(text, "grey_policy_request_seconds_bucket", '{le="10"}'), 5)
        self.assertEqual(metric_value(text, "grey_store_up", '{store="memory"}'), 1)
        self.assertEqual(metric_value(text, "grey_dns_timeouts_total"), 0, "judging first is off: no DNS")

    def test_store_up_follows_a_redis_store_that_stops_and_comes_back(self):
        redis_port = free_port()
        redis = start_redis(self, redis_port)
        policy_port, port = self.policy_service("--store", f"redis://127.0.0.1:{redis_port}", "--reputation", "off")

        def ask(recipient):
            return policy_request(policy_port, client_address="192.0.2.1", sender="alice@example.org",
                                  recipient=recipient)

        def store_up():
            _, text = scrape(port)
            return metric_value(text, "grey_store_up", '{store="redis"}')

        self.assertEqual(store_up(), 1, "no call yet: nothing has failed")
        self.assertEqual(ask("bob@example.com"), "action=DEFER_IF_PERMIT Greylisted, please try again later")
        self.assertEqual(store_up(), 1)
        end_process(redis, 10)
        self.assertEqual(ask("carol@example.com"), UNAVAILABLE)
        self.assertEqual(store_up(), 0)
        self.assertEqual(store_up(), 0, "a scrape does not call the store: it stays down until a call answers")
        start_redis(self, redis_port)
        # The store tries Redis again once its reconnection backoff has passed (at most 5 s).
        deadline = time.monotonic() + 10
        answer = ask("dave@example.com")
        while answer == UNAVAILABLE and time.monotonic() < deadline:
            time.sleep(0.1)
            answer = ask("dave@example.com")
        self.assertEqual(answer, "action=DEFER_IF_PERMIT Greylisted, please try again later")
        _, text = scrape(port)
        self.promtool(text)
        self.assertEqual(metric_value(text, "grey_store_up", '{store="redis"}'), 1)
        self.assertGreaterEqual(metric_value(text, "grey_recipients_total", '{verdict="store_unavailable"}'), 1)

    def test_dns_timeouts_rise_against_a_dns_server_that_never_answers(self):
        silent = SilentDns()
        self.addCleanup(silent.close)
        policy_port, port = self.policy_service("--store", "memory", "--resolver", silent.where, *LISTS,
                                                "--dns-budget", "500")
        _, before = scrape(port)
        self.assertEqual(metric_value(before, "grey_dns_timeouts_total"), 0)
        answer = policy_request(policy_port, **pool("198.18.5.200", "bot.pool-test", sender="spam@forged.pool-test"))
        self.assertTrue(answer.startswith("action=DEFER_IF_PERMIT"), answer)
        _, text = scrape(port)
        self.promtool(text)
        timeouts = metric_value(text, "grey_dns_timeouts_total")
        self.assertGreaterEqual(timeouts, 1)
        self.assertLessEqual(timeouts, metric_value(text, "grey_dns_cache_misses_total"), "each was a question asked")
        self.assertEqual(metric_value(text, "grey_dns_cache_hits_total"), 0)

    @unittest.skipUnless(DNS, "GREY_TEST_DNS must name the test unbound (ctest sets it)")
    def test_dns_questions_asked_again_are_cache_hits(self):
        # One worker, so one resolver and one cache: each worker keeps its own.
        d = tempfile.mkdtemp(prefix="grey-metrics-")
        self.addCleanup(shutil.rmtree, d, True)
        config = os.path.join(d, "grey.toml")
        with open(config, "w") as f:
            f.write("[server]\nthreads = 1\n")
        policy_port, port = self.policy_service("--config", config, "--store", "memory", "--resolver", DNS, *LISTS)
        self.assertEqual(policy_request(policy_port, **pool("198.18.5.1", "mail-1.out.big.pool-test")), "action=DUNNO")
        _, first = scrape(port)
        self.assertGreaterEqual(metric_value(first, "grey_dns_cache_misses_total"), 1)
        hits = metric_value(first, "grey_dns_cache_hits_total")  # a decision may ask a name twice itself
        # Another host of the same sender: its SPF record, at least, is asked again.
        self.assertEqual(policy_request(policy_port, **pool("198.18.5.2", "mail-2.out.big.pool-test")), "action=DUNNO")
        _, text = scrape(port)
        self.promtool(text)
        self.assertGreater(metric_value(text, "grey_dns_cache_hits_total"), hits)
        self.assertEqual(metric_value(text, "grey_dns_timeouts_total"), 0)
        sent = sum(metric_value(text, "grey_dns_query_seconds_count", f'{{type="{t}"}}')
                   for t in ("A", "AAAA", "PTR", "TXT", "MX"))
        self.assertLessEqual(sent, metric_value(text, "grey_dns_cache_misses_total"),
                             "a query is sent only for a question the cache did not answer")

    def test_build_info_names_the_version(self):
        with open(VERSION_HPP) as f:
            version = re.search(r'version = "([0-9.]+)";', f.read()).group(1)
        for program in ("greylist_server", "spam_me"):
            with self.subTest(program=program):
                port = free_port()
                args = ["--store", "memory", "--log", "/dev/null", "--upstream", f"127.0.0.1:{free_port()}"] \
                    if program == "greylist_server" else []
                proxy = Program(program, *args, "--metrics", f"127.0.0.1:{port}")
                self.addCleanup(proxy.cleanup)
                _, text = scrape(port)
                self.promtool(text)
                self.assertEqual(re.findall(r"^grey_build_info\{(.*)\} (\S+)$", text, re.M),
                                 [(f'version="{version}"', "1")])
                if program == "spam_me":
                    self.assertNotIn("grey_store_up", text, "spam_me has no greylist store")

    def test_other_paths_and_methods_are_refused(self):
        port = free_port()
        proxy = Program("spam_me", "--metrics", f"127.0.0.1:{port}")
        self.addCleanup(proxy.cleanup)
        with self.assertRaises(urllib.error.HTTPError) as e:
            scrape(port, "/other")
        self.assertEqual(e.exception.code, 404)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(request, timeout=10)
        self.assertEqual(e.exception.code, 405)


if __name__ == "__main__":
    unittest.main()
