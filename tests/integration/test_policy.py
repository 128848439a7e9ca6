"""greylist_server as a Postfix policy service (SMTPD_POLICY_README): the protocol spoken by hand
over TCP and a unix socket, then end to end behind a real Postfix smtpd driven by swaks, relaying
to the Maildir sink. Loopback only; every process is stopped by the test that started it."""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import textwrap
import time
import unittest

from harness import end_process, free_port, postfix_smtpd

SERVER = os.path.abspath(os.environ.get("GREY_GREYLIST_SERVER", "build/dev/examples/greylist_server"))
DNS = os.environ.get("GREY_TEST_DNS", "")

DEFER = "action=DEFER_IF_PERMIT Greylisted, please try again later"
UNAVAILABLE = "action=DEFER_IF_PERMIT 4.3.0 Greylist temporarily unavailable, try again later"
DUNNO = "action=DUNNO"


class PolicyServer:
    """greylist_server --policy ... in a temporary directory, memory store, 1 s delay unless told
    otherwise. Standard output (the session log) is read; standard error goes to a file."""

    def __init__(self, *args, config="", policy=("inet:127.0.0.1:0",), store="memory"):
        self.dir = tempfile.mkdtemp(prefix="grey-policy-")
        self.config = os.path.join(self.dir, "grey.toml")
        with open(self.config, "w") as f:
            f.write(textwrap.dedent(config))
        self.stderr_path = os.path.join(self.dir, "stderr")
        # Judging first asks the tests' unbound, which answers nothing outside its zones: every
        # client here is greylisted as without DNS (dns=incomplete), as before judging first.
        dns = ["--resolver", DNS] if DNS else ["--reputation", "off"]
        command = [SERVER, "--config", self.config, "--store", store, "--delay", "1", *dns, *args]
        for p in policy:
            command += ["--policy", p]
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(command, cwd=self.dir, stdout=subprocess.PIPE, stderr=err, text=True)
        self.lines, self.addresses = [], []
        deadline = time.time() + 10
        while time.time() < deadline and len(self.addresses) < len(policy):
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("greylist_server exited: " + "".join(self.lines) + self.errors())
            self.lines.append(line)
            m = re.match(r"policy service listening on (\S+)$", line.strip())
            if m:
                self.addresses.append(m.group(1))
        if len(self.addresses) < len(policy):
            raise RuntimeError("greylist_server did not start")
        inet = [a for a in self.addresses if a.startswith("inet:")]
        self.port = int(inet[0].rsplit(":", 1)[1]) if inet else None

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            end_process(self.proc, timeout)
        if not self.proc.stdout.closed:
            self.lines += self.proc.stdout.readlines()
            self.proc.stdout.close()
        return self.proc.returncode

    def log_lines(self):
        return [l.rstrip("\n") for l in self.lines if " | " in l]

    def errors(self):
        with open(self.stderr_path) as f:
            return f.read()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def rcpt(recipient="bob@example.com", sender="alice@example.org", client="192.0.2.7", instance="1.1", **more):
    """The attributes of Postfix's request at RCPT, as smtpd sends them (most of them)."""
    attrs = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
             "helo_name": "client.example", "queue_id": "", "sender": sender, "recipient": recipient,
             "recipient_count": "0", "client_address": client, "client_name": "unknown",
             "reverse_client_name": "unknown", "instance": instance, "size": "0", "stress": ""}
    attrs.update(more)
    return attrs


def encode(attrs):
    return "".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n"


