"""Metrics in Prometheus' text format (`--metrics HOST:PORT`, GET /metrics): what the server,
the sessions, the relay and greylisting counted, checked against what the test did, and the
whole exposition accepted by Prometheus' own `promtool check metrics`."""
import shutil
import socket
import subprocess
import time
import unittest
import urllib.error
import urllib.request

from harness import PROGRAMS, Client, MaildirSink, Program, free_port, metric_value, scrape, wait_for_port


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
        self.assertEqual(sessions_open_once_settled(port), 0)

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
