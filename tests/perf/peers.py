"""The processes a benchmark run starts, each on its own loopback port: Postfix's smtp-sink as
the upstream, discard sinks (plain, and with STARTTLS) for the large message, and the relays
measured side by side (none for "direct", HAProxy in TCP mode, Grey's spam_me, aiosmtpd's Proxy
handler, Haraka with smtp_forward, and for TLS sessions Postfix's smtpd as a before-queue
proxy); for the client's identity, Postfix's smtpd as the upstream; for policy decisions,
greylist_server as a policy service, Postgrey, and a responder answering DUNNO to everything as
the ceiling. A relay whose software is not installed raises Missing; the run reports it as
skipped."""
import grp
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from harness import PrivatePostfix, free_port, make_certificate, wait_for_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GREY_BIN = os.environ.get("GREY_PERF_BIN", os.path.join(ROOT, "build", "release"))
HARAKA_HOME = os.environ.get("GREY_PERF_HARAKA", os.path.join(ROOT, "build", "perf", "haraka"))
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-aiosmtpd installs for this interpreter


class Missing(Exception):
    """The software for a relay is not installed here."""


class Process:
    """A started server: `port` is where it listens, `pid` the process to measure."""

    name = "?"

    def __init__(self, argv, port, cwd=None, env=None, ready_timeout=20):
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix=f"grey-perf-{self.name}-", suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(port, ready_timeout)
        except RuntimeError:
            output = self.output()
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {output[-2000:]}")

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        os.unlink(self.log.name)


def _as_nobody():
    # smtp-sink refuses to run as root without a user to switch to.
    return ["-u", "nobody"] if os.geteuid() == 0 else []


class SmtpSink(Process):
    """Postfix's smtp-sink, counting delivered messages (-c), taking up to 12,000 sessions so the
    idle-connection run of a relay that connects upstream at once (HAProxy) is not queued."""

    name = "smtp-sink"

    def __init__(self):
        port = free_port()
        super().__init__(["smtp-sink", "-c", *_as_nobody(), "-m", "12000",
                          f"127.0.0.1:{port}", "4096"], port)

    def delivered(self):
        """Messages received so far: the last of smtp-sink's running counters."""
        counts = re.findall(r"mesg=(\d+)", self.output()[-400:])
        return int(counts[-1]) if counts else 0


class DiscardSink(Process):
    """An SMTP server that takes any message and throws it away at memory speed, so that the 1 GiB
    stream measures the relay rather than smtp-sink's line-by-line reading."""

    name = "discard-sink"

    def __init__(self):
        port = free_port()
        super().__init__([sys.executable, os.path.join(os.path.dirname(__file__), "discard_sink.py"),
                          str(port)], port)


class TlsDiscardSink(Process):
    """The discard sink with STARTTLS, in C++ (tls_discard_sink): its 250 says "tls" when the
    message came encrypted."""

    name = "tls-discard-sink"

    def __init__(self, cert, key):
        program = os.path.join(GREY_BIN, "tests", "perf", "tls_discard_sink")
        if not os.path.exists(program):
            raise Missing(f"{program} is not built (cmake --build --preset release --target tls_discard_sink)")
        port = free_port()
        super().__init__([program, "--port", str(port), "--cert", cert, "--key", key], port)


class Direct:
    """No relay: the client talks to the upstream itself. The ceiling every ratio is taken from."""

    name = "direct"
    pid = None

    def __init__(self, upstream_port):
        self.port = upstream_port

    def stop(self):
        pass


class HAProxy(Process):
    name = "haproxy"

    def __init__(self, upstream_port):
        if not shutil.which("haproxy"):
            raise Missing("haproxy is not installed (apt-get install haproxy)")
        port = free_port()
        self.dir = tempfile.mkdtemp(prefix="grey-perf-haproxy-")
        config = os.path.join(self.dir, "haproxy.cfg")
        # Two descriptors a connection: as many as this process may pass on to HAProxy.
        maxconn = (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100) // 2
        with open(config, "w") as f:
            f.write(f"""global
    maxconn {maxconn}
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
listen smtp
    bind 127.0.0.1:{port}
    server upstream 127.0.0.1:{upstream_port}
""")
        super().__init__(["haproxy", "-db", "-f", config], port)

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Grey(Process):
    """spam_me as a user starts it: where to listen and where to relay, nothing else. `extra`
    flags only for the runs the defaults do not allow (10,000 idle connections, a 1 GiB
    message) and for turning the upstream pool off."""

    name = "grey"

    def __init__(self, upstream_port, *extra):
        port = free_port()
        super().__init__([grey_program("spam_me"), "--listen", f"127.0.0.1:{port}",
                          "--upstream", f"127.0.0.1:{upstream_port}", *extra], port)


