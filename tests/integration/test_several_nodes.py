"""Several Grey nodes behind one load balancer, sharing one greylist in a real Redis Cluster
(three masters, a replica each, a password) started here: HAProxy in front, the way a site runs
more than one MX host.

- Three greylist_server nodes, each with its own embedded Maildir sink, reached through HAProxy
  sending the PROXY protocol (send-proxy-v2) to their proxy_listen ports: the nodes see the
  real client's address, not HAProxy's; a triplet greylisted on node 1 passes on node 2 once the
  delay is over (each node's session log and Maildir show which node did what), and HAProxy's
  round robin spreads sessions over the three.
- The same three nodes under a load of whole messages through HAProxy's round robin, one node
  SIGKILLed mid-load: every message whose end of DATA got 250 is in a Maildir, exactly once;
  the sessions that failed are the ones in progress on the killed node, and they saw an error
  or a lost connection, never a 250; HAProxy marks the node down and the two others serve
  every session begun after the kill.
- Three policy-mode nodes (--policy) behind HAProxy in plain TCP mode: Grey's policy service
  does not take the PROXY protocol, and needs no header since each request names the client
  (client_address). A triplet deferred by node 1 (DEFER_IF_PERMIT) passes on node 2 after the
  delay (DUNNO); with one node killed mid-load, every request is answered or its connection
  lost, and every triplet any node deferred, the dead one's included, passes on the others.

HAProxy listens on a round-robin port with health checks (check inter 200ms) and on one port
per node, so that a test can name the node a session goes to. Loopback only, free ports, every
wait bounded; every process is stopped by the test (or module) that started it."""
import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import free_port, wait_for_port
from redis_topology import RedisCluster
from test_greylist import ADMIN, GreylistServer
from test_policy import DEFER, DUNNO, PolicyClient, PolicyServer, rcpt as policy_request
from test_redis_production import CONFIG, GREYLISTED

PASSWORD = "cluster-pw"
ACCEPTED = (250, "2.1.5")
cluster = None


def setUpModule():
    global cluster
    cluster = RedisCluster.started(masters=3, replicas_per_master=1, password=PASSWORD)


def tearDownModule():
    cluster.cleanup()


def store_url():
    return f"redis-cluster://:{PASSWORD}@" + ",".join(f"{h}:{p}" for h, p in cluster.seed_addresses)


