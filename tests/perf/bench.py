"""Grey side by side with the relays people use today, on loopback: throughput at several loads,
added latency, memory per idle connection, one large message streamed, and greylist decision
rates. Every figure is the median of --repeat runs; every throughput run is checked against
what the sink counted. Prints a table and writes the figures as JSON.

Started by tests/perf/run, which installs and builds what this needs."""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
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
RELAYS = ["direct", "haproxy", "grey", "grey-nopool", "greylist", "aiosmtpd", "haraka"]
SMTP_PEERS = ["aiosmtpd", "haraka"]
# Grey's programs run with their defaults, except where a measurement needs more than the
# defaults allow: 10,000 idle connections (default limit 1,000) and a 1 GiB message (64 MiB).
RAISED_LIMITS = ("--max-connections", "20000", "--max-connections-per-ip", "20000",
                 "--max-message-size", str(2 << 30))
NOT_RAISABLE = ["greylist"]  # limits in its configuration file: left out of the idle and stream runs


def start(name, upstream_port, raised=False):
    extra = RAISED_LIMITS if raised else ()
    if name == "direct":
        return peers.Direct(upstream_port)
    if name == "haproxy":
        return peers.HAProxy(upstream_port)
    if name == "grey":
        return peers.Grey(upstream_port, *extra)
    if name == "grey-nopool":
        return peers.Grey(upstream_port, "--upstream-pool", "0", *extra)
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
        self.figures = {"relays": {}, "skipped": {}, "stream": {}, "greylist": {}}

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

    # -- the whole run -------------------------------------------------------------------------

    def run(self):
        args = self.args
        self.figures["machine"] = {"cpus": os.cpu_count(), "kernel": platform.release(),
                                   "cpu": _cpu_model(), "date": datetime.datetime.now().isoformat()}
        self.figures["open_file_limit"] = probes.raise_open_file_limit()
        sink = peers.SmtpSink()
        self.sink_port = sink.port
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
            if args.greylist:
                say("== greylist decisions")
                redis = peers.Redis()
                try:
                    self.greylist(redis.port)
                finally:
                    redis.stop()
        finally:
            sink.stop()
        return self.figures


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
    parser.add_argument("--no-greylist", dest="greylist", action="store_false")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results",
                                                       "latest.json"))
    args = parser.parse_args()
    if "direct" not in args.relays:
        args.relays.insert(0, "direct")  # every ratio is taken against it

    figures = Run(args).run()
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(figures, f, indent=2)
    import report
    print(report.table(figures))
    say(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
