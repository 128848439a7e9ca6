"""Self-tests of redis_topology.py, the harness that starts real Sentinel sets and Redis Clusters
on loopback for the tests of Grey's Redis store: the topologies come up, replicate, fail over
within a few seconds of a master's SIGKILL, keep their keys across a failover and a reshard,
and refuse a client without the password. Every process is stopped by the test that started it."""
import sys
import time
import unittest

from redis_topology import CLUSTER_SLOTS, RedisCluster, RedisError, SentinelSet, ask, info, key_slot, redis_cli

FAILOVER_BOUND = 15  # seconds: with a 2 s down-after, a failover takes three to four


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

        # The old master, started again, follows the new one. (On a loaded machine the
        # sentinels may miss the new master's answers and fail over once more, back to the
        # old node: either way the two are master and replica again, with the same data.)
        s.restart(old)
        s.wait_ready(timeout=30)
        master = s.master_address()
        self.assertIn(master, (new, old))
        replica = old if master == new else new
        self.assertEqual(s.replica_addresses(), [replica])
        self.assertEqual(ask(master[1], "WAIT", 1, 5000), 1)
        self.assertEqual(ask(replica[1], "GET", "after"), "failover")

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


def write_keys(cluster, values):
    """SET every key to its value through redis-cli -c, in one process: the replies."""
    return cluster.cli(input="".join(f"SET {k} {v}\n" for k, v in values.items())).splitlines()


def read_keys(cluster, keys):
    """GET every key through redis-cli -c, in one process: {key: value or ''}."""
    return dict(zip(keys, cluster.cli(input="".join(f"GET {k}\n" for k in keys)).splitlines()))


def wait_replicated(cluster):
    """Until every master's replicas have acknowledged its writes (WAIT), so that a replica
    taking over has them."""
    for n in cluster.nodes():
        if n.role == "master" and not n.failed:
            replicas = sum(1 for r in cluster.nodes() if r.master_id == n.id and not r.failed)
            assert ask(n.address[1], "WAIT", replicas, 5000) == replicas, n