class HAProxyFront:
    """HAProxy in TCP mode in front of `node_ports`: `port` spreads connections over them by
    round robin, with health checks every 200 ms (a node down after two failed ones) and a
    connection refused by a dead node tried again on another; `node_port(i)` goes to node i
    only. `server_options` is added to every server line (send-proxy-v2, or nothing). The
    stats socket tells each server's state and its sessions in progress."""

    def __init__(self, node_ports, server_options=""):
        self.dir = tempfile.mkdtemp(prefix="grey-haproxy-")
        self.stats_path = os.path.join(self.dir, "stats.sock")
        self.port = free_port()
        self.node_ports = [free_port() for _ in node_ports]
        servers = "\n".join(f"    server node{i} 127.0.0.1:{p} {server_options} check inter 200ms fall 2 rise 2"
                            for i, p in enumerate(node_ports))
        direct = "".join(f"""
listen node{i}
    bind 127.0.0.1:{self.node_ports[i]}
    server node{i} 127.0.0.1:{p} {server_options}
""" for i, p in enumerate(node_ports))
        config = os.path.join(self.dir, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(f"""global
    stats socket {self.stats_path} mode 600 level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 1s
    retries 3
    option redispatch 1
listen pool
    bind 127.0.0.1:{self.port}
    balance roundrobin
{servers}
{direct}""")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        try:
            for p in [self.port, *self.node_ports]:
                wait_for_port(p, 10)
            deadline = time.monotonic() + 10
            while True:  # the stats socket may come after the listeners
                try:
                    self.servers()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def node_port(self, i):
        return self.node_ports[i]

    def servers(self):
        """{server name: (status, sessions in progress)} of the round-robin pool."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.stats_path)
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        fields = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(fields, line.split(",")))
            if row.get("pxname") == "pool" and row.get("svname", "").startswith("node"):
                out[row["svname"]] = (row["status"], int(row["scur"] or 0))
        return out

    def wait_status(self, wanted, timeout=10):
        """Until the pool's servers' statuses are `wanted` ({name: 'UP' or 'DOWN'})."""
        deadline = time.monotonic() + timeout
        while True:
            now = {name: status for name, (status, _) in self.servers().items()}
            if all(now.get(name, "").split(" ")[0] == status for name, status in wanted.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy's servers are {now}, not {wanted}, after {timeout} s")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def session_lines(node, containing, timeout=5):
    """The lines of `node`'s session log (sessions.log in its directory) that contain
    `containing`, once there is one (a session's line is written as it ends), or after
    `timeout` seconds."""
    path = os.path.join(node.dir, "sessions.log")
    deadline = time.monotonic() + timeout
    while True:
        lines = []
        if os.path.exists(path):
            with open(path) as f:
                lines = [l.rstrip("\n") for l in f if containing in l]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def transaction(port, sender, recipient, body=None, source="127.0.0.1", timeout=20):
    """One session from `source`: ((code, enhanced code) of the RCPT, code of the end of DATA or
    None when the recipient was not accepted or no `body` was given)."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=timeout,
                      source_address=(source, 0)) as s:
        s.ehlo()
        code, _ = s.mail(sender)
        assert code == 250, code
        code, text = s.rcpt(recipient)
        answer = (code, text.decode().split(" ", 1)[0])
        if code != 250 or body is None:
            return answer, None
        return answer, s.data(body)[0]


def kill_mid_load(haproxy, victim, loaded, timeout=10):
    """Once `loaded()` says the load is under way and HAProxy has sessions in progress on node 2
    (`victim`), SIGKILLs it and waits until HAProxy marks it down: (sessions in progress, the
    time before the kill, the time after it was reaped). A session cut by the kill ends after
    the first; one begun after the second (node 2 gone, its sockets closed) cannot be served by it."""
    deadline = time.monotonic() + timeout
    while not loaded() and time.monotonic() < deadline:
        time.sleep(0.05)
    while haproxy.servers()["node1"][1] == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    in_progress = haproxy.servers()["node1"][1]
    killing = time.monotonic()
    victim.proc.kill()
    victim.proc.wait(timeout=10)
    killed = time.monotonic()
    haproxy.wait_status({"node0": "UP", "node1": "DOWN", "node2": "UP"}, timeout=5)
    return in_progress, killing, killed


class MessageLoad:
    """Threads each sending whole messages through `port`, one session each, until stopped or
    `max_sessions` each. Each session holds its node for `hold` seconds, half of them before
    DATA and half of them with the message half sent, so that a node killed at any moment has
    sessions in progress at both stages. Every message carries a token of its own. `sessions`
    holds (token, start, end, outcome): 250 when the end of DATA got it, else the other reply's
    code or the exception's text."""

    def __init__(self, port, senders, recipient, max_sessions, hold=0.1):
        self.port, self.recipient, self.max_sessions, self.hold = port, recipient, max_sessions, hold
        self.sessions, self.lock, self.stopping = [], threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self._load, args=(sender,)) for sender in senders]
        for t in self.threads:
            t.start()

    def _load(self, sender):
        for i in range(self.max_sessions):
            if self.stopping.is_set():
                return
            token = f"{sender.split('@')[0]}-{i}"
            start = time.monotonic()
            try:
                outcome = self._send(sender, token)
            except Exception as e:
                outcome = f"{type(e).__name__}: {e}"
            with self.lock:
                self.sessions.append((token, start, time.monotonic(), outcome))

    def _send(self, sender, token):
        with smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.example", timeout=20) as s:
            s.ehlo()
            for code, _ in (s.mail(sender), s.rcpt(self.recipient)):
                if code != 250:
                    return code
            time.sleep(self.hold / 2)
            code, _ = s.docmd("DATA")
            if code != 354:
                return code
            s.send(f"Subject: {token}\r\nX-Load-Token: {token}\r\n\r\nfirst half\r\n".encode())
            time.sleep(self.hold / 2)
            s.send(b"second half\r\n.\r\n")
            return s.getreply()[0]

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)
        return list(self.sessions)


def tokens(messages):
    """The X-Load-Token of each message."""
    return [m.group(1).decode() for m in (re.search(rb"X-Load-Token: (\S+)", msg) for msg in messages) if m]


