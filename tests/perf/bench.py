"""Grey side by side with the relays people use today, on loopback: throughput at several loads,
added latency, memory per idle connection, one large message streamed, STARTTLS sessions and
one large message over TLS, greylist decision rates, first-sight decisions of the Postfix
policy service against Postgrey's and a DUNNO-answering ceiling's, and what telling a Postfix
upstream the client's identity (XCLIENT) costs. Every figure is the median of --repeat runs;
every throughput run is checked against what the sink counted. Prints a table and writes the
figures as JSON, and draws them as SVG charts (charts.py).

Started by tests/perf/run, which installs and builds what this needs."""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

import peers
import probes

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
# (label, parallel sessions, message size, most messages in one run)
LOADS = [("1 KiB x 1", 1, KIB, 20000), ("1 KiB x 20", 20, KIB, 40000),
         ("1 KiB x 100", 100, KIB, 40000), ("1 MiB x 20", 20, MIB, 2000)]
RELAYS = ["direct", "haproxy", "grey", "grey-metrics", "grey-noidentity", "grey-nopool", "greylist", "aiosmtpd",
          "haraka"]
SMTP_PEERS = ["aiosmtpd", "haraka"]
# Grey's programs run with their defaults, except where a measurement needs more than the
# defaults allow: 10,000 idle connections (default limit 1,000) and a 1 GiB message (64 MiB).
RAISED_LIMITS = ("--max-connections", "20000", "--max-connections-per-ip", "20000",
                 "--max-message-size", str(2 << 30))
NOT_RAISABLE = ["greylist"]  # limits in its configuration file: left out of the idle and stream runs
# "bare" is no relay: tls_discard_sink answering the sessions itself, a C++ Asio + OpenSSL server
# doing nothing but SMTP and TLS, for what the TLS stack alone costs a session.
TLS_RELAYS = ["grey", "postfix", "aiosmtpd", "bare"]
# Postfix policy services answering first-sight RCPT requests: greylist_server --policy with
# each store, and Postgrey; "postgrey-nosync" is Postgrey with its fdatasync calls made no-ops
# (eatmydata), what it would do on a disk that syncs at once. "dunno" is the ceiling:
# dunno_responder, answering DUNNO to every request without a look at it.
POLICY_PEERS = ["dunno", "grey-memory", "grey-sqlite", "grey-redis", "postgrey", "postgrey-nosync"]
POLICY_ANSWERS = {"dunno": "DUNNO"}  # the action each peer must answer with, if not DEFER_IF_PERMIT
# The client's identity told to a Postfix upstream that trusts Grey with XCLIENT: Grey as it
# starts (auto: XCLIENT here), without identity, and XCLIENT without the pool (a connection per
# session); HAProxy and direct delivery for scale.
IDENTITY_RELAYS = ["direct", "haproxy", "grey-noidentity", "grey", "grey-xclient-nopool"]
# openssl speed's names for the signature of a key type (`openssl x509 -text`'s spelling)
SIGNATURES = {("id-ecPublicKey", "P-256"): "ecdsap256", ("id-ecPublicKey", "P-384"): "ecdsap384",
              ("rsaEncryption", "2048"): "rsa2048", ("rsaEncryption", "4096"): "rsa4096"}


def start(name, upstream_port, raised=False):
    extra = RAISED_LIMITS if raised else ()
    if name == "direct":
        return peers.Direct(upstream_port)
    if name == "haproxy":
        return peers.HAProxy(upstream_port)
    if name == "grey":
        return peers.Grey(upstream_port, *extra)
    if name == "grey-metrics":  # the metrics' cost: the same, with --metrics
        return peers.Grey(upstream_port, "--metrics", "127.0.0.1:0", *extra)
    if name == "grey-noidentity":  # what telling the upstream the client's identity costs
        return peers.Grey(upstream_port, "--upstream-identity", "none", *extra)
    if name == "grey-nopool":
        return peers.Grey(upstream_port, "--upstream-pool", "0", *extra)
    if name == "grey-xclient-nopool":
        return peers.Grey(upstream_port, "--upstream-identity", "xclient", "--upstream-pool", "0", *extra)
    if name == "greylist":
        return peers.GreylistDefaults(upstream_port, ("127.0.0.1", probes.SENDER, probes.RECIPIENT))
    if name == "aiosmtpd":
        return peers.Aiosmtpd(upstream_port)
    if name == "haraka":
        return peers.Haraka(upstream_port, probes.RECIPIENT.split("@")[1])
    raise ValueError(name)


def say(text):
    print(text, file=sys.stderr, flush=True)


