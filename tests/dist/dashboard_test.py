"""dist/grafana/grey.json, the Grafana dashboard, against the real program: every metric its
queries name is in a scrape of a running greylist_server (a histogram's _bucket, _sum and
_count by its base name, declared a histogram), every label a query matches, groups by or
shows in a legend is one that metric carries, and every value it matches is one the scrape
shows; the queries parse (promtool check rules), and a real Prometheus scraping the server
answers every one of them with data after a message was greylisted, retried and relayed.
Loopback only: the server relays to a tiny SMTP server in this test; every process started is
stopped."""
import json
import os
import re
import shutil
import smtplib
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import end_process, free_port, wait_for_port  # noqa: E402

DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist", "grafana", "grey.json")
SERVER = os.path.abspath(os.environ.get("GREY_GREYLIST_SERVER", "build/dev/examples/greylist_server"))

# PromQL words that are not metric names: aggregations, their modifiers, binary operators.
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
                "quantile"}
KEYWORDS = AGGREGATIONS | {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                           "unless", "offset", "inf", "nan"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
NAME = r"[A-Za-z_:][A-Za-z0-9_:]*"
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def panels(dashboard):
    """Every panel, those inside collapsed rows too; rows themselves left out."""
    for p in dashboard["panels"]:
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def queries(dashboard):
    """(panel title, target) of every target that has an expression."""
    for p in panels(dashboard):
        for t in p.get("targets", []):
            if t.get("expr"):
                yield p["title"], t


def closing(text, start):
    """The index of the parenthesis closing the one at `start`."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses: {text}")


def without_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def metric_names(expr):
    """The metric names an expression selects, as written (suffixes kept)."""
    e = without_strings(expr)
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # range durations, $__rate_interval
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1 ", e)  # label lists
    names = set()
    for m in re.finditer(rf"(?<![\w.$]){NAME}", e):
        word = m.group(0)
        if word in KEYWORDS or e[m.end():].lstrip().startswith("("):
            continue  # an operator, or a function called
        names.add(word)
    return names


def selectors(expr):
    """(metric name, [(label, op, value)]) of every selector with label matchers."""
    for m in re.finditer(rf"({NAME})\s*\{{([^}}]*)\}}", expr):
        yield m.group(1), MATCHER.findall(m.group(2))


def groupings(expr):
    """(labels, metric names of the aggregated expression) of every `by (...)` aggregation."""
    for m in re.finditer(r"\bby\s*\(([^)]*)\)\s*\(", expr):
        body_start = m.end() - 1
        body = expr[body_start:closing(expr, body_start) + 1]
        yield [l.strip() for l in m.group(1).split(",") if l.strip()], metric_names(body)


def concrete(expr, interval, job=".+", instance=".+"):
    """`expr` with Grafana's variables given values, so that Prometheus can run it."""
    e = (expr.replace("$__rate_interval", interval).replace("$__range", interval).replace("$__interval", interval)
         .replace("$job", job).replace("$instance", instance))
    if "$" in e:
        raise AssertionError(f"a Grafana variable this test does not know: {expr}")
    return e


def parse_scrape(text):
    """({metric: TYPE}, {series name: [label dicts]}) of Prometheus' text format."""
    types, series = {}, {}
    for line in text.splitlines():
        m = re.match(rf"# TYPE ({NAME}) (\w+)$", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(rf"({NAME})(?:\{{(.*)\}})?\s+\S+", line)
        if m:
            labels = {k: v for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")}
            series.setdefault(m.group(1), []).append(labels)
    return types, series


def declared(name, types):
    """The metric `name` is exposed as: itself, or the histogram it is a _bucket, _sum or _count
    of; None when the scrape has neither."""
    if name in types:
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return None


class Upstream(socketserver.ThreadingTCPServer):
    """An SMTP server on loopback that takes every message: the upstream greylist_server relays to."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), UpstreamSession)
        self.messages = 0
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        self.shutdown()
        self.server_close()


class UpstreamSession(socketserver.StreamRequestHandler):
    def handle(self):
        def reply(*lines):
            self.wfile.write(b"".join(l.encode() + b"\r\n" for l in lines))
        reply("220 upstream.test ESMTP")
        in_data = False
        for raw in self.rfile:
            line = raw.rstrip(b"\r\n")
            if in_data:
                if line == b".":
                    in_data = False
                    self.server.messages += 1
                    reply("250 2.0.0 queued")
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                reply("250-upstream.test", "250 8BITMIME")
            elif verb == b"DATA":
                in_data = True
                reply("354 go ahead")
            elif verb == b"QUIT":
                reply("221 2.0.0 bye")
                return
            else:
                reply("250 2.0.0 ok")


class Server:
    """greylist_server with its metrics on, on the memory store, relaying to an Upstream; a retry
    passes at once (--delay 0)."""

    def __init__(self, upstream_port):
        self.dir = tempfile.mkdtemp(prefix="grey-dashboard-")
        self.metrics_port = free_port()
        self.out = open(os.path.join(self.dir, "out"), "w+")
        self.proc = subprocess.Popen(
            [SERVER, "--listen", "127.0.0.1:0", "--store", "memory", "--metrics", f"127.0.0.1:{self.metrics_port}",
             "--reputation", "off", "--delay", "0", "--upstream", f"127.0.0.1:{upstream_port}",
             "--log", os.path.join(self.dir, "sessions.log")],
            cwd=self.dir, stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            self.out.seek(0)
            output = self.out.read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", output)
            if m:
                self.port = int(m.group(1))
                wait_for_port(self.metrics_port)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"greylist_server did not start: {output}")

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return r.read().decode()

    def send(self, sender="alice@example.org", recipient="bob@example.com"):
        """One transaction; the RCPT reply's code (the message is sent when it is 250)."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as s:
            s.ehlo("client.example")
            s.mail(sender)
            code, _ = s.rcpt(recipient)
            if code == 250:
                s.data(f"From: {sender}\r\nTo: {recipient}\r\nSubject: dashboard\r\n\r\nhello\r\n")
            return code

    def greylisted_then_relayed(self, upstream):
        """A message deferred when first seen, then retried, passed and relayed."""
        if self.send() != 451:
            raise AssertionError("the first attempt was not greylisted")
        if self.send() != 250:
            raise AssertionError("the retry did not pass")
        deadline = time.time() + 10
        while upstream.messages < 1 and time.time() < deadline:
            time.sleep(0.02)
        if upstream.messages != 1:
            raise AssertionError("the upstream did not get the message")

    def close(self):
        end_process(self.proc)
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dashboard = load_dashboard()
        cls.queries = list(queries(cls.dashboard))

    def start(self):
        """An upstream and a server relaying to it, both stopped at the test's end."""
        upstream = Upstream()
        self.addCleanup(upstream.close)
        server = Server(upstream.port)
        self.addCleanup(server.close)
        return upstream, server

    def test_it_imports_anywhere(self):
        d = self.dashboard
        self.assertEqual(d["__inputs"][0]["name"], "DS_PROMETHEUS")
        self.assertEqual(d["__inputs"][0]["pluginId"], "prometheus")
        self.assertGreaterEqual(d["schemaVersion"], 36)
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertLessEqual({"job", "instance"}, set(variables))
        shown = list(panels(d))
        self.assertGreater(len(shown), 10)
        ids = [p["id"] for p in d["panels"]] + [c["id"] for p in d["panels"] for c in p.get("panels", [])]
        self.assertEqual(len(ids), len(set(ids)), "panel ids are unique")
        for p in [*shown, *variables.values()]:
            self.assertEqual(p["datasource"], {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p.get("title"))
        boxes = [p["gridPos"] for p in d["panels"]]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"] or a["y"] + a["h"] <= b["y"]
                         or b["y"] + b["h"] <= a["y"])
                self.assertTrue(apart, f"panels overlap at {a} and {b}")
        for p in shown:
            self.assertTrue(p.get("title") and p.get("description"), p)
            self.assertLessEqual(p["gridPos"]["x"] + p["gridPos"]["w"], 24, p["title"])
            self.assertTrue(p.get("targets"), f"{p['title']} queries nothing")
            for t in p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${DS_PROMETHEUS}", p["title"])
                self.assertTrue(metric_names(t["expr"]), f"{p['title']}: no metric in {t['expr']}")
                for label in ("job", "instance"):
                    for name, matchers in selectors(t["expr"]):
                        self.assertIn((label, "=~", f"${label}"), matchers, f"{p['title']}: {name}")

    def test_every_metric_queried_is_in_a_scrape_of_the_running_server(self):
        upstream, server = self.start()
        server.greylisted_then_relayed(upstream)
        types, series = parse_scrape(server.scrape())
        used = set()
        for title, t in self.queries:
            expr = t["expr"]
            for name in metric_names(expr):
                with self.subTest(panel=title, metric=name):
                    base = declared(name, types)
                    self.assertIsNotNone(base, f"{name} is not in the scrape ({expr})")
                    used.add(base)
            for name, matchers in selectors(expr):
                for label, op, value in matchers:
                    if label in ("job", "instance"):
                        continue  # Prometheus adds these to every series it scrapes
                    with self.subTest(panel=title, metric=name, label=label):
                        values = {s[label] for s in series.get(name, []) if label in s}
                        self.assertTrue(values, f"{name} has no label {label}")
                        if op == "=":
                            self.assertIn(value, values)
                        elif op == "=~":
                            wanted = value.split("|") if re.fullmatch(r"\w+(\|\w+)*", value) else []
                            for v in wanted:
                                self.assertIn(v, values)
                            self.assertTrue(any(re.fullmatch(value, v) for v in values), value)
            grouped = set()
            for labels, names in groupings(expr):
                grouped.update(labels)
                carried = {l for n in names for s in series.get(n, []) for l in s}
                for label in labels:
                    with self.subTest(panel=title, by=label):
                        self.assertIn(label, carried, f"none of {sorted(names)} carries {label}")
            for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", t.get("legendFormat", "")):
                with self.subTest(panel=title, legend=label):
                    self.assertIn(label, grouped, f"the legend shows {label}, which the query drops")
        self.assertGreaterEqual(len(used), 20, sorted(used))

    def test_every_query_parses(self):
        if not shutil.which("promtool"):
            self.skipTest("promtool is not installed (apt-get install prometheus)")
        rules = [{"record": f"dashboard:query_{i}", "expr": concrete(t["expr"], "5m")}
                 for i, (_, t) in enumerate(self.queries)]
        with tempfile.TemporaryDirectory(prefix="grey-dashboard-") as d:
            path = os.path.join(d, "rules.yml")
            with open(path, "w") as f:
                json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)  # JSON is YAML
            checked = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
        self.assertIn(f"{len(rules)} rules found", checked.stdout)

    def test_prometheus_answers_every_query_with_data(self):
        if not shutil.which("prometheus"):
            self.skipTest("prometheus is not installed (apt-get install prometheus)")
        upstream, server = self.start()
        work = tempfile.mkdtemp(prefix="grey-prometheus-")
        self.addCleanup(shutil.rmtree, work, True)
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            json.dump({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                       "scrape_configs": [{"job_name": "grey", "static_configs": [
                           {"targets": [f"127.0.0.1:{server.metrics_port}"]}]}]}, f)
        port = free_port()
        log = open(os.path.join(work, "log"), "w+")
        self.addCleanup(log.close)
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={os.path.join(work, 'data')}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            cwd=work, stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(end_process, prometheus)

        def query(expr):
            url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    answer = json.load(r)
            except urllib.error.HTTPError as e:
                answer = json.load(e)  # a query Prometheus refused says why
            self.assertEqual(answer["status"], "success", f"{expr}: {answer}")
            return answer["data"]["result"]

        def scrapes():
            try:
                found = query('count_over_time(up{job="grey"}[5m]) and up{job="grey"} == 1')
            except OSError:
                return 0
            return int(found[0]["value"][1]) if found else 0

        def wait_for_scrapes(n, timeout=30):
            deadline = time.time() + timeout
            while scrapes() < n:
                if prometheus.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    self.fail(f"Prometheus did not scrape greylist_server {n} times: {log.read()}")
                time.sleep(0.2)

        # Counted between scrapes, so that rate() and increase() see the counters move.
        wait_for_scrapes(2)
        server.greylisted_then_relayed(upstream)
        start = scrapes()
        wait_for_scrapes(start + 2)
        for title, t in self.queries:
            expr = concrete(t["expr"], "5m", job="grey", instance=f"127.0.0.1:{server.metrics_port}")
            with self.subTest(panel=title, expr=t["expr"]):
                self.assertTrue(query(expr), "no data")
        # The greylisting outcome as the dashboard reads it: the one deferral passed.
        outcome = {p["title"]: p for p in panels(self.dashboard)}["Deferrals that later passed"]
        found = query(concrete(outcome["targets"][0]["expr"], "5m", job="grey"))
        self.assertEqual(float(found[0]["value"][1]), 1.0)
        decided = {r["metric"]["reason"]: float(r["value"][1]) for r in query(concrete(
            {p["title"]: p for p in panels(self.dashboard)}["Decisions by reason"]["targets"][0]["expr"], "5m",
            job="grey"))}
        self.assertGreater(decided["first_seen"], 0)
        self.assertGreater(decided["passed"], 0)
        self.assertEqual(decided["early_retry"], 0)


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
