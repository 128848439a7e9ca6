"""The figures of a benchmark run as a table, with each of the project's targets checked; with
--charts, drawn again as SVG charts into DIR (charts.py), without running anything.

    python3 tests/perf/report.py [--charts DIR] [tests/perf/results/latest.json]
"""
import argparse
import json
import math
import os
import sys

LOADS = ["1 KiB x 1", "1 KiB x 20", "1 KiB x 100", "1 MiB x 20"]
PEERS = ["aiosmtpd", "haraka"]


def _num(value, fmt="{:.0f}"):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def table(f):
    relays = f.get("relays", {})
    direct = relays.get("direct", {})
    lines = [f"machine: {f['machine']['cpu']}, {f['machine']['cpus']} CPUs, "
             f"Linux {f['machine']['kernel']}, {f['machine']['date'][:16]}", ""]

    if relays:
        lines += _relay_lines(f, relays, direct)

    tls_idle = relays.get("grey", {}).get("tls_idle")
    if tls_idle:
        lines += ["", f"memory per idle TLS connection (STARTTLS, then idle): grey "
                      f"{tls_idle['kib_per_connection']:.2f} KiB over {tls_idle['connections']} connections"]

    s = f.get("stream", {})
    if s:
        plain = s.get("plain_copy_mib_per_s")
        lines += ["", f"one large message, one session, to a discarding sink "
                      f"(plain socket copy: {_num(plain)} MiB/s)"]
        for name, v in s.items():
            if isinstance(v, dict):
                lines.append(f"{name:12}{v['mib_per_s']:8.0f} MiB/s ({v['mib_per_s'] / plain:4.2f}x plain copy)"
                             f"   peak RSS {_num(v['peak_rss_mib'], '{:.1f}')} MiB")

    lines += _tls_lines(f.get("tls", {}), f.get("skipped", {}))

    g = f.get("greylist", {})
    if g:
        lines += ["", "greylist decisions/s"]
        for name, rate in g.get("decisions_per_s", {}).items():
            lines.append(f"  {name:28}{rate:>12}")
        for store, rate in g.get("server_deferrals_per_s", {}).items():
            lines.append(f"  {'greylist_server, ' + store:28}{rate:>12.0f}  first-sight deferrals/s")

    lines += _policy_lines(f.get("policy", {}), f.get("skipped", {}))

    lines += _identity_lines(f.get("identity", {}), f.get("skipped", {}))

    lines += ["", "targets"] + [f"  [{'met' if ok else 'MISSED'}] {what}" for ok, what in checks(f)]
    return "\n".join(lines)


def _relay_lines(f, relays, direct):
    lines = []
    head = f"{'relay':12}" + "".join(f"{load:>21}" for load in LOADS)
    lines += ["messages/s (ratio to direct); smtp-source -> relay -> smtp-sink, median of runs",
              head, "-" * len(head)]
    for name, r in relays.items():
        cells = []
        for load in LOADS:
            own, ref = r.get(load), direct.get(load)
            cells.append("-" if not own else
                         f"{own['msg_per_s']:8.0f} ({own['msg_per_s'] / ref['msg_per_s']:4.2f}x)")
        lines.append(f"{name:12}" + "".join(f"{c:>21}" for c in cells))
    for name, why in f.get("skipped", {}).items():
        lines.append(f"{name:12} skipped: {why}")

    lines += ["", f"{'relay':12}{'MiB/s 1MiB':>11}{'p50 ms':>9}{'p99 ms':>9}{'+p50 ms':>9}{'+p99 ms':>9}"
                  f"{'peak RSS MiB':>14}{'idle KiB/conn':>15}{'idle conns':>12}"]
    for name, r in relays.items():
        lat = r.get("latency_ms", {})
        idle = r.get("idle", {})
        lines.append(f"{name:12}{_num(r.get('1 MiB x 20', {}).get('mib_per_s')):>11}"
                     f"{_num(lat.get('p50'), '{:.3f}'):>9}{_num(lat.get('p99'), '{:.3f}'):>9}"
                     f"{_num(lat.get('added_p50'), '{:+.3f}'):>9}{_num(lat.get('added_p99'), '{:+.3f}'):>9}"
                     f"{_num(r.get('peak_rss_mib'), '{:.1f}'):>14}"
                     f"{_num(idle.get('kib_per_connection'), '{:.2f}'):>15}"
                     f"{_num(idle.get('connections')):>12}")
    return lines


