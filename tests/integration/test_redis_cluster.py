"""The Redis store in a Redis Cluster: greylist_server given some of its nodes (redis-cluster://),
against a real cluster of three masters with a replica each, started here on loopback from
Debian's redis-server. A client group's keys carry the group as hash tag, so they live on the
master of its slot, and greylist_admin finds entries on every master. Every SMTP client here
comes from 127.0.0.1, so every triplet of greylist_server's SMTP sessions lands in one slot;
greylist_server as a Postfix policy service, asked for clients of many /24 groups, spreads its
keys over all slots. Under a load of first sightings, slots are resharded (the records move
with them, ASK and MOVED are followed, a script on a half-moved slot's keys refused with
TRYAGAIN is deferred) and the master of the loaded slot is killed: clients see only 451 4.7.1
or 451 4.3.0 (DEFER_IF_PERMIT from the policy service), never a pass, Grey follows the promoted
replica by itself, and triplets greylisted before pass after. A cluster that is down
(CLUSTERDOWN) or a wrong password defers with 451 4.3.0 and is said once on standard error."""
import re
import subprocess
import time
import unittest

from redis_topology import RedisCluster, info, info_cluster, key_slot
from test_greylist import ADMIN, GreylistServer
from test_policy import DEFER, DUNNO, PolicyClient, PolicyServer, UNAVAILABLE as POLICY_UNAVAILABLE, rcpt as request
from test_redis_production import CONFIG, GREYLISTED, UNAVAILABLE, RcptLoad, rcpt
from test_redis_sentinel import PASSED

LOCAL_GROUP = "127.0.0.0/24"  # the client group of every SMTP session here
LOCAL_SLOT = key_slot("{" + LOCAL_GROUP + "}")
DELAY = 2  # CONFIG's
POLICY_DELAY = 1  # PolicyServer's


def cluster_url(cluster, password="pw", seeds=2):
    nodes = ",".join(f"{host}:{port}" for host, port in cluster.seed_addresses[:seeds])
    return f"redis-cluster://:{password}@{nodes}"


def group_of(address):
    """The client group (/24) of an IPv4 address, as Grey keys it."""
    return address.rsplit(".", 1)[0] + ".0/24"


def slot_of(address):
    return key_slot("{" + group_of(address) + "}")


def triplet_key(client, sender, recipient):
    return f"grey:t:{{{group_of(client)}}}\t{sender}\t{recipient}"


def reported(server):
    """greylist_server's diagnostic lines (its own, not the session log's)."""
    return [line for line in server.errors().splitlines() if line.startswith("grey: ")]


def policy_server(test, url):
    """greylist_server as a policy service on the cluster, its session log in a file (a pipe that
    nobody reads would fill up and hold the server's log writes)."""
    p = PolicyServer("--log", "sessions.log", store=url)
    test.addCleanup(p.cleanup)
    return p


class PolicyLoad(RcptLoad):
    """RcptLoad's bookkeeping for policy requests: threads, each on a connection of its own, ask
    for first sightings, each of a client of a new /24 group, so that the keys spread over every
    slot, or all of `client` when given. `groups` holds (time, client address) of each answer,
    in step with `answers`."""

    def __init__(self, port, threads=2, max_sessions=2000, pause=0.005, client=None):
        self.groups, self.client = [], client
        super().__init__(port, threads, max_sessions, pause)

    def _load(self, n):
        connection = None
        for i in range(self.max_sessions):
            if self.stopping.is_set():
                break
            g = n * self.max_sessions + i
            address = self.client or f"10.{g // 256 % 256}.{g % 256}.7"
            with self.lock:
                self.started += 1
            try:
                if connection is None:
                    connection = PolicyClient(self.port, timeout=20)
                a = connection.ask(request(f"rcpt{i}@example.com", f"policy{n}-{i}@example.org", address))
                if a is None:
                    raise ConnectionError("the policy server closed the connection")
            except Exception as e:  # counted as a request without an answer
                a = f"{type(e).__name__}: {e}"
                if connection is not None:
                    connection.close()
                connection = None
            with self.lock:
                now = time.monotonic()
                self.answers.append((now, a))
                self.groups.append((now, address))
            time.sleep(self.pause)
        if connection is not None:
            connection.close()