class SmtpNodes(unittest.TestCase):
    """Three greylist_server nodes on the cluster, each taking the PROXY protocol from HAProxy."""

    def setUp(self):
        cluster.flush()
        self.nodes = []
        for _ in range(3):
            proxy_port = free_port()
            node = GreylistServer(CONFIG, ["--store", store_url(), "--proxy-listen", f"127.0.0.1:{proxy_port}",
                                           "--proxy-from", "127.0.0.1/32"], separate_stderr=True)
            self.addCleanup(node.cleanup)
            node.start()
            node.proxy_port = proxy_port
            wait_for_port(proxy_port, 5)
            self.nodes.append(node)
        self.haproxy = HAProxyFront([n.proxy_port for n in self.nodes], "send-proxy-v2")
        self.addCleanup(self.haproxy.stop)
        self.haproxy.wait_status({"node0": "UP", "node1": "UP", "node2": "UP"})

    def test_a_triplet_greylisted_on_node_1_passes_on_node_2_after_the_delay(self):
        n1, n2, n3 = self.nodes
        client = "127.0.0.7"  # not HAProxy's own address: the nodes can only know it from the header
        first = time.monotonic()
        self.assertEqual(transaction(self.haproxy.node_port(0), "alice@example.org", "bob@example.com",
                                     source=client)[0], GREYLISTED)
        # Node 3 knows node 1's sighting from the cluster: too soon there too.
        self.assertEqual(transaction(self.haproxy.node_port(2), "alice@example.org", "bob@example.com",
                                     source=client)[0], GREYLISTED)
        time.sleep(max(0.0, first + 2.3 - time.monotonic()))  # CONFIG's delay is 2 s
        rcpt, final = transaction(self.haproxy.node_port(1), "alice@example.org", "bob@example.com",
                                  b"Subject: t\r\n\r\nthrough node 2\r\n", source=client)
        self.assertEqual((rcpt, final), (ACCEPTED, 250))

        self.assertEqual(len(n2.delivered()), 1)
        self.assertIn(b"through node 2", n2.delivered()[0])
        self.assertEqual(n1.delivered() + n3.delivered(), [])
        line = r"^\d{14} \| client\.example \| 127\.0\.0\.7 \| alice@example\.org \| bob@example\.com "
        [seen] = session_lines(n1, "alice@")
        self.assertRegex(seen, line + r"greylisted \(first seen\) \| no message$")
        [again] = session_lines(n3, "alice@")
        self.assertRegex(again, line + r"greylisted \(early retry \([12] s missing\)\) \| no message$")
        [passed] = session_lines(n2, "alice@")
        self.assertRegex(passed, line + r"accepted \(passed after [2-9] s\) \| ")

        # Known now: HAProxy's round robin gives the next three sessions one to each node,
        # and each node lets the triplet through.
        for i in range(3):
            rcpt, final = transaction(self.haproxy.port, "alice@example.org", "bob@example.com",
                                      b"Subject: t\r\n\r\nround robin %d\r\n" % i, source=client)
            self.assertEqual((rcpt, final), (ACCEPTED, 250))
        self.assertEqual([len(n.delivered()) for n in self.nodes], [1, 2, 1])
        for n in self.nodes:
            self.assertIsNone(n.proc.poll())

    SENDERS = 6
    MAX_SESSIONS = 80  # per sender: bounded whatever happens, and the nodes' unread standard
    # output (a line per delivery) stays far below a pipe's 64 KiB

    def test_a_node_killed_mid_load_loses_nothing_acknowledged(self):
        senders = [f"sender-{chr(ord('a') + n)}@example.org" for n in range(self.SENDERS)]
        for sender in senders:  # passed already: every recipient is accepted, by any node
            done = subprocess.run([ADMIN, "--config", self.nodes[0].config, "--store", store_url(), "whitelist",
                                   "127.0.0.1", sender, "bob@example.com"], capture_output=True, text=True, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
        victim, survivors = self.nodes[1], [self.nodes[0], self.nodes[2]]

        load = MessageLoad(self.haproxy.port, senders, "bob@example.com", self.MAX_SESSIONS)
        try:
            # Every node delivering, then the kill while HAProxy has sessions in progress on node 2.
            in_progress, killing, killed = kill_mid_load(
                self.haproxy, victim, lambda: min(len(n.delivered()) for n in self.nodes) >= 10)
            marked_down = time.monotonic() - killed
            time.sleep(1.5)  # the load on the two survivors
        finally:
            sessions = load.stop()

        delivered = {}
        for name, node in zip(("node 1", "node 2", "node 3"), self.nodes):
            for token in tokens(node.delivered()):
                delivered.setdefault(token, []).append(name)
        acknowledged = {token for token, _, _, outcome in sessions if outcome == 250}
        failed = [(token, start, end, outcome) for token, start, end, outcome in sessions if outcome != 250]
        print(f"\n{len(sessions)} messages sent through HAProxy, {len(acknowledged)} acknowledged with 250, "
              f"{len(delivered)} delivered (node 1: {len(tokens(self.nodes[0].delivered()))}, "
              f"node 2, killed: {len(tokens(victim.delivered()))}, node 3: {len(tokens(self.nodes[2].delivered()))}); "
              f"{len(failed)} failed, {in_progress} in progress on node 2 at the kill; "
              f"{len(set(delivered) - acknowledged)} delivered without a 250; node 2 down in HAProxy after "
              f"{marked_down:.2f} s; the failed sessions saw: {sorted({str(o) for _, _, _, o in failed})}", flush=True)

        self.assertGreater(in_progress, 0)
        lost = sorted(acknowledged - set(delivered))
        self.assertEqual(lost, [], "acknowledged with 250 but in no Maildir")
        self.assertEqual({t: where for t, where in delivered.items() if len(where) > 1}, {}, "delivered twice")
        # The failures are the sessions the kill cut: begun before it, ended after it, none a 250.
        self.assertGreater(len(failed), 0, "sessions were in progress on the killed node")
        for token, start, end, outcome in failed:
            self.assertLess(start, killed, (token, outcome))
            self.assertGreaterEqual(end, killing, (token, outcome))
        # Every session begun after the kill went to a survivor and was delivered there; both kept serving.
        after = [token for token, start, _, _ in sessions if start > killed]
        self.assertGreater(len(after), 2 * self.SENDERS)
        self.assertEqual([t for t in after if t not in acknowledged], [])
        for name, node in (("node 1", survivors[0]), ("node 3", survivors[1])):
            self.assertTrue(any(delivered[t] == [name] for t in after), f"{name} took none of the load after the kill")
            self.assertIsNone(node.proc.poll(), f"{name} must not have exited")


class PolicyLoad:
    """Threads each asking about new triplets through `port`, `per_connection` requests on a
    connection (as Postfix keeps one open), until stopped or `max_requests` each. `requests`
    holds (triplet, when its connection was opened, end, answer): the answer's line, or None
    when the connection was lost."""

    def __init__(self, port, threads, max_requests, per_connection=10, pause=0.01):
        self.port, self.max_requests, self.per_connection, self.pause = port, max_requests, per_connection, pause
        self.requests, self.lock, self.stopping = [], threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self._load, args=(n,)) for n in range(threads)]
        for t in self.threads:
            t.start()

    def _load(self, n):
        i = 0
        while i < self.max_requests and not self.stopping.is_set():
            opened = time.monotonic()
            c = PolicyClient(self.port)
            try:
                for _ in range(self.per_connection):
                    if i >= self.max_requests or self.stopping.is_set():
                        break
                    # A new recipient each time: the sender's digits would be folded (VERP)
                    triplet = (f"192.0.2.{n + 1}", "alice@example.org", f"rcpt-{n}-{i}@example.com")
                    i += 1
                    try:
                        answer = c.ask(policy_request(triplet[2], triplet[1], client=triplet[0]))
                    except OSError:
                        answer = None
                    with self.lock:
                        self.requests.append((triplet, opened, time.monotonic(), answer))
                    if answer is None:
                        break
                    time.sleep(self.pause)
            finally:
                c.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)
        return list(self.requests)


