"""Self-tests of redis_topology.py, the harness that starts real Sentinel sets and Redis Clusters
on loopback for the tests of Grey's Redis store: the topologies come up, replicate, fail over
within a few seconds of a master's SIGKILL, keep their keys across a failover and a reshard,
and refuse a client without the password. Every process is stopped by the test that started it."""
import sys
import time
import unittest

from redis_topology import CLUSTER_SLOTS, RedisCluster, RedisError, SentinelSet, ask, info, key_slot, redis_cli

FAILOVER_BOUND = 15  # seconds: with a 1 s down-after, a failover takes two to three


def report(what, seconds):
    print(f"\n  {what} in {seconds:.2f} s", file=sys.stderr, end=" ")


class SentinelSetTest(unittest.TestCase):
    def sentinel_set(self, **kwargs):
        s = SentinelSet(**kwargs)
        self.addCleanup(s.cleanup)
        s.wait_ready(timeout=30)
        return s

    def test_comes_up_and_the_replica_has_what_the_master_was_given(self):
        s = self.sentinel_set(replicas=1, sentinels=3)
        self.assertEqual(len(s.sentinel_addresses), 3)
        self.assertTrue(all(host == "127.0.0.1" and port not in (6379, 26379) for host, port in s.sentinel_addresses))
        master = s.master_address()
        replicas = s.replica_addresses()
        self.assertEqual(len(replicas), 1)
        self.assertNotEqual(replicas[0], master)
        self.assertEqual(ask(master[1], "ROLE")[0], "master")
        self.assertEqual(ask(replicas[0][1], "ROLE")[0], "slave")

        self.assertEqual(ask(master[1], "SET", "greeting", "hello"), "OK")
        self.assertEqual(ask(master[1], "WAIT", 1, 5000), 1)  # acknowledged by the replica
        self.assertEqual(ask(replicas[0][1], "GET", "greeting"), "hello")
        self.assertEqual(redis_cli(replicas[0][1], "GET", "greeting").strip(), "hello")

    def test_a_killed_master_is_replaced_by_its_replica_which_takes_writes(self):
        s = self.sentinel_set(replicas=1, sentinels=3)
        master = s.master_address()
        replica, = s.replica_addresses()
        ask(master[1], "SET", "before", "failover")
        self.assertEqual(ask(master[1], "WAIT", 1, 5000), 1)

        old = s.kill_master()
        self.assertEqual(old, master)
        new, seconds = s.wait_for_failover(old, timeout=FAILOVER_BOUND)
        report("Sentinel failover", seconds)
        self.assertEqual(new, replica)
        self.assertLess(seconds, FAILOVER_BOUND)
        self.assertEqual(ask(new[1], "GET", "before"), "failover")
        self.assertEqual(ask(new[1], "SET", "after", "failover"), "OK")
        self.assertEqual(ask(new[1], "GET", "after"), "failover")

        # The old master, started again, follows the new one.
        s.restart(old)
        s.wait_ready(timeout=30)
        self.assertEqual(s.master_address(), new)
        self.assertEqual(s.replica_addresses(), [old])
        self.assertEqual(ask(new[1], "WAIT", 1, 5000), 1)
        self.assertEqual(ask(old[1], "GET", "after"), "failover")

    def test_with_passwords_a_client_without_them_is_refused(self):
        s = self.sentinel_set(password="data-secret", sentinel_password="sentinel-secret")
        master = s.master_address()
        self.assertIn("NOAUTH", redis_cli(master[1], "SET", "k", "v"))
        self.assertRaisesRegex(RedisError, "WRONGPASS", ask, master[1], "SET", "k", "v", password="wrong")
        self.assertEqual(redis_cli(master[1], "SET", "k", "v", password="data-secret").strip(), "OK")
        sentinel_port = s.sentinel_addresses[0][1]
        self.assertIn("NOAUTH", redis_cli(sentinel_port, "SENTINEL", "get-master-addr-by-name", "mymaster"))
        self.assertEqual(redis_cli(sentinel_port, "SENTINEL", "get-master-addr-by-name", "mymaster",
                                   password="sentinel-secret").split(), [master[0], str(master[1])])
        # The replica replicates with the password (masterauth), and a failover works with it.
        replica, = s.replica_addresses()
        self.assertEqual(ask(master[1], "WAIT", 1, 5000, password="data-secret"), 1)
        self.assertEqual(ask(replica[1], "GET", "k", password="data-secret"), "v")
        new, seconds = s.wait_for_failover(s.kill_master(), timeout=FAILOVER_BOUND)
        report("Sentinel failover with passwords", seconds)
        self.assertEqual(new, replica)
        self.assertEqual(ask(new[1], "GET", "k", password="data-secret"), "v")


if __name__ == "__main__":
    unittest.main()