class ClusterBasics(unittest.TestCase):
    """One cluster with a password for the tests that change no node: each starts with it empty."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = RedisCluster.started(masters=3, replicas_per_master=1, password="pw")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def setUp(self):
        self.masters = self.cluster.flush()

    def server(self, url=None):
        s = GreylistServer(CONFIG, ["--store", url or cluster_url(self.cluster)], separate_stderr=True).start()
        self.addCleanup(s.cleanup)
        return s

    def keys_on(self, address, pattern="grey:*"):
        return sorted(self.cluster.server_at(address).ask("KEYS", pattern))

    def admin(self, *args, expect=0):
        done = subprocess.run([ADMIN, "--store", cluster_url(self.cluster), *args], capture_output=True, text=True,
                              timeout=30)
        self.assertEqual(done.returncode, expect, done.stdout + done.stderr)
        return done.stdout

    def test_a_first_sighting_is_greylisted_on_its_slots_master_and_passes_after_the_delay(self):
        s = self.server()
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        first_seen = time.monotonic()
        # The record is on the master of the group's slot, the group as its hash tag, and on no
        # other master.
        home = self.cluster.master_for_slot(LOCAL_SLOT)
        key = triplet_key("127.0.0.1", "alice@example.org", "bob@example.com")
        self.assertEqual(self.keys_on(home), [key])
        self.assertEqual(self.cluster.key_slot(key), LOCAL_SLOT)
        for m in self.masters:
            if m.address != home:
                self.assertEqual(self.keys_on(m.address), [], m)

        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED, "a retry before the delay")
        time.sleep(max(0.0, first_seen + DELAY + 0.2 - time.monotonic()))
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), PASSED)
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), PASSED, "known now")
        self.assertEqual(rcpt(s.port, "carol@example.org", "bob@example.com"), GREYLISTED)
        self.assertEqual(len(self.keys_on(home)), 2)
        s.stop()
        self.assertEqual(reported(s), [])

    def test_greylist_admin_lists_whitelists_searches_and_removes_on_every_master(self):
        # A client for each master: their groups' slots are served by different masters.
        clients = {}
        for i in range(256):
            address = f"198.51.{i}.1"
            clients.setdefault(self.cluster.master_for_slot(slot_of(address)), address)
            if len(clients) == len(self.masters):
                break
        self.assertEqual(len(clients), 3)
        for address in clients.values():
            self.admin("whitelist", address, "a@example.org", "b@example.com")
        listed = self.admin("list")
        for master, address in clients.items():
            self.assertRegex(listed, rf"(?m)^{re.escape(group_of(address))}\s+<a@example\.org>\s+b@example\.com"
                                     r"\s+passed\s")
            self.assertEqual(self.keys_on(master), [triplet_key(address, "a@example.org", "b@example.com")])
        self.assertIn("3 entries", listed)

        # One greylisted by greylist_server, one whitelisted for 127.0.0.1, which then passes at once.
        s = self.server()
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        self.admin("whitelist", "127.0.0.1", "carol@example.org", "bob@example.com")
        self.assertEqual(rcpt(s.port, "carol@example.org", "bob@example.com"), PASSED)
        listed = self.admin("list")
        self.assertIn("5 entries", listed)
        self.assertRegex(listed, r"127\.0\.0\.0/24\s+<alice@example\.org>\s+bob@example\.com\s+waiting")

        found = self.admin("search", "198.51.")
        self.assertEqual(sum(group_of(a) in found for a in clients.values()), 3, found)
        self.assertNotIn("alice@example.org", found)
        found = self.admin("search", "carol")
        self.assertIn("carol@example.org", found)
        self.assertNotIn("198.51.", found)

        # Removed from its master: the others keep theirs, and greylist_server greylists it again.
        self.admin("remove", "127.0.0.1", "carol@example.org", "bob@example.com")
        self.assertEqual(rcpt(s.port, "carol@example.org", "bob@example.com"), GREYLISTED,
                         "removed: a first sight again")
        master, address = next(iter(clients.items()))
        self.admin("remove", address, "a@example.org", "b@example.com")
        self.assertEqual(self.keys_on(master, "grey:t:{198.51.*"), [])
        self.admin("remove", address, "a@example.org", "b@example.com", expect=1)
        listed = self.admin("list")
        self.assertNotIn(group_of(address), listed)
        self.assertIn("4 entries", listed)

    def test_a_wrong_password_defers_with_4_3_0_and_says_so_once(self):
        s = self.server(cluster_url(self.cluster, password="wrong"))
        for i in range(3):
            self.assertEqual(rcpt(s.port, f"s{i}@example.org", "bob@example.com"), UNAVAILABLE)
        s.stop()
        self.assertEqual(reported(s), ["grey: error: greylist store unavailable: Redis refused AUTH: wrong user or "
                                       "password, or the user is disabled"])
        for m in self.masters:
            self.assertEqual(self.keys_on(m.address), [])


class ClusterChanges(unittest.TestCase):
    """A cluster of each test's own, resharded or with nodes killed under a load of first
    sightings: through greylist_server's SMTP sessions (one slot, LOCAL_SLOT) and through it as a
    policy service (clients of a new /24 group each time: every slot)."""

    SMTP_THREADS = 4
    MAX_SESSIONS = 1000  # per thread: bounds the load whatever happens

    def setUp(self):
        self.cluster = RedisCluster(masters=3, replicas_per_master=1, password="pw")
        self.addCleanup(self.cluster.cleanup)
        self.cluster.wait_ok()
        self.url = cluster_url(self.cluster)
        self.smtp = GreylistServer(CONFIG, ["--store", self.url], separate_stderr=True).start()
        self.addCleanup(self.smtp.cleanup)

    def start_loads(self, local_policy=False):
        """The SMTP load and the policy load, and with `local_policy` a policy load of clients of
        the SMTP sessions' group."""
        loads = [RcptLoad(self.smtp.port, self.SMTP_THREADS, self.MAX_SESSIONS), PolicyLoad(self.policy.port)]
        if local_policy:
            loads.append(PolicyLoad(self.policy.port, threads=1, client="127.0.0.1"))
        for load in loads:
            self.addCleanup(load.stop)
        return loads

    def check_answers(self, smtp, *policy):
        """Every session and request answered, and only with a deferral: first sightings all."""
        self.assertIsNone(self.smtp.proc.poll(), "greylist_server must not have exited")
        self.assertIsNone(self.policy.proc.poll(), "the policy server must not have exited")
        for load in (smtp, *policy):
            allowed = {GREYLISTED, UNAVAILABLE} if load is smtp else {DEFER, POLICY_UNAVAILABLE}
            answers = [a for _, a in load.answers]
            self.assertEqual(len(answers), load.started, "every session got an answer")
            self.assertEqual({a for a in answers if a not in allowed}, set(),
                             "a first sight is greylisted or deferred, never passed")

    def test_a_reshard_mid_load_moves_the_records_and_never_passes_a_first_sighting(self):
        self.policy = policy_server(self, self.url)
        source_address = self.cluster.master_for_slot(LOCAL_SLOT)
        source = self.cluster.server_at(source_address)
        nodes = self.cluster.nodes()
        source_node = next(n for n in nodes if n.address == source_address)
        target_node = next(n for n in nodes if n.role == "master" and n.address != source_address)
        target = self.cluster.server_at(target_node.address)
        # redis-cli reshard takes the source's slots from its lowest: enough of them that
        # LOCAL_SLOT moves, and more after it, for the load to meet the move before and after.
        ordered = sorted(source_node.slots)
        moving = min(len(ordered), ordered.index(LOCAL_SLOT) + 1 + 600)
        moved = set(ordered[:moving])

        # The local group passes once through the policy service: its auto-whitelist record is
        # then in LOCAL_SLOT too, and the policy service's every new triplet of that group is a
        # script on two keys, which Redis refuses while their slot is half-moved (TRYAGAIN).
        policy_client = PolicyClient(self.policy.port)
        self.addCleanup(policy_client.close)
        self.assertEqual(policy_client.ask(request("bob@example.com", "local@example.org", "127.0.0.1")), DEFER)
        local_seen = time.monotonic()
        # A busy client group: 20 000 more keys in its slot, so that moving them takes a while
        # and the load meets the slot half-moved (new keys are asked for on the target: ASK).
        source.ask("EVAL", "for i = 1, tonumber(ARGV[1]) do redis.call('SET', KEYS[1] .. i, 'x') end return 1",
                   1, "filler:{" + LOCAL_GROUP + "}:", 20000)
        # Triplets greylisted before the reshard, in slots that move: their records must move too.
        self.assertEqual(rcpt(self.smtp.port, "early@example.org", "kept@example.com"), GREYLISTED)
        early_client = next(f"10.250.{i}.9" for i in range(256) if slot_of(f"10.250.{i}.9") in moved)
        self.assertEqual(policy_client.ask(request("kept@example.com", "early@example.org", early_client)), DEFER)
        first_seen = time.monotonic()
        time.sleep(max(0.0, local_seen + POLICY_DELAY + 0.2 - time.monotonic()))
        self.assertEqual(policy_client.ask(request("bob@example.com", "local@example.org", "127.0.0.1",
                                                   instance="2.2")), DUNNO)
        self.assertEqual(source.ask("EXISTS", f"grey:c:{{{LOCAL_GROUP}}}"), 1, "the group's pass is counted")

        smtp, policy, local = self.start_loads(local_policy=True)
        try:
            time.sleep(0.5)
            started = time.monotonic()
            reshard = self.cluster.start_reshard(moving, source_node.id, target_node.id)
            output = reshard.wait(timeout=120)
            ended = time.monotonic()
            self.cluster.wait_ok()
            time.sleep(0.5)  # load on the resharded cluster
        finally:
            for load in (smtp, policy, local):
                load.stop()
        self.assertIn("Moving slot", output)
        self.check_answers(smtp, policy, local)
        self.assertEqual(self.cluster.master_for_slot(LOCAL_SLOT), target_node.address)

        unavailable = [sum(a == u for _, a in load.answers) for load, u in
                       ((smtp, UNAVAILABLE), (policy, POLICY_UNAVAILABLE), (local, POLICY_UNAVAILABLE))]
        during = [a for t, a in smtp.answers if started < t < ended]
        policy_in_moved = sum(1 for t, address in policy.groups if started < t < ended and slot_of(address) in moved)
        asked = info(target.port, "commandstats", "pw").get("cmdstat_asking", "calls=0")
        source_errors, target_errors = info(source.port, "errorstats", "pw"), info(target.port, "errorstats", "pw")
        refused = [e.get("errorstat_TRYAGAIN", "count=0") for e in (source_errors, target_errors)]
        print(f"\nreshard of {moving} slots in {ended - started:.2f} s: {len(during)} SMTP sessions meanwhile, "
              f"{policy_in_moved} policy requests in moving slots; ASKING on the target: {asked.split(',')[0]}; "
              f"from the source: {source_errors.get('errorstat_ASK', 'count=0')} ASK, "
              f"{source_errors.get('errorstat_MOVED', 'count=0')} MOVED; TRYAGAIN: source {refused[0]}, target "
              f"{refused[1]}; UNAVAILABLE: {unavailable[0]} SMTP, {unavailable[1]} policy, "
              f"{unavailable[2]} policy for the local group", flush=True)
        self.assertTrue(during, "the load ran while the slots moved")
        self.assertGreater(policy_in_moved, 0, "the policy load asked for keys of moving slots")
        # Grey met the loaded slot half-moved (ASK, then ASKING on the target) and moved
        # (MOVED), and followed both; its two-key scripts were refused meanwhile (TRYAGAIN),
        # tried again a moment later, and deferred with 4.3.0 if still refused.
        self.assertNotEqual(asked, "calls=0", "no ASK was followed")
        self.assertIn("errorstat_MOVED", source_errors)
        self.assertNotEqual(refused, ["count=0", "count=0"], "no script met its slot half-moved")
        after = [a for t, a in smtp.answers if t > ended + 0.2]
        self.assertTrue(after and all(a == GREYLISTED for a in after), after[:5])
        after = [a for t, a in local.answers if t > ended + 0.2]
        self.assertTrue(after and all(a == DEFER for a in after), after[:5])
        self.assertEqual(rcpt(self.smtp.port, "late@example.org", "bob@example.com"), GREYLISTED)

        # The records moved with their slots, the busy group's with the rest of its keys, and
        # none was lost: one for each first sighting greylisted, and perhaps one for a deferral
        # whose answer was lost after its write.
        self.assertEqual(source.ask("CLUSTER", "COUNTKEYSINSLOT", LOCAL_SLOT), 0)
        local_records = (20000 + 1 + 3 + sum(a == GREYLISTED for _, a in smtp.answers)  # fillers, group, 3 early/late
                         + sum(a == DEFER for _, a in local.answers))
        in_slot = target.ask("CLUSTER", "COUNTKEYSINSLOT", LOCAL_SLOT)
        self.assertGreaterEqual(in_slot, local_records)
        self.assertLessEqual(in_slot, local_records + unavailable[0] + unavailable[2])
        policy_records = sum(len(self.cluster.server_at(n.address).ask("KEYS", "grey:t:{10.*"))
                             for n in self.cluster.nodes() if n.role == "master")
        self.assertGreaterEqual(policy_records, 1 + sum(a == DEFER for _, a in policy.answers))
        self.assertLessEqual(policy_records, 1 + sum(a == DEFER for _, a in policy.answers) + unavailable[1])
        self.assertEqual(target.ask("EXISTS", triplet_key("127.0.0.1", "early@example.org", "kept@example.com")), 1)
        self.assertEqual(target.ask("EXISTS", triplet_key(early_client, "early@example.org", "kept@example.com")), 1)
        time.sleep(max(0.0, first_seen + DELAY + 0.2 - time.monotonic()))
        self.assertEqual(rcpt(self.smtp.port, "early@example.org", "kept@example.com"), PASSED)
        self.assertEqual(policy_client.ask(request("kept@example.com", "early@example.org", early_client,
                                                   instance="3.3")), DUNNO)

        # The policy service says why it deferred; greylist_server, only if it did.
        self.policy.stop()
        if unavailable[1] or unavailable[2]:
            self.assertEqual(reported(self.policy)[0], "grey: error: greylist store unavailable: the key's Redis "
                                                       "Cluster slot is being migrated (TRYAGAIN)")
        else:
            self.assertEqual(reported(self.policy), [])
        self.smtp.stop()
        if not unavailable[0]:
            self.assertEqual(reported(self.smtp), [])

    def test_a_master_killed_mid_load_defers_then_follows_the_promoted_replica(self):
        self.policy = policy_server(self, self.url)
        master = next(n for n in self.cluster.nodes() if n.role == "master" and n.serves(LOCAL_SLOT))
        replica = next(n for n in self.cluster.nodes() if n.master_id == master.id)
        # A triplet greylisted before the kill, and on the replica before the master dies.
        self.assertEqual(rcpt(self.smtp.port, "early@example.org", "kept@example.com"), GREYLISTED)
        first_seen = time.monotonic()
        kept = triplet_key("127.0.0.1", "early@example.org", "kept@example.com")
        replica_server = self.cluster.server_at(replica.address)
        deadline = time.monotonic() + 10
        while not replica_server.ask("KEYS", kept) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(replica_server.ask("KEYS", kept), [kept], "the record never reached the replica")

        smtp, policy = self.start_loads()
        try:
            time.sleep(1.0)
            killing = time.monotonic()
            old = self.cluster.kill_master_of_slot(LOCAL_SLOT)
            killed = self.cluster.killed_at  # once it has died: what the promotion is timed from
            new, promotion_seconds = self.cluster.wait_for_promotion(LOCAL_SLOT, old)
            promoted = killed + promotion_seconds
            recovered = None
            deadline = promoted + 10
            while time.monotonic() < deadline and recovered is None:
                time.sleep(0.05)
                recovered = smtp.first(promoted, GREYLISTED)
            time.sleep(1.0)  # load on the promoted replica
        finally:
            smtp.stop()
            policy.stop()
        self.assertEqual(old, master.address)
        self.assertEqual(new, replica.address)
        self.check_answers(smtp, policy)
        before = [a for t, a in smtp.answers if t < killing]
        self.assertTrue(before and all(a == GREYLISTED for a in before), before[:5])
        self.assertIsNotNone(recovered, "greylisting did not resume within 10 s of the promotion")

        # Grey finds the new master by itself: the cluster's promotion, then at most one wait
        # between attempts (1 s at most in a cluster) and a reading of the slot map.
        recovery = recovered - killed
        smtp_outage = [t for t, a in smtp.answers if a == UNAVAILABLE]
        policy_outage = [t for t, a in policy.answers if a == POLICY_UNAVAILABLE]
        print(f"\npromotion by the cluster {promotion_seconds:.2f} s after the kill; greylisting again "
              f"{recovery:.2f} s after it; UNAVAILABLE: {len(smtp_outage)} SMTP (the last "
              f"{max(smtp_outage, default=killed) - killed:.2f} s after the kill), {len(policy_outage)} policy "
              f"(the last {max(policy_outage, default=killed) - killed:.2f} s after it)", flush=True)
        self.assertTrue(smtp_outage, "the loaded slot's master was down: its sessions must have been deferred")
        self.assertLess(recovery, promotion_seconds + 1.5)
        self.assertLess(max(smtp_outage) - killed, promotion_seconds + 1.5)
        self.assertLess(max(policy_outage, default=killed) - killed, promotion_seconds + 1.5)
        after = [a for t, a in smtp.answers if t > recovered + 0.3]
        self.assertTrue(after and all(a == GREYLISTED for a in after), after[:5])

        # The triplet greylisted before the kill passes on the promoted replica.
        time.sleep(max(0.0, first_seen + DELAY + 0.2 - time.monotonic()))
        self.assertEqual(rcpt(self.smtp.port, "early@example.org", "kept@example.com"), PASSED)

        self.smtp.stop()
        lines = reported(self.smtp)
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[0], r"^grey: error: greylist store unavailable: ")
        self.assertEqual(lines[1], "grey: notice: greylist store available again")
        # The policy service's keys were on every master: one master down is still one outage,
        # said once when it begins and once when it ends, however its requests for the masters
        # up and the one down alternate.
        self.policy.stop()
        lines = reported(self.policy)
        self.assertEqual(len(lines), 2, f"one outage said as {len(lines)} lines: {lines}")
        self.assertRegex(lines[0], r"^grey: error: greylist store unavailable: ")
        self.assertEqual(lines[1], "grey: notice: greylist store available again")

    def test_a_cluster_down_defers_with_4_3_0_says_clusterdown_once_and_recovers(self):
        self.assertEqual(rcpt(self.smtp.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        # Another shard's master and replica die: its slots are served by no one, and with
        # cluster-require-full-coverage (the default) the whole cluster says CLUSTERDOWN, the
        # master of the loaded slot too, alive as it is.
        home = self.cluster.master_for_slot(LOCAL_SLOT)
        nodes = self.cluster.nodes()
        other = next(n for n in nodes if n.role == "master" and n.address != home)
        other_replica = next(n for n in nodes if n.master_id == other.id)
        self.cluster.kill(other_replica.address)
        self.cluster.kill(other.address)
        home_server = self.cluster.server_at(home)
        deadline = time.monotonic() + 20
        while info_cluster(home_server).get("cluster_state") != "fail" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(info_cluster(home_server).get("cluster_state"), "fail")
        for i in range(3):
            self.assertEqual(rcpt(self.smtp.port, f"down{i}@example.org", "bob@example.com"), UNAVAILABLE)
        self.assertIsNone(self.smtp.proc.poll(), "greylist_server must not have exited")

        # Both come back: greylisting resumes by itself, with only deferrals meanwhile.
        self.cluster.server_at(other.address).start()
        self.cluster.server_at(other_replica.address).start()
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and GREYLISTED not in answers:
            answers.append(rcpt(self.smtp.port, f"back{len(answers)}@example.org", "bob@example.com"))
            time.sleep(0.05)
        self.assertIn(GREYLISTED, answers, "greylisting did not resume within 30 s of the nodes' restart")
        self.assertLessEqual(set(answers), {GREYLISTED, UNAVAILABLE})
        self.cluster.wait_ok()
        self.assertEqual(rcpt(self.smtp.port, "alice@example.org", "dave@example.com"), GREYLISTED)

        self.smtp.stop()
        self.assertEqual(reported(self.smtp), [
            "grey: error: greylist store unavailable: the Redis Cluster cannot serve the key (CLUSTERDOWN)",
            "grey: notice: greylist store available again"])


if __name__ == "__main__":
    unittest.main()