class Run:
    def __init__(self, args):
        self.args = args
        self.figures = {"relays": {}, "skipped": {}, "stream": {}, "greylist": {}, "tls": {}, "policy": {},
                        "identity": {}}

    def relay(self, name):
        return self.figures["relays"].setdefault(name, {})

    # -- throughput and latency, against smtp-sink ---------------------------------------------

    def counted_load(self, sink, relay, sessions, messages, size):
        """One smtp-source run, honest only if the sink counted every message."""
        before = sink.delivered()
        seconds = probes.load(relay.port, sessions, messages, size, timeout=600)
        if not peers.wait_until(lambda: sink.delivered() - before >= messages, 5):
            raise RuntimeError(f"sink counted {sink.delivered() - before} of {messages}")
        if sink.delivered() - before != messages:
            raise RuntimeError(f"sink counted {sink.delivered() - before}, sent {messages}")
        return seconds

    def throughput(self, sink, relays):
        for label, sessions, size, most in LOADS:
            counts = {}
            for name, relay in relays.items():
                # A short first run warms the relay up and sizes the timed runs to ~2 s each.
                first = max(2 * sessions, 20 if size == KIB else 10)
                rate = first / self.counted_load(sink, relay, sessions, first, size)
                counts[name] = int(min(most, max(2 * sessions, rate * self.args.seconds)))
            rates = {name: [] for name in relays}
            for rep in range(self.args.repeat):
                for name, relay in relays.items():
                    seconds = self.counted_load(sink, relay, sessions, counts[name], size)
                    rates[name].append(counts[name] / seconds)
            for name, values in rates.items():
                rate = statistics.median(values)
                self.relay(name)[label] = {"msg_per_s": rate, "mib_per_s": rate * size / MIB,
                                           "messages": counts[name], "runs": values}
                say(f"  {label:12} {name:12} {rate:9.0f} msg/s")

    def latency(self, relays):
        for name, relay in relays.items():
            p50s, p99s = [], []
            for rep in range(self.args.repeat):
                samples = probes.transaction_latencies(relay.port, self.args.seconds, 5000)
                p50s.append(probes.percentile(samples, 50))
                p99s.append(probes.percentile(samples, 99))
            self.relay(name)["latency_ms"] = {"p50": statistics.median(p50s) * 1e3,
                                              "p99": statistics.median(p99s) * 1e3}
        direct = self.relay("direct")["latency_ms"]
        for name in relays:
            own = self.relay(name)["latency_ms"]
            own["added_p50"] = own["p50"] - direct["p50"]
            own["added_p99"] = own["p99"] - direct["p99"]

    # -- memory --------------------------------------------------------------------------------

    def idle_per_connection(self, start_relay, open_connections, count):
        """RSS growth per connection over `count` connections that open_connections(port, count)
        leaves idle, on a fresh relay each run: a relay that served connections before keeps
        their memory for reuse."""
        per_connection, reached = [], []
        for rep in range(self.args.repeat):
            relay = start_relay()
            try:
                before = peers.rss_kib(relay.pid)
                sockets, done = open_connections(relay.port, count)
                grown = peers.rss_kib(relay.pid) - before
                for s in sockets:
                    s.close()
            finally:
                relay.stop()
            reached.append(done)
            per_connection.append(grown / done if done else float("nan"))
        return {"kib_per_connection": statistics.median(per_connection), "connections": min(reached),
                "runs": per_connection}

    def idle_memory(self, sink_port, names):
        """Connections that read the greeting, then stay idle."""
        for name in names:
            if name == "direct" or name in NOT_RAISABLE:
                continue
            idle = self.idle_per_connection(lambda: start(name, sink_port, raised=True),
                                            probes.idle_connections, self.args.idle)
            self.relay(name)["idle"] = idle
            say(f"  idle {name:10} {idle['kib_per_connection']:6.2f} KiB/conn, {idle['connections']} connections")

    def tls_idle_memory(self, sink_port):
        """Connections encrypted with STARTTLS, then idle, on spam_me with a certificate made
        for the run (the peers' TLS set-ups are not measured yet)."""
        workdir = tempfile.mkdtemp(prefix="grey-perf-tls-")
        try:
            cert, key = peers.make_certificate(workdir)
            idle = self.idle_per_connection(
                lambda: peers.Grey(sink_port, *RAISED_LIMITS, "--tls-cert", cert, "--tls-key", key),
                probes.tls_idle_connections, self.args.tls_idle)
            self.relay("grey")["tls_idle"] = idle
            say(f"  idle TLS grey {idle['kib_per_connection']:6.2f} KiB/conn, {idle['connections']} connections")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def stream(self, names):
        """One session, one --stream-size message, to a sink that discards at memory speed; the
        relay's peak RSS is read from a fresh process so earlier loads do not count."""
        plain = [probes.plain_copy(self.args.stream_size) for _ in range(self.args.repeat)]
        self.figures["stream"]["plain_copy_mib_per_s"] = statistics.median(plain)
        sink = peers.DiscardSink()
        try:
            for name in names:
                rates, peaks = [], []
                for rep in range(self.args.repeat):
                    try:
                        relay = start(name, sink.port, raised=True)
                    except peers.Missing:
                        break
                    try:
                        rate, sent, reply = probes.stream(relay.port, self.args.stream_size)
                        # The peers answer with their own 250; the others pass the sink's on.
                        if name not in SMTP_PEERS:
                            octets = int(re.search(rb" (\d+)\r\n$", reply).group(1))
                            if octets != sent:
                                raise RuntimeError(f"{name}: sink took {octets} of {sent} octets")
                        rates.append(rate)
                        if relay.pid:
                            peaks.append(peers.rss_kib(relay.pid, "VmHWM"))
                    finally:
                        relay.stop()
                if rates:
                    self.figures["stream"][name] = {
                        "mib_per_s": statistics.median(rates), "runs": rates,
                        "peak_rss_mib": statistics.median(peaks) / 1024 if peaks else None}
                    say(f"  stream {name:10} {statistics.median(rates):7.0f} MiB/s")
        finally:
            sink.stop()

    # -- TLS -----------------------------------------------------------------------------------

    def tls(self, sink):
        """STARTTLS sessions per second through Grey, Postfix's smtpd and aiosmtpd, all with one
        certificate made for the run; the physical floor for its key type; one large message
        over TLS on both legs against the same without TLS."""
        workdir = tempfile.mkdtemp(prefix="grey-perf-tls-")
        os.chmod(workdir, 0o755)  # Postfix's daemons read the certificate as the postfix user
        try:
            cert, key = peers.make_certificate(workdir)
            figures = self.figures["tls"] = {"key": _key_type(cert)}
            figures["floor"] = _handshake_floor(figures["key"])
            say(f"  key {figures['key']['name']}; floor {figures['floor']['handshakes_per_s']:.0f} "
                f"full handshakes/s on one core")
            if self.args.tls_sessions:
                self.tls_sessions(sink, cert, key)
                if self.args.tls_resume:
                    self.tls_resumed(sink, cert, key)
            if self.args.tls_stream_size:
                self.tls_stream(cert, key)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def tls_sessions(self, sink, cert, key):
        program = os.path.join(peers.GREY_BIN, "tests", "perf", "tls_sessions")
        starters = {"grey": lambda: peers.Grey(sink.port, "--tls-cert", cert, "--tls-key", key),
                    "postfix": lambda: peers.PostfixProxy(sink.port, cert, key),
                    "aiosmtpd": lambda: peers.Aiosmtpd(sink.port, cert, key),
                    "bare": lambda: peers.TlsDiscardSink(cert, key)}
        relays, figures = {}, self.figures["tls"].setdefault("sessions", {})
        try:
            for name in self.args.tls_relays:
                try:
                    relays[name] = starters[name]()
                except peers.Missing as e:
                    self.figures["skipped"][f"{name} (TLS)"] = str(e)
                    say(f"skipped {name} (TLS): {e}")
            for concurrency in self.args.tls_concurrency:
                runs = {name: [] for name in relays}
                failures = {}
                # A short first run warms each up (Postfix starts its smtpd processes); then the
                # relays take turns, so that the machine's noise hits all alike.
                for seconds in [min(0.5, self.args.tls_sessions)] + [self.args.tls_sessions] * self.args.repeat:
                    for name, relay in relays.items():
                        if name in failures:
                            continue
                        try:
                            counter = None if name == "bare" else sink  # it keeps the messages itself
                            runs[name].append(_tls_run(program, counter, relay, concurrency, seconds))
                        except RuntimeError as e:
                            failures[name] = str(e)
                            say(f"  TLS x {concurrency:<3} {name:9} FAILED: {e}")
                for name in relays:
                    runs[name] = runs[name][1:]  # not the warm-up
                for name in relays:
                    own = figures.setdefault(name, {})
                    if name in failures:
                        own[str(concurrency)] = {"failed": failures[name]}
                        continue
                    rates = [r["sessions_per_s"] for r in runs[name]]
                    own[str(concurrency)] = {
                        "sessions_per_s": statistics.median(rates), "runs": rates,
                        "server_cpu_ms": statistics.median(r["server_cpu_ms"] for r in runs[name]),
                        "client_cpu": statistics.median(r["client_cpu"] for r in runs[name])}
                    say(f"  TLS x {concurrency:<3} {name:9} {statistics.median(rates):7.0f} sessions/s, "
                        f"{own[str(concurrency)]['server_cpu_ms']:.2f} ms server CPU per session")
        finally:
            for relay in relays.values():
                relay.stop()

    def tls_resumed(self, sink, cert, key):
        """STARTTLS sessions per second when each client comes back with the session of its
        previous connection (tls_sessions --resume), as MTAs with a TLS session cache do: Grey
        as it starts (resumption on), and Postfix's smtpd with Debian's session cache setting,
        in TLS 1.3 (tickets) and TLS 1.2 (tickets, or a session ID). Beside each, the share of
        sessions the server resumed: a figure where it did not resume is a full handshake's."""
        program = os.path.join(peers.GREY_BIN, "tests", "perf", "tls_sessions")
        starters = {"grey": lambda: peers.Grey(sink.port, "--tls-cert", cert, "--tls-key", key),
                    "postfix": lambda: peers.PostfixProxy(sink.port, cert, key, session_cache=True)}
        relays, figures = {}, self.figures["tls"].setdefault("resumed", {})
        try:
            for name in self.args.tls_relays:
                if name not in starters:
                    continue
                try:
                    relays[name] = starters[name]()
                except peers.Missing as e:
                    self.figures["skipped"][f"{name} (TLS resumed)"] = str(e)
                    say(f"skipped {name} (TLS resumed): {e}")
            for version, options in (("TLSv1.3", ["--resume"]), ("TLSv1.2", ["--resume", "--tls1.2"])):
                for concurrency in self.args.tls_concurrency:
                    runs, failures = {name: [] for name in relays}, {}
                    for seconds in [min(0.5, self.args.tls_sessions)] + [self.args.tls_sessions] * self.args.repeat:
                        for name, relay in relays.items():
                            if name in failures:
                                continue
                            try:
                                runs[name].append(_tls_run(program, sink, relay, concurrency, seconds, *options))
                            except RuntimeError as e:
                                failures[name] = str(e)
                                say(f"  TLS resumed {version} x {concurrency:<3} {name:9} FAILED: {e}")
                    for name in relays:
                        own = figures.setdefault(name, {}).setdefault(version, {})
                        if name in failures:
                            own[str(concurrency)] = {"failed": failures[name]}
                            continue
                        timed = runs[name][1:]  # not the warm-up
                        rates = [r["sessions_per_s"] for r in timed]
                        own[str(concurrency)] = {
                            "sessions_per_s": statistics.median(rates), "runs": rates,
                            "server_cpu_ms": statistics.median(r["server_cpu_ms"] for r in timed),
                            "client_cpu": statistics.median(r["client_cpu"] for r in timed),
                            "resumed_share": min(r["resumed_share"] for r in timed)}
                        v = own[str(concurrency)]
                        say(f"  TLS resumed {version} x {concurrency:<3} {name:9} {v['sessions_per_s']:7.0f} sessions/s, "
                            f"{v['server_cpu_ms']:.2f} ms server CPU per session, {v['resumed_share']:.0%} resumed")
        finally:
            for relay in relays.values():
                relay.stop()

    def tls_stream(self, cert, key):
        """One --tls-stream-size message through Grey to the C++ discard sink, with TLS on both
        legs and without; the same client, sink and size. "direct" is the client writing
        straight into the sink, for scale."""
        program = os.path.join(peers.GREY_BIN, "tests", "perf", "tls_sessions")
        size = self.args.tls_stream_size
        sink = peers.TlsDiscardSink(cert, key)
        raised = [*RAISED_LIMITS, "--tls-cert", cert, "--tls-key", key]
        cases = {"grey tls": (["--upstream-tls", "encrypt"], True), "grey plain": (["--upstream-tls", "none"], False),
                 "direct tls": (None, True), "direct plain": (None, False)}
        runs = {case: [] for case in cases}
        try:
            for rep in range(self.args.repeat):
                for case, (upstream_tls, tls) in cases.items():
                    relay = peers.Grey(sink.port, *raised, *upstream_tls) if upstream_tls else peers.Direct(sink.port)
                    try:
                        argv = [program, "--port", str(relay.port), "--stream", str(size)] + ([] if tls else ["--no-tls"])
                        out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
                    finally:
                        relay.stop()
                    # Grey passes the sink's reply on, with an enhanced status code added.
                    m = re.match(r"stream \S+ octets (\d+) seconds \S+ rate (\S+) reply 250 (?:[245]\.\d+\.\d+ )?ok (\d+)( tls)?$", out.strip())
                    if not m or m.group(1) != m.group(3):
                        raise RuntimeError(f"{case}: {out.strip()[:300]}")
                    if bool(m.group(4)) != tls:
                        raise RuntimeError(f"{case}: the message reached the sink {'in plain' if tls else 'over TLS'}")
                    runs[case].append(float(m.group(2)))
        finally:
            sink.stop()
        figures = self.figures["tls"]["stream"] = {"size": size}
        for case, rates in runs.items():
            figures[case] = {"mib_per_s": statistics.median(rates), "runs": rates}
            say(f"  stream {case:13} {statistics.median(rates):7.0f} MiB/s")
        figures["ratio"] = figures["grey tls"]["mib_per_s"] / figures["grey plain"]["mib_per_s"]

    # -- greylisting ---------------------------------------------------------------------------

    def greylist(self, redis_port):
        program = os.path.join(peers.GREY_BIN, "tests", "perf", "greylist_decisions")
        figures = {}
        for rep in range(self.args.repeat):
            out = subprocess.run([program, "--redis", f"127.0.0.1:{redis_port}"], check=True,
                                 capture_output=True, text=True, timeout=600).stdout
            for line in out.splitlines():
                m = re.match(r"(.+?)\s{2,}(\d+)$", line)
                if m:
                    figures.setdefault(m.group(1).strip(), []).append(int(m.group(2)))
        self.figures["greylist"]["decisions_per_s"] = {k: statistics.median(v) for k, v in figures.items()}
        client = os.path.join(peers.GREY_BIN, "tests", "perf", "first_sight")
        stores = {"memory": "memory", "sqlite": None, "redis": f"redis://127.0.0.1:{redis_port}"}
        server = {}
        workdir = tempfile.mkdtemp(prefix="grey-perf-greylist-")
        for store, spec in stores.items():
            spec = spec or f"sqlite:{workdir}/greylist.db"
            rates = []
            for rep in range(self.args.repeat):
                relay = peers.GreylistServer(self.sink_port, spec)
                try:
                    rate, other = probes.deferrals(client, relay.port, self.args.seconds)
                finally:
                    relay.stop()
                if other:
                    raise RuntimeError(f"greylist_server ({store}): {other} sessions not deferred")
                rates.append(rate)
            server[store] = statistics.median(rates)
            say(f"  greylist_server {store:7} {server[store]:8.0f} first-sight deferrals/s")
        self.figures["greylist"]["server_deferrals_per_s"] = server
        shutil.rmtree(workdir, ignore_errors=True)

    # -- the client's identity, told to Postfix ---------------------------------------------

    def identity(self, sink):
        """1 KiB messages per second, --identity-concurrency sessions at once, one message each
        (tls_sessions --no-tls), through each relay to a private Postfix smtpd that trusts
        127.0.0.1 with XCLIENT and XFORWARD and passes each message to smtp-sink before its
        queue. Two client mixes: every session from 127.0.0.1 with one EHLO name (a pooled
        connection that took that identity serves every later session), and sessions from
        --identity-sources addresses in turn, each with its own name (a real MX's mix: under
        XCLIENT each identity needs a connection of its own). Fresh relays for each mix, each
        warmed up until a short run had four sessions per client address and none slower than
        a second (Grey looks the client's names up once per thread and address, and keeps
        them; a look-up the resolver drops costs its timeout, 5 s, to every new client queued
        behind it); then the relays take turns. A run counts only with no failed session and
        every message counted by the sink; Postfix's log says which client it saw."""
        args = self.args
        program = os.path.join(peers.GREY_BIN, "tests", "perf", "tls_sessions")
        if not os.path.exists(program):
            raise peers.Missing(f"{program} is not built (cmake --build --preset release --target tls_sessions)")
        figures = self.figures["identity"] = {"concurrency": args.identity_concurrency,
                                              "seconds": args.identity_seconds, "mixes": {}}
        upstream = peers.PostfixUpstream(sink.port)
        try:
            figures["postfix"] = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                                               text=True, timeout=30).stdout.strip()
            for label, sources in (("one client", 1), (f"{args.identity_sources} clients", args.identity_sources)):
                relays, mix = {}, figures["mixes"].setdefault(label, {"sources": sources, "relays": {}})
                try:
                    for name in args.identity_relays:
                        try:
                            relays[name] = start(name, upstream.port)
                        except peers.Missing as e:
                            self.figures["skipped"][f"{name} (identity)"] = str(e)
                            say(f"skipped {name} (identity): {e}")
                    runs, failures = {name: [] for name in relays}, {}
                    for name, relay in relays.items():
                        # Warm-up: every client's names looked up and cached by Grey (each of its
                        # threads keeps its own), Postfix's smtpd processes started.
                        for _ in range(5):
                            try:
                                warm = _identity_run(program, sink, upstream, relay, sources,
                                                     args.identity_concurrency, min(0.5, args.identity_seconds))
                            except RuntimeError as e:
                                failures[name] = str(e)
                                say(f"  identity {label:11} {name:19} FAILED: {e}")
                                break
                            say(f"    warm-up {name}: {warm['sessions']} sessions, slowest {warm['slowest_ms']:.0f} ms, {warm['connections']:.2f} conns")
                            if warm["sessions"] >= 4 * sources and warm["slowest_ms"] < 1000:
                                break
                    for seconds in [args.identity_seconds] * args.repeat:
                        for name, relay in relays.items():
                            if name in failures:
                                continue
                            try:
                                runs[name].append(_identity_run(program, sink, upstream, relay, sources,
                                                                args.identity_concurrency, seconds))
                            except RuntimeError as e:
                                failures[name] = str(e)
                                say(f"  identity {label:11} {name:19} FAILED: {e}")
                finally:
                    for relay in relays.values():
                        relay.stop()
                for name in relays:
                    if name in failures:
                        mix["relays"][name] = {"failed": failures[name]}
                        continue
                    r = runs[name]
                    rates = [x["msg_per_s"] for x in r]
                    own = mix["relays"][name] = {"msg_per_s": statistics.median(rates), "runs": rates}
                    for key in ("relay_cpu_ms", "postfix_cpu_ms", "client_helo", "client_addr", "connections",
                                "client_cpu"):
                        own[key] = statistics.median(x[key] for x in r)
                    own["slowest_ms"] = max(x["slowest_ms"] for x in r)
                    say(f"  identity {label:11} {name:19} {own['msg_per_s']:6.0f} msg/s; Postfix saw the client's "
                        f"EHLO name on {own['client_helo']:.0%}, its address on {own['client_addr']:.0%}, "
                        f"{own['connections']:.2f} upstream connections per message")
        finally:
            upstream.stop()

    # -- the Postfix policy service --------------------------------------------------------------

    def policy(self):
        """First-sight policy decisions per second: policy_requests (C++, one thread) sending RCPT
        requests for never-seen triplets over 1 and more connections, --policy-pipeline requests
        in flight on each (1: as Postfix's smtpd asks), to greylist_server --policy with each
        store, to Postgrey, and to the ceiling, dunno_responder. Every run gets a fresh server and an empty store (a new BerkeleyDB
        directory for Postgrey, a new SQLite file, a flushed Redis), a short warm-up, then the
        timed run; the peers take turns, so the machine's noise hits all alike. A run counts
        only if every answer was DEFER_IF_PERMIT (DUNNO from the ceiling)."""
        args = self.args
        program = os.path.join(peers.GREY_BIN, "tests", "perf", "policy_requests")
        if not os.path.exists(program):
            raise peers.Missing(f"{program} is not built (cmake --build --preset release --target policy_requests)")
        figures = self.figures["policy"] = {"pipeline": args.policy_pipeline, "seconds": args.policy_seconds,
                                            "peers": {}}
        workdir = tempfile.mkdtemp(prefix="grey-perf-policy-")
        redis = None
        starters = {"dunno": peers.DunnoResponder,
                    "grey-memory": lambda: peers.GreylistPolicy("memory"),
                    "grey-sqlite": lambda: peers.GreylistPolicy(f"sqlite:{tempfile.mkdtemp(dir=workdir)}/greylist.db"),
                    "grey-redis": lambda: peers.GreylistPolicy(_flushed(redis)),
                    "postgrey": peers.Postgrey,
                    "postgrey-nosync": lambda: peers.Postgrey(without_sync=True)}
        names = list(args.policy_peers)
        try:
            if "grey-redis" in names:
                try:
                    redis = peers.Redis()
                except peers.Missing as e:
                    names.remove("grey-redis")
                    self.figures["skipped"]["grey-redis (policy)"] = str(e)
                    say(f"skipped grey-redis (policy): {e}")
            for name in list(names):  # one start each first, so that what is missing is known
                try:
                    starters[name]().stop()
                except (peers.Missing, RuntimeError) as e:  # not installed, or did not start
                    names.remove(name)
                    self.figures["skipped"][f"{name} (policy)"] = str(e)
                    say(f"skipped {name} (policy): {e}")
            if any(name.startswith("postgrey") for name in names):
                figures["postgrey_version"] = peers.Postgrey.version()
            runs = {name: {c: [] for c in args.policy_connections} for name in names}
            failures = {}
            for rep in range(args.repeat):
                for connections in args.policy_connections:
                    for name in names:
                        if (name, connections) in failures:
                            continue
                        try:
                            runs[name][connections].append(
                                self.policy_run(program, starters[name], connections,
                                                POLICY_ANSWERS.get(name, "DEFER_IF_PERMIT")))
                        except RuntimeError as e:
                            failures[(name, connections)] = str(e)
                            say(f"  policy x {connections:<2} {name:15} FAILED: {e}")
            for name in names:
                own = figures["peers"].setdefault(name, {})
                for connections in args.policy_connections:
                    if (name, connections) in failures:
                        own[str(connections)] = {"failed": failures[(name, connections)]}
                        continue
                    r = runs[name][connections]
                    rates = [x["requests_per_s"] for x in r]
                    own[str(connections)] = {
                        "requests_per_s": statistics.median(rates), "runs": rates,
                        "server_cpu_us": statistics.median(x["server_cpu_us"] for x in r),
                        "client_cpu": statistics.median(x["client_cpu"] for x in r)}
                    v = own[str(connections)]
                    say(f"  policy x {connections:<2} {name:15} {v['requests_per_s']:8.0f} requests/s, "
                        f"{v['server_cpu_us']:7.1f} us server CPU per request, client {v['client_cpu']:.2f} core")
        finally:
            if redis:
                redis.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    def policy_run(self, program, start_peer, connections, expect):
        args = self.args
        server = start_peer()
        try:
            probes.policy_requests(program, server.port, min(0.5, args.policy_seconds), connections,
                                   args.policy_pipeline, expect)
            cpu_before = peers.cpu_seconds(server.pid)
            run = probes.policy_requests(program, server.port, args.policy_seconds, connections,
                                         args.policy_pipeline, expect)
            run["server_cpu_us"] = (peers.cpu_seconds(server.pid) - cpu_before) / run["answers"] * 1e6
            return run
        finally:
            server.stop()

    # -- the whole run -------------------------------------------------------------------------

    def run(self):
        args = self.args
        self.figures["machine"] = {"cpus": os.cpu_count(), "kernel": platform.release(),
                                   "cpu": _cpu_model(), "date": datetime.datetime.now().isoformat()}
        self.figures["open_file_limit"] = probes.raise_open_file_limit()
        if args.only == "policy":
            say("== policy")
            self.policy()
            return self.figures
        sink = peers.SmtpSink()
        self.sink_port = sink.port
        if args.only == "tls":
            try:
                say("== TLS")
                self.tls(sink)
            finally:
                sink.stop()
            return self.figures
        if args.only == "identity":
            try:
                say("== the client's identity, Postfix upstream")
                self.identity(sink)
            except peers.Missing as e:
                self.figures["skipped"]["identity"] = str(e)
                say(f"skipped identity: {e}")
            finally:
                sink.stop()
            return self.figures
        relays = {}
        try:
            for name in args.relays:
                try:
                    relays[name] = start(name, sink.port)
                except peers.Missing as e:
                    self.figures["skipped"][name] = str(e)
                    say(f"skipped {name}: {e}")
            say("== throughput (smtp-source -> relay -> smtp-sink)")
            self.throughput(sink, relays)
            say("== latency of one transaction, one session")
            self.latency(relays)
            for name, relay in relays.items():
                if relay.pid:
                    self.relay(name)["peak_rss_mib"] = peers.rss_kib(relay.pid, "VmHWM") / 1024
        except BaseException:
            sink.stop()  # the try below does it otherwise; a failed start must not leave it running
            raise
        finally:
            for relay in relays.values():
                relay.stop()
        try:
            if args.idle:
                say(f"== memory per idle connection ({args.idle} connections)")
                self.idle_memory(sink.port, list(relays))
            if args.tls_idle and "grey" in relays:
                say(f"== memory per idle TLS connection ({args.tls_idle} connections)")
                self.tls_idle_memory(sink.port)
            if args.stream_size:
                say(f"== one {args.stream_size >> 20} MiB message")
                self.stream([n for n in relays if n not in args.no_stream and n not in NOT_RAISABLE])
            if args.tls_sessions or args.tls_stream_size:
                say("== TLS")
                self.tls(sink)
            if args.identity_seconds:
                say("== the client's identity, Postfix upstream")
                try:
                    self.identity(sink)
                except peers.Missing as e:
                    self.figures["skipped"]["identity"] = str(e)
                    say(f"skipped identity: {e}")
            if args.greylist:
                say("== greylist decisions")
                redis = peers.Redis()
                try:
                    self.greylist(redis.port)
                finally:
                    redis.stop()
            if args.policy_seconds:
                say("== policy")
                try:
                    self.policy()
                except peers.Missing as e:
                    self.figures["skipped"]["policy"] = str(e)
                    say(f"skipped policy: {e}")
        finally:
            sink.stop()
        return self.figures