def _per_core_share(v, floor):
    """Sessions per second of relay CPU, as a share of the one-core handshake floor."""
    if not floor.get("handshakes_per_s") or not v["server_cpu_ms"]:
        return "-"
    return f"{1e3 / v['server_cpu_ms'] / floor['handshakes_per_s']:.0%}"


def _tls_lines(t, skipped):
    if not t:
        return []
    floor = t.get("floor", {})
    lines = ["", f"TLS: certificate key {t['key']['name']}; floor {_num(floor.get('handshakes_per_s'))} full "
                 f"handshakes/s on one core (openssl speed: {_num(floor.get('sign_per_s'))} signatures/s, "
                 f"{_num(floor.get('ecdh_per_s'))} X25519/s)"]
    sessions = t.get("sessions", {})
    if sessions:
        concurrencies = sorted({c for r in sessions.values() for c in r}, key=int)
        lines += ["STARTTLS sessions/s (1 KiB message, a full handshake each, relay -> smtp-sink), median of runs;",
                  "then the relay's CPU ms per session, the sessions one core would make at that cost as a",
                  "share of the floor, and the share of a core the client used",
                  f"{'relay':12}" + "".join(f"{'x ' + c:>32}" for c in concurrencies)]
        for name, r in sessions.items():
            cells = []
            for c in concurrencies:
                v = r.get(c)
                if not v:
                    cells.append("-")
                elif "failed" in v:
                    cells.append("FAILED")
                else:
                    cells.append(f"{v['sessions_per_s']:5.0f} {v['server_cpu_ms']:5.2f} ms "
                                 f"{_per_core_share(v, floor):>4} /{v['client_cpu']:.2f}")
            lines.append(f"{name:12}" + "".join(f"{c:>32}" for c in cells))
        for name, r in sessions.items():
            for c, v in r.items():
                if "failed" in v:
                    lines.append(f"  {name} x {c} failed: {v['failed']}")
        lines += [f"  {name} skipped: {why}" for name, why in skipped.items() if name.endswith("(TLS)")]
        if "bare" in sessions:
            lines.append("  bare: no relay, tls_discard_sink answering itself (C++, Asio + OpenSSL): the TLS stack's own cost")
    lines += _resumed_lines(t.get("resumed", {}), skipped)
    s = t.get("stream")
    if s:
        lines += [f"one {s['size'] >> 20} MiB message, STARTTLS client -> relay -> STARTTLS discard sink, MiB/s"]
        for case in ("grey tls", "grey plain", "direct tls", "direct plain"):
            if case in s:
                lines.append(f"  {case:14}{s[case]['mib_per_s']:8.0f}")
    return lines


def _resumed_lines(resumed, skipped):
    """Resumed STARTTLS sessions: a column per TLS version and concurrency."""
    if not resumed:
        return []
    columns = []  # in the order run: TLS 1.3, then 1.2, each by concurrency
    for r in resumed.values():
        for version, by in r.items():
            columns += [(version, c) for c in by if (version, c) not in columns]
    lines = ["resumed STARTTLS sessions/s (each client offers the session of its previous connection, as MTAs with",
             "a TLS session cache do: tls_sessions --resume; Postfix with smtpd_tls_session_cache_database), median",
             "of runs; then the relay's CPU ms per session and the share of sessions it resumed",
             f"{'relay':12}" + "".join(f"{v + ' x ' + c:>26}" for v, c in columns)]
    for name, r in resumed.items():
        cells = []
        for version, c in columns:
            v = r.get(version, {}).get(c)
            if not v:
                cells.append("-")
            elif "failed" in v:
                cells.append("FAILED")
            else:
                cells.append(f"{v['sessions_per_s']:5.0f} {v['server_cpu_ms']:5.2f} ms {v['resumed_share']:4.0%}")
        lines.append(f"{name:12}" + "".join(f"{c:>26}" for c in cells))
    for name, r in resumed.items():
        for version, by in r.items():
            for c, v in by.items():
                if "failed" in v:
                    lines.append(f"  {name} {version} x {c} failed: {v['failed']}")
    lines += [f"  {name} skipped: {why}" for name, why in skipped.items() if name.endswith("(TLS resumed)")]
    return lines


# What resumption must gain over a full handshake (TLS 1.3 with X25519, the full runs' own):
# TLS 1.3 resumption still makes an X25519 exchange and skips only the signature; TLS 1.2
# resumption skips both.
RESUMED_GAIN = {"TLSv1.3": 1.1, "TLSv1.2": 1.5}


