#!/usr/bin/env python3
"""The Redis store through each topology Grey supports, on this machine, on loopback:

  1. decisions/s and each decision's latency (p50, p99) through one redis-server, a Sentinel set
     (a master, a replica, three sentinels) and a Redis Cluster (three masters, a replica each),
     at 1, 8 and 64 decisions in flight (greylist_decisions --store URL), each against the single
     Redis of the same repetition; and the Sentinel set's master addressed directly (redis://),
     which tells what the replica costs from what the sentinels do;
  2. the reference: redis-benchmark running the store's own script (EVALSHA, pipelined) against
     the single Redis, and the store's rate at 64 in flight against it (target >= 0.8);
  3. Redis's memory per record: first sightings of realistic triplets written through the store
     under its default prefix, INFO memory's used_memory before and after over DBSIZE's growth,
     for the single Redis and the cluster (summed over its masters), and MEMORY USAGE of one key;
  4. 1, 2 and 3 greylist_server policy services sharing the cluster, each driven by its own
     policy_requests: decisions/s in all and per node.

Every process this starts listens on 127.0.0.1 only and is stopped at the end, also on failure
(the topologies are tests/integration/redis_topology.py's). Every wait has a deadline; the
repetitions stop early when --budget seconds have passed. Figures are medians over the
repetitions, each throughput figure of greylist_decisions itself the median of three runs.

    python3 tests/perf/redis_topologies.py [--repeat 3] [--bin build/release] [--budget 330]
"""
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
from harness import free_port  # noqa: E402
from redis_topology import HOST, RedisCluster, SentinelSet, Server, ask, info  # noqa: E402
import peers  # noqa: E402

# "replicated" is the Sentinel set's master addressed as redis://HOST:PORT: one Redis with a
# replica, no sentinel asked; between "single" and "sentinel", it tells the replica's cost from
# the sentinels'.
TOPOLOGIES = ("single", "replicated", "sentinel", "cluster")
IN_FLIGHT = (1, 8, 64)
# Triplets per greylist_decisions run at each concurrency (each checked twice): enough for a
# second or so of decisions per run, and thousands of latencies for the p99.
TRIPLETS = {1: 4000, 8: 16000, 64: 32000}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """User and system CPU seconds the processes `pids` have used so far."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICKS


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def screen_script():
    """The Lua text of redis_store's screen_script, read from the header at run time, so that
    redis-benchmark runs exactly the store's script (the same SHA1, the same cached script)."""
    path = os.path.join(ROOT, "include", "grey", "greylist", "redis_store.hpp")
    with open(path) as f:
        m = re.search(r'screen_script\s*=\s*R"lua\((.*?)\)lua"', f.read(), re.S)
    if not m:
        raise RuntimeError(f"no screen_script in {path}")
    return m.group(1)


class Single:
    """One redis-server as the single topology: redis_topology's Server, configured as its data
    nodes are (no persistence), in a directory of its own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="grey-perf-redis-")
        self.server = None
        for _ in range(3):
            port = free_port()
            if port in (6379, 26379):
                continue
            server = Server("redis-server", os.path.join(self.dir, str(port)), port,
                            [f"port {port}", f"bind {HOST}", "protected-mode yes", f"dir {self.dir}/{port}",
                             "logfile redis.log", "daemonize no", 'save ""', "appendonly no"])
            try:
                server.start()
                self.server = server
                break
            except RuntimeError:
                server.kill()
        if self.server is None:
            raise RuntimeError("the single redis-server did not start")

    def cleanup(self):
        if self.server is not None:
            self.server.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def run(command, timeout):
    """A program's run: (exit status, stdout, stderr, its CPU seconds)."""
    before = children_cpu()
    try:
        p = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or "", f"timed out after {timeout} s", children_cpu() - before
    return p.returncode, p.stdout, p.stderr, children_cpu() - before