class GreylistDefaults(Process):
    """greylist_server as a user starts it (its greylist in ./greylist.db, the session log on
    standard output), relaying to the sink. The benchmark's triplet is whitelisted beforehand
    with greylist_admin, so every message passes after a store lookup: what a sender that has
    passed greylisting meets."""

    name = "greylist"

    def __init__(self, upstream_port, triplet):
        self.dir = tempfile.mkdtemp(prefix="grey-perf-greylist-")
        subprocess.run([grey_program("greylist_admin"), "--store", "sqlite:greylist.db", "whitelist", *triplet],
                       cwd=self.dir, check=True, capture_output=True, timeout=30)
        port = free_port()
        super().__init__([grey_program("greylist_server"), "--listen", f"127.0.0.1:{port}",
                          "--upstream", f"127.0.0.1:{upstream_port}"], port, cwd=self.dir)

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class GreylistServer(Process):
    """The greylisting proxy with the given store, its session log discarded."""

    name = "greylist_server"

    def __init__(self, upstream_port, store):
        port = free_port()
        super().__init__([grey_program("greylist_server"), "--listen", f"127.0.0.1:{port}",
                          "--upstream", f"127.0.0.1:{upstream_port}", "--store", store,
                          "--log", "/dev/null"], port)


class GreylistPolicy(Process):
    """greylist_server as a Postfix policy service (--policy inet:...) with the given store, its
    log line per decision discarded, the rest its defaults (a thread per core)."""

    name = "greylist-policy"

    def __init__(self, store):
        port = free_port()
        # Decisions without DNS, as Postgrey's are: judging first, with DNS in the loop, is
        # population.py's to measure (its clients' addresses would be looked up from the root).
        super().__init__([grey_program("greylist_server"), "--policy", f"inet:127.0.0.1:{port}",
                          "--store", store, "--log", "/dev/null", "--reputation", "off"], port)


class DunnoResponder(Process):
    """The policy benchmark's ceiling: dunno_responder (C, epoll, a thread per CPU) answering
    action=DUNNO to every request without reading it, as fast as the protocol and the loopback
    socket allow. A policy server's rate is measured against it."""

    name = "dunno"

    def __init__(self):
        program = os.path.join(GREY_BIN, "tests", "perf", "dunno_responder")
        if not os.path.exists(program):
            raise Missing(f"{program} is not built (cmake --build --preset release --target dunno_responder)")
        port = free_port()
        super().__init__([program, str(port)], port)