def _resumed_checks(t):
    out = []
    full = t.get("sessions", {}).get("grey", {})
    postfix = t.get("resumed", {}).get("postfix", {})
    for version, by in t.get("resumed", {}).get("grey", {}).items():
        for c, v in by.items():
            if "failed" in v:
                out.append((False, f"grey TLS resumed {version} x {c}: {v['failed']}"))
                continue
            if v["resumed_share"] < 0.9:
                out.append((False, f"grey TLS resumed {version} x {c}: only {v['resumed_share']:.0%} of sessions resumed"))
                continue
            f = full.get(c)
            if f and "sessions_per_s" in f:
                gain = RESUMED_GAIN[version]
                out.append((v["sessions_per_s"] >= gain * f["sessions_per_s"],
                            f"grey TLS resumed {version} x {c}: {v['sessions_per_s']:.0f} sessions/s >= {gain} x full "
                            f"handshakes {f['sessions_per_s']:.0f} ({v['sessions_per_s'] / f['sessions_per_s']:.2f} x)"))
            p = postfix.get(version, {}).get(c)
            if p and "sessions_per_s" in p:
                note = "" if p["resumed_share"] >= 0.9 else f"; Postfix resumed only {p['resumed_share']:.0%}"
                out.append((v["sessions_per_s"] >= 2 * p["sessions_per_s"],
                            f"grey TLS resumed {version} x {c}: {v['sessions_per_s']:.0f} sessions/s >= 2 x Postfix "
                            f"resumed {p['sessions_per_s']:.0f} ({v['sessions_per_s'] / p['sessions_per_s']:.2f} x){note}"))
    return out


def _policy_lines(p, skipped):
    if not p.get("peers"):
        return []
    connections = sorted({c for r in p["peers"].values() for c in r}, key=int)
    lines = ["", f"policy decisions/s: first-sight RCPT requests (policy_requests, {p['pipeline']} in flight per "
                 f"connection), median of runs;",
             "then the server's CPU microseconds per request and the share of a core the client used",
             f"{'peer':16}" + "".join(f"{'x ' + c:>28}" for c in connections)]
    for name, r in p["peers"].items():
        cells = []
        for c in connections:
            v = r.get(c)
            if not v:
                cells.append("-")
            elif "failed" in v:
                cells.append("FAILED")
            else:
                cells.append(f"{v['requests_per_s']:7.0f} {v['server_cpu_us']:7.1f} us /{v['client_cpu']:.2f}")
        lines.append(f"{name:16}" + "".join(f"{c:>28}" for c in cells))
    for name, r in p["peers"].items():
        for c, v in r.items():
            if "failed" in v:
                lines.append(f"  {name} x {c} failed: {v['failed']}")
    ceiling = p["peers"].get("dunno", {})
    if any("requests_per_s" in v for v in ceiling.values()):
        lines.append("  dunno: the ceiling, dunno_responder (C, epoll) answering DUNNO to every request unread; "
                     "each peer's rate as a share of it:")
        for name, r in p["peers"].items():
            shares = [f"x {c} {r[c]['requests_per_s'] / ceiling[c]['requests_per_s']:.2f}" for c in connections
                      if "requests_per_s" in r.get(c, {}) and "requests_per_s" in ceiling.get(c, {})]
            if name != "dunno" and shares:
                lines.append(f"    {name:16}" + ", ".join(shares))
    lines += [f"  {name} skipped: {why}" for name, why in skipped.items() if name.endswith("(policy)")]
    if p.get("postgrey_version"):
        lines.append(f"  postgrey: {p['postgrey_version']}")
    return lines


def _identity_lines(d, skipped):
    if not d.get("mixes"):
        return []
    lines = ["", f"the client's identity upstream: 1 KiB messages/s (ratio to direct), {d['concurrency']} sessions at "
                 f"once, one message each,",
             f"client -> relay -> Postfix {d.get('postfix', '?')} smtpd (XCLIENT trusted from 127.0.0.1) -> smtp-sink, "
             "median of runs; the relay's and Postfix's",
             "CPU ms per message; what Postfix's log shows: messages with the client's EHLO name, with a client "
             "address other than",
             "127.0.0.1, and the connections it accepted per message; the slowest session of the timed runs"]
    for label, mix in d["mixes"].items():
        direct = mix["relays"].get("direct", {}).get("msg_per_s")
        where = "127.0.0.1" if mix["sources"] == 1 else f"127.0.0.1 to .{mix['sources']}, in turn"
        lines += [f"{label} ({where})",
                  f"  {'relay':20}{'msg/s':>7}{'ratio':>8}{'relay ms':>10}{'Postfix ms':>12}{'EHLO':>7}"
                  f"{'address':>9}{'conns':>7}{'slowest ms':>12}"]
        for name, v in mix["relays"].items():
            if "failed" in v:
                lines.append(f"  {name:20} FAILED: {v['failed']}")
                continue
            ratio = f"{v['msg_per_s'] / direct:.2f}x" if direct else "-"
            lines.append(f"  {name:20}{v['msg_per_s']:7.0f}{ratio:>8}{_num(v['relay_cpu_ms'] or None, '{:.3f}'):>10}"
                         f"{v['postfix_cpu_ms']:12.3f}{v['client_helo']:7.0%}{v['client_addr']:9.0%}"
                         f"{v['connections']:7.2f}{_num(v.get('slowest_ms'), '{:.0f}'):>12}")
    lines += [f"  {name} skipped: {why}" for name, why in skipped.items() if name.endswith("(identity)")]
    return lines