class ClusterTest(unittest.TestCase):
    """One cluster for the tests that only read and write keys."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = RedisCluster.started(masters=3, replicas_per_master=1)

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_three_masters_with_a_replica_each_cover_every_slot_once(self):
        nodes = self.cluster.nodes()
        masters = [n for n in nodes if n.role == "master"]
        replicas = [n for n in nodes if n.role == "replica"]
        self.assertEqual(len(masters), 3)
        self.assertEqual(sorted(r.master_id for r in replicas), sorted(m.id for m in masters))
        covered = [s for m in masters for s in m.slots]
        self.assertEqual(len(covered), CLUSTER_SLOTS)
        self.assertEqual(set(covered), set(range(CLUSTER_SLOTS)))
        self.assertEqual(sorted(n.address for n in nodes), sorted(self.cluster.seed_addresses))
        self.assertTrue(all(host == "127.0.0.1" and port not in (6379, 16379) for host, port in self.cluster.seed_addresses))
        for n in nodes:
            self.assertEqual(n.link_state, "connected")
            self.assertEqual(info(n.address[1], "cluster")["cluster_enabled"], "1")

    def test_keys_in_different_slots_are_written_and_read_back_through_redirections(self):
        values = {f"spread:{i}": f"value-{i}" for i in range(60)}
        owners = {self.cluster.master_for_slot(key_slot(k)) for k in values}
        self.assertEqual(len(owners), 3, "the keys land on every master")
        self.assertEqual(write_keys(self.cluster, values), ["OK"] * len(values))
        self.assertEqual(read_keys(self.cluster, list(values)), values)
        for key, value in values.items():  # each is on the master that serves its slot
            self.assertEqual(ask(self.cluster.master_for_slot(key_slot(key))[1], "GET", key), value)

    def test_the_computed_slot_is_the_clusters_and_a_hash_tag_shares_one(self):
        keys = ["", "foo", "{x}a", "{x}b", "a{x}", "{}x", "a{}b", "foo{{bar}}zap", "{a}{b}", "x{y}", "}{x}",
                "{x", "greylist:triplet:1.2.3.4", "é{ü}"] + [f"k{i}" for i in range(200)]
        for k in keys:
            self.assertEqual(key_slot(k), self.cluster.key_slot(k), k)
        self.assertEqual(key_slot("foo"), 12182)  # the specification's example
        self.assertEqual(self.cluster.key_slot("{x}one"), self.cluster.key_slot("{x}two"))
        self.assertEqual(key_slot("{x}one"), key_slot("x"))
        # A command on several keys needs them in one slot: a hash tag puts them there.
        self.assertEqual(self.cluster.cli("MSET", "{x}one", "1", "{x}two", "2").strip(), "OK")
        self.assertEqual(self.cluster.cli("MGET", "{x}one", "{x}two").split(), ["1", "2"])
        self.assertNotEqual(key_slot("one"), key_slot("two"))
        self.assertIn("CROSSSLOT", self.cluster.cli("MSET", "one", "1", "two", "2"))


class ClusterChangeTest(unittest.TestCase):
    """A cluster of each test's own: these move slots and kill nodes."""

    def setUp(self):
        self.cluster = RedisCluster(masters=3, replicas_per_master=1)
        self.addCleanup(self.cluster.cleanup)
        self.cluster.wait_ok(timeout=30)

    def test_a_reshard_moves_slots_under_load_and_every_key_stays_readable(self):
        values = {f"before:{i}": str(i) for i in range(1500)}
        self.assertEqual(write_keys(self.cluster, values), ["OK"] * len(values))
        masters = [n for n in self.cluster.nodes() if n.role == "master"]
        source, target = masters[0], masters[1]
        moving = 1000
        started = time.monotonic()
        reshard = self.cluster.start_reshard(moving, source.id, target.id)

        # Load while the slots migrate: keys written and read back in rounds, following the
        # MOVED and ASK redirections of slots in flight.
        rounds_during, mismatches, written = 0, [], {}
        for round_number in range(200):
            if reshard.done():
                break
            batch = {f"during:{round_number}:{i}": f"{round_number}-{i}" for i in range(100)}
            replies = write_keys(self.cluster, batch)
            if replies != ["OK"] * len(batch):
                mismatches.append(("write", round_number, [r for r in replies if r != "OK"][:3]))
            written.update(batch)
            sample = list(values)[round_number * 100 % len(values):][:100] + list(batch)
            got = read_keys(self.cluster, sample)
            expected = {k: {**values, **written}[k] for k in sample}
            if got != expected:
                mismatches.append(("read", round_number, [(k, got.get(k)) for k in sample if got.get(k) != expected[k]][:3]))
            rounds_during += not reshard.done()
        output = reshard.wait(timeout=120)
        report(f"Reshard of {moving} slots, {rounds_during} rounds of load meanwhile,", time.monotonic() - started)
        self.assertIn("Moving slot", output)
        self.assertGreater(rounds_during, 0, "the load ran while the slots moved")
        self.assertEqual(mismatches, [])

        self.cluster.wait_ok(timeout=30)
        after = {n.id: n for n in self.cluster.nodes()}
        moved = source.slots - after[source.id].slots
        self.assertEqual(len(moved), moving)
        self.assertEqual(after[target.id].slots, target.slots | moved)
        self.assertEqual(after[masters[2].id].slots, masters[2].slots)
        # Every node agrees, and the keys of the moved slots are on the target now.
        for n in after.values():
            self.assertEqual({m.id: m.slots for m in self.cluster.nodes(n.address) if m.role == "master"},
                             {m.id: m.slots for m in after.values() if m.role == "master"})
        moved_keys = [k for k in values if key_slot(k) in moved]
        self.assertGreater(len(moved_keys), 0)
        self.assertEqual(ask(target.address[1], "GET", moved_keys[0]), values[moved_keys[0]])
        self.assertEqual(read_keys(self.cluster, list(values)), values)
        self.assertEqual(read_keys(self.cluster, list(written)), written)

    def test_a_killed_master_is_replaced_by_its_replica_and_its_keys_stay_readable(self):
        values = {f"kept:{i}": f"v{i}" for i in range(300)}
        self.assertEqual(write_keys(self.cluster, values), ["OK"] * len(values))
        wait_replicated(self.cluster)
        slot = key_slot("kept:0")
        before = self.cluster.nodes()
        master = next(n for n in before if n.role == "master" and n.serves(slot))
        replica = next(n for n in before if n.master_id == master.id)

        old = self.cluster.kill_master_of_slot(slot)
        self.assertEqual(old, master.address)
        new, seconds = self.cluster.wait_for_promotion(slot, old, timeout=FAILOVER_BOUND)
        report("Cluster promotion", seconds)
        self.assertEqual(new, replica.address)
        self.assertLess(seconds, FAILOVER_BOUND)
        self.assertEqual(self.cluster.master_for_slot(slot), new)
        self.assertEqual({s for n in self.cluster.nodes() if n.role == "master" and not n.failed for s in n.slots},
                         set(range(CLUSTER_SLOTS)))
        self.assertIn("fail", next(n for n in self.cluster.nodes() if n.id == master.id).flags)
        # Every node names the new master by now, but redis-cli may still meet one that sends it
        # to the old (a nil where a key is): read again, for a few seconds at most.
        deadline = time.monotonic() + 5
        read = read_keys(self.cluster, list(values))
        while read != values and time.monotonic() < deadline:
            time.sleep(0.1)
            read = read_keys(self.cluster, list(values))
        self.assertEqual(read, values)
        self.assertEqual(self.cluster.cli("SET", "kept:0", "after").strip(), "OK")
        self.assertEqual(ask(new[1], "GET", "kept:0"), "after")


if __name__ == "__main__":
    unittest.main()
