"""The Redis store over TLS through Redis Sentinel and in a Redis Cluster: greylist_server given
rediss-sentinel:// and rediss-cluster:// URLs, against real sets and clusters started here on
loopback that listen on TLS ports only (Debian's redis-server and redis-sentinel, their
replication, the sentinels' connections and the cluster bus over TLS too), with a self-signed
certificate for "localhost". The nodes' addresses come from the sentinels and from CLUSTER
SLOTS as 127.0.0.1, so the URLs name the certificate's name with tls_server_name. Through the
sentinels, a first sighting is greylisted on the master and, once the master is killed,
greylisting resumes on the promoted replica by itself; in the cluster, a first sighting is
greylisted on its slot's master, passes after the delay, and greylist_admin lists it. A
certificate that does not verify defers with 451 4.3.0, said once on standard error."""
import shutil
import subprocess
import tempfile
import time
import unittest

from redis_topology import TLS, RedisCluster, SentinelSet, key_slot
from test_greylist import ADMIN, GreylistServer
from test_redis_production import CONFIG, GREYLISTED, UNAVAILABLE, rcpt
from test_redis_sentinel import PASSED

LOCAL_SLOT = key_slot("{127.0.0.0/24}")  # the client group of every SMTP session here
DELAY = 2  # CONFIG's
TLS_NAME = "localhost"  # the certificate's only name; the nodes are reached at 127.0.0.1


def certificate():
    """(its directory, a TLS with a self-signed certificate for TLS_NAME, its own CA): the
    caller removes the directory."""
    d = tempfile.mkdtemp(prefix="grey-redis-tls-topology-")
    try:
        return d, TLS.self_signed(d, TLS_NAME)
    except BaseException:
        shutil.rmtree(d, True)
        raise


def tls_options(tls, verify=True):
    """The URL's TLS options: the CA and the name to verify, or none (the system's CAs)."""
    return f"tls_ca_file={tls.ca}&tls_server_name={TLS_NAME}" if verify else f"tls_server_name={TLS_NAME}"


def rediss_sentinel_url(topology, password="pw", verify=True):
    sentinels = ",".join(f"{host}:{port}" for host, port in topology.sentinel_addresses)
    return f"rediss-sentinel://:{password}@{sentinels}/{topology.master_name}?{tls_options(topology.tls, verify)}"


def rediss_cluster_url(cluster, password="pw", seeds=2, verify=True):
    nodes = ",".join(f"{host}:{port}" for host, port in cluster.seed_addresses[:seeds])
    return f"rediss-cluster://:{password}@{nodes}?{tls_options(cluster.tls, verify)}"


def reported(server):
    """greylist_server's diagnostic lines (its own, not the session log's)."""
    return [line for line in server.errors().splitlines() if line.startswith("grey: ")]


def wait_for(condition, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class TlsSentinelTest(unittest.TestCase):
    def test_greylists_over_tls_through_the_sentinels_and_follows_a_failover(self):
        cert_dir, tls = certificate()
        self.addCleanup(shutil.rmtree, cert_dir, True)
        topology = SentinelSet(replicas=1, sentinels=3, password="pw", tls=tls)
        self.addCleanup(topology.cleanup)
        topology.wait_ready()
        url = rediss_sentinel_url(topology)
        s = GreylistServer(CONFIG, ["--store", url], separate_stderr=True).start()
        self.addCleanup(s.cleanup)

        # Greylisted, the record on the master the sentinels name (and, before the kill, on the replica).
        self.assertEqual(rcpt(s.port, "early@example.org", "kept@example.com"), GREYLISTED)
        first_seen = time.monotonic()
        master = topology.server_at(topology.master_address())
        self.assertEqual(len(master.ask("KEYS", "grey:t:*kept@example.com")), 1)
        replica = next(n for n in topology.data_nodes if n is not master)
        self.assertTrue(wait_for(lambda: replica.ask("KEYS", "grey:t:*kept@example.com"), 10),
                        "the record never reached the replica over TLS replication")

        old = topology.kill_master()
        # Before the sentinels fail over, they still name the dead master: a deferral.
        self.assertEqual(rcpt(s.port, "during@example.org", "b@example.com"), UNAVAILABLE)
        new, failover_seconds = topology.wait_for_failover(old)
        promoted = time.monotonic()
        self.assertEqual(new, replica.address)
        answers = []

        def greylisting():
            answers.append(rcpt(s.port, f"after{len(answers)}@example.org", "b@example.com"))
            return answers[-1] == GREYLISTED
        self.assertTrue(wait_for(greylisting, 10, interval=0.1),
                        f"greylisting did not resume within 10 s of the promotion: {answers[-5:]}\n{s.errors()}")
        recovery = time.monotonic() - promoted
        print(f"\n  TLS Sentinel failover {failover_seconds:.2f} s after the kill; greylisting again "
              f"{recovery:.2f} s after it ({len(answers)} sessions)", end=" ", flush=True)
        self.assertEqual(set(answers) - {GREYLISTED, UNAVAILABLE}, set())
        self.assertTrue(replica.ask("KEYS", f"grey:t:*after{len(answers) - 1}@example.org*"), "on the new master")
        # The triplet greylisted before the failover passes on the promoted replica.
        time.sleep(max(0.0, first_seen + DELAY + 0.2 - time.monotonic()))
        self.assertEqual(rcpt(s.port, "early@example.org", "kept@example.com"), PASSED)
        self.assertIsNone(s.proc.poll(), "greylist_server must not have exited")
        s.stop()
        # The loss said once and the return once; never a TLS failure.
        lines = reported(s)
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[0], r"^grey: error: greylist store unavailable: ")
        self.assertNotIn("TLS", lines[0])
        self.assertEqual(lines[1], "grey: notice: greylist store available again")