def _identity_checks(d):
    """Grey's default path (auto: XCLIENT, with Postfix trusting it) against HAProxy, each mix."""
    out = []
    for label, mix in d.get("mixes", {}).items():
        grey, haproxy = mix["relays"].get("grey", {}), mix["relays"].get("haproxy", {})
        if "failed" in grey:
            out.append((False, f"grey identity, {label}: {grey['failed']}"))
        elif "msg_per_s" in grey and "msg_per_s" in haproxy:
            g, h = grey["msg_per_s"], haproxy["msg_per_s"]
            out.append((g >= h, f"grey (XCLIENT) identity, {label}: {g:.0f} msg/s >= HAProxy {h:.0f} ({g / h:.2f} x)"))
    return out


def _policy_checks(p):
    out = []
    own = p.get("peers", {})
    for store, times in (("sqlite", 10), ("memory", 30)):
        for c, v in own.get(f"grey-{store}", {}).items():
            ref = own.get("postgrey", {}).get(c)
            if "failed" in v:
                out.append((False, f"policy grey-{store} x {c}: {v['failed']}"))
            elif ref and "requests_per_s" in ref:
                ratio = v["requests_per_s"] / ref["requests_per_s"]
                what = (f"policy grey-{store} x {c}: {v['requests_per_s']:.0f} requests/s >= "
                        f"{times} x Postgrey {ref['requests_per_s']:.0f} ({ratio:.1f} x)")
                nosync = own.get("postgrey-nosync", {}).get(c, {})
                if "requests_per_s" in nosync:
                    what += (f"; {v['requests_per_s'] / nosync['requests_per_s']:.1f} x Postgrey without "
                             f"fdatasync {nosync['requests_per_s']:.0f}")
                if ref.get("server_cpu_us") and v.get("server_cpu_us"):
                    what += f"; {ref['server_cpu_us'] / v['server_cpu_us']:.1f} x less CPU per request"
                out.append((ratio >= times, what))
    # Against the ceiling: what the protocol and the socket allow, at Postfix's usual 8 and more.
    ceiling = own.get("dunno", {}).get("8", {})
    sqlite = own.get("grey-sqlite", {}).get("8", {})
    if "requests_per_s" in ceiling and "requests_per_s" in sqlite:
        m = ceiling["requests_per_s"]
        ratio = sqlite["requests_per_s"] / m
        what = (f"policy grey-sqlite x 8: {sqlite['requests_per_s']:.0f} requests/s >= 0.7 x DUNNO ceiling {m:.0f} "
                f"({ratio:.2f} x)")
        memory = own.get("grey-memory", {}).get("8", {})
        if "requests_per_s" in memory:
            what += f"; grey-memory {memory['requests_per_s']:.0f} ({memory['requests_per_s'] / m:.2f} x)"
        out.append((ratio >= 0.7, what))
    return out


