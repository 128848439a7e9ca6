"""The figures of a benchmark run as SVG charts, from the same JSON the table is made from:
messages/s as a ratio to direct delivery at each load, the latency of one transaction, policy
decisions/s beside the DUNNO ceiling, and STARTTLS sessions/s. A chart whose figures the run
does not have is not drawn (and an older one in the folder is left as it is).

    python3 tests/perf/report.py --charts tests/perf/charts tests/perf/results/latest.json

Needs matplotlib (Debian's python3-matplotlib, for /usr/bin/python3): draw() raises Unavailable
if neither this interpreter nor Debian's has it, and has Debian's draw them if only it has.

    python3 tests/perf/charts.py JSON DIR    the same as report.py --charts DIR JSON, no table"""
import json
import math
import os
import subprocess
import sys

SYSTEM_PYTHON = "/usr/bin/python3"  # where Debian's python3-matplotlib installs

LOADS = ["1 KiB x 1", "1 KiB x 20", "1 KiB x 100", "1 MiB x 20"]


class Unavailable(Exception):
    """matplotlib is not installed here."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise Unavailable("matplotlib is missing (apt-get install python3-matplotlib)") from None
    matplotlib.use("Agg")
    matplotlib.rcParams.update({
        "svg.fonttype": "none",        # text stays text: smaller files, searchable
        "svg.hashsalt": "grey-bench",  # the same figures make the same file
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
    import matplotlib.pyplot as plt
    return plt


def _ok(v, key):
    return isinstance(v, dict) and isinstance(v.get(key), (int, float)) and not math.isnan(v[key])


def _bars(ax, groups, series, values, labels=None, hatches=None, legend=None):
    """Grouped bars: for each group on the x axis, a bar per series (values[s][g], None for
    none), each labelled with labels[s][g] if given; legend[s], if given, names a series."""
    width = 0.8 / max(len(series), 1)
    for i, name in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        heights = [values[name][g] if values[name][g] is not None else 0 for g in range(len(groups))]
        bars = ax.bar(xs, heights, width * 0.95, label=(legend or {}).get(name, name), hatch=(hatches or {}).get(name))
        if labels:
            ax.bar_label(bars, [labels[name][g] if values[name][g] is not None else "" for g in range(len(groups))],
                         fontsize=6, padding=1, rotation=0 if len(series) <= 3 else 90)
    ax.set_xticks(range(len(groups)), groups)


def _legend(ax):
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)


def _title(f, what):
    m = f.get("machine", {})
    return f"{what}\n{m.get('cpu', '?')}, {m.get('cpus', '?')} CPUs, {m.get('date', '?')[:10]}"


def _save(plt, fig, directory, name):
    path = os.path.join(directory, name)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return path


def messages(plt, f, directory):
    relays = f.get("relays", {})
    direct = relays.get("direct", {})
    loads = [load for load in LOADS if _ok(direct.get(load), "msg_per_s")]
    names = [n for n in relays if n != "direct" and any(_ok(relays[n].get(load), "msg_per_s") for load in loads)]
    if not loads or not names:
        return None
    values = {n: [relays[n][load]["msg_per_s"] / direct[load]["msg_per_s"] if _ok(relays[n].get(load), "msg_per_s")
                  else None for load in loads] for n in names}
    labels = {n: [f"{v:.2f}" if v is not None else "" for v in values[n]] for n in names}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _bars(ax, loads, names, values, labels)
    ax.axhline(1, color="black", linewidth=0.8, linestyle="--", label="direct")
    ax.set_ylabel("messages/s, ratio to direct delivery")
    ax.set_title(_title(f, "Throughput: smtp-source -> relay -> smtp-sink"))
    _legend(ax)
    return _save(plt, fig, directory, "messages.svg")


def latency(plt, f, directory):
    relays = f.get("relays", {})
    names = [n for n, r in relays.items() if _ok(r.get("latency_ms"), "p50")]
    if not names:
        return None
    values = {p: [relays[n]["latency_ms"].get(p) for n in names] for p in ("p50", "p99")}
    labels = {p: [f"{v:.2f}" if v is not None else "" for v in values[p]] for p in values}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _bars(ax, names, ["p50", "p99"], values, labels)
    if max(v for vs in values.values() for v in vs if v) > 50 * min(v for vs in values.values() for v in vs if v):
        ax.set_yscale("log")
    ax.set_ylabel("ms per transaction, one session")
    ax.set_title(_title(f, "Latency of one transaction (1 KiB), percentiles"))
    _legend(ax)
    return _save(plt, fig, directory, "latency.svg")


def policy(plt, f, directory):
    p = f.get("policy", {}).get("peers", {})
    connections = sorted({c for r in p.values() for c, v in r.items() if _ok(v, "requests_per_s")}, key=int)
    names = [n for n, r in p.items() if any(_ok(r.get(c), "requests_per_s") for c in connections)]
    if not names:
        return None
    values = {n: [p[n][c]["requests_per_s"] if _ok(p[n].get(c), "requests_per_s") else None for c in connections]
              for n in names}
    ceiling = values.get("dunno")
    labels = {}
    for n in names:
        labels[n] = []
        for i, v in enumerate(values[n]):
            share = f" ({v / ceiling[i]:.2f})" if v is not None and ceiling and ceiling[i] and n != "dunno" else ""
            labels[n].append(f"{v:.0f}{share}" if v is not None else "")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _bars(ax, [f"{c} connection{'s' if c != '1' else ''}" for c in connections], names, values, labels,
          hatches={"dunno": "//"}, legend={"dunno": "dunno (the ceiling)"})
    ax.set_ylabel("first-sight decisions/s")
    what = "Policy decisions, first-sight RCPT requests"
    if ceiling:
        what += "; dunno: the ceiling (share of it in brackets)"
    ax.set_title(_title(f, what))
    ax.set_ylim(0, ax.get_ylim()[1] * 1.15)  # room for the labels
    _legend(ax)
    return _save(plt, fig, directory, "policy.svg")


def tls(plt, f, directory):
    s = f.get("tls", {}).get("sessions", {})
    concurrencies = sorted({c for r in s.values() for c, v in r.items() if _ok(v, "sessions_per_s")}, key=int)
    names = [n for n, r in s.items() if any(_ok(r.get(c), "sessions_per_s") for c in concurrencies)]
    if not names:
        return None
    values = {n: [s[n][c]["sessions_per_s"] if _ok(s[n].get(c), "sessions_per_s") else None for c in concurrencies]
              for n in names}
    labels = {n: [f"{v:.0f}" if v is not None else "" for v in values[n]] for n in names}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _bars(ax, [f"{c} sessions at once" for c in concurrencies], names, values, labels, hatches={"bare": "//"},
          legend={"bare": "bare (no relay: the TLS stack alone)"})
    what = f"STARTTLS sessions, key {f['tls'].get('key', {}).get('name', '?')}"
    floor = f["tls"].get("floor", {}).get("handshakes_per_s")
    if floor and not math.isnan(floor):
        what += f"; floor (openssl speed) {floor:.0f} full handshakes/s on one core"
    ax.set_ylabel("STARTTLS sessions/s (a full handshake, one 1 KiB message each)")
    ax.set_title(_title(f, what))
    ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
    _legend(ax)
    return _save(plt, fig, directory, "tls.svg")


def draw(figures, directory):
    """Writes the charts the figures allow into `directory`; returns their paths. Raises
    Unavailable without matplotlib."""
    try:
        plt = _pyplot()
    except Unavailable:
        if os.path.realpath(sys.executable) == os.path.realpath(SYSTEM_PYTHON) or not os.path.exists(SYSTEM_PYTHON):
            raise
        return _draw_with(SYSTEM_PYTHON, figures, directory)
    os.makedirs(directory, exist_ok=True)
    written = [chart(plt, figures, directory) for chart in (messages, latency, policy, tls)]
    return [path for path in written if path]


def _draw_with(python, figures, directory):
    """draw() in another interpreter (one that has matplotlib), the figures on its standard input."""
    done = subprocess.run([python, os.path.abspath(__file__), "-", directory], input=json.dumps(figures),
                          capture_output=True, text=True, timeout=300)
    if done.returncode == 3:
        raise Unavailable(done.stderr.strip())
    if done.returncode != 0:
        raise RuntimeError(f"{python} {__file__}: {done.stderr.strip()[-1000:]}")
    return done.stdout.splitlines()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: charts.py JSON|- DIR")
    with (sys.stdin if sys.argv[1] == "-" else open(sys.argv[1])) as f:
        data = json.load(f)
    try:
        paths = draw(data, sys.argv[2])
    except Unavailable as e:
        print(e, file=sys.stderr)
        sys.exit(3)
    print("\n".join(paths))
