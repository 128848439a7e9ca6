"""Real Redis topologies on loopback for the integration tests of Grey's Redis store: a
Sentinel set (a master, its replicas and the sentinels watching them) and a Redis Cluster,
each made of Debian's own redis-server, redis-sentinel and redis-cli. Every process listens on
127.0.0.1 only, on free ports (never Redis's defaults), with a private directory of its own;
every process started is stopped again by `cleanup()`, which the context managers call also
when a test fails. Every wait is bounded by a deadline.

    with SentinelSet(replicas=1, sentinels=3) as s:
        s.wait_ready()
        old = s.kill_master()
        new, seconds = s.wait_for_failover(old)

    with RedisCluster(masters=3, replicas_per_master=1) as c:
        c.wait_ok()
        c.reshard(100, from_id, to_id)

Either speaks TLS alone when given a `TLS` (a certificate, its key and a CA file): every node
and sentinel then listens on a TLS port only, replication, the sentinels' connections and the
cluster bus run over TLS, and so do the harness's own connections and redis-cli.

    with SentinelSet(password="pw", tls=TLS.self_signed(directory)) as s: ...
"""
import atexit
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from harness import free_port, make_certificate

HOST = "127.0.0.1"
DEFAULT_PORTS = {6379, 26379, 16379}  # a system Redis or Sentinel may sit there: never ours
CLUSTER_SLOTS = 16384


class RedisError(Exception):
    """An error reply (-ERR, -NOAUTH, -MOVED, ...) from a Redis, Sentinel or Cluster node."""


class TopologyTimeout(RuntimeError):
    """A wait's deadline passed. (Not the builtin TimeoutError: that is an OSError, which the
    waits count as "no answer yet".)"""


class TLS:
    """What a topology's processes speak TLS with: the certificate and key every node and
    sentinel presents (to clients and, as a client, to each other), and the CA file that
    verifies them (by default the certificate itself, self-signed). With `auth_clients`, the
    nodes also require a client certificate signed by that CA (the harness then presents the
    nodes' own). Redis checks only a peer certificate's chain, not the names in it; the harness
    checks `server_name`, which the certificate must name (make_certificate writes it as a DNS
    subjectAltName), since the nodes are reached at 127.0.0.1."""

    def __init__(self, cert, key, ca=None, auth_clients=False, server_name="localhost"):
        self.cert, self.key, self.ca = cert, key, ca or cert
        self.auth_clients, self.server_name = auth_clients, server_name

    @classmethod
    def self_signed(cls, directory, name="localhost", **kwargs):
        """A TLS with a self-signed certificate for `name` made now in `directory`, its own CA."""
        cert, key = make_certificate(directory, name)
        return cls(cert, key, server_name=name, **kwargs)

    def server_config(self, port):
        """The configuration lines of a node or sentinel listening on TLS `port` only."""
        return ["port 0", f"tls-port {port}", f"tls-cert-file {self.cert}", f"tls-key-file {self.key}",
                f"tls-ca-cert-file {self.ca}", f"tls-auth-clients {'yes' if self.auth_clients else 'no'}",
                # Replicas to their master, sentinels to the nodes and to each other.
                "tls-replication yes"]

    def context(self):
        """An ssl.SSLContext for the harness's own connections."""
        context = ssl.create_default_context(cafile=self.ca)
        if self.auth_clients:
            context.load_cert_chain(self.cert, self.key)
        return context

    def cli_args(self):
        """redis-cli's options to speak this TLS."""
        args = ["--tls", "--cacert", self.ca, "--sni", self.server_name]
        if self.auth_clients:
            args += ["--cert", self.cert, "--key", self.key]
        return args