def _flushed(redis):
    """The store spec of `redis`, emptied for the next run (FLUSHALL over a plain socket)."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=10) as s:
        s.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
        if not s.recv(64).startswith(b"+OK"):
            raise RuntimeError("Redis FLUSHALL failed")
    return f"redis://127.0.0.1:{redis.port}"


def _sessions_run(program, sink, relay, concurrency, seconds, *options):
    """One tls_sessions run of 1 KiB messages against `relay`, with `options`: honest only with
    no failed session and every message counted by the sink (when there is one). Returns the
    match of its result line and the sessions that got 250."""
    before = sink.delivered() if sink else 0
    done = subprocess.run([program, *options, "--port", str(relay.port), "--seconds", str(seconds),
                           "--concurrency", str(concurrency), "--size", str(KIB)],
                          capture_output=True, text=True, timeout=seconds + 120)
    m = re.match(r"sessions (\d+) failed (\d+) seconds \S+ rate (\d+) client_cpu (\S+)(?: slowest_ms (\S+))?",
                 done.stdout)
    if not m:
        raise RuntimeError(f"tls_sessions: {done.stdout}{done.stderr}")
    sessions, failed = int(m.group(1)), int(m.group(2))
    if failed:
        raise RuntimeError(f"{failed} of {sessions + failed} sessions failed")
    if sink and (not peers.wait_until(lambda: sink.delivered() - before >= sessions, 5)
                 or sink.delivered() - before != sessions):
        raise RuntimeError(f"sink counted {sink.delivered() - before}, {sessions} sessions got 250")
    return m, sessions


def _tls_run(program, sink, relay, concurrency, seconds, *options):
    """One STARTTLS sessions run against `relay` (_sessions_run), with tls_sessions' `options`.
    Returns the rate, the relay's CPU per session, the share of a core the client used, and the
    share of sessions the server resumed."""
    cpu_before = peers.cpu_seconds(relay.pid)
    m, sessions = _sessions_run(program, sink, relay, concurrency, seconds, *options)
    cpu = peers.cpu_seconds(relay.pid) - cpu_before
    resumed = re.search(r" resumed (\d+)", m.string)
    return {"sessions_per_s": int(m.group(3)), "server_cpu_ms": cpu / max(sessions, 1) * 1e3,
            "client_cpu": float(m.group(4)),
            "resumed_share": int(resumed.group(1)) / max(sessions, 1) if resumed else 0.0}


def _identity_run(program, sink, upstream, relay, sources, concurrency, seconds):
    """One run of plain sessions from `sources` loopback addresses through `relay` to Postfix:
    honest only with no failed session and every message counted by the sink. Returns the
    rate, the relay's and Postfix's CPU per message, and from Postfix's log the share of
    messages it took with the client's own EHLO name and with a client address other than
    127.0.0.1 (where the clients are many), and the connections it accepted per message."""
    log_start = len(upstream.output())
    relay_cpu = peers.cpu_seconds(relay.pid) if relay.pid else 0
    postfix_cpu = peers.cpu_seconds(upstream.pid)
    m, sessions = _sessions_run(program, sink, relay, concurrency, seconds, "--no-tls", "--sources", str(sources))
    relay_cpu = (peers.cpu_seconds(relay.pid) - relay_cpu) if relay.pid else 0
    postfix_cpu = peers.cpu_seconds(upstream.pid) - postfix_cpu

    def accepted():
        return upstream.output()[log_start:].count("proxy-accept: END-OF-MESSAGE")
    # postlogd writes each line a moment after the reply.
    peers.wait_until(lambda: accepted() >= sessions, 10)
    log = upstream.output()[log_start:]
    helos = re.findall(r"proxy-accept: END-OF-MESSAGE: 250 .* helo=<([^>]*)>", log)
    addresses = re.findall(r"NOQUEUE: client=\S*\[([\d.]+)\]", log)
    if len(helos) != sessions:
        raise RuntimeError(f"Postfix logged {len(helos)} accepted messages, {sessions} sessions got 250")
    connections = len(re.findall(r"\]: connect from ", log))
    return {"msg_per_s": int(m.group(3)), "client_cpu": float(m.group(4)), "sessions": sessions,
            "slowest_ms": float(m.group(5)),
            "relay_cpu_ms": relay_cpu / max(sessions, 1) * 1e3, "postfix_cpu_ms": postfix_cpu / max(sessions, 1) * 1e3,
            "client_helo": sum(bool(re.fullmatch(r"client(-\d+)?\.example", h)) for h in helos) / sessions,
            "client_addr": sum(a != "127.0.0.1" for a in addresses) / sessions,
            "connections": connections / sessions}


def _key_type(cert):
    """The certificate's key type, and openssl speed's name for its signature."""
    text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-text"], check=True,
                          capture_output=True, text=True).stdout
    algorithm = re.search(r"Public Key Algorithm: (\S+)", text).group(1)
    m = re.search(r"NIST CURVE: (\S+)", text) or re.search(r"Public-Key: \((\d+) bit", text)
    detail = m.group(1)
    name = f"ECDSA {detail}" if algorithm == "id-ecPublicKey" else f"RSA {detail}"
    return {"name": name, "speed": SIGNATURES.get((algorithm, detail))}


def _handshake_floor(key):
    """Full server-side handshakes per second of one core, from openssl speed: one signature
    (the key type's) and one X25519 key exchange (TLS 1.3's default group) each:
    1 / (1/sign + 1/ecdh)."""
    if not key["speed"]:
        return {"handshakes_per_s": float("nan"), "why": f"no openssl speed name for {key['name']}"}
    out = subprocess.run(["openssl", "speed", "-seconds", "1", "-mr", key["speed"], "ecdhx25519"],
                         capture_output=True, text=True, timeout=120).stdout
    # -mr lines: +F2 (RSA) and +F4 (ECDSA) ":n:bits:sign/s:verify/s", +F5 (ECDH) ":n:bits:op/s"
    sign = float(re.search(r"^\+F[24]:\d+:\d+:([\d.]+):", out, re.M).group(1))
    ecdh = float(re.search(r"^\+F5:\d+:\d+:([\d.]+)", out, re.M).group(1))
    return {"handshakes_per_s": 1 / (1 / sign + 1 / ecdh), "sign_per_s": sign, "ecdh_per_s": ecdh,
            "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()}


def _cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--relays", nargs="+", default=RELAYS, choices=RELAYS)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is kept")
    parser.add_argument("--seconds", type=float, default=2, help="target length of a timed run")
    parser.add_argument("--idle", type=int, default=10000, help="idle connections (0: skip)")
    parser.add_argument("--tls-idle", type=int, default=2000, help="idle STARTTLS connections (0: skip)")
    parser.add_argument("--stream-size", type=int, default=GIB, help="octets (0: skip)")
    parser.add_argument("--no-stream", nargs="*", default=[], choices=RELAYS,
                        help="relays left out of the stream run")
    parser.add_argument("--tls-sessions", type=float, default=3,
                        help="seconds of each STARTTLS sessions run (0: skip)")
    parser.add_argument("--tls-concurrency", type=int, nargs="+", default=[8, 32],
                        help="parallel STARTTLS sessions, a figure for each")
    parser.add_argument("--tls-relays", nargs="+", default=TLS_RELAYS, choices=TLS_RELAYS)
    parser.add_argument("--no-tls-resume", dest="tls_resume", action="store_false",
                        help="leave out the resumed STARTTLS sessions runs (Grey and Postfix)")
    parser.add_argument("--tls-stream-size", type=int, default=256 * MIB,
                        help="octets of the message sent over TLS on both legs (0: skip)")
    parser.add_argument("--policy-seconds", type=float, default=3,
                        help="seconds of each policy decisions run (0: skip)")
    parser.add_argument("--policy-connections", type=int, nargs="+", default=[1, 8],
                        help="connections to the policy service, a figure for each")
    parser.add_argument("--policy-pipeline", type=int, default=1,
                        help="requests in flight on each policy connection (Postfix: 1)")
    parser.add_argument("--policy-peers", nargs="+", default=POLICY_PEERS, choices=POLICY_PEERS)
    parser.add_argument("--identity-seconds", type=float, default=2,
                        help="seconds of each run through a Postfix upstream trusting XCLIENT (0: skip)")
    parser.add_argument("--identity-concurrency", type=int, default=20, help="sessions at once, identity runs")
    parser.add_argument("--identity-sources", type=int, default=50,
                        help="client addresses (127.0.0.1 to .N) of the identity runs' second mix")
    parser.add_argument("--identity-relays", nargs="+", default=IDENTITY_RELAYS, choices=IDENTITY_RELAYS)
    parser.add_argument("--only", choices=["tls", "policy", "identity"], help="run only this section")
    parser.add_argument("--no-greylist", dest="greylist", action="store_false")
    parser.add_argument("--json", help="where the figures go (default results/latest.json, with --only "
                                         "results/latest-SECTION.json, so that a full run's stay)")
    parser.add_argument("--charts", default=os.path.join(os.path.dirname(__file__), "charts"),
                        help="where the SVG charts of the figures go (default tests/perf/charts; "
                             "report.py --charts DIR JSON draws them again from the figures)")
    parser.add_argument("--no-charts", dest="charts", action="store_const", const=None, help="no charts")
    args = parser.parse_args()
    if not args.json:
        args.json = os.path.join(os.path.dirname(__file__), "results",
                                 f"latest-{args.only}.json" if args.only else "latest.json")
    if "direct" not in args.relays:
        args.relays.insert(0, "direct")  # every ratio is taken against it

    figures = Run(args).run()
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(figures, f, indent=2)
    import report
    print(report.table(figures))
    say(f"figures written to {args.json}")
    if args.charts:
        report.write_charts(figures, args.charts)


if __name__ == "__main__":
    main()
