"""Failover between upstreams (`--upstream` repeated): one upstream stopped under load loses and
duplicates nothing, as long as the client retries a 4xx as an MTA does; an upstream that greets
with 421, or not at all, is skipped for the next; when every upstream is marked down all are
tried anyway; greylist_server takes the list from grey.toml. Loopback only, bounded loops."""
import collections
import re
import smtplib
import threading
import time
import unittest

from harness import MaildirSink, Program, ScriptedUpstream, free_port, metric_value, scrape
from test_greylist import GreylistServer

MESSAGE_ID = re.compile(rb"^Message-ID: <([^>]+)>", re.M | re.I)


def message(i, padding=0):
    return (f"Message-ID: <failover-{i}@test.example>\r\nSubject: message {i}\r\n\r\n"
            f"Body of message {i}.\r\n" + ("x" * 76 + "\r\n") * padding).encode()


def send_until_accepted(port, i, attempts=40, padding=0):
    """Sends message i as an MTA would: a 4xx (or a lost connection) means try again a little
    later; a 5xx is a failure. Returns the number of attempts it took."""
    for attempt in range(1, attempts + 1):
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30) as s:
                s.sendmail("alice@example.org", ["bob@example.com"], message(i, padding))
            return attempt
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            if not all(400 <= c < 500 for c in codes):
                raise
        except smtplib.SMTPResponseException as e:
            if not 400 <= e.smtp_code < 500:
                raise
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"message {i} not accepted after {attempts} attempts")


def ids(messages):
    found = []
    for m in messages:
        found += [g.decode() for g in MESSAGE_ID.findall(m)]
    return found


class StoppedUnderLoad(unittest.TestCase):
    def test_every_message_lands_in_exactly_one_sink_exactly_once(self):
        # The first stops with no time to drain: transactions open on it end with 421 (or a
        # closed connection) before their final dot is answered, so their clients get 451 from
        # Grey and send again; what it answered 250 is stored (fsync, rename) before the 250.
        first, second = MaildirSink("--drain-seconds", "0"), MaildirSink()
        self.addCleanup(first.cleanup)
        self.addCleanup(second.cleanup)
        metrics_port = free_port()
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{first.port}", "--upstream", f"127.0.0.1:{second.port}",
                        "--upstream-timeout", "10", "--threads", "2", "--metrics", f"127.0.0.1:{metrics_port}")
        self.addCleanup(proxy.cleanup)

        total, senders, stop_after = 200, 4, 60
        pending = collections.deque(range(total))
        lock = threading.Lock()
        accepted, retried, errors = [], [], []
        enough = threading.Event()

        def sender():
            while True:
                with lock:
                    if not pending:
                        return
                    i = pending.popleft()
                try:
                    attempts = send_until_accepted(proxy.port, i, padding=400)  # ~31 KiB: often in DATA
                except Exception as e:  # noqa: BLE001 - reported by the main thread
                    errors.append(f"message {i}: {e!r}")
                    return
                with lock:
                    accepted.append(i)
                    if attempts > 1:
                        retried.append(i)
                    if len(accepted) >= stop_after:
                        enough.set()

        threads = [threading.Thread(target=sender) for _ in range(senders)]
        for t in threads:
            t.start()
        self.assertTrue(enough.wait(120), "the first messages did not go through")
        first.stop()  # mid-run: SIGTERM, open transactions finish, the rest get 421
        for t in threads:
            t.join(240)
        self.assertFalse(any(t.is_alive() for t in threads), "senders still running")
        self.assertEqual(errors, [])
        self.assertEqual(sorted(accepted), list(range(total)))

        in_first, in_second = ids(first.messages()), ids(second.messages())
        counts = collections.Counter(in_first + in_second)
        expected = {f"failover-{i}@test.example" for i in range(total)}
        self.assertEqual(set(counts), expected, "lost or unknown messages")
        self.assertEqual([m for m, n in counts.items() if n != 1], [], f"duplicated messages (retried: {retried})")
        self.assertGreater(len(in_first), 0)
        self.assertGreater(len(in_second), 0, "nothing failed over")

        _, text = scrape(metrics_port)
        self.assertEqual(metric_value(text, "grey_upstream_marked_down_total", f'{{upstream="127.0.0.1:{first.port}"}}'), 1)
        self.assertEqual(metric_value(text, "grey_upstream_marked_down_total", f'{{upstream="127.0.0.1:{second.port}"}}'), 0)
        self.assertEqual(metric_value(text, "grey_upstreams_down"), 1)
        self.assertEqual(metric_value(text, "grey_messages_relayed_total"), total)
        proxy.stop()
        output = "".join(proxy.output)
        self.assertRegex(output, rf"grey: warning: upstream 127\.0\.0\.1:{first.port} marked down for 30s: ")
        self.assertNotIn(f"upstream 127.0.0.1:{second.port} marked down", output)