def checks(f):
    """(met, what) for each target the figures allow judging."""
    relays = f.get("relays", {})
    out = []
    # Grey's programs as users start them: spam_me (grey) and greylist_server (greylist).
    for name in ("grey", "greylist"):
        for load in LOADS:
            rate = relays.get(name, {}).get(load, {}).get("msg_per_s")
            if rate is None:
                continue
            if "haproxy" in relays:
                h = relays["haproxy"][load]["msg_per_s"]
                out.append((rate >= h, f"{name} {load}: {rate:.0f} msg/s >= HAProxy {h:.0f}"))
            peers = [relays[p][load]["msg_per_s"] for p in PEERS if p in relays and load in relays[p]]
            if peers:
                out.append((rate >= 3 * max(peers),
                            f"{name} {load}: {rate:.0f} msg/s >= 3 x best SMTP peer {max(peers):.0f}"))
    for load in LOADS:
        plain = relays.get("grey", {}).get(load, {}).get("msg_per_s")
        counted = relays.get("grey-metrics", {}).get(load, {}).get("msg_per_s")
        if plain and counted:
            out.append((counted >= 0.98 * plain, f"grey-metrics {load}: {counted:.0f} msg/s >= 0.98 x grey {plain:.0f}"
                                                  f" ({counted / plain:.3f} x)"))
    for n in ("grey", "greylist"):
        added = relays.get(n, {}).get("latency_ms", {}).get("added_p99")
        if added is not None:
            out.append((added < 1.0, f"{n}: added p99 latency {added:.3f} ms < 1 ms"))
    idle = relays.get("grey", {}).get("idle")
    if idle:
        out.append((idle["kib_per_connection"] < 4, f"grey: {idle['kib_per_connection']:.2f} KiB per idle connection < 4"))
        out.append((idle["connections"] >= 10000, f"grey: {idle['connections']} concurrent connections >= 10,000"))
    tls_idle = relays.get("grey", {}).get("tls_idle")
    if tls_idle:
        out.append((tls_idle["kib_per_connection"] < 32,
                    f"grey: {tls_idle['kib_per_connection']:.2f} KiB per idle TLS connection < 32"))
    s = f.get("stream", {})
    if "grey" in s:
        v = s["grey"]
        out.append((v["peak_rss_mib"] < 32, f"grey: peak RSS streaming {v['peak_rss_mib']:.1f} MiB < 32"))
        ratio = v["mib_per_s"] / s["plain_copy_mib_per_s"]
        out.append((ratio >= 0.5, f"grey: stream {ratio:.2f} x plain socket copy >= 0.5"))
    t = f.get("tls", {})
    floor = t.get("floor", {}).get("handshakes_per_s")
    for c, v in t.get("sessions", {}).get("grey", {}).items():
        if "failed" in v:
            out.append((False, f"grey TLS x {c}: {v['failed']}"))
            continue
        p = t["sessions"].get("postfix", {}).get(c)
        if p and "sessions_per_s" in p:
            out.append((v["sessions_per_s"] >= 2 * p["sessions_per_s"],
                        f"grey TLS x {c}: {v['sessions_per_s']:.0f} sessions/s >= 2 x Postfix {p['sessions_per_s']:.0f}"
                        f" ({v['sessions_per_s'] / p['sessions_per_s']:.2f} x); Grey = "
                        f"{v['sessions_per_s'] / floor:.0%} of the floor {floor:.0f}/s, "
                        f"{1e3 / v['server_cpu_ms'] / floor:.0%} per core used"))
    out += _resumed_checks(t)
    ts = t.get("stream")
    if ts:
        out.append((ts["ratio"] >= 0.5, f"grey: TLS on both legs {ts['grey tls']['mib_per_s']:.0f} MiB/s = "
                                        f"{ts['ratio']:.2f} x plaintext {ts['grey plain']['mib_per_s']:.0f} >= 0.5"))
    d = f.get("greylist", {}).get("decisions_per_s", {})
    for label, target in [("memory store", 1_000_000), ("sqlite store", 50_000), ("redis store", 50_000)]:
        if label in d:
            what = f"greylist {label}: {d[label]} decisions/s >= {target}"
            if label == "sqlite store" and "sqlite alone (reference)" in d:
                what += f" (SQLite alone, same statements: {d['sqlite alone (reference)']})"
            out.append((d[label] >= target, what))
    out += _policy_checks(f.get("policy", {}))
    out += _identity_checks(f.get("identity", {}))
    return out


def write_charts(figures, directory):
    """The charts of the figures into `directory`; says in one line what it wrote, or why it
    drew nothing."""
    import charts
    try:
        written = charts.draw(figures, directory)
    except charts.Unavailable as e:
        print(f"charts not drawn: {e}", file=sys.stderr)
        return []
    names = ", ".join(os.path.basename(p) for p in written) or "none (no figures to chart)"
    print(f"charts written to {directory}: {names}", file=sys.stderr)
    return written


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="?", default=os.path.join(os.path.dirname(__file__), "results", "latest.json"))
    parser.add_argument("--charts", metavar="DIR", help="draw the charts into DIR too")
    args = parser.parse_args()
    with open(args.json) as f:
        figures = json.load(f)
    print(table(figures))
    if args.charts:
        write_charts(figures, args.charts)