class Connection:
    """The Redis protocol (RESP2) over one TCP connection, enough for the harness to ask its
    nodes questions and get structured answers, which redis-cli's text output does not give
    for nested replies such as ROLE. Error replies are raised as RedisError. With a `tls` (a
    TLS), the connection runs over TLS, the node's certificate verified."""

    def __init__(self, port, password=None, timeout=2.0, tls=None):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        if tls is not None:
            try:
                self.sock = tls.context().wrap_socket(self.sock, server_hostname=tls.server_name)
            except BaseException:
                self.sock.close()
                raise
        self.reader = self.sock.makefile("rb")
        if password is not None:
            try:
                self.command("AUTH", password)
            except BaseException:
                self.close()
                raise

    def command(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            data = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self._reply()

    def _reply(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("the connection closed mid-reply")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            return data[:-2].decode(errors="replace")
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise ConnectionError(f"not a RESP reply: {line!r}")

    def close(self):
        self.reader.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ask(port, *args, password=None, timeout=2.0, tls=None):
    """One command on a fresh connection (over `tls` when given): its reply (RedisError for an
    error reply, OSError when nothing answers; a failed TLS handshake's ssl.SSLError is one)."""
    with Connection(port, password, timeout, tls) as c:
        return c.command(*args)


def redis_cli(port, *args, password=None, cluster=False, input=None, timeout=30, tls=None):
    """redis-cli against 127.0.0.1:port, logged in with `password` when given, over `tls` when
    given: its standard output. Commands may instead come on `input`, one a line; their
    replies then come one a line too (a nil as an empty line). redis-cli exits 0 even for an
    error reply, which it prints on stdout. With `cluster`, redis-cli -c follows MOVED and ASK redirections; the
    notes it prints of them ("-> Redirected to slot ...") are left out."""
    command = ["redis-cli", "-h", HOST, "-p", str(port)]
    if password is not None:
        command += ["-a", password, "--no-auth-warning"]
    if cluster:
        command.append("-c")
    if tls is not None:
        command += tls.cli_args()
    p = subprocess.run([*command, *map(str, args)], input=input, capture_output=True, text=True, timeout=timeout)
    if cluster:
        return "".join(l for l in p.stdout.splitlines(keepends=True) if not l.startswith("-> Redirected to "))
    return p.stdout


def info(port, section, password=None, tls=None):
    """INFO `section` as a dict of its fields."""
    fields = {}
    for line in ask(port, "INFO", section, password=password, tls=tls).splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key] = value
    return fields


def info_cluster(server):
    """CLUSTER INFO of a Server as a dict of its fields."""
    fields = {}
    for line in server.ask("CLUSTER", "INFO").splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _die_with_parent():
    # Should the test runner itself be killed (a ctest timeout sends SIGKILL), no cleanup code
    # runs: the kernel then ends our servers, which sit in sessions of their own. It watches the
    # thread that started them, so topologies are started from a thread that outlives them.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait_until(condition, timeout, what, interval=0.05):
    """condition()'s first true value, polled until `timeout` seconds have passed; an error
    saying `what` did not happen otherwise. Exceptions from condition() count as not yet."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (OSError, RedisError, ValueError, KeyError, IndexError) as e:
            last_error = e
        if time.monotonic() >= deadline:
            raise TopologyTimeout(f"{what} within {timeout} s" + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


_live_topologies = set()


@atexit.register
def _cleanup_forgotten():
    for topology in list(_live_topologies):
        topology.cleanup()


class Server:
    """One redis-server or redis-sentinel process with its configuration file, data and log in
    a directory of its own. Sentinels and replicas rewrite their configuration file (CONFIG
    REWRITE after a failover): it stays writable, in that directory. With a `tls`, `port` is its
    TLS port (its configuration says so: TLS.server_config) and the harness speaks TLS to it."""

    def __init__(self, program, directory, port, config, password=None, tls=None):
        self.program, self.dir, self.port, self.password, self.tls = program, directory, port, password, tls
        self.config_path = os.path.join(directory, "redis.conf")
        self.log_path = os.path.join(directory, "redis.log")
        self.proc = None
        os.makedirs(directory, exist_ok=True)
        self.write_config(config)

    @property
    def address(self):
        return (HOST, self.port)

    def write_config(self, lines):
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=10):
        self.proc = subprocess.Popen([self.program, self.config_path], cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.program} on port {self.port} exited with {self.proc.returncode}:\n"
                                   + self.log_tail())
            try:
                if ask(self.port, "PING", password=self.password, timeout=1, tls=self.tls) == "PONG":
                    return
            except (OSError, RedisError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.program} on port {self.port} did not answer PING:\n" + self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, as a crash or a pulled plug would: no goodbye to anyone."""
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def ask(self, *args, timeout=2.0):
        return ask(self.port, *args, password=self.password, timeout=timeout, tls=self.tls)

    def info(self, section):
        """INFO `section` as a dict of its fields."""
        return info(self.port, section, self.password, self.tls)

    def cli(self, *args, **kwargs):
        return redis_cli(self.port, *args, password=self.password, tls=self.tls, **kwargs)


def _stop_all(servers, timeout=5):
    """SIGTERM to all at once, then SIGKILL to whichever has not ended by the deadline: the
    data is a test's, and a master's shutdown would otherwise wait for lagging replicas."""
    running = [s for s in servers if s.alive()]
    for s in running:
        s.proc.terminate()
    deadline = time.monotonic() + timeout
    for s in running:
        try:
            s.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait(timeout=10)


def _ports(count, taken):
    """`count` free loopback ports, distinct from each other and from `taken`, none of Redis's
    defaults. (A port found free may still be taken before the server binds it: the caller
    starts again on fresh ones when a server cannot listen.)"""
    ports = []
    for _ in range(100 * count):
        if len(ports) == count:
            break
        port = free_port()
        if port not in DEFAULT_PORTS and port not in taken and port not in ports:
            ports.append(port)
    if len(ports) != count:
        raise RuntimeError("no free loopback ports")
    taken.update(ports)
    return ports


def _data_node_config(directory, port, password, extra=(), tls=None):
    where = tls.server_config(port) if tls is not None else [f"port {port}"]
    lines = [*where, f"bind {HOST}", "protected-mode yes", f"dir {directory}", "logfile redis.log",
             "daemonize no", 'save ""', "appendonly no", "loglevel notice",
             # Redis 7's diskless sync waits 5 s for more replicas before a full sync begins: a
             # replica (re)joining its master is to be in sync at once.
             "repl-diskless-sync-delay 0"]
    if password is not None:
        lines += [f"requirepass {password}", f"masterauth {password}"]
    return lines + list(extra)


class _Topology:
    """What SentinelSet and RedisCluster share: the temporary directory, the servers started in
    it, the time of the latest kill, and being a context manager."""

    def __init__(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.servers = []
        self.taken_ports = set()
        self.killed_at = None
        _live_topologies.add(self)

    def _start_on_fresh_ports(self, make, attempts=3):
        """make() -> a Server on ports of its choosing, started here; made and started again
        (on other ports) if it cannot start, as when another process took a port meanwhile."""
        for attempt in range(attempts):
            server = make()
            try:
                server.start()
                self.servers.append(server)
                return server
            except RuntimeError:
                server.kill()
                if attempt == attempts - 1:
                    raise

    def server_at(self, address):
        host, port = address
        for s in self.servers:
            if s.port == int(port) and host == HOST:
                return s
        raise KeyError(f"no server of this topology at {host}:{port}")

    def kill(self, address):
        """SIGKILL the server at `address`; the kill's time is what the waits for a new master
        measure from."""
        self.server_at(address).kill()
        self.killed_at = time.monotonic()
        return address

    def _since_kill(self, started):
        return time.monotonic() - (self.killed_at if self.killed_at is not None else started)

    def stop(self):
        _stop_all(self.servers)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        _live_topologies.discard(self)

    @classmethod
    def started(cls, *args, **kwargs):
        """One made and ready for use (wait_ready(), wait_ok()); when it cannot be, none is left
        running: its processes stopped and its directory removed."""
        topology = cls(*args, **kwargs)
        try:
            topology._wait_usable()
        except BaseException:
            topology.cleanup()
            raise
        return topology

    def logs(self):
        """The tail of every server's log, for a failing test's message."""
        return "\n".join(f"--- {s.program} :{s.port}\n{s.log_tail()}" for s in self.servers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


class SentinelSet(_Topology):
    """A master with `replicas` replicas, watched by `sentinels` sentinels under `master_name`
    with a quorum of 2 and short timeouts, so that a failover ends within a few seconds. With a
    `password`, the data nodes require it (and replicate with it) and the sentinels use it;
    with a `sentinel_password`, the sentinels require theirs too. With a `tls` (a TLS), the
    data nodes and the sentinels listen on TLS ports only and speak TLS to each other."""

    def __init__(self, replicas=1, sentinels=3, master_name="mymaster", password=None, sentinel_password=None,
                 quorum=2, down_after_ms=2000, failover_timeout_ms=5000, tls=None):
        super().__init__("grey-sentinel-set-")
        self.master_name, self.password, self.sentinel_password = master_name, password, sentinel_password
        self.tls = tls
        self.quorum, self.down_after_ms, self.failover_timeout_ms = quorum, down_after_ms, failover_timeout_ms
        self.data_nodes, self.sentinels = [], []
        try:
            master = self._start_data_node("node0", None)
            for n in range(replicas):
                self._start_data_node(f"node{n + 1}", master.port)
            # Sentinels learn the replicas from the master's INFO: started once the replicas are
            # attached, they know them at once rather than at their next INFO, 10 s later.
            self._wait_replicas_in_sync(master, replicas, timeout=20)
            for n in range(sentinels):
                self._start_sentinel(f"sentinel{n}", master.port)
        except BaseException:
            self.cleanup()
            raise

    def _start_data_node(self, name, master_port):
        def make():
            port, = _ports(1, self.taken_ports)
            directory = os.path.join(self.dir, f"{name}-{port}")
            extra = [f"replicaof {HOST} {master_port}"] if master_port else []
            return Server("redis-server", directory, port,
                          _data_node_config(directory, port, self.password, extra, self.tls), self.password, self.tls)
        node = self._start_on_fresh_ports(make)
        self.data_nodes.append(node)
        return node

    def _start_sentinel(self, name, master_port):
        def make():
            port, = _ports(1, self.taken_ports)
            directory = os.path.join(self.dir, f"{name}-{port}")
            where = self.tls.server_config(port) if self.tls is not None else [f"port {port}"]
            lines = [*where, f"bind {HOST}", f"dir {directory}", "logfile redis.log", "daemonize no",
                     f"sentinel monitor {self.master_name} {HOST} {master_port} {self.quorum}",
                     f"sentinel down-after-milliseconds {self.master_name} {self.down_after_ms}",
                     f"sentinel failover-timeout {self.master_name} {self.failover_timeout_ms}",
                     f"sentinel parallel-syncs {self.master_name} 1"]
            if self.password is not None:
                lines.append(f"sentinel auth-pass {self.master_name} {self.password}")
            if self.sentinel_password is not None:
                # A sentinel that requires a password must be given it by the others too.
                lines += [f"requirepass {self.sentinel_password}", f"sentinel sentinel-pass {self.sentinel_password}"]
            return Server("redis-sentinel", directory, port, lines, self.sentinel_password, self.tls)
        self.sentinels.append(self._start_on_fresh_ports(make))

    @property
    def sentinel_addresses(self):
        return [s.address for s in self.sentinels]

    def _ask_sentinel(self, sentinel, *args):
        return sentinel.ask("SENTINEL", *args)

    def _sentinel_master(self, sentinel):
        host, port = self._ask_sentinel(sentinel, "get-master-addr-by-name", self.master_name)
        return (host, int(port))

    def master_address(self):
        """The master's address as the first sentinel that answers reports it."""
        last_error = None
        for s in self.sentinels:
            if s.alive():
                try:
                    return self._sentinel_master(s)
                except (OSError, RedisError) as e:
                    last_error = e
        raise RuntimeError(f"no sentinel answered: {last_error}")

    def replica_addresses(self):
        """The replicas a sentinel reports and does not hold to be down or disconnected."""
        for s in self.sentinels:
            if s.alive():
                replicas = self._ask_sentinel(s, "REPLICAS", self.master_name)
                out = []
                for fields in replicas:
                    r = dict(zip(fields[::2], fields[1::2]))
                    flags = set(r["flags"].split(","))
                    if not flags & {"s_down", "o_down", "disconnected"}:
                        out.append((r["ip"], int(r["port"])))
                return sorted(out)
        raise RuntimeError("no sentinel is running")

    def _replicas_in_sync(self, master, count):
        """Whether `master` has `count` replicas connected and every running replica's link to
        it is up, its first sync done."""
        if len(master.ask("ROLE")[2]) < count:
            return False
        for node in self.data_nodes:
            if node is master or not node.alive():
                continue
            replication = node.info("replication")
            if (replication.get("master_port") != str(master.port) or replication.get("master_link_status") != "up"
                    or replication.get("master_sync_in_progress") != "0"):
                return False
        return True

    def _wait_replicas_in_sync(self, master, count, timeout):
        _wait_until(lambda: self._replicas_in_sync(master, count), timeout,
                    f"{count} replicas in sync with {master.port}")

    def _wait_usable(self):
        self.wait_ready()

    def wait_ready(self, timeout=30):
        """Until every running replica is in sync with the master, and every running sentinel
        names that master, knows every running replica as up and knows the other sentinels."""
        def ready():
            master_address = self.master_address()
            master = self.server_at(master_address)
            if master.ask("ROLE")[0] != "master":
                return False
            replicas = sorted(n.address for n in self.data_nodes if n.alive() and n is not master)
            if not self._replicas_in_sync(master, len(replicas)):
                return False
            running = [s for s in self.sentinels if s.alive()]
            for s in running:
                if self._sentinel_master(s) != master_address:
                    return False
                fields = self._ask_sentinel(s, "MASTER", self.master_name)
                state = dict(zip(fields[::2], fields[1::2]))
                if state["flags"] != "master" or int(state["num-other-sentinels"]) < len(running) - 1:
                    return False
                known = []
                for r in self._ask_sentinel(s, "REPLICAS", self.master_name):
                    r = dict(zip(r[::2], r[1::2]))
                    if not set(r["flags"].split(",")) & {"s_down", "o_down", "disconnected"}:
                        known.append((r["ip"], int(r["port"])))
                if not set(replicas) <= set(known):
                    return False
            return True
        try:
            _wait_until(ready, timeout, "the Sentinel set ready", interval=0.1)
        except TopologyTimeout as e:
            raise TopologyTimeout(f"{e}\n{self.logs()}") from None

    def kill_master(self):
        """SIGKILL the current master: its address."""
        return self.kill(self.master_address())

    def wait_for_failover(self, old_address, timeout=30):
        """Until every running sentinel names one master other than `old_address` and that node
        answers ROLE as a master: (its address, seconds since the kill)."""
        started = time.monotonic()

        def promoted():
            named = {self._sentinel_master(s) for s in self.sentinels if s.alive()}
            if len(named) != 1:
                return None
            address = named.pop()
            if address == tuple(old_address) or self.server_at(address).ask("ROLE")[0] != "master":
                return None
            return address
        try:
            address = _wait_until(promoted, timeout, f"a master other than {old_address[1]}", interval=0.05)
        except TopologyTimeout as e:
            raise TopologyTimeout(f"{e}\n{self.logs()}") from None
        return address, self._since_kill(started)

    def restart(self, address, timeout=20):
        """Start the (killed) data node at `address` again, on its port and in its directory. Unless
        it is still the master, it comes back as a replica of the current master, as an operator
        would bring it back: were it to start as a master, the sentinels would leave it so for
        several seconds before turning it into a replica."""
        node = self.server_at(address)
        if node.alive():
            raise RuntimeError(f"{address[0]}:{address[1]} is running")
        master = self.master_address()
        with open(node.config_path) as f:
            lines = [l.rstrip("\n") for l in f if not l.split(" ", 1)[0].lower() in ("replicaof", "slaveof")]
        if master != node.address:
            lines.append(f"replicaof {master[0]} {master[1]}")
        node.write_config(lines)
        node.start()
        if master != node.address:
            _wait_until(lambda: node.info("replication").get("master_link_status") == "up",
                        timeout, f"{node.port} in sync with its master again")
        return node


def key_slot(key):
    """The cluster slot of `key` (str or bytes) per the Redis Cluster specification: CRC16
    (XMODEM) of the key, or of its hash tag, the text between the first '{' and the first '}'
    after it when that is not empty, modulo 16384."""
    data = key.encode() if isinstance(key, str) else bytes(key)
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc % CLUSTER_SLOTS


class ClusterNode:
    """One line of CLUSTER NODES: id, address, role ('master' or 'replica'), the master's id for a
    replica, flags, and the slot ranges a master serves (inclusive pairs; slots being migrated
    or imported are left out)."""

    def __init__(self, line):
        fields = line.split()
        self.id = fields[0]
        host, _, port = fields[1].split("@")[0].split(",")[0].rpartition(":")
        self.address = (host, int(port))
        self.flags = set(fields[2].split(","))
        self.role = "master" if "master" in self.flags else "replica"
        self.master_id = None if fields[3] == "-" else fields[3]
        self.link_state = fields[7]
        self.slot_ranges = []
        for entry in fields[8:]:
            if entry.startswith("["):
                continue
            first, _, last = entry.partition("-")
            self.slot_ranges.append((int(first), int(last or first)))

    @property
    def failed(self):
        return bool(self.flags & {"fail", "fail?", "noaddr", "handshake"})

    @property
    def slots(self):
        return {s for first, last in self.slot_ranges for s in range(first, last + 1)}

    def serves(self, slot):
        return any(first <= slot <= last for first, last in self.slot_ranges)

    def __repr__(self):
        return f"ClusterNode({self.id[:8]} {self.address[1]} {self.role} {self.slot_ranges})"


class Reshard:
    """A `redis-cli --cluster reshard` under way in the background; wait() for its end."""

    def __init__(self, command, directory):
        self.output_path = os.path.join(directory, f"reshard-{time.monotonic_ns()}.log")
        self.output = open(self.output_path, "w+")
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self.output,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                     preexec_fn=_die_with_parent)

    def done(self):
        return self.proc.poll() is not None

    def wait(self, timeout=120):
        """redis-cli's output once it has ended; RuntimeError if it failed or did not end in time
        (then it is killed)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.output.seek(0)
        text = self.output.read()
        self.output.close()
        if self.proc.returncode != 0:
            raise RuntimeError(f"the reshard failed ({self.proc.returncode}):\n{text[-3000:]}")
        return text

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not self.output.closed:
            self.output.close()


class RedisCluster(_Topology):
    """A Redis Cluster of `masters` masters with `replicas_per_master` replicas each, made with
    `redis-cli --cluster create`, with a short node timeout so that a replica takes over within
    a few seconds. Each node's cluster bus has a free port of its own (cluster-port): the
    default, the port plus 10000, may be taken or beyond 65535 for an ephemeral port. With a
    `tls` (a TLS), every node listens on a TLS port only, replicates and runs its cluster bus
    over TLS, and names its TLS port in CLUSTER SLOTS and CLUSTER NODES."""

    def __init__(self, masters=3, replicas_per_master=1, password=None, node_timeout_ms=1000, tls=None):
        super().__init__("grey-redis-cluster-")
        self.password, self.node_timeout_ms, self.tls = password, node_timeout_ms, tls
        self.reshards = []
        try:
            for n in range(masters * (1 + replicas_per_master)):
                self._start_node(f"node{n}")
            addresses = [f"{HOST}:{s.port}" for s in self.servers]
            command = ["redis-cli", "--cluster", "create", *addresses,
                       "--cluster-replicas", str(replicas_per_master), "--cluster-yes"]
            if password is not None:
                command[1:1] = ["-a", password, "--no-auth-warning"]
            if tls is not None:
                command[1:1] = tls.cli_args()
            created = subprocess.run(command, capture_output=True, text=True, timeout=90)
            if created.returncode != 0 or "[OK] All 16384 slots covered" not in created.stdout:
                raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}")
        except BaseException:
            self.cleanup()
            raise

    def _start_node(self, name):
        def make():
            port, bus_port = _ports(2, self.taken_ports)
            directory = os.path.join(self.dir, f"{name}-{port}")
            extra = ["cluster-enabled yes", "cluster-config-file nodes.conf", f"cluster-port {bus_port}",
                     f"cluster-node-timeout {self.node_timeout_ms}",
                     # A replica whose master died a while ago may still take over: the test decides.
                     "cluster-replica-validity-factor 0"]
            if self.tls is not None:
                extra.append("tls-cluster yes")
            return Server("redis-server", directory, port,
                          _data_node_config(directory, port, self.password, extra, self.tls), self.password, self.tls)
        return self._start_on_fresh_ports(make)

    @property
    def seed_addresses(self):
        """Every node's address, as a client's list of seeds would name them."""
        return [s.address for s in self.servers]

    def _running(self):
        return [s for s in self.servers if s.alive()]

    def nodes(self, address=None):
        """CLUSTER NODES as `address` (by default the first running node) sees the cluster."""
        server = self.server_at(address) if address else self._running()[0]
        return [ClusterNode(line) for line in server.ask("CLUSTER", "NODES").splitlines() if line.strip()]

    def _slot_map(self, nodes):
        """[(first, last, master address)] of the masters not held to have failed."""
        return sorted((first, last, n.address) for n in nodes if n.role == "master" and not n.failed
                      for first, last in n.slot_ranges)

    def node_id(self, address):
        return next(n.id for n in self.nodes() if n.address == tuple(address))

    def master_for_slot(self, slot):
        """The address of the master that serves `slot`, as the first running node sees it."""
        for n in self.nodes():
            if n.role == "master" and not n.failed and n.serves(slot):
                return n.address
        raise KeyError(f"no master serves slot {slot}")

    def key_slot(self, key):
        """CLUSTER KEYSLOT of `key`, as a running node computes it."""
        return self._running()[0].ask("CLUSTER", "KEYSLOT", key)

    def cli(self, *args, **kwargs):
        """redis-cli -c against the first running node."""
        return self._running()[0].cli(*args, cluster=True, **kwargs)

    def _wait_usable(self):
        self.wait_ok()

    def wait_ok(self, timeout=30):
        """Until every running node reports cluster_state:ok, all of them see the same masters
        serving the same slots, every slot served, and every running replica in sync."""
        def ok():
            views = []
            for s in self._running():
                if info_cluster(s).get("cluster_state") != "ok":
                    return False
                views.append(self._slot_map(self.nodes(s.address)))
            if any(v != views[0] for v in views):
                return False
            if sum(last - first + 1 for first, last, _ in views[0]) != CLUSTER_SLOTS:
                return False
            for n in self.nodes():
                if n.role == "replica" and not n.failed and self.server_at(n.address).alive():
                    if self.server_at(n.address).info("replication").get("master_link_status") != "up":
                        return False
            return True
        try:
            _wait_until(ok, timeout, "cluster_state:ok on every node, all agreeing on the slots", interval=0.1)
        except TopologyTimeout as e:
            raise TopologyTimeout(f"{e}\n{self.logs()}") from None

    def flush(self):
        """Once the cluster is ok, every master emptied (the replicas follow), for a test that
        starts from an empty data set: the masters, as CLUSTER NODES lists them. Each node is
        asked its ROLE: a replica may have taken over since the last look, and just after the
        cluster is made a node may still see another as the empty master it was before."""
        self.wait_ok()
        for server in self._running():
            if server.ask("ROLE")[0] == "master":
                server.ask("FLUSHALL")
        return [n for n in self.nodes() if n.role == "master"]

    def kill_master_of_slot(self, slot):
        """SIGKILL the master serving `slot`: its address."""
        return self.kill(self.master_for_slot(slot))

    def wait_for_promotion(self, slot, old_address, timeout=30):
        """Until every running node sees `slot` served by a master other than `old_address`, that
        node answers ROLE as a master and every running node reports cluster_state:ok:
        (its address, seconds since the kill)."""
        started = time.monotonic()

        def promoted():
            owners = set()
            for s in self._running():
                if info_cluster(s).get("cluster_state") != "ok":
                    return None
                owners |= {n.address for n in self.nodes(s.address)
                           if n.role == "master" and not n.failed and n.serves(slot)}
            if len(owners) != 1:
                return None
            address = owners.pop()
            if address == tuple(old_address) or self.server_at(address).ask("ROLE")[0] != "master":
                return None
            return address
        try:
            address = _wait_until(promoted, timeout, f"slot {slot} served by a master other than {old_address[1]}",
                                  interval=0.05)
        except TopologyTimeout as e:
            raise TopologyTimeout(f"{e}\n{self.logs()}") from None
        return address, self._since_kill(started)

    def _reshard_command(self, slots, from_id, to_id):
        command = ["redis-cli", "--cluster", "reshard", f"{HOST}:{self._running()[0].port}",
                   "--cluster-from", from_id, "--cluster-to", to_id, "--cluster-slots", str(slots),
                   "--cluster-yes"]
        if self.password is not None:
            command[1:1] = ["-a", self.password, "--no-auth-warning"]
        if self.tls is not None:
            command[1:1] = self.tls.cli_args()
        return command

    def start_reshard(self, slots, from_id, to_id):
        """Start moving `slots` slots (with their keys) from node `from_id` to node `to_id` in the
        background: the Reshard under way, for a test to load the cluster meanwhile."""
        reshard = Reshard(self._reshard_command(slots, from_id, to_id), self.dir)
        self.reshards.append(reshard)
        return reshard

    def reshard(self, slots, from_id, to_id, timeout=120):
        """Move `slots` slots from node `from_id` to node `to_id` and wait for it: redis-cli's output."""
        return self.start_reshard(slots, from_id, to_id).wait(timeout)

    def stop(self):
        for r in self.reshards:
            r.kill()
        super().stop()