class Skipped(unittest.TestCase):
    def relay_through(self, upstreams, *options):
        proxy = Program("spam_me", *[a for u in upstreams for a in ("--upstream", f"127.0.0.1:{u}")], *options)
        self.addCleanup(proxy.cleanup)
        return proxy

    def test_an_upstream_that_greets_with_421_is_skipped_for_the_next(self):
        busy = ScriptedUpstream(greeting=lambda n: b"421 4.3.2 busy.example Too busy, try later\r\n")
        self.addCleanup(busy.close)
        sink = MaildirSink()
        self.addCleanup(sink.cleanup)
        proxy = self.relay_through([busy.port, sink.port])
        for i in range(3):
            self.assertEqual(send_until_accepted(proxy.port, i, attempts=1), 1)
        self.assertEqual(sorted(ids(sink.messages())), sorted(f"failover-{i}@test.example" for i in range(3)))
        self.assertTrue(all(not cmds for cmds in busy.by_connection.values()), busy.by_connection)
        self.assertLessEqual(busy.connections, 2)  # the probe, perhaps a session: then skipped
        proxy.stop()
        output = "".join(proxy.output)
        self.assertEqual(len(re.findall(rf"upstream 127\.0\.0\.1:{busy.port} marked down", output)), 1, output)
        self.assertIn(f"upstream 127.0.0.1:{busy.port} marked down for 30s: greeting: 421 4.3.2 busy.example "
                      "Too busy, try later", output)

    def test_an_upstream_that_never_greets_is_skipped_after_the_greeting_timeout(self):
        silent = ScriptedUpstream(greeting=lambda n: None)
        self.addCleanup(silent.close)
        sink = MaildirSink()
        self.addCleanup(sink.cleanup)
        proxy = self.relay_through([silent.port, sink.port], "--upstream-timeout", "2", "--upstream-pool", "0")
        started = time.monotonic()
        self.assertEqual(send_until_accepted(proxy.port, 0, attempts=1), 1)
        self.assertLess(time.monotonic() - started, 8)
        # Marked down now (by the probe or the first session): the next sessions go straight on.
        for i in range(1, 4):
            started = time.monotonic()
            self.assertEqual(send_until_accepted(proxy.port, i, attempts=1), 1)
            self.assertLess(time.monotonic() - started, 1.5, f"message {i} waited for the silent upstream")
        self.assertEqual(len(ids(sink.messages())), 4)
        proxy.stop()
        output = "".join(proxy.output)
        self.assertIn(f"upstream 127.0.0.1:{silent.port} marked down for 30s: greeting: upstream timeout", output)

    def test_when_every_upstream_is_down_all_are_tried_anyway(self):
        # Connections 1 and 2 (the probe's, the first session's) are greeted with 421; the
        # second upstream listens nowhere. Both are marked down; the next session tries them
        # all anyway, and the first is back.
        flaky = ScriptedUpstream(greeting=lambda n: b"421 4.3.2 Not yet\r\n" if n <= 2
                                 else b"220 scripted.example ESMTP\r\n")
        self.addCleanup(flaky.close)
        nowhere = free_port()
        proxy = self.relay_through([flaky.port, nowhere], "--upstream-retry", "600")
        codes = []
        for _ in range(4):  # bounded
            try:
                with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example", timeout=30) as s:
                    s.sendmail("alice@example.org", ["bob@example.com"], message(0))
                codes.append(250)
                break
            except smtplib.SMTPRecipientsRefused as e:
                codes += [code for code, _ in e.recipients.values()]
        self.assertEqual(codes[-1], 250, codes)
        self.assertEqual(codes[0], 451, codes)
        self.assertEqual(len(flaky.messages), 1)
        proxy.stop()
        output = "".join(proxy.output)
        self.assertIn(f"upstream 127.0.0.1:{flaky.port} marked down for 600s: greeting: 421 4.3.2 Not yet", output)
        self.assertIn(f"upstream 127.0.0.1:{nowhere} marked down for 600s: greeting: ", output)
        self.assertIn(f"grey: notice: upstream 127.0.0.1:{flaky.port} used again", output)


class GreylistServerList(unittest.TestCase):
    def test_grey_toml_takes_a_list_of_upstreams_in_order(self):
        sink = MaildirSink()
        self.addCleanup(sink.cleanup)
        nowhere = free_port()
        server = GreylistServer(f"""\
            [server]
            upstream = ["127.0.0.1:{nowhere}", "127.0.0.1:{sink.port}"]
            upstream_retry = 5
            [greylist]
            store = "memory"
            [relay]
            allowed_senders = ["127.0.0.1"]
            """).start()
        self.addCleanup(server.cleanup)
        self.assertEqual(send_until_accepted(server.port, 7, attempts=1), 1)
        self.assertEqual(ids(sink.messages()), ["failover-7@test.example"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