class PolicyNodes(unittest.TestCase):
    """Three policy-mode nodes on the cluster behind HAProxy in plain TCP mode: the policy
    service takes no PROXY header; the request's client_address names the client."""

    # The session log in a file: under load, nobody reads the nodes' standard output.
    CONFIG = """
        [greylist]
        auto_whitelist_after = 0
        [log]
        file = "sessions.log"
    """

    def setUp(self):
        cluster.flush()
        self.nodes = []
        for _ in range(3):
            node = PolicyServer(store=store_url(), config=self.CONFIG)  # PolicyServer's delay: 1 s
            self.addCleanup(node.cleanup)
            self.nodes.append(node)
        self.haproxy = HAProxyFront([n.port for n in self.nodes])
        self.addCleanup(self.haproxy.stop)
        self.haproxy.wait_status({"node0": "UP", "node1": "UP", "node2": "UP"})

    def ask(self, port, request):
        c = PolicyClient(port)
        try:
            return c.ask(request)
        finally:
            c.close()

    def test_a_triplet_deferred_on_node_1_passes_on_node_2_after_the_delay(self):
        request = policy_request("bob@example.com", "alice@example.org", client="192.0.2.7")
        first = time.monotonic()
        self.assertEqual(self.ask(self.haproxy.node_port(0), request), DEFER)
        self.assertEqual(self.ask(self.haproxy.node_port(2), request), DEFER,
                         "node 3 knows node 1's sighting: too soon")
        time.sleep(max(0.0, first + 1.3 - time.monotonic()))
        self.assertEqual(self.ask(self.haproxy.node_port(1), policy_request(
            "bob@example.com", "alice@example.org", client="192.0.2.7", instance="2.2")), DUNNO)
        for i in range(3):  # round robin: one to each node, each of which knows the triplet
            self.assertEqual(self.ask(self.haproxy.port, policy_request(
                "bob@example.com", "alice@example.org", client="192.0.2.7", instance=f"3.{i}")), DUNNO)
        for n in self.nodes:
            self.assertEqual(n.stop(), 0)
        line = r"^\d{14} \| client\.example \| 192\.0\.2\.7 \| alice@example\.org \| bob@example\.com "
        n1, n2, n3 = (session_lines(n, "alice@") for n in self.nodes)
        self.assertEqual(len(n1), 2, n1)
        self.assertRegex(n1[0], line + r"greylisted \(first seen[;)]")
        self.assertEqual(len(n3), 2, n3)
        self.assertRegex(n3[0], line + r"greylisted \(early retry")
        self.assertEqual(len(n2), 2, n2)
        self.assertRegex(n2[0], line + r"accepted \(passed after [1-9] s[;)]")
        for lines in (n1, n2, n3):
            self.assertRegex(lines[-1], line + r"accepted \(known[;)]")

    THREADS = 6
    MAX_REQUESTS = 150  # per thread: bounded whatever happens

    def test_a_node_killed_mid_load_loses_no_deferral(self):
        victim, survivors = self.nodes[1], [self.nodes[0], self.nodes[2]]
        load = PolicyLoad(self.haproxy.port, self.THREADS, self.MAX_REQUESTS)
        try:
            in_progress, killing, killed = kill_mid_load(self.haproxy, victim, lambda: len(load.requests) >= 60)
            time.sleep(1.0)
        finally:
            requests = load.stop()
        deferred = [triplet for triplet, _, _, answer in requests if answer == DEFER]
        lost = [(triplet, opened, end) for triplet, opened, end, answer in requests if answer is None]
        # What the killed node deferred, by its session log (a file: its lines were written before
        # the kill), including any whose answer the kill cut off.
        by_victim = {m.groups() for m in (re.search(r"\| (\S+) \| (\S+) \| (\S+) greylisted \(first seen", l)
                                          for l in session_lines(victim, "greylisted (first seen", timeout=0)) if m}

        # Every triplet deferred, by any node, the dead one's too, is in the cluster: after the
        # delay each passes on the survivors (asked through HAProxy, on four connections).
        time.sleep(1.3)  # PolicyServer's delay is 1 s
        to_retry = sorted(set(deferred) | by_victim)
        retries = {}

        def retry(part):
            c = PolicyClient(self.haproxy.port)
            try:
                for client, sender, recipient in part:
                    retries[(client, sender, recipient)] = c.ask(policy_request(recipient, sender, client=client,
                                                                                instance="retry"))
            finally:
                c.close()
        threads = [threading.Thread(target=retry, args=(to_retry[n::4],)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        print(f"\n{len(requests)} policy requests through HAProxy, {len(deferred)} deferred, {len(lost)} "
              f"connections lost, {in_progress} connections on node 2 at the kill, {len(by_victim)} deferred by it; "
              f"{sum(a == DUNNO for a in retries.values())} of {len(to_retry)} passed on a retry", flush=True)

        self.assertGreater(in_progress, 0)
        self.assertEqual({a for _, _, _, a in requests} - {DEFER, None}, set(),
                         "only DEFER_IF_PERMIT or a lost connection")
        self.assertGreater(len(lost), 0, "connections were open on the killed node")
        for triplet, opened, end in lost:
            self.assertLess(opened, killed, triplet)
            self.assertGreaterEqual(end, killing, triplet)
        self.assertGreater(len([t for t, opened, _, a in requests if opened > killed and a == DEFER]), 2 * self.THREADS)
        self.assertGreater(len(by_victim), 0, "node 2 took part before the kill")
        self.assertEqual(len(retries), len(to_retry))
        self.assertEqual({t: a for t, a in retries.items() if a != DUNNO}, {},
                         "deferred, yet not known after the delay")
        for node in survivors:
            self.assertIsNone(node.proc.poll())


if __name__ == "__main__":
    unittest.main()
