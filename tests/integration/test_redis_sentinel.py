"""The Redis store through Redis Sentinel: greylist_server given the sentinels and the master
set's name (redis-sentinel://), against a real set started here on loopback (a master, a replica
and three sentinels from Debian's redis-server and redis-sentinel). Its master is killed in the
middle of a load: clients must see only 4xx while the set fails over, Grey must find the new
master by itself, without a restart, and say once that the store was lost and once that it is
back; a triplet greylisted before the failover passes after it, on the promoted replica; and
greylist_admin works through the sentinels."""
import os
import subprocess
import time
import unittest

from redis_topology import SentinelSet
from test_greylist import GreylistServer
from test_redis_production import CONFIG, GREYLISTED, UNAVAILABLE, RcptLoad, rcpt

PASSED = (250, "2.1.5")
ADMIN = os.environ.get("GREY_GREYLIST_ADMIN", "greylist_admin")


def sentinel_url(topology, password="pw", options=""):
    sentinels = ",".join(f"{host}:{port}" for host, port in topology.sentinel_addresses)
    url = f"redis-sentinel://:{password}@{sentinels}/{topology.master_name}"
    return f"{url}?{options}" if options else url


class RedisSentinelTest(unittest.TestCase):
    THREADS = 4
    MAX_SESSIONS = 400  # per thread: bounds the load whatever happens

    def test_a_failover_mid_load_defers_then_follows_the_new_master(self):
        topology = SentinelSet(password="pw")
        self.addCleanup(topology.cleanup)
        topology.wait_ready()
        s = GreylistServer(CONFIG, ["--store", sentinel_url(topology)], separate_stderr=True).start()
        self.addCleanup(s.cleanup)

        # A triplet greylisted before the failover, and on the replica before the master dies.
        self.assertEqual(rcpt(s.port, "early@example.org", "kept@example.com"), GREYLISTED)
        master = topology.server_at(topology.master_address())
        replica = next(n for n in topology.data_nodes if n is not master)
        deadline = time.monotonic() + 10
        while not replica.ask("KEYS", "grey:t:*kept@example.com") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(replica.ask("KEYS", "grey:t:*kept@example.com"), "the record never reached the replica")

        load = RcptLoad(s.port, self.THREADS, self.MAX_SESSIONS)  # new triplets: never a pass
        try:
            time.sleep(1.0)
            killed = time.monotonic()
            old = topology.kill_master()
            new, failover_seconds = topology.wait_for_failover(old)
            promoted = killed + failover_seconds
            recovered = None
            deadline = promoted + 10
            while time.monotonic() < deadline and recovered is None:
                time.sleep(0.05)
                recovered = load.first(promoted, GREYLISTED)
            time.sleep(1.0)  # load on the new master
        finally:
            load.stop()
        answers = load.answers
        self.assertIsNone(s.proc.poll(), "greylist_server must not have exited")
        self.assertNotEqual(new, old)

        self.assertEqual(len(answers), load.started, "every session got an answer")
        self.assertEqual([a for _, a in answers if not isinstance(a, tuple)], [])
        self.assertEqual({a for _, a in answers} - {GREYLISTED, UNAVAILABLE}, set(),
                         "a first sight is greylisted or deferred, never passed")
        before = [a for t, a in answers if t < killed]
        self.assertTrue(before and all(a == GREYLISTED for a in before), before[:5])
        self.assertIsNotNone(recovered, "greylisting did not resume within 10 s of the promotion")
        # Grey finds the new master by itself, with its default flags: the sentinels' failover,
        # then at most one wait between attempts (1 s at most through sentinels) and a connection.
        recovery = recovered - killed
        print(f"\nfailover by the sentinels {failover_seconds:.2f} s after the kill; "
              f"greylisting again {recovery:.2f} s after it", flush=True)
        self.assertLess(recovery, failover_seconds + 1.5)
        after = [a for t, a in answers if t > recovered + 0.3]
        self.assertTrue(after and all(a == GREYLISTED for a in after), after[:5])

        # The triplet greylisted before the failover passes on the promoted replica.
        time.sleep(2.0)  # the delay in CONFIG
        self.assertEqual(rcpt(s.port, "early@example.org", "kept@example.com"), PASSED)

        s.stop()
        reported = [line for line in s.errors().splitlines() if line.startswith("grey: ")]
        self.assertEqual(len(reported), 2, reported)
        self.assertRegex(reported[0], r"^grey: error: greylist store unavailable: ")
        self.assertEqual(reported[1], "grey: notice: greylist store available again")

    def test_sentinels_that_want_a_password_not_given_defer_with_4_3_0_and_say_why(self):
        topology = SentinelSet(replicas=1, sentinels=3, password="pw", sentinel_password="watch")
        self.addCleanup(topology.cleanup)
        topology.wait_ready()
        s = GreylistServer(CONFIG, ["--store", sentinel_url(topology)], separate_stderr=True).start()
        self.addCleanup(s.cleanup)
        self.assertEqual(rcpt(s.port, "a@example.org", "b@example.com"), UNAVAILABLE)
        self.assertEqual(rcpt(s.port, "a@example.org", "c@example.com"), UNAVAILABLE)
        s.stop()
        reported = [line for line in s.errors().splitlines() if line.startswith("grey: ")]
        self.assertEqual(len(reported), 1, reported)
        self.assertIn("no Redis Sentinel named the master of the set: they refused the login", reported[0])

        # With the sentinels' password, the same set greylists.
        s = GreylistServer(CONFIG, ["--store", sentinel_url(topology, options="sentinel_password=watch")],
                           separate_stderr=True).start()
        self.addCleanup(s.cleanup)
        self.assertEqual(rcpt(s.port, "a@example.org", "b@example.com"), GREYLISTED)

    def test_one_sentinel_refusing_the_login_is_reported_once_and_the_others_are_used(self):
        topology = SentinelSet(replicas=1, sentinels=3, password="pw")
        self.addCleanup(topology.cleanup)
        topology.wait_ready()
        # The first sentinel of the URL now wants a password that Grey was not given.
        first = topology.sentinel_addresses[0]
        topology.server_at(first).ask("ACL", "SETUSER", "default", "resetpass", ">other")
        s = GreylistServer(CONFIG, ["--store", sentinel_url(topology)], separate_stderr=True).start()
        self.addCleanup(s.cleanup)
        self.assertEqual(rcpt(s.port, "a@example.org", "b@example.com"), GREYLISTED)
        self.assertEqual(rcpt(s.port, "a@example.org", "c@example.com"), GREYLISTED)
        s.stop()
        reported = [line for line in s.errors().splitlines() if line.startswith("grey: ")]
        self.assertEqual(reported, [
            f"grey: warning: Redis Sentinel {first[0]}:{first[1]} did not name the master of {topology.master_name} "
            "(the others did): Redis requires AUTH (NOAUTH) and no password is configured"])

    def test_a_master_demoted_under_a_live_connection_is_left_for_the_new_one(self):
        topology = SentinelSet(password="pw")
        self.addCleanup(topology.cleanup)
        topology.wait_ready()
        s = GreylistServer(CONFIG, ["--store", sentinel_url(topology)], separate_stderr=True).start()
        self.addCleanup(s.cleanup)
        self.assertEqual(rcpt(s.port, "before@example.org", "b@example.com"), GREYLISTED)  # connected
        old = topology.master_address()
        # A failover the operator asks for: the old master lives on, turned replica of the new
        # one (by the sentinels in time; here at once, as they would), and answers Grey's next
        # write on the connection it still has with READONLY.
        topology.sentinels[0].ask("SENTINEL", "FAILOVER", topology.master_name)
        new, _ = topology.wait_for_failover(old)
        topology.server_at(old).ask("REPLICAOF", new[0], new[1])
        deadline = time.monotonic() + 10

        def role(address):
            try:
                return topology.server_at(address).ask("ROLE")[0]
            except OSError:  # the node closes its connections as it turns replica
                return None
        while role(old) != "slave" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(role(old), "slave")
        answers = []
        while (not answers or answers[-1] != GREYLISTED) and time.monotonic() < deadline:
            answers.append(rcpt(s.port, f"after{len(answers)}@example.org", "b@example.com"))
        # The write on the old connection: READONLY, a deferral, the connection ended; the next
        # asks the sentinels and greylists on the new master.
        self.assertEqual(answers, [UNAVAILABLE, GREYLISTED])
        self.assertTrue(topology.server_at(new).ask("KEYS", "grey:t:*after1@example.org*"))
        s.stop()
        reported = [line for line in s.errors().splitlines() if line.startswith("grey: ")]
        self.assertEqual(reported, [
            "grey: error: greylist store unavailable: the Redis node is not a master (READONLY: a failover "
            "under way?)", "grey: notice: greylist store available again"])

    def test_greylist_admin_lists_whitelists_and_removes_through_the_sentinels(self):
        topology = SentinelSet(password="pw")
        self.addCleanup(topology.cleanup)
        topology.wait_ready()
        url = sentinel_url(topology)

        def admin(*args):
            done = subprocess.run([ADMIN, "--store", url, *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(done.returncode, 0, done.stderr)
            return done.stdout

        triplet = ("192.0.2.1", "a@example.org", "b@example.com")
        admin("whitelist", *triplet)
        self.assertIn("192.0.2.0/24  <a@example.org>  b@example.com  passed", admin("list"))
        # The record is on the master the sentinels name.
        master = topology.server_at(topology.master_address())
        self.assertEqual(len(master.ask("KEYS", "grey:t:*")), 1)
        admin("remove", *triplet)
        self.assertIn("0 entries", admin("list"))


if __name__ == "__main__":
    unittest.main()