class Bench:
    def __init__(self, args):
        self.args = args
        self.started = time.monotonic()
        self.decisions = args.bin_dir + "/tests/perf/greylist_decisions"
        self.requests = args.bin_dir + "/tests/perf/policy_requests"
        self.server = self.policy_server()
        for program in (self.decisions, self.requests):
            if not os.path.exists(program):
                raise SystemExit(f"{program} is not built (cmake --build build/release --target "
                                 f"{os.path.basename(program)})")
        self.problems = []  # failed runs, said at the end

    def policy_server(self):
        """greylist_server of --bin, else of build/dev: the first that knows redis-cluster://
        (a build older than the cluster support does not), or None."""
        for d in (self.args.bin_dir, os.path.join(ROOT, "build", "dev")):
            program = os.path.join(d, "examples", "greylist_server")
            if not os.path.exists(program):
                continue
            status, out, err, _ = run([program, "--help"], timeout=10)
            if "redis-cluster://" in out + err:
                return program
            print(f"  ({program} does not know redis-cluster://: passed over)", flush=True)
        return None

    def left(self):
        return self.args.budget - (time.monotonic() - self.started)

    def problem(self, what):
        self.problems.append(what)
        print(f"  ! {what}", flush=True)

    # -- topologies ----------------------------------------------------------------------------
    def start(self):
        self.single = self.sentinels = self.cluster = None
        self.single = Single()
        self.sentinels = SentinelSet(replicas=1, sentinels=3)
        self.cluster = RedisCluster(masters=3, replicas_per_master=1)
        self.sentinels.wait_ready(timeout=30)
        self.cluster.wait_ok(timeout=60)
        sentinels = ",".join(f"{h}:{p}" for h, p in self.sentinels.sentinel_addresses)
        seeds = ",".join(f"{h}:{p}" for h, p in self.cluster.seed_addresses)
        self.urls = {"single": f"redis://{HOST}:{self.single.server.port}",
                     "replicated": "redis://{}:{}".format(*self.sentinels.master_address()),
                     "sentinel": f"redis-sentinel://{sentinels}/{self.sentinels.master_name}",
                     "cluster": f"redis-cluster://{seeds}"}
        self.redis_pids = {"single": [self.single.server.proc.pid],
                           "replicated": [s.proc.pid for s in self.sentinels.servers],
                           "sentinel": [s.proc.pid for s in self.sentinels.servers],
                           "cluster": [s.proc.pid for s in self.cluster.servers]}

    def stop(self):
        for t in (self.cluster, self.sentinels, self.single):
            if t is not None:
                t.cleanup()

    def masters(self, topology):
        """The ports of the topology's masters now."""
        if topology == "single":
            return [self.single.server.port]
        if topology in ("replicated", "sentinel"):
            return [self.sentinels.master_address()[1]]
        return sorted(n.address[1] for n in self.cluster.nodes() if n.role == "master" and not n.failed)

    def flush(self):
        for port in {p for topology in TOPOLOGIES for p in self.masters(topology)}:
            ask(port, "FLUSHALL", timeout=30)

    # -- 1. decisions through each topology ----------------------------------------------------
    def decisions_run(self, topology, in_flight):
        """greylist_decisions through one topology: (decisions/s, p50 us, p99 us, its CPU in
        cores, Redis's CPU in cores), or None."""
        command = [self.decisions, "--only-stores", "--store", self.urls[topology],
                   "--count", str(TRIPLETS[in_flight] * self.args.scale // 100), "--concurrency", str(in_flight)]
        redis_before, started = cpu_seconds(self.redis_pids[topology]), time.monotonic()
        status, out, err, cpu = run(command, timeout=max(10, min(120, self.left())))
        wall = time.monotonic() - started
        redis_cpu = cpu_seconds(self.redis_pids[topology]) - redis_before
        rows = [l.split() for l in out.splitlines() if l.startswith("redis")]
        if status != 0 or len(rows) != 1 or "failed" in rows[0]:
            self.problem(f"greylist_decisions {topology} x {in_flight}: exit {status}: {err.strip()[-500:]}")
            return None
        rate, p50, p99 = map(float, rows[0][-3:])
        if rate == 0:
            self.problem(f"greylist_decisions {topology} x {in_flight}: checks failed: {err.strip()[-500:]}")
            return None
        return rate, p50, p99, cpu / wall, redis_cpu / wall

    # -- 2. the reference -----------------------------------------------------------------------
    def redis_benchmark(self):
        """redis-benchmark EVALSHA of the store's script, pipelined, against the single Redis, as
        RESULTS.md ran it: requests/s, or None."""
        port = self.single.server.port
        digest = ask(port, "SCRIPT", "LOAD", self.script)
        now = str(int(time.time() * 1000))
        command = ["redis-benchmark", "-h", HOST, "-p", str(port), "-n", str(self.args.benchmark_requests),
                   "-c", "64", "-P", "16", "-r", "10000000", "--csv",
                   "EVALSHA", digest, "2", "grey:c:__rand_int__", "grey:t:__rand_int__", now,
                   "300", "172800", "3024000", "0", "5"]
        redis_before, started = cpu_seconds(self.redis_pids["single"]), time.monotonic()
        status, out, err, cpu = run(command, timeout=max(10, min(120, self.left())))
        wall = time.monotonic() - started
        redis_cpu = cpu_seconds(self.redis_pids["single"]) - redis_before
        lines = [l for l in out.splitlines() if l.startswith('"EVALSHA')]
        if status != 0 or not lines:
            self.problem(f"redis-benchmark: exit {status}: {(err or out).strip()[-300:]}")
            return None
        return float(lines[-1].split(",")[1].strip('"')), cpu / wall, redis_cpu / wall

    # -- 3. memory per record ---------------------------------------------------------------------
    def memory(self, topology):
        ports = self.masters(topology)
        for port in ports:
            ask(port, "FLUSHALL", timeout=30)
        def used():
            """used_memory over the masters; and without the buffers a write fills beside the
            data (the replication backlog and the replicas' buffers, which Redis 7 shares, and
            the clients' buffers), which a master with replicas grows to its backlog's size."""
            total = data = 0
            for p in ports:
                m = {k: int(v) for k, v in info(p, "memory").items() if v.isdigit()}
                buffers = m.get("mem_total_replication_buffers",
                                m.get("mem_replication_backlog", 0) + m.get("mem_clients_slaves", 0))
                total += m["used_memory"]
                data += m["used_memory"] - buffers - m.get("mem_clients_normal", 0)
            return total, data
        keys = lambda: sum(ask(p, "DBSIZE") for p in ports)  # noqa: E731
        before_used, before_keys = used(), keys()
        for p in ports:
            ask(p, "CONFIG", "RESETSTAT")
        status, out, err, _ = run([self.decisions, "--fill", str(self.args.fill), "--concurrency", "64",
                                   "--store", self.urls[topology]], timeout=max(10, min(120, self.left())))
        if status != 0:
            self.problem(f"greylist_decisions --fill {topology}: exit {status}: {err.strip()[-500:]}")
            return None
        # The commands the store sent, read before anything else is asked: Redis 7 counts the
        # calls a script makes too (GET, SET), and every command ever asked since RESETSTAT.
        commands = {}
        for p in ports:
            for name, fields in info(p, "commandstats").items():
                calls = int(dict(f.split("=") for f in fields.split(","))["calls"])
                commands[name.removeprefix("cmdstat_")] = commands.get(name.removeprefix("cmdstat_"), 0) + calls
        after_used = used()
        grown_keys = keys() - before_keys
        grown_used, grown_data = after_used[0] - before_used[0], after_used[1] - before_used[1]
        key = next(k for k in (ask(p, "RANDOMKEY") for p in ports) if k)
        port = next(p for p in ports if ask(p, "EXISTS", key))
        return {"records": grown_keys, "bytes": grown_used, "per_record": grown_used / max(1, grown_keys),
                "per_record_data": grown_data / max(1, grown_keys), "commands": commands,
                "key": key, "key_octets": len(key.encode()), "value_octets": ask(port, "STRLEN", key),
                "memory_usage": ask(port, "MEMORY", "USAGE", key), "masters": len(ports)}

    # -- 4. 1, 2 and 3 policy nodes on the cluster -------------------------------------------------
    def start_nodes(self, count):
        self.node_dir = tempfile.mkdtemp(prefix="grey-perf-nodes-")
        self.nodes = []
        for _ in range(count):
            port = free_port()
            # As peers.GreylistPolicy starts it (bench.py's grey-redis peer): no DNS, no log lines.
            try:
                self.nodes.append(peers.Process([self.server, "--policy", f"inet:{HOST}:{port}", "--store",
                                                 self.urls["cluster"], "--log", "/dev/null", "--reputation", "off"],
                                                port, cwd=self.node_dir))
            except RuntimeError as e:
                self.problem(f"greylist_server did not start: {str(e)[-500:]}")
                return False
        return True

    def stop_nodes(self):
        for i, n in enumerate(getattr(self, "nodes", [])):
            # What a node said beyond its log lines (those go to /dev/null): errors, if any.
            said = [l for l in n.output().splitlines() if l.strip()]
            if said:
                print(f"  node {i + 1} said ({len(said)} lines; the last 5):\n    " + "\n    ".join(said[-5:]))
            n.stop()
        self.nodes = []
        if getattr(self, "node_dir", None):
            shutil.rmtree(self.node_dir, ignore_errors=True)

    def nodes_run(self, count):
        """`count` policy_requests at once, one on each of the first `count` nodes: (per-node
        decisions/s, the clients' CPU, the nodes' CPU, Redis's CPU; in cores), or None."""
        seconds = self.args.node_seconds
        nodes = self.nodes[:count]
        pids_grey = [n.pid for n in self.nodes]
        grey_before, redis_before = cpu_seconds(pids_grey), cpu_seconds(self.redis_pids["cluster"])
        clients_before, started = children_cpu(), time.monotonic()
        procs = [subprocess.Popen([self.requests, "--port", str(n.port), "--seconds", str(seconds),
                                   "--connections", str(self.args.connections)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
                 for n in nodes]
        rates, ok = [], True
        for p in procs:
            try:
                out, err = p.communicate(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate(timeout=10)
                err += " (timed out)"
            m = re.search(r"other (\d+) failures (\d+) .* rate (\d+)", out)
            if p.returncode != 0 or not m:
                self.problem(f"policy_requests on {count} nodes: exit {p.returncode}: "
                             f"{(out.strip() + ' ' + err.strip())[-500:]}")
                ok = False
            else:
                rates.append(float(m.group(3)))
        wall = time.monotonic() - started
        if not ok:
            return None
        return (rates, (children_cpu() - clients_before) / wall, (cpu_seconds(pids_grey) - grey_before) / wall,
                (cpu_seconds(self.redis_pids["cluster"]) - redis_before) / wall)

    # -- the whole run ----------------------------------------------------------------------------
    def main(self):
        a = self.args
        self.script = screen_script()
        print(f"greylist_server: {self.server}", flush=True)
        print(f"redis_topologies: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
              f"{a.repeat} repetitions, {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
        try:
            self.start()
            print("started: " + "; ".join(f"{t} {self.urls[t]}" for t in TOPOLOGIES), flush=True)

            # 3. Memory first, on empty topologies.
            mem = {t: self.memory(t) for t in ("single", "cluster")}

            # 1 and 2, alternating: each concurrency through each topology, back to back; the
            # reference next to the store's run at 64 on the single Redis.
            results = {(t, c): [] for t in TOPOLOGIES for c in IN_FLIGHT}
            references, pairs = [], []
            done = 0
            for rep in range(a.repeat):
                if rep > 0 and self.left() < 150:
                    print(f"  (stopped after {rep} repetitions: the budget)", flush=True)
                    break
                self.flush()
                for c in IN_FLIGHT:
                    for t in TOPOLOGIES:
                        r = self.decisions_run(t, c)
                        if r:
                            results[(t, c)].append(r)
                        print(f"  rep {rep + 1} {t:<10} x {c:<3} " +
                              (f"{r[0]:9.0f}/s  p50 {r[1]:7.1f} us  p99 {r[2]:8.1f} us" if r else "failed"),
                              flush=True)
                    if c == 64:
                        ref = self.redis_benchmark()
                        print(f"  rep {rep + 1} redis-benchmark EVALSHA -c 64 -P 16: "
                              + (f"{ref[0]:.0f}/s" if ref else "failed"), flush=True)
                        if ref:
                            references.append(ref)
                            mine = results[("single", 64)]
                            if mine and len(mine) == rep + 1:
                                pairs.append((mine[-1][0], ref[0]))
                done = rep + 1

            # 4. Policy nodes on the cluster.
            node_results = {1: [], 2: [], 3: []}
            if self.server is None:
                self.problem("greylist_server is not built (build/release or build/dev): the node runs skipped")
            else:
                self.flush()
                for rep in range(a.repeat if self.start_nodes(3) else 0):
                    if rep > 0 and self.left() < 3 * (a.node_seconds + 3):
                        break
                    for n in (1, 2, 3):
                        r = self.nodes_run(n)
                        if r:
                            node_results[n].append(r)
                        print(f"  rep {rep + 1} {n} node(s): " +
                              (" + ".join(f"{x:.0f}" for x in r[0]) + f" = {sum(r[0]):.0f}/s" if r else "failed"),
                              flush=True)
        finally:
            self.stop_nodes()
            self.stop()

        self.report(mem, results, references, pairs, node_results, done)
        return 1 if self.problems else 0

    def report(self, mem, results, references, pairs, node_results, repeats):
        a = self.args
        med = statistics.median
        print()
        print(f"Decisions through each topology (greylist_decisions --store URL --only-stores; each cell the "
              f"median of {repeats} invocations, each the median of 3 runs; every triplet checked twice; "
              f"cpu in cores, averaged over the invocation)")
        print(f"{'topology':<12}{'in flight':>10}{'decisions/s':>13}{'p50 us':>10}{'p99 us':>10}"
              f"{'x single':>10}{'client cpu':>12}{'redis cpu':>11}")
        for c in IN_FLIGHT:
            base = results[("single", c)]
            for t in TOPOLOGIES:
                rs = results[(t, c)]
                if not rs:
                    print(f"{t:<12}{c:>10}{'failed':>13}")
                    continue
                rate = med(r[0] for r in rs)
                ratio = f"{rate / med(r[0] for r in base):.2f} x" if base else "-"
                print(f"{t:<12}{c:>10}{rate:>13,.0f}{med(r[1] for r in rs):>10.1f}{med(r[2] for r in rs):>10.1f}"
                      f"{ratio:>10}{med(r[3] for r in rs):>12.2f}{med(r[4] for r in rs):>11.2f}")

        print()
        print(f"Reference: redis-benchmark -n {a.benchmark_requests} -c 64 -P 16 -r 10000000 EVALSHA <screen_script> "
              f"2 grey:c:__rand_int__ grey:t:__rand_int__ NOW 300 172800 3024000 0 5, single Redis")
        if references:
            print("redis-benchmark EVALSHA   " + "  ".join(f"{r[0]:>9,.0f}" for r in references)
                  + f"   median {med(r[0] for r in references):,.0f}/s (its cpu {med(r[1] for r in references):.2f},"
                  f" Redis's {med(r[2] for r in references):.2f} cores)")
        if pairs:
            ratios = [s / r for s, r in pairs]
            print("the store (single, x 64)  " + "  ".join(f"{s:>9,.0f}" for s, _ in pairs))
            print("ratio                     " + "  ".join(f"{x:>9.2f}" for x in ratios)
                  + f"   median {med(ratios):.2f} (target >= 0.8: {'met' if med(ratios) >= 0.8 else 'missed'})")

        print()
        print(f"Memory per record ({a.fill} first sightings through the store, prefix grey:, client groups "
              f"198.51.X.0/24, senderN@example.org, rcptM@example.com; INFO memory used_memory over DBSIZE growth)")
        print(f"{'topology':<10}{'masters':>8}{'records':>9}{'bytes':>12}{'bytes/record':>14}{'w/o buffers':>13}"
              f"{'MEMORY USAGE':>14}{'key octets':>12}{'value octets':>14}{'10M triplets':>14}")
        for t, m in mem.items():
            if not m:
                print(f"{t:<10}  failed")
                continue
            print(f"{t:<10}{m['masters']:>8}{m['records']:>9}{m['bytes']:>12,}{m['per_record']:>14.1f}"
                  f"{m['per_record_data']:>13.1f}{m['memory_usage']:>14}{m['key_octets']:>12}{m['value_octets']:>14}"
                  f"{m['per_record_data'] * 1e7 / 2**30:>10.2f} GiB")
        for t, m in mem.items():
            if m:
                print(f"  {t} sample key: {m['key']!r}; commands Redis counted per first sighting: "
                      + ", ".join(f"{name} {calls / max(1, m['records']):.3f}"
                                  for name, calls in sorted(m["commands"].items(), key=lambda x: -x[1])))
        print("  (w/o buffers: less the growth of the replication backlog and buffers and of the clients' buffers;"
              " 10M triplets from it, masters only: each replica holds as much again)")

        print()
        print(f"Policy nodes sharing the cluster (greylist_server --policy, --store redis-cluster://; one "
              f"policy_requests --connections {a.connections} --seconds {a.node_seconds} per node, all at once; "
              f"first sightings; medians of {max(len(v) for v in node_results.values()) if node_results else 0})")
        print(f"{'nodes':<6}{'decisions/s':>13}{'per node':>11}{'x 1 node':>10}{'clients cpu':>13}{'nodes cpu':>11}"
              f"{'redis cpu':>11}   per node, median run")
        one = med(sum(r[0]) for r in node_results[1]) if node_results.get(1) else None
        for n in (1, 2, 3):
            rs = node_results.get(n) or []
            if not rs:
                print(f"{n:<6}{'failed':>13}")
                continue
            totals = sorted(rs, key=lambda r: sum(r[0]))
            middle = totals[len(totals) // 2]
            total = med(sum(r[0]) for r in rs)
            print(f"{n:<6}{total:>13,.0f}{total / n:>11,.0f}{(f'{total / one:.2f} x' if one else '-'):>10}"
                  f"{med(r[1] for r in rs):>13.2f}{med(r[2] for r in rs):>11.2f}{med(r[3] for r in rs):>11.2f}   "
                  + " ".join(f"{x:.0f}" for x in middle[0]))

        if self.problems:
            print()
            print("Problems:")
            for p in self.problems:
                print(f"  {p}")
        print(f"\n{time.monotonic() - self.started:.0f} s, load average now {os.getloadavg()[0]:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", dest="bin_dir", default=os.path.join(ROOT, "build", "release"),
                   help="the build tree with tests/perf/greylist_decisions, policy_requests and examples/greylist_server")
    p.add_argument("--repeat", type=int, default=3, help="repetitions of every measurement (default 3)")
    p.add_argument("--scale", type=int, default=100, help="percent of the default triplets per run (default 100)")
    p.add_argument("--fill", type=int, default=100000, help="first sightings for the memory figures (default 100000)")
    p.add_argument("--benchmark-requests", type=int, default=200000, help="redis-benchmark -n (default 200000)")
    p.add_argument("--node-seconds", type=float, default=4, help="seconds of each policy_requests run (default 4)")
    p.add_argument("--connections", type=int, default=8, help="policy connections per node (default 8)")
    p.add_argument("--budget", type=float, default=330, help="seconds after which no repetition starts (default 330)")
    args = p.parse_args()
    if args.repeat < 1 or args.scale < 1 or args.fill < 64:
        p.error("--repeat and --scale must be at least 1, --fill at least 64")
    for program in ("redis-server", "redis-sentinel", "redis-cli", "redis-benchmark"):
        if not shutil.which(program):
            raise SystemExit(f"{program} is not installed (apt-get install redis-server redis-sentinel redis-tools)")
    return Bench(args).main()


if __name__ == "__main__":
    sys.exit(main())