class TlsSentinelVerificationTest(unittest.TestCase):
    """Sentinels whose certificate does not verify (no tls_ca_file: the system's CAs do not know
    it), on one TLS Sentinel set that no test changes."""

    @classmethod
    def setUpClass(cls):
        cls.cert_dir, tls = certificate()
        try:
            cls.topology = SentinelSet.started(replicas=1, sentinels=3, password="pw", tls=tls)
        except BaseException:
            shutil.rmtree(cls.cert_dir, True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.topology.cleanup()
        shutil.rmtree(cls.cert_dir, True)

    def unverified(self):
        """greylist_server through the sentinels without the CA, two sessions deferred: its
        diagnostic lines."""
        s = GreylistServer(CONFIG, ["--store", rediss_sentinel_url(self.topology, verify=False)],
                           separate_stderr=True).start()
        self.addCleanup(s.cleanup)
        self.assertEqual(rcpt(s.port, "a@example.org", "b@example.com"), UNAVAILABLE)
        self.assertEqual(rcpt(s.port, "a@example.org", "c@example.com"), UNAVAILABLE)
        s.stop()
        for n in self.topology.data_nodes:
            self.assertEqual(n.ask("KEYS", "grey:*"), [])
        return reported(s)

    def test_sentinels_whose_certificate_does_not_verify_defer_with_4_3_0_and_say_tls(self):
        self.assertEqual(self.unverified(), [
            "grey: error: greylist store unavailable: TLS handshake with Redis failed (or its certificate did not "
            "verify)"])


class TlsClusterTest(unittest.TestCase):
    """One TLS cluster of three masters with a replica each, for tests that change no node."""

    @classmethod
    def setUpClass(cls):
        cls.cert_dir, tls = certificate()
        try:
            cls.cluster = RedisCluster.started(masters=3, replicas_per_master=1, password="pw", tls=tls)
        except BaseException:
            shutil.rmtree(cls.cert_dir, True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()
        shutil.rmtree(cls.cert_dir, True)

    def setUp(self):
        self.masters = self.cluster.flush()

    def server(self, url):
        s = GreylistServer(CONFIG, ["--store", url], separate_stderr=True).start()
        self.addCleanup(s.cleanup)
        return s

    def test_greylisted_on_the_slots_master_over_tls_passes_after_the_delay_and_is_listed(self):
        url = rediss_cluster_url(self.cluster)
        s = self.server(url)
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        first_seen = time.monotonic()
        home = self.cluster.master_for_slot(LOCAL_SLOT)
        key = "grey:t:{127.0.0.0/24}\talice@example.org\tbob@example.com"
        self.assertEqual(self.cluster.server_at(home).ask("KEYS", "grey:*"), [key])
        for m in self.masters:
            if m.address != home:
                self.assertEqual(self.cluster.server_at(m.address).ask("KEYS", "grey:*"), [], m)

        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED, "a retry before the delay")
        time.sleep(max(0.0, first_seen + DELAY + 0.2 - time.monotonic()))
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), PASSED)

        done = subprocess.run([ADMIN, "--store", url, "list"], capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertRegex(done.stdout, r"127\.0\.0\.0/24\s+<alice@example\.org>\s+bob@example\.com\s+passed\s")
        self.assertRegex(done.stdout, r"(?m)^1 entry$")
        s.stop()
        self.assertEqual(reported(s), [])

    def test_a_certificate_that_does_not_verify_defers_with_4_3_0_and_says_so_once(self):
        s = self.server(rediss_cluster_url(self.cluster, verify=False))  # the system's CAs do not know it
        for i in range(3):
            self.assertEqual(rcpt(s.port, f"s{i}@example.org", "bob@example.com"), UNAVAILABLE)
        s.stop()
        lines = reported(s)
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^grey: error: greylist store unavailable: .*TLS")
        for m in self.masters:
            self.assertEqual(self.cluster.server_at(m.address).ask("KEYS", "grey:*"), [])


if __name__ == "__main__":
    unittest.main()