class Postgrey(Process):
    """Postgrey (Debian's package), the Perl policy server that Grey's policy mode stands in for,
    as its Debian service runs it but in the foreground: its default whitelists, --delay=300, its
    BerkeleyDB in a fresh directory of its own, its log on standard error (the service sends
    it to syslog). Only our instance is measured: the package's own service, if the package
    started one, listens on port 10023 and is never asked. As root Postgrey drops to its
    user, which must own the directory; otherwise it runs as whoever starts it. `delay` is
    --delay and `program` the script, for population.py's scaled time."""

    name = "postgrey"

    def __init__(self, without_sync=False, delay=300, program="postgrey"):
        if not shutil.which("postgrey"):
            raise Missing("postgrey is not installed (apt-get install postgrey)")
        # BerkeleyDB commits every new triplet with fdatasync: Postgrey's rate is then the disk's.
        # Under eatmydata (fsync and fdatasync made no-ops) it is Postgrey's own: a disk with
        # instant syncs.
        wrapper = []
        if without_sync:
            if not shutil.which("eatmydata"):
                raise Missing("eatmydata is not installed (apt-get install eatmydata)")
            wrapper = ["eatmydata"]
        port = free_port()
        self.dir = tempfile.mkdtemp(prefix="grey-perf-postgrey-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, user="postgrey", group="postgrey")
            who = []
        else:
            who = [f"--user={pwd.getpwuid(os.getuid()).pw_name}", f"--group={grp.getgrgid(os.getgid()).gr_name}"]
        try:
            super().__init__([*wrapper, program, f"--inet=127.0.0.1:{port}", f"--dbdir={self.dir}",
                              f"--pidfile={self.dir}/postgrey.pid", f"--delay={delay}", *who], port, ready_timeout=30)
        except Exception:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    @staticmethod
    def version():
        done = subprocess.run(["postgrey", "--version"], capture_output=True, text=True, timeout=30)
        return (done.stdout + done.stderr).strip().splitlines()[0] if done.stdout + done.stderr else "?"

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def grey_program(name):
    path = os.path.join(GREY_BIN, "examples", name)
    if not os.path.exists(path):
        raise Missing(f"{path} is not built (cmake --build --preset release)")
    return path


class Aiosmtpd(Process):
    """aiosmtpd's Proxy handler. Its command line cannot pass the handler arguments, hence the
    few lines of Python."""

    name = "aiosmtpd"

    SCRIPT = """
import signal, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Proxy
tls = {}
if len(sys.argv) > 3:  # certificate and key: STARTTLS offered, not required
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    tls = dict(tls_context=context, require_starttls=False)
c = Controller(Proxy("127.0.0.1", int(sys.argv[2])), hostname="127.0.0.1", port=int(sys.argv[1]),
               data_size_limit=2 << 30, **tls)
c.start()
signal.sigwait([signal.SIGTERM, signal.SIGINT])
c.stop()
"""

    def __init__(self, upstream_port, cert=None, key=None):
        check = subprocess.run([SYSTEM_PYTHON, "-c", "import aiosmtpd"], capture_output=True)
        if check.returncode != 0:
            raise Missing("aiosmtpd is not installed (apt-get install python3-aiosmtpd)")
        port = free_port()
        tls = [cert, key] if cert else []
        super().__init__([SYSTEM_PYTHON, "-c", self.SCRIPT, str(port), str(upstream_port), *tls], port)


class Haraka(Process):
    """Haraka as a pure forwarder: the instance `haraka -i` creates, with rcpt_to.in_host_list
    and queue/smtp_forward as its only plugins, logging at warnings only, one process."""

    name = "haraka"

    def __init__(self, upstream_port, domain):
        haraka = os.path.join(HARAKA_HOME, "node_modules", ".bin", "haraka")
        if not os.path.exists(haraka):
            raise Missing(f"Haraka is not installed (npm install --prefix {HARAKA_HOME} Haraka)")
        port = free_port()
        self.dir = tempfile.mkdtemp(prefix="grey-perf-haraka-")
        instance = os.path.join(self.dir, "instance")
        subprocess.run([haraka, "-i", instance], check=True, capture_output=True)
        config = os.path.join(instance, "config")

        def write(name, text):
            with open(os.path.join(config, name), "w") as f:
                f.write(text)

        write("plugins", "rcpt_to.in_host_list\nqueue/smtp_forward\n")
        write("host_list", f"{domain}\n")
        write("smtp.ini", f"listen=127.0.0.1:{port}\n")
        write("smtp_forward.ini", f"host=127.0.0.1\nport={upstream_port}\nenable_tls=false\n")
        write("log.ini", "[main]\nlevel=warn\n")
        with open(os.path.join(config, "connection.ini")) as f:
            connection = f.read()
        write("connection.ini", re.sub(r"(?m)^bytes=\d+", "bytes=2147483648", connection))
        super().__init__([haraka, "-c", instance], port, ready_timeout=60)

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class _PostfixSmtpd:
    """A private Postfix (harness.PrivatePostfix) whose only SMTP listener is one smtpd line of
    master.cf on a free loopback port, set up with the subclass's MAIN_CF. Needs root."""

    name = "postfix"
    MAIN_CF = ""

    def _start(self, smtpd_options):
        """Starts it, the smtpd taking `smtpd_options` (its -o settings)."""
        if not shutil.which("postfix") or os.geteuid() != 0:
            raise Missing("Postfix is not installed, or this is not root (postfix start needs it)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="grey-perf-postfix-")
        smtpd = f"127.0.0.1:{self.port} inet n - n - - smtpd {smtpd_options}\n"
        try:
            self.postfix = PrivatePostfix(self.dir, main_cf=self.MAIN_CF, master_cf=smtpd)
            wait_for_port(self.port, 20)
        except Exception:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.pid = self.postfix.pid

    def output(self):
        return self.postfix.read_log()

    def stop(self):
        self.postfix.stop()
        wait_until(lambda: not _listening(self.port), 10)
        shutil.rmtree(self.dir, ignore_errors=True)


class PostfixProxy(_PostfixSmtpd):
    """Postfix's smtpd as a before-queue proxy offering STARTTLS: a private instance
    (harness.PrivatePostfix) whose only SMTP listener passes each accepted message on to
    `upstream_port` as it arrives (smtpd_proxy_filter) and answers the client with the
    upstream's reply. Loopback clients may relay; no reverse DNS lookup of the client (the
    benchmark has no DNS). Needs root, as Postfix's own start does."""

    MAIN_CF = """\
myhostname = postfix.example
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_peername_lookup = no
default_process_limit = 100
"""

    def __init__(self, upstream_port, cert, key, session_cache=False):
        """`session_cache`: Debian's own main.cf setting for TLS session resumption, a btree
        session cache for returning clients, in main.cf since tlsmgr (which keeps it, and the
        session ticket keys) reads it there."""
        if session_cache:
            self.MAIN_CF = PostfixProxy.MAIN_CF + "smtpd_tls_session_cache_database = btree:${data_directory}/smtpd_scache\n"
        self._start(f"-o smtpd_proxy_filter=127.0.0.1:{upstream_port} -o smtpd_tls_security_level=may"
                    f" -o smtpd_tls_cert_file={cert} -o smtpd_tls_key_file={key}")


class PostfixUpstream(_PostfixSmtpd):
    """Postfix's smtpd as the upstream MTA, trusting Grey's address (127.0.0.1) with XCLIENT and
    XFORWARD: a private instance (harness.PrivatePostfix) whose only SMTP listener takes mail
    from 127.0.0.0/8 for any domain and passes each message as it arrives to smtp-sink at
    `sink_port` (a before-queue smtpd_proxy_filter), answering with smtp-sink's reply. No
    queue file, no cleanup, no fsync: what is measured is smtpd's own work per session, the
    part XCLIENT adds to. No reverse DNS lookup of the client. Needs root."""

    MAIN_CF = """\
myhostname = upstream.example
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_authorized_xclient_hosts = 127.0.0.1
smtpd_authorized_xforward_hosts = 127.0.0.1
smtpd_peername_lookup = no
default_process_limit = 200
"""

    def __init__(self, sink_port):
        self._start(f"-o smtpd_proxy_filter=127.0.0.1:{sink_port}")


def _listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Redis(Process):
    """A throwaway Redis for the greylist store figures: no persistence."""

    name = "redis"

    def __init__(self):
        if not shutil.which("redis-server"):
            raise Missing("redis-server is not installed")
        port = free_port()
        super().__init__(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                          "--appendonly", "no"], port)


def rss_kib(pid, field="VmRSS"):
    """A /proc figure of a process, in KiB: VmRSS now, VmHWM the peak."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def cpu_seconds(pid):
    """CPU seconds (user and system) used so far by a process and its children, those that
    ended (reaped by it) and those still running: Postfix's master and its daemons, one figure."""
    tick = os.sysconf("SC_CLK_TCK")
    children, total = {}, 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            # fields[1] is the parent; [11], [12] user and system time; [13], [14] the reaped children's
            children.setdefault(int(fields[1]), []).append((int(entry), fields))
            if int(entry) == pid:
                total += sum(int(x) for x in fields[11:15])
    pending = [pid]
    while pending:
        for child, fields in children.get(pending.pop(), []):
            total += int(fields[11]) + int(fields[12])
            pending.append(child)
    return total / tick


def wait_until(predicate, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