class PolicyClient:
    """Postfix's side of the protocol, by hand: requests out, `action=...` answers in."""

    def __init__(self, port=None, path=None, timeout=10):
        if path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def answer(self):
        """The next answer's attribute line; None when the server closed the connection."""
        while b"\n\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        one, self.buf = self.buf.split(b"\n\n", 1)
        return one.decode()

    def ask(self, attrs):
        self.send(encode(attrs))
        return self.answer()

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class PolicyProtocol(unittest.TestCase):
    def server(self, *args, **kwargs):
        s = PolicyServer(*args, **kwargs)
        self.addCleanup(s.cleanup)
        return s

    def client(self, server, **kwargs):
        c = PolicyClient(server.port, **kwargs)
        self.addCleanup(c.close)
        return c

    def test_first_request_is_deferred_and_a_retry_after_the_delay_passes_on_one_connection(self):
        s = self.server()
        c = self.client(s)
        self.assertEqual(c.ask(rcpt()), DEFER)
        self.assertEqual(c.ask(rcpt()), DEFER, "a retry before the delay is deferred")
        time.sleep(1.3)
        self.assertEqual(c.ask(rcpt(instance="2.2")), DUNNO, "passed; add_header is off")
        self.assertEqual(c.ask(rcpt(instance="3.3")), DUNNO, "known")
        s.stop()
        lines = s.log_lines()
        self.assertEqual(len(lines), 4, s.lines)
        fields = [f.strip() for f in lines[0].split("|")]
        self.assertRegex(fields[0], r"^\d{14}$")
        self.assertEqual(fields[1:4] + fields[5:], ["client.example", "192.0.2.7", "alice@example.org", "policy"])
        # The recipient, the verdict, and why: 192.0.2.7 is judged first, and the tests' DNS
        # knows nothing of it, so it is greylisted as without DNS.
        self.assertRegex(fields[4], r"^bob@example\.com greylisted \(first seen; tier=normal .*dns=incomplete\)$")
        self.assertRegex(lines[2], r"\| bob@example\.com accepted \(passed; tier=normal [^|]*\) \| policy$")

    def test_a_message_held_back_gets_x_greylist_prepended_once_when_add_header_is_on(self):
        s = self.server(config="[greylist]\nadd_header = true\n")
        c = self.client(s)
        self.assertEqual(c.ask(rcpt("bob@example.com")), DEFER)
        self.assertEqual(c.ask(rcpt("carol@example.com")), DEFER)
        time.sleep(1.3)
        self.assertRegex(c.ask(rcpt("bob@example.com", instance="2.2")),
                         r"^action=PREPEND X-Greylist: delayed [12] seconds by Grey at localhost; "
                         r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$")
        self.assertEqual(c.ask(rcpt("carol@example.com", instance="2.2")), DUNNO, "one header per message")
        self.assertEqual(c.ask(rcpt("bob@example.com", instance="3.3")), DUNNO, "a known triplet: no header")

    def test_only_rcpt_is_greylisted(self):
        s = self.server()
        c = self.client(s)
        for state in ["CONNECT", "EHLO", "HELO", "MAIL", "DATA", "END-OF-MESSAGE", "VRFY", "ETRN"]:
            self.assertEqual(c.ask(rcpt(protocol_state=state)), DUNNO, state)
        self.assertEqual(c.ask(rcpt()), DEFER)
        s.stop()
        self.assertEqual(len(s.log_lines()), 1, "only RCPT is logged")

    def test_the_deferral_text_is_configurable_with_postgreys_substitutions(self):
        s = self.server("--greylist-text", "Greylisted for %s s, see https://help.example/%r")
        c = self.client(s)
        self.assertEqual(c.ask(rcpt()), "action=DEFER_IF_PERMIT Greylisted for 1 s, see https://help.example/example.com")

    def test_pipelined_requests_are_answered_in_order(self):
        s = self.server()
        c = self.client(s)
        c.send(encode(rcpt("bob@example.com")) + encode(rcpt(protocol_state="DATA")) +
               encode(rcpt("carol@example.com")) + encode({"request": "smtpd_access_policy", "protocol_state": "HELO"}))
        self.assertEqual([c.answer() for _ in range(4)], [DEFER, DUNNO, DEFER, DUNNO])
        # Split across writes, byte by byte: the same.
        for b in encode(rcpt("dave@example.com")):
            c.send(bytes([b]))
        self.assertEqual(c.answer(), DEFER)

    def test_missing_attributes_get_dunno_and_the_connection_stays_open(self):
        s = self.server()
        c = self.client(s)
        no_recipient = rcpt()
        del no_recipient["recipient"]
        self.assertEqual(c.ask(no_recipient), DUNNO)
        self.assertEqual(c.ask({"protocol_state": "RCPT", "recipient": "bob@example.com"}), DUNNO, "no request=")
        self.assertEqual(c.ask({"request": "junk"}), DUNNO)
        self.assertEqual(c.ask(rcpt()), DEFER, "the connection still serves")
        no_sender = rcpt("erin@example.com")
        del no_sender["sender"]  # the null sender
        self.assertEqual(c.ask(no_sender), DEFER)
        s.stop()
        errors = s.errors()
        self.assertIn("RCPT request without recipient or client_address: answered DUNNO", errors)
        self.assertIn("request type 'junk' is not smtpd_access_policy", errors)

    def test_an_over_long_line_closes_the_connection_without_an_answer(self):
        s = self.server(config="[policy]\nmax_line = 256\n")
        c = self.client(s)
        self.assertEqual(c.ask(rcpt(protocol_state="DATA")), DUNNO)
        c.send(b"request=smtpd_access_policy\nsender=" + b"a" * 1000 + b"\n\n")
        self.assertIsNone(c.answer())
        # The server goes on serving others.
        other = self.client(s)
        self.assertEqual(other.ask(rcpt()), DEFER)
        self.assertRegex(s.errors(), r"policy client 127\.0\.0\.1:\d+: policy request line too long: connection closed")

    def test_an_endless_line_without_lf_is_cut_off_at_the_limit(self):
        s = self.server()
        c = self.client(s)
        try:
            c.send(b"sender=" + b"a" * 100000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assertTrue(c.closed())

    def test_garbage_lines_and_too_many_attributes_close_the_connection(self):
        s = self.server(config="[policy]\nmax_attributes = 20\n")
        c = self.client(s)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIsNone(c.answer())
        c2 = self.client(s)
        c2.send(b"".join(b"a%d=x\n" % i for i in range(21)) + b"\n")
        self.assertIsNone(c2.answer())
        errors = s.errors()
        self.assertIn("malformed attribute in a policy request (not name=value)", errors)
        self.assertIn("too many attributes in a policy request", errors)

    def test_a_unix_socket_answers_like_tcp_and_is_removed_at_stop(self):
        d = tempfile.mkdtemp(prefix="grey-policy-sock-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "policy")
        s = self.server(policy=(f"unix:{path}", "inet:127.0.0.1:0"))
        self.assertIn(f"unix:{path}", s.addresses)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o666)
        c = PolicyClient(path=path)
        self.addCleanup(c.close)
        self.assertEqual(c.ask(rcpt()), DEFER)
        # The same store behind both doors.
        self.assertEqual(self.client(s).ask(rcpt()), DEFER)
        time.sleep(1.3)
        self.assertEqual(c.ask(rcpt(instance="2.2")), DUNNO)
        c.close()
        self.assertEqual(s.stop(), 0)
        self.assertFalse(os.path.exists(path))

    def test_a_store_that_does_not_answer_defers_with_4_3_0(self):
        closed = free_port()
        s = self.server(store=f"redis://127.0.0.1:{closed}")
        c = self.client(s)
        self.assertEqual(c.ask(rcpt()), UNAVAILABLE)
        self.assertEqual(c.ask(rcpt("carol@example.com")), UNAVAILABLE)
        s.stop()
        lines = s.log_lines()
        self.assertEqual(len(lines), 2, s.lines)
        self.assertRegex(lines[0], r"\| bob@example\.com tempfail \(store unavailable\) \(unavailable; tier=normal [^|]*\) \| policy$")
        self.assertEqual(len(re.findall(r"(?m)^grey: error: greylist store unavailable: \S", s.errors())), 1, s.errors())

    def test_sigterm_stops_at_once_with_idle_connections_open(self):
        s = self.server()
        c = self.client(s)
        self.assertEqual(c.ask(rcpt(protocol_state="DATA")), DUNNO)
        started = time.time()
        self.assertEqual(s.stop(), 0)
        self.assertLess(time.time() - started, 5)
        self.assertTrue(c.closed())

    def test_sigterm_as_soon_as_it_says_it_listens_is_a_graceful_stop(self):
        for attempt in range(20):
            s = PolicyServer()
            self.addCleanup(s.cleanup)
            s.proc.terminate()
            try:
                code = s.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.fail(f"start {attempt + 1}: still running 5 s after SIGTERM")
            self.assertEqual(code, 0, f"start {attempt + 1}: killed by the signal, not stopped")

    def test_the_connection_limit_closes_connections_over_it(self):
        s = self.server(config="[policy]\nmax_connections = 2\n")
        a, b = self.client(s), self.client(s)
        self.assertEqual(a.ask(rcpt(protocol_state="DATA")), DUNNO)
        self.assertEqual(b.ask(rcpt(protocol_state="DATA")), DUNNO)
        third = self.client(s)
        self.assertTrue(third.closed())
        a.close()
        deadline = time.time() + 5
        while time.time() < deadline:  # a's place is given back once the server sees it close
            fourth = self.client(s)
            try:
                if fourth.ask(rcpt(protocol_state="DATA")) == DUNNO:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            self.fail("a freed place was not given to a new connection")
        self.assertIn("policy: 2 connections, the limit: more are closed", s.errors())

    def test_bad_policy_options_are_refused(self):
        p = subprocess.run([SERVER, "--policy", "tcp:10023"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is not inet:HOST:PORT or unix:PATH", p.stderr)
        d = tempfile.mkdtemp(prefix="grey-policy-conf-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "grey.toml")
        with open(path, "w") as f:
            f.write('[policy]\nlisten = ["inet:127.0.0.1:0"]\nsocket_mode = "rw"\n')
        p = subprocess.run([SERVER, "--config", path], cwd=d, capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stderr, r"grey\.toml:3: 'policy\.socket_mode' must be octal")


class PostfixWithGreyPolicy(unittest.TestCase):
    """A private Postfix whose smtpd asks Grey (check_policy_service) and relays to the sink."""

    def setUp(self):
        self.policy = PolicyServer(config="[greylist]\nadd_header = true\n")
        self.addCleanup(self.policy.cleanup)
        self.postfix, self.smtp_port, self.sink = postfix_smtpd(self, f"""\
smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:{self.policy.port}, permit_mynetworks, reject
smtpd_policy_service_request_limit = 0
""", hostname="mx.example")

    def swaks(self, body):
        return subprocess.run(["swaks", "--server", f"127.0.0.1:{self.smtp_port}", "--helo", "client.example",
                               "--from", "alice@example.org", "--to", "bob@example.com", "--timeout", "20",
                               "--header", "Subject: through postfix", "--body", body],
                              capture_output=True, text=True, timeout=60)

    def test_first_attempt_gets_450_4_7_1_and_a_retry_is_delivered_with_x_greylist(self):
        first = self.swaks("first attempt")
        self.assertNotEqual(first.returncode, 0)
        self.assertRegex(first.stdout, r"<\*\* +450 4\.7\.1 <bob@example\.com>: Recipient address rejected: "
                                       r"Greylisted, please try again later")
        self.assertEqual(self.sink.messages(), [])
        time.sleep(1.3)
        second = self.swaks("second attempt")
        self.assertEqual(second.returncode, 0, second.stdout + self.postfix.read_log())
        self.assertRegex(second.stdout, r"<- +250 2\.0\.0 Ok: queued")
        deadline = time.time() + 30
        while not self.sink.messages() and time.time() < deadline:
            time.sleep(0.2)
        [stored] = self.sink.messages()
        self.assertRegex(stored, rb"X-Greylist: delayed [1-9]\d* seconds by Grey at localhost; ")
        self.assertIn(b"second attempt", stored)
        self.policy.stop()
        lines = self.policy.log_lines()
        self.assertEqual([l.split(" | ", 1)[1] for l in lines],
                         ["client.example | 127.0.0.1 | alice@example.org | bob@example.com greylisted | policy",
                          "client.example | 127.0.0.1 | alice@example.org | bob@example.com accepted | policy"])


if __name__ == "__main__":
    unittest.main()
