"""Selective greylisting measured on a population (DESIGN §10, issue 20): a simulated mix of
senders, legitimate and not, delivering over a simulated span of hours to Postfix policy
services on loopback, each asked once per delivery attempt. Big pools whose retries come from
another address of the pool (Gmail-like, Outlook-like), ESPs, ordinary single-address MTAs
with Postfix's, Exim's and Exchange's retry schedules, sloppy legitimate senders (no PTR, SPF
softfail), spam bots that never retry or retry at once, and snowshoe ranges with valid rDNS
and SPF, most of their addresses on the (simulated) DNSBL. Their DNS (PTR, A, SPF, a DNSBL
and a DNSWL) is served by a loopback unbound started for the run.

Grey's policy server (greylist_server --policy) and Postgrey 1.37 meet the same population in
the same run, each with its own copy of the senders' state, all at once. Neither has a time
scale, so time is scaled instead: one real second is --scale (100) simulated seconds, the
greylisting delay is --delay 3 for both (300 s), Grey's suspicious delay 12 (1200 s), and the
senders' retry schedules are divided by the same factor.

Reports per class of sender: messages accepted, delayed, lost (legitimate mail not accepted
within the retry horizon, or refused) or blocked (spam never accepted), the median and p95
added delay in simulated seconds; checks the issue's targets for each server. Then Grey's
policy decisions per second with DNS in the loop: --resolver pointed at a UDP proxy that
answers 1 ms or 50 ms late (dns_delay.py), cached and uncached client addresses, from 1 to
200 policy connections with one request in flight each.

    python3 tests/perf/population.py [--quick] [--grey PATH] [--json FILE]

Needs Debian's unbound and postgrey, and greylist_server (by default the release build:
cmake --preset release && cmake --build --preset release --target greylist_server). Grey's
judging flags (--resolver, --dnsbl, --suspicious-delay, --refuse-threshold) are used only if
its --help lists them; the servers that need them are reported skipped otherwise. Loopback
only: every name the zones do not hold is NXDOMAIN, so nothing is asked of the internet.

Not a ctest test: run by hand, like bench.py. About 8 minutes on 2 cores (--quick: about 2);
the figures go to results/population.json."""
import argparse
import asyncio
import dataclasses
import datetime
import ipaddress
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import peers

# ---------------------------------------------------------------------------------------------
# The population. Every address is in 198.18.0.0/15 (RFC 2544's benchmarking range: libunbound
# does not answer its reverse zone itself, and Grey judges it, unlike 127/8); every name is
# under the private TLD pop-test. Times are simulated seconds.

TLD = "pop-test"
RECIPIENT_DOMAIN = f"dest.{TLD}"
ZEN = f"zen.{TLD}"   # the simulated DNSBL, answering as Spamhaus ZEN does
DNSWL = f"wl.{TLD}"  # the simulated DNSWL, answering as list.dnswl.org does: 127.0.<category>.<trust>
LEGIT, SPAM = "legitimate", "spam"


@dataclasses.dataclass
class Host:
    """One sending address and what DNS and the SMTP session say of it."""
    address: str
    ptr: str | None = None      # its reverse name; None: no PTR record
    confirmed: bool = False     # the name has an A record back to the address
    helo: str = ""
    dnsbl: str | None = None    # the DNSBL's answer for it, None: not listed
    dnswl: str | None = None

    def client_name(self):
        """Postfix's client_name: the verified name, else "unknown"."""
        return self.ptr if self.ptr and self.confirmed else "unknown"

    def reverse_client_name(self):
        """Postfix's reverse_client_name: the PTR name, verified or not, else "unknown"."""
        return self.ptr or "unknown"


@dataclasses.dataclass
class Sender:
    """A sending organisation or program: its hosts, how it picks one per attempt ("random":
    any of the pool each attempt, the way big providers retry; "message": one per message,
    kept for its retries; "fixed": its only host) and its retry schedule."""
    cls: str
    hosts: list
    pick: str
    schedule: str
    phase: float = 0.0          # where its queue runs fall (Postfix, Exim), seconds


@dataclasses.dataclass
class Message:
    id: int
    cls: str
    sender: Sender
    mail_from: str
    rcpt: str
    first: float                # simulated time of the first attempt
    attempts: list = None       # simulated times of every attempt the sender would make

    def host(self, attempt):
        hosts = self.sender.hosts
        if self.sender.pick == "fixed" or len(hosts) == 1:
            return hosts[0]
        if self.sender.pick == "message":
            return hosts[random.Random(self.id * 7919).randrange(len(hosts))]
        # A pool: each attempt from any of its addresses, another than the last one.
        rng = random.Random(self.id * 7919 + attempt)
        if attempt == 0:
            return hosts[rng.randrange(len(hosts))]
        last = self.host(attempt - 1)
        others = [h for h in hosts if h is not last]
        return others[rng.randrange(len(others))]


# Classes of sender, in report order, and whether their mail is wanted.
CLASSES = [
    ("gmail-like", LEGIT, "big pool: 256 addresses over 32 /24s; retries from another address; SPF pass, FCrDNS"),
    ("outlook-like", LEGIT, "big pool: 256 addresses over 64 /24s, many tenants' domains; retries from another "
                            "address; SPF pass, FCrDNS"),
    ("esp", LEGIT, "ESPs: an SES-like pool with a new envelope sender per message, a SendGrid-like one with a "
                   "dedicated address per customer; SPF pass, FCrDNS, some on the DNSWL"),
    ("mta", LEGIT, "ordinary single-address MTAs, Postfix / Exim (Debian) / Exchange retry schedules; "
                   "SPF pass, FCrDNS, a quarter on the DNSWL"),
    ("sloppy", LEGIT, "legitimate but sloppy: no PTR or an unconfirmed one, SPF softfail, HELO a bare or local "
                      "name (3 in 5) or their domain's"),
    ("bot", SPAM, "spam bots on dynamic addresses: generic or no rDNS, forged senders; 80 % on the DNSBL; "
                  "never retry (60 %) or retry at once"),
    ("snowshoe", SPAM, "snowshoe ranges: valid rDNS and SPF, real MTAs retrying like Postfix; 85 % of their "
                       "addresses on the DNSBL (as Spamhaus CSS)"),
]
KIND = {name: kind for name, kind, _ in CLASSES}
POOLS = ["gmail-like", "outlook-like"]


def _jittered(rng, intervals, tail):
    """Retry times after t = 0 from a list of intervals, then `tail` seconds each, each one
    stretched by 0.8-1.25 (providers' retry timers are not exact)."""
    t, i = 0.0, 0
    while True:
        step = intervals[i] if i < len(intervals) else tail
        t += step * rng.uniform(0.8, 1.25)
        i += 1
        yield t


def _queue_runs(due_times, period, phase):
    """A queue manager that looks at deferred mail every `period` seconds (at `phase`): each
    retry waits for the first run at or after it is due."""
    for due in due_times:
        yield math.ceil((due - phase) / period) * period + phase


def retry_times(schedule, first, rng, phase):
    """The absolute times of every retry a sender makes after a deferral at `first`, unbounded
    (the caller stops at the horizon). Approximations of each software's defaults:
    - postfix: backoff from minimal_backoff_time 300 s doubling to maximal_backoff_time 4000 s,
      picked up by the queue manager's scan every queue_run_delay (300 s);
    - exim: the default retry rule F,2h,15m; G,16h,1h,1.5; F,4d,6h, picked up by Debian's queue
      runner every 30 minutes;
    - exchange: 6 transient-failure retries 5 minutes apart, then every 10 minutes;
    - gmail-like, outlook-like, ses-like, sendgrid-like: a few quick retries, then hourly,
      from observed behaviour, with jitter;
    - bot-once: none; bot-hammer: three retries within about a minute."""
    if schedule == "postfix":
        # A retry is due `backoff` after an attempt, made at the first queue run after that.
        t, backoff = first, 300
        while True:
            t = next(_queue_runs([t + backoff], 300, phase))
            yield t
            backoff = min(4000, backoff * 2)
    elif schedule == "exim":
        t, geometric = first, 3600
        while True:
            if t - first < 7200:
                step = 900
            elif t - first < 57600:
                step, geometric = geometric, geometric * 1.5
            else:
                step = 21600
            t = next(_queue_runs([t + step], 1800, phase))
            yield t
    elif schedule == "exchange":
        for i in range(6):
            yield first + 300 * (i + 1)
        t = first + 1800
        while True:
            t += 600
            yield t
    elif schedule in ("gmail-like", "outlook-like", "ses-like", "sendgrid-like"):
        intervals = {"gmail-like": [90, 240, 600, 1200, 2400], "outlook-like": [60, 300, 600, 1200, 1800],
                     "ses-like": [120, 300, 900, 1800], "sendgrid-like": [300, 600, 1200, 2400]}[schedule]
        for t in _jittered(rng, intervals, 3600):
            yield first + t
    elif schedule == "bot-hammer":
        t = first
        for step in (rng.uniform(1, 10), rng.uniform(5, 30), rng.uniform(10, 60)):
            t += step
            yield t
    elif schedule != "bot-once":
        raise ValueError(schedule)


def _reversed(address):
    return ".".join(reversed(address.split(".")))


class Population:
    """The senders, their hosts and DNS, and the messages they send over `span` simulated
    seconds (first attempts), each retried until accepted, refused, or `horizon` seconds after
    its first attempt."""

    def __init__(self, seed, span, horizon, volume=1.0):
        self.rng = random.Random(seed)
        self.span, self.horizon = span, horizon
        self.hosts, self.senders, self.messages = [], [], []
        self.records = []        # unbound local-data lines (forward names, TXT, DNS lists)
        self.ptrs = []           # (address, name) for local-data-ptr
        self.used = set()
        self._build()
        self._send(volume)

    # -- hosts and DNS --

    def _address(self, net, host):
        address = f"{net}.{host}"
        if address in self.used:
            raise ValueError(f"{address} given twice")
        self.used.add(address)
        return address

    def host(self, address, ptr=None, confirmed=True, helo=None, dnsbl=None, dnswl=None):
        h = Host(address, ptr, confirmed and ptr is not None, helo or ptr or f"[{address}]", dnsbl, dnswl)
        if ptr:
            self.ptrs.append((address, ptr))
            if confirmed:
                self.records.append(f"{ptr}. 300 IN A {address}")
        if dnsbl:
            self.records.append(f"{_reversed(address)}.{ZEN}. 300 IN A {dnsbl}")
        if dnswl:
            self.records.append(f"{_reversed(address)}.{DNSWL}. 300 IN A {dnswl}")
        self.hosts.append(h)
        return h

    def txt(self, name, text):
        self.records.append(f'{name}. 300 IN TXT "{text}"')

    def _build(self):
        rng = self.rng
        # Gmail-like: 32 /24s (198.18.16-47), 8 hosts each, named as Google names them.
        gmail = []
        for n in range(32):
            for k in range(8):
                octet = 10 + 7 * k
                gmail.append(self.host(self._address(f"198.18.{16 + n}", octet),
                                       f"mail-{rng.choice(['ot1', 'oi1', 'pl1', 'qk1', 'yw1', 'lf1'])}-f{octet}"
                                       f"-{n}.gmail-like.{TLD}"))
        self.txt(f"gmail-like.{TLD}", f"v=spf1 include:_netblocks.gmail-like.{TLD} ~all")
        self.txt(f"_netblocks.gmail-like.{TLD}", "v=spf1 ip4:198.18.16.0/20 ip4:198.18.32.0/20 ~all")
        self.gmail = Sender("gmail-like", gmail, "random", "gmail-like")
        # Outlook-like: 64 /24s (198.18.64-127), 4 hosts each; consumers' and tenants' domains.
        outlook = []
        for n in range(64):
            for k in range(4):
                octet = 20 + 30 * k
                region = rng.choice(["eur", "nam", "apc"])
                outlook.append(self.host(self._address(f"198.18.{64 + n}", octet),
                                         f"mail-db{n % 9}{region}0{k}on2{octet:03d}.outbound.protection."
                                         f"outlook-like.{TLD}"))
        self.txt(f"spf.protection.outlook-like.{TLD}", "v=spf1 ip4:198.18.64.0/18 -all")
        self.txt(f"outlook-like.{TLD}", f"v=spf1 include:spf.protection.outlook-like.{TLD} -all")
        self.outlook = Sender("outlook-like", outlook, "random", "outlook-like")
        self.tenants = [f"contoso{n}.{TLD}" for n in range(60)]
        for t in self.tenants:
            self.txt(t, f"v=spf1 include:spf.protection.outlook-like.{TLD} -all")
        # ESPs. SES-like: 8 /24s (198.18.128-135), 16 hosts each, its own envelope domain.
        ses = []
        for n in range(8):
            for k in range(16):
                ses.append(self.host(self._address(f"198.18.{128 + n}", 1 + k * 15),
                                     f"a{n}-{1 + k * 15}.smtp-out.eu-west-1.ses-like.{TLD}",
                                     dnswl="127.0.15.1" if n % 2 == 0 else None))
        self.txt(f"ses-like.{TLD}", "v=spf1 ip4:198.18.128.0/21 -all")
        self.ses = Sender("esp", ses, "random", "ses-like")
        # SendGrid-like: a dedicated address per customer (198.18.140-143), customers' own
        # envelope domains whose SPF includes the ESP's.
        self.txt(f"sendgrid-like.{TLD}", "v=spf1 ip4:198.18.140.0/22 -all")
        self.sendgrid = []
        for n in range(40):
            address = self._address(f"198.18.{140 + n // 10}", 10 + n)
            h = self.host(address, f"o{n}.ptr{1000 + 37 * n}.sendgrid-like.{TLD}",
                          dnswl="127.0.15.2" if n % 3 == 0 else None)
            domain = f"em{n % 7}.customer{n}.{TLD}"
            self.txt(domain, f"v=spf1 include:sendgrid-like.{TLD} -all")
            self.sendgrid.append((Sender("esp", [h], "fixed", "sendgrid-like"), domain))
        # Ordinary MTAs: one address each in 198.18.160.0/19, hosting /24s shared by several.
        self.orgs = []
        free = [(f"198.18.{160 + n // 50}", 2 + 5 * (n % 50)) for n in range(32 * 50)]
        rng.shuffle(free)
        software = ["postfix"] * 5 + ["exim"] * 3 + ["exchange"] * 2
        for n in range(150):
            net, octet = free.pop()
            domain = f"org{n}.{TLD}"
            name = f"{rng.choice(['mail', 'mx', 'smtp', 'mx1', 'mailgw'])}.{domain}"
            h = self.host(self._address(net, octet), name,
                          dnswl=f"127.0.{rng.choice([2, 6, 10, 15])}.{rng.choice([1, 2, 3])}" if n % 4 == 0 else None)
            if n % 3 == 0:
                self.txt(domain, f"v=spf1 a:{name} -all")
            else:
                self.txt(domain, f"v=spf1 mx ip4:{h.address} -all")
                self.records.append(f"{domain}. 300 IN MX 10 {name}.")
            users = [f"{rng.choice(['anna', 'ben', 'carla', 'dev', 'eve', 'finance', 'info', 'jobs', 'li', 'sales'])}"
                     f"{k}@{domain}" for k in range(rng.randint(2, 20))]
            self.orgs.append((Sender("mta", [h], "fixed", software[n % len(software)], rng.uniform(0, 1800)), users))
        # Sloppy: small servers on ISP lines and cheap hosting, each in a /24 of its own
        # (198.18.200-224); no PTR, or a PTR whose name has no address; SPF that lists only
        # their provider's relays (~all: softfail); HELO a bare or local name, or their domain.
        self.sloppy = []
        for n in range(25):
            address = self._address(f"198.18.{200 + n}", 3 + 11 * (n % 20))
            domain = f"shop{n}.{TLD}"
            ptr = None if n % 5 < 3 else f"host-{address.replace('.', '-')}.hosting-like.{TLD}"
            h = self.host(address, ptr, confirmed=False,
                          helo=rng.choice(["localhost.localdomain", "server01", "SBS2011", domain, f"mail.{domain}"]))
            self.txt(domain, "v=spf1 ip4:203.0.113.0/24 ~all")
            # The domain's web site is elsewhere; mail.DOMAIN is the server itself.
            self.records.append(f"{domain}. 300 IN A 203.0.113.{10 + n}")
            self.records.append(f"mail.{domain}. 300 IN A {address}")
            users = [f"{u}@{domain}" for u in ("office", "owner", "orders")]
            self.sloppy.append((Sender("sloppy", [h], "fixed", rng.choice(["postfix", "exim"]),
                                       rng.uniform(0, 1800)), users))
        # Bots: dynamic addresses in 198.19.0.0/18; generic names (most with an address
        # back), some with none; 80 % on the DNSBL (PBL or XBL answers).
        self.bots = []
        bot_addresses = rng.sample(range(64 * 254), 1200)
        for n, i in enumerate(bot_addresses):
            address = self._address(f"198.19.{i // 254}", 1 + i % 254)
            generic = rng.random() < 0.7
            ptr = f"{address.replace('.', '-')}.dyn.isp-like.{TLD}" if generic else None
            helo = rng.choice([f"[{address}]", "localhost", rng.choice(["win-3kd8", "desktop-7q2", "pc"]) +
                               str(rng.randint(1, 999)), f"gmail-like.{TLD}", f"user{n}.{TLD}"])
            listed = rng.random() < 0.8
            h = self.host(address, ptr, confirmed=rng.random() < 0.8, helo=helo,
                          dnsbl=rng.choice(["127.0.0.4", "127.0.0.11", "127.0.0.10"]) if listed else None)
            self.bots.append(Sender("bot", [h], "fixed", "bot-once" if rng.random() < 0.6 else "bot-hammer"))
        # Snowshoe: six /24s (198.19.64-69), 40 addresses each with a confirmed name, each
        # range a brand whose SPF authorises it; 85 % on the DNSBL (CSS's 127.0.0.3).
        self.snowshoe = []
        for n in range(6):
            brand = f"{rng.choice(['deals', 'offers', 'promo', 'news', 'smart'])}{n}-mailer.{TLD}"
            hosts = []
            for k in range(40):
                address = self._address(f"198.19.{64 + n}", 5 + 6 * k)
                hosts.append(self.host(address, f"mta{k}.{brand}",
                                       dnsbl="127.0.0.3" if rng.random() < 0.85 else None))
            self.txt(brand, f"v=spf1 ip4:198.19.{64 + n}.0/24 -all")
            self.snowshoe.append((Sender("snowshoe", hosts, "message", "postfix", rng.uniform(0, 300)), brand))

    # -- traffic --

    def _send(self, volume):
        """Messages over the span, per class at a rate per simulated hour (scaled by `volume`)."""
        rng = self.rng
        hours = self.span / 3600
        recipients = [f"{rng.choice(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])}{rng.choice(['lex', 'na', 'ri', 'om'])}"
                      f"{n}@{RECIPIENT_DOMAIN}" for n in range(600)]
        zipf = [1 / (n + 1) ** 0.8 for n in range(len(recipients))]

        def rcpt():
            return rng.choices(recipients, zipf)[0]

        gmail_users = [f"{rng.choice(['jo', 'mia', 'raj', 'kim', 'leo', 'ada'])}.{rng.choice(['smith', 'ng', 'roy'])}"
                       f"{n}@gmail-like.{TLD}" for n in range(200)]
        outlook_users = ([f"user{n}@outlook-like.{TLD}" for n in range(80)] +
                         [f"{rng.choice(['sales', 'hr', 'it', 'pat', 'sam'])}{n}@{rng.choice(self.tenants)}"
                          for n in range(300)])
        gmail_w = [1 / (n + 1) ** 0.7 for n in range(len(gmail_users))]
        outlook_w = [1 / (n + 1) ** 0.7 for n in range(len(outlook_users))]
        org_w = [1 / (n + 1) ** 0.9 for n in range(len(self.orgs))]
        out = []

        def at():
            return rng.uniform(0, self.span)

        for _ in range(round(60 * hours * volume)):
            out.append(("gmail-like", self.gmail, rng.choices(gmail_users, gmail_w)[0], rcpt(), at()))
        for _ in range(round(45 * hours * volume)):
            out.append(("outlook-like", self.outlook, rng.choices(outlook_users, outlook_w)[0], rcpt(), at()))
        for _ in range(round(25 * hours * volume)):
            out.append(("esp", self.ses, f"0102018c{rng.getrandbits(48):012x}-{rng.getrandbits(32):08x}-000000"
                                         f"@ses-like.{TLD}", rcpt(), at()))
        for _ in range(round(20 * hours * volume)):
            sender, domain = rng.choice(self.sendgrid)
            to = rcpt()
            out.append(("esp", sender, f"bounces+{rng.randint(1000000, 9999999)}-{rng.getrandbits(16):04x}-"
                                       f"{to.replace('@', '=')}@{domain}", to, at()))
        for _ in range(round(80 * hours * volume)):
            sender, users = rng.choices(self.orgs, org_w)[0]
            out.append(("mta", sender, rng.choice(users), rcpt(), at()))
        for _ in range(round(10 * hours * volume)):
            sender, users = rng.choice(self.sloppy)
            out.append(("sloppy", sender, rng.choice(users), rcpt(), at()))
        # Bots turn up at random and send a burst each, to many recipients.
        bots = list(self.bots)
        rng.shuffle(bots)
        for sender in bots[:round(25 * hours * volume)]:
            start = at()
            for _ in range(rng.randint(2, 12)):
                forged = rng.choice([f"{rng.choice(['info', 'admin', 'billing'])}{rng.randint(1, 99)}@gmail-like.{TLD}",
                                     f"user{rng.randint(1, 999)}@outlook-like.{TLD}",
                                     f"{rng.choice(['noreply', 'support'])}@org{rng.randrange(150)}.{TLD}",
                                     f"{rng.choice(['x', 'q', 'z'])}{rng.getrandbits(24):x}@"
                                     f"{rng.choice(['cheap', 'win', 'pills'])}{rng.randint(1, 9999)}.{TLD}"])
                out.append(("bot", sender, forged, rcpt(), start + rng.uniform(0, 120)))
        # Snowshoe campaigns: each brand spreads mail over its range.
        for _ in range(round(90 * hours * volume)):
            sender, brand = rng.choice(self.snowshoe)
            frm = rng.choice([f"news@{brand}", f"offers@{brand}", f"bounce-{rng.randint(1, 99999)}@{brand}"])
            out.append(("snowshoe", sender, frm, rcpt(), at()))
        out.sort(key=lambda m: m[4])
        for n, (cls, sender, frm, to, first) in enumerate(out):
            m = Message(n, cls, sender, frm, to, first)
            rng_retry = random.Random(n * 104729 + 1)
            m.attempts = [first]
            for t in retry_times(sender.schedule, first, rng_retry, sender.phase):
                if t > first + self.horizon:
                    break
                m.attempts.append(t)
                if len(m.attempts) > 200:
                    raise RuntimeError(f"retry schedule {sender.schedule} runs away")
            self.messages.append(m)

    def unbound_zones(self):
        """The server: clauses of local zones and data for unbound."""
        lines = [f'    local-zone: "{TLD}." static',
                 '    local-zone: "18.198.in-addr.arpa." static',
                 '    local-zone: "19.198.in-addr.arpa." static',
                 f'    local-data: "{TLD}. 300 IN SOA ns.{TLD}. hostmaster.{TLD}. 1 3600 600 86400 300"',
                 '    local-data: "18.198.in-addr.arpa. 300 IN SOA ns.pop-test. hostmaster.pop-test. 1 3600 600 86400 300"',
                 '    local-data: "19.198.in-addr.arpa. 300 IN SOA ns.pop-test. hostmaster.pop-test. 1 3600 600 86400 300"']
        lines += [f"    local-data: '{r}'" for r in self.records]
        lines += [f'    local-data-ptr: "{a} {n}."' for a, n in self.ptrs]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The servers: unbound for the population's DNS, Grey's policy server, Postgrey, the DNS proxy.

def _dns_query(name, qtype=1, ident=0x4242):
    q = ident.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + qtype.to_bytes(2, "big") + b"\x00\x01"


def _answers(port, name, timeout=1.0):
    """Whether a DNS server on 127.0.0.1:`port` answers a query for `name` (any rcode)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(_dns_query(name), ("127.0.0.1", port))
            return s.recv(4096)[:2] == b"\x42\x42"
        except OSError:
            return False


class Unbound(peers.Process):
    """unbound serving the population's zones, and nothing else: every name outside them is
    NXDOMAIN (the root is a static local zone), so no query leaves loopback."""

    name = "unbound"

    def __init__(self, zones):
        if not shutil.which("unbound"):
            raise peers.Missing("unbound is not installed (apt-get install unbound)")
        port = peers.free_port()
        self.dir = tempfile.mkdtemp(prefix="grey-perf-unbound-")
        with open(os.path.join(self.dir, "unbound.conf"), "w") as f:
            f.write(f"""server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{self.dir}"
    pidfile: "{self.dir}/unbound.pid"
    logfile: ""
    use-syslog: no
    verbosity: 0
    do-ip6: no
    num-threads: 1
    access-control: 127.0.0.0/8 allow
    module-config: "iterator"
    local-zone: "." static
{zones}remote-control:
    control-enable: no
""")
        try:
            super().__init__(["unbound", "-d", "-c", os.path.join(self.dir, "unbound.conf")], port)
            if not peers.wait_until(lambda: _answers(port, f"ns.{TLD}"), 10):
                raise RuntimeError(f"unbound does not answer: {self.output()[-2000:]}")
        except Exception:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class DnsDelay(peers.Process):
    """dns_delay.py: a UDP proxy to `upstream` answering `delay_ms` late."""

    name = "dns-delay"

    def __init__(self, upstream, delay_ms):
        port = peers.free_port()  # a free TCP port; its UDP twin is very likely free too
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="grey-perf-dns-delay-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "dns_delay.py"),
                                      "--listen", str(port), "--upstream", str(upstream), "--delay-ms", str(delay_ms)],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        if not peers.wait_until(lambda: self.proc.poll() is not None or _answers(port, f"ns.{TLD}", 0.5), 10) \
                or self.proc.poll() is not None:
            output = self.output()
            self.stop()
            raise RuntimeError(f"dns_delay.py did not start: {output[-2000:]}")

    def counters(self):
        """(queries received since it started, the most held at once since the last call)."""
        before = len(self.output())
        os.kill(self.proc.pid, signal.SIGUSR1)
        peers.wait_until(lambda: len(self.output()) > before and self.output().endswith("\n"), 5)
        counts = re.findall(r"queries (\d+) answers \d+ most_in_flight (\d+)", self.output())
        return (int(counts[-1][0]), int(counts[-1][1])) if counts else (0, 0)


def scaled_postgrey(directory, scale):
    """A copy of Debian's postgrey script in `directory` whose auto-whitelist counts a client
    at most once per 3600/`scale` seconds instead of once an hour, so that its auto-whitelist
    runs on the simulation's time like everything else (its other times are days: longer than
    any run, scaled or not). Returns its path."""
    with open(shutil.which("postgrey")) as f:
        source = f.read()
    hour = max(1, round(3600 / scale))
    source, n = re.subn(r"\$cawl_last ?\+ ?3600\b", f"$cawl_last + {hour}", source)
    if n != 2:
        raise peers.Missing(f"postgrey's auto-whitelist hour is not where 1.37 has it ({n} matches)")
    path = os.path.join(directory, "postgrey")
    with open(path, "w") as f:
        f.write(source)
    os.chmod(path, 0o755)
    os.chmod(directory, 0o755)  # run by the postgrey user once it drops root
    return path


REPUTATION_FLAGS = ["--resolver", "--dnsbl", "--reputation", "--suspicious-delay", "--refuse-threshold"]


def grey_flags(program):
    """The flags of REPUTATION_FLAGS that this greylist_server knows (its --help)."""
    done = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=30)
    return {f for f in REPUTATION_FLAGS if re.search(re.escape(f) + r"\b", done.stdout)}


class GreyPolicy(peers.Process):
    """greylist_server --policy with a memory store, `extra` flags, its decision log kept in a
    temporary file (read for the tiers and reasons, then removed)."""

    name = "greylist-policy"

    def __init__(self, program, *extra, log=True):
        port = peers.free_port()
        self.dir = tempfile.mkdtemp(prefix="grey-perf-population-")
        self.log_file = os.path.join(self.dir, "decisions.log") if log else "/dev/null"
        try:
            super().__init__([program, "--policy", f"inet:127.0.0.1:{port}", "--store", "memory",
                              "--log", self.log_file, *extra], port, cwd=self.dir)
        except Exception:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def decisions(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The simulation: each server under test gets the whole population, with its own state.

def policy_request(msg, host, attempt):
    """The RCPT request Postfix 3.x's smtpd would send for this attempt (the attributes a
    policy server reads, and the usual empty ones)."""
    return (f"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
            f"client_address={host.address}\nclient_name={host.client_name()}\n"
            f"reverse_client_name={host.reverse_client_name()}\nclient_port={20000 + (msg.id * 31 + attempt) % 40000}\n"
            f"helo_name={host.helo}\nsender={msg.mail_from}\nrecipient={msg.rcpt}\nrecipient_count=0\n"
            f"queue_id=\ninstance={msg.id:x}.{attempt:x}.pop\nsize=0\netrn_domain=\nstress=\n"
            f"sasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
            f"ccert_pubkey_fingerprint=\nencryption_protocol=\nencryption_cipher=\nencryption_keysize=0\n"
            f"server_address=127.0.0.1\nserver_port=25\npolicy_context=\n\n").encode()


ACCEPT = {"DUNNO", "OK", "PREPEND", "WARN", "INFO"}


def verdict(action):
    """accepted, deferred or refused, from a policy answer's action."""
    word = action.split(None, 1)[0].upper() if action.strip() else ""
    if word in ACCEPT:
        return "accepted"
    if word.startswith("DEFER") or word[:1] == "4":
        return "deferred"
    if word in ("REJECT", "BOUNCE") or word[:1] == "5":
        return "refused"
    raise RuntimeError(f"unexpected policy action: {action!r}")


class Target:
    """A policy server under test, as the simulation sees it: up to `connections` policy
    connections (Postfix's smtpd processes each keep one), opened as needed. `pre` is a check
    made before asking it (Postfix's own restrictions): an action, or None to ask the server."""

    def __init__(self, name, port, pre=None, connections=10):
        self.name, self.port, self.pre = name, port, pre
        self.free = asyncio.Queue()
        for _ in range(connections):
            self.free.put_nowait(None)
        self.outcomes = {}      # message id -> (status, added delay, attempts)
        self.first_actions = {}  # message id -> the action of its first attempt
        self.lags = []          # simulated seconds each attempt was asked after it was due
        self.asked = 0

    async def ask(self, data):
        conn = await self.free.get()
        try:
            for tried in range(2):
                fresh = conn is None
                if fresh:
                    conn = await asyncio.open_connection("127.0.0.1", self.port)
                reader, writer = conn
                try:
                    writer.write(data)
                    await writer.drain()
                    answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 30)
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    conn = None
                    if fresh or tried:  # a connection kept idle may have been closed: once more
                        raise
        except BaseException:
            if conn:
                conn[1].close()
            conn = None
            raise
        finally:
            self.free.put_nowait(conn)
        self.asked += 1
        text = answer.decode(errors="replace")
        m = re.search(r"^action=(.*)$", text, re.M)
        if not m:
            raise RuntimeError(f"{self.name}: no action in {text!r}")
        return m.group(1)

    async def close(self):
        while not self.free.empty():
            conn = self.free.get_nowait()
            if conn:
                conn[1].close()


class Clock:
    """Simulated time: `scale` simulated seconds per real second, from a moment `lead` real
    seconds after it is made."""

    def __init__(self, scale, lead=1.0):
        self.loop = asyncio.get_running_loop()
        self.scale = scale
        self.t0 = self.loop.time() + lead

    def now(self):
        return (self.loop.time() - self.t0) * self.scale

    async def until(self, t):
        wait = self.t0 + t / self.scale - self.loop.time()
        if wait > 0:
            await asyncio.sleep(wait)


async def deliver(target, msg, clock):
    """One message against one server: each attempt at its time, until accepted or refused,
    or its sender gives up (its retries end at the horizon)."""
    for attempt, t in enumerate(msg.attempts):
        await clock.until(t)
        host = msg.host(attempt)
        target.lags.append(max(0.0, clock.now() - t))
        action = target.pre(host) if target.pre else None
        if action is None:
            action = await target.ask(policy_request(msg, host, attempt))
        if attempt == 0:
            target.first_actions[msg.id] = action
        v = verdict(action)
        if v == "accepted":
            target.outcomes[msg.id] = ("accepted", t - msg.first, attempt + 1)
            return
        if v == "refused":
            target.outcomes[msg.id] = ("refused", None, attempt + 1)
            return
    target.outcomes[msg.id] = ("never", None, len(msg.attempts))


async def simulate(population, targets, scale, say):
    clock = Clock(scale)
    end = max(m.attempts[-1] for m in population.messages)
    tasks = [asyncio.ensure_future(deliver(t, m, clock)) for t in targets for m in population.messages]

    async def progress():
        while True:
            await asyncio.sleep(30)
            say(f"  simulated {clock.now() / 3600:5.2f} h of {end / 3600:.2f}; attempts asked: " +
                ", ".join(f"{t.name} {t.asked}" for t in targets))

    ticker = asyncio.ensure_future(progress())
    try:
        await asyncio.gather(*tasks)
    finally:
        ticker.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for t in targets:
            await t.close()


def percentile(values, p):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarize(population, target):
    """Per class of sender: what became of its messages at `target`."""
    out = {}
    later = population.span / 3
    for name, kind, _ in CLASSES + [("pools", LEGIT, ""), ("legitimate, all", LEGIT, ""),
                                    ("legitimate, later", LEGIT, "")]:
        if name == "legitimate, all":
            members = [m for m in population.messages if KIND[m.cls] == LEGIT]
        elif name == "legitimate, later":  # first sent after the first third of the span
            members = [m for m in population.messages if KIND[m.cls] == LEGIT and m.first >= later]
        elif name == "pools":
            members = [m for m in population.messages if m.cls in POOLS]
        else:
            members = [m for m in population.messages if m.cls == name]
        outcomes = [target.outcomes[m.id] for m in members]
        delays = [d for s, d, _ in outcomes if s == "accepted"]
        accepted = len(delays)
        refused = sum(s == "refused" for s, _, _ in outcomes)
        never = sum(s == "never" for s, _, _ in outcomes)
        out[name] = {"kind": kind, "messages": len(members), "accepted": accepted,
                     "delayed": sum(d > 0 for d in delays), "refused": refused, "gave_up": never,
                     "not_accepted": refused + never, "attempts": sum(a for _, _, a in outcomes),
                     "delay_median_s": percentile(delays, 50), "delay_p95_s": percentile(delays, 95),
                     "delay_max_s": max(delays) if delays else None}
    return out


def targets_checked(c):
    """The issue's targets, (met, what), from one server's summary."""
    pools, legit, bots, snow = c["pools"], c["legitimate, all"], c["bot"], c["snowshoe"]
    delayed = legit["delayed"] / legit["messages"] if legit["messages"] else 0
    snow_blocked = snow["not_accepted"] / snow["messages"] if snow["messages"] else 1
    return [
        (pools["delay_median_s"] == 0 and pools["not_accepted"] == 0,
         f"pool senders: median added delay {_dur(pools['delay_median_s'])} = 0, {pools['not_accepted']} lost = 0"),
        (delayed <= 0.10 and legit["not_accepted"] == 0,
         f"legitimate mail: {delayed:.1%} delayed <= 10 %, {legit['not_accepted']} lost = 0"),
        (bots["accepted"] == 0,
         f"spam bots: {bots['not_accepted']}/{bots['messages']} blocked = 100 %"),
        (snow_blocked >= 0.90, f"snowshoe: {snow_blocked:.1%} blocked >= 90 %"),
    ]


def _dur(seconds):
    """Simulated seconds, for reading: 0, 45 s, 12 min, 3.4 h."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return "0"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def tiers_by_class(population, log):
    """From Grey's decision log, how often each tier was decided per class of sender, and of
    those how often the client passed on its auto-whitelisted group's history whatever its tier
    ("suspicious/auto-whitelisted"). A log line is `time | HELO | address | sender | recipient
    outcome (...; tier=T ...) | policy`; every address belongs to one class."""
    senders = {id(m.sender): m.sender for m in population.messages}.values()
    by_address = {h.address: s.cls for s in senders for h in s.hosts}
    counts = {}
    for line in log.splitlines():
        fields = line.split(" | ")
        tier = re.search(r"\btier=(\w+)", line)
        if len(fields) > 3 and tier and fields[2] in by_address:
            per = counts.setdefault(by_address[fields[2]], {})
            # A client that passes on its group's history is judged all the same.
            key = tier.group(1) + ("/auto-whitelisted" if "(auto-whitelist;" in line else "")
            per[key] = per.get(key, 0) + 1
    return counts


# ---------------------------------------------------------------------------------------------
# Decisions per second with DNS in the loop.

class Requests:
    """Policy requests for the load runs. "cached": the clients are 256 of the population's
    hosts over and over (their DNS answers are in Grey's cache after the warm-up); "uncached":
    each request from an address and with a HELO name never used before in the run, so that
    its DNS lists' and HELO look-ups go out to the (delaying) DNS server. Senders are the
    population's (their SPF records are few, and cached either way); every recipient is new,
    so each request is a first sight for the greylist."""

    def __init__(self, population):
        rng = random.Random(7)
        good = [m for m in population.messages if m.cls != "bot"]
        bots = [m for m in population.messages if m.cls == "bot"]
        self.messages = rng.sample(good, min(200, len(good))) + rng.sample(bots, min(56, len(bots)))
        used = {int(ipaddress.IPv4Address(a)) for a in population.used}
        base = int(ipaddress.IPv4Address("198.18.0.0"))
        order = list(range(1, 1 << 17))
        rng.shuffle(order)
        self.fresh = (base + i for i in order if base + i not in used and (base + i) & 0xFF not in (0, 255))
        self.n = 0

    def make(self, mode):
        self.n += 1
        n = self.n
        msg = self.messages[n % len(self.messages)]
        if mode == "cached":
            host = msg.host(0)
            address, name, reverse, helo = host.address, host.client_name(), host.reverse_client_name(), host.helo
        else:
            address = str(ipaddress.IPv4Address(next(self.fresh)))
            name = reverse = "unknown"
            helo = f"h{n}.fresh.{TLD}"
        return (f"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"
                f"client_address={address}\nclient_name={name}\nreverse_client_name={reverse}\n"
                f"helo_name={helo}\nsender={msg.mail_from}\nrecipient=load{n}@{RECIPIENT_DOMAIN}\n"
                f"recipient_count=0\nqueue_id=\ninstance=load.{n:x}\nsize=0\n\n").encode()


async def policy_load(port, requests, mode, connections, seconds, count=None):
    """`connections` policy connections, one request in flight on each, for `seconds` (or
    `count` requests in all). Returns decisions/s, latency percentiles, the actions, and the
    client's CPU share."""
    loop = asyncio.get_running_loop()
    latencies, actions = [], {}
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    start_cpu, start = time.process_time(), loop.time()
    deadline = start + seconds if seconds else math.inf
    left = [count if count is not None else math.inf]

    async def one(reader, writer):
        while loop.time() < deadline and left[0] > 0:
            left[0] -= 1
            data = requests.make(mode)
            t = loop.time()
            writer.write(data)
            answer = await asyncio.wait_for(reader.readuntil(b"\n\n"), 30)
            latencies.append(loop.time() - t)
            m = re.match(rb"action=(\S+)", answer)
            word = m.group(1).decode() if m else "?"
            actions[word] = actions.get(word, 0) + 1

    try:
        await asyncio.gather(*(one(r, w) for r, w in conns))
    finally:
        for _, w in conns:
            w.close()
    elapsed = loop.time() - start
    return {"decisions": len(latencies), "decisions_per_s": len(latencies) / elapsed, "seconds": elapsed,
            "p50_ms": percentile(latencies, 50) * 1e3, "p99_ms": percentile(latencies, 99) * 1e3,
            "actions": actions, "client_cpu": (time.process_time() - start_cpu) / elapsed}


def dns_load(args, population, unbound, program, say):
    """Grey's decisions/s and latency with a DNS server `delay` ms away, per delay, mode and
    concurrency; the queries the proxy forwarded per decision."""
    figures = {}
    requests = Requests(population)
    for delay in args.dns_delays:
        proxy = DnsDelay(unbound.port, delay)
        grey = None
        try:
            grey = GreyPolicy(program, "--delay", str(args.delay), "--resolver", f"127.0.0.1:{proxy.port}",
                              *GREY_LISTS, log=False)
            for mode in ("cached", "uncached"):
                if mode == "cached":
                    # Fill Grey's caches with the clients' answers. Each of its threads has a
                    # resolver and a cache of its own, and a connection stays on one thread:
                    # eight passes over the clients, on 16 connections, leave few unseen by
                    # either thread.
                    asyncio.run(policy_load(grey.port, requests, mode, 16, None, 8 * len(requests.messages)))
                for connections in args.dns_connections:
                    q0, _ = proxy.counters()
                    cpu0, proxy_cpu0 = peers.cpu_seconds(grey.pid), peers.cpu_seconds(proxy.pid)
                    run = asyncio.run(policy_load(grey.port, requests, mode, connections, args.dns_seconds))
                    run["server_cpu_us"] = (peers.cpu_seconds(grey.pid) - cpu0) / max(run["decisions"], 1) * 1e6
                    run["proxy_cpu"] = (peers.cpu_seconds(proxy.pid) - proxy_cpu0) / run["seconds"]
                    q1, run["dns_most_in_flight"] = proxy.counters()
                    run["dns_queries_per_decision"] = (q1 - q0) / max(run["decisions"], 1)
                    figures.setdefault(f"{delay:g} ms", {}).setdefault(mode, {})[str(connections)] = run
                    say(f"  DNS +{delay:g} ms {mode:8} x {connections:<3} {run['decisions_per_s']:8.0f} decisions/s, "
                        f"p50 {run['p50_ms']:7.1f} ms, p99 {run['p99_ms']:7.1f} ms, "
                        f"{run['dns_queries_per_decision']:.2f} queries/decision, at most {run['dns_most_in_flight']} "
                        f"in flight, server {run['server_cpu_us']:.0f} us/decision, client {run['client_cpu']:.2f} core, "
                        f"DNS proxy {run['proxy_cpu']:.2f} core, "
                        f"{run['actions']}")
        finally:
            if grey:
                grey.stop()
            proxy.stop()
    return figures


# ---------------------------------------------------------------------------------------------
# The run.

# Grey's DNS lists for the population, in postscreen's syntax: the DNSBL as ZEN is commonly
# weighted (zen.spamhaus.org*3), the DNSWL as POSTSCREEN_README shows list.dnswl.org.
GREY_LISTS = ["--dnsbl", f"{ZEN}*3", "--dnsbl", f"{DNSWL}=127.0.[0..255].[1..3]*-5"]
SERVERS = ["postgrey", "postgrey+zen", "grey-plain", "grey", "grey-refuse"]
SERVER_NOTES = {
    "postgrey": "Postgrey 1.37 as Debian runs it (its whitelists, /24 subnets, auto-whitelist after 5), --delay "
                "and its auto-whitelist's once-an-hour count scaled",
    "postgrey+zen": "Postfix's reject_rbl_client zen (simulated from the zone data) before Postgrey",
    "grey-plain": "greylist_server --policy --reputation off: plain greylisting, as Postgrey",
    "grey": "greylist_server --policy, judging first: --resolver (the loopback unbound), "
            f"--dnsbl {ZEN}*3 --dnsbl {DNSWL}=127.0.[0..255].[1..3]*-5, default tiers, --suspicious-delay scaled",
    "grey-refuse": "grey with --refuse-threshold 3 (postscreen's usual threshold with zen*3)",
}


def say(text):
    print(text, file=sys.stderr, flush=True)


def start_servers(args, unbound, program, flags, skipped, scratch):
    """The servers under test, by name, started."""
    started = {}
    postgrey_script = None
    if any(n.startswith("postgrey") for n in args.servers) and shutil.which("postgrey"):
        postgrey_script = scaled_postgrey(scratch, args.scale)
    resolver = ["--resolver", f"127.0.0.1:{unbound.port}"]
    scaled = ["--delay", str(args.delay)]
    suspicious = ["--suspicious-delay", str(args.suspicious_delay)]
    for name in args.servers:
        try:
            if name.startswith("postgrey"):
                started[name] = peers.Postgrey(delay=args.delay, program=postgrey_script)
                continue
            if name == "grey-plain":
                extra = scaled + (["--reputation", "off"] if "--reputation" in flags else [])
            else:
                missing = [f for f in ("--resolver", "--dnsbl", "--suspicious-delay") if f not in flags]
                if name == "grey-refuse" and "--refuse-threshold" not in flags:
                    missing.append("--refuse-threshold")
                if missing:
                    raise peers.Missing(f"{program} has no {', '.join(missing)}")
                extra = scaled + suspicious + resolver + GREY_LISTS
                if name == "grey-refuse":
                    extra += ["--refuse-threshold", "3"]
            started[name] = GreyPolicy(program, *extra)
            started[name].flags = extra
        except peers.Missing as e:
            skipped[name] = str(e)
            say(f"skipped {name}: {e}")
    return started


def rbl_precheck(host):
    """Postfix's reject_rbl_client before the policy service: a listed client is refused."""
    if host.dnsbl:
        return f"REJECT Service unavailable; Client host [{host.address}] blocked using {ZEN}"
    return None


def run(args):
    figures = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": _cpu_model(),
                           "date": datetime.datetime.now().isoformat()},
               "settings": {"scale": args.scale, "span_s": args.span, "horizon_s": args.horizon,
                            "delay_s": args.delay * args.scale,
                            "suspicious_delay_s": args.suspicious_delay * args.scale, "seed": args.seed,
                            "volume": args.volume},
               "classes": [{"name": n, "kind": k, "what": w} for n, k, w in CLASSES],
               "servers": {}, "skipped": {}, "dns": {}}
    program = args.grey
    if not os.path.exists(program):
        raise peers.Missing(f"{program} is not built (cmake --build --preset release --target greylist_server)")
    flags = grey_flags(program)
    figures["grey"] = {"program": program, "reputation_flags": sorted(flags)}
    figures["postgrey_version"] = peers.Postgrey.version() if shutil.which("postgrey") else None
    population = Population(args.seed, args.span, args.horizon, args.volume)
    figures["population"] = {"messages": len(population.messages), "hosts": len(population.hosts),
                             "dns_records": len(population.records) + len(population.ptrs),
                             "per_class": {n: sum(m.cls == n for m in population.messages) for n, _, _ in CLASSES}}
    say(f"population: {len(population.messages)} messages from {len(population.hosts)} addresses; "
        f"{figures['population']['per_class']}")
    unbound = Unbound(population.unbound_zones())
    servers = {}
    scratch = tempfile.mkdtemp(prefix="grey-perf-population-")
    try:
        if args.population:
            servers = start_servers(args, unbound, program, flags, figures["skipped"], scratch)
            targets = [Target(name, s.port, rbl_precheck if name == "postgrey+zen" else None)
                       for name, s in servers.items()]
            end = max(m.attempts[-1] for m in population.messages)
            say(f"== population: {end / 3600:.1f} simulated hours, about {end / args.scale / 60:.1f} minutes, "
                f"{len(targets)} servers at once")
            asyncio.run(simulate(population, targets, args.scale, say))
            for t in targets:
                own = figures["servers"][t.name] = {
                    "what": SERVER_NOTES[t.name], "flags": getattr(servers[t.name], "flags", None),
                    "classes": summarize(population, t),
                    "lag_p99_s": percentile(t.lags, 99), "lag_max_s": max(t.lags) if t.lags else None,
                    "first_actions": _first_actions(population, t)}
                own["targets"] = [{"met": ok, "what": what} for ok, what in targets_checked(own["classes"])]
                if isinstance(servers[t.name], GreyPolicy):
                    own["tiers"] = tiers_by_class(population, servers[t.name].decisions())
            for s in servers.values():
                s.stop()
            servers = {}
        if args.dns_seconds:
            if "--resolver" not in flags:
                figures["skipped"]["dns"] = f"{program} has no --resolver"
                say(f"skipped DNS decisions: {figures['skipped']['dns']}")
            else:
                say("== decisions/s with DNS in the loop")
                figures["dns"] = dns_load(args, population, unbound, program, say)
    finally:
        for s in servers.values():
            s.stop()
        unbound.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return figures


def _first_actions(population, target):
    """Per class, the first attempts' actions by their first word (what each server said)."""
    out = {}
    for m in population.messages:
        action = target.first_actions.get(m.id)
        if action is not None:
            word = action.split(None, 1)[0] if action.strip() else "?"
            per = out.setdefault(m.cls, {})
            per[word] = per.get(word, 0) + 1
    return out


def _cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def table(f):
    s = f["settings"]
    lines = [f"machine: {f['machine']['cpu']}, {f['machine']['cpus']} CPUs, Linux {f['machine']['kernel']}, "
             f"{f['machine']['date'][:16]}"]
    if f.get("servers"):
        p = f["population"]
        lines += ["", f"population: {p['messages']} messages from {p['hosts']} addresses, first attempts over "
                      f"{_dur(s['span_s'])}, retried up to {_dur(s['horizon_s'])} (then given up: lost);",
                  f"1 real s = {s['scale']} simulated s; greylisting delay {_dur(s['delay_s'])}, Grey's suspicious "
                  f"delay {_dur(s['suspicious_delay_s'])}; delays are simulated time",
                  "accepted: at any attempt; delayed: accepted, but not at the first attempt; lost (legitimate) / "
                  "blocked (spam): never accepted, refused (5xx) included; delay: first attempt to acceptance;",
                  f"every server starts with an empty greylist: \"legitimate, later\" is the mail first sent after "
                  f"the first {_dur(s['span_s'] / 3)}"]
        for c in f["classes"]:
            lines.append(f"  {c['name']:13} {c['what']}")
        for name, v in f["servers"].items():
            lines.append(f"  {name:13} {v['what']}")
        head = (f"{'class':18}{'server':14}{'msgs':>6}{'accepted':>10}{'delayed':>9}{'lost/blocked':>14}"
                f"{'(refused)':>10}{'median':>9}{'p95':>9}{'max':>9}{'attempts':>10}")
        lines += ["", head, "-" * len(head)]
        names = [c["name"] for c in f["classes"]] + ["pools", "legitimate, all", "legitimate, later"]
        for cls in names:
            for i, (server, v) in enumerate(f["servers"].items()):
                c = v["classes"][cls]
                lost = c["not_accepted"]
                lines.append(f"{cls if i == 0 else '':18}{server:14}{c['messages']:6}{c['accepted']:10}"
                             f"{c['delayed']:9}{lost:9} {_share(lost, c['messages']):>4}{c['refused']:10}"
                             f"{_dur(c['delay_median_s']):>9}{_dur(c['delay_p95_s']):>9}{_dur(c['delay_max_s']):>9}"
                             f"{c['attempts']:10}")
        lines.append("")
        for server, v in f["servers"].items():
            lines.append(f"{server}: the simulation asked {_dur(v['lag_p99_s'])} late at p99, "
                         f"{_dur(v['lag_max_s'])} at most (simulated)")
            if v.get("tiers"):
                lines.append("  tiers decided (/auto-whitelisted: passed on the group's history), per class: " + "; ".join(
                    f"{cls} " + " ".join(f"{t} {n}" for t, n in sorted(ts.items())) for cls, ts in v["tiers"].items()))
            lines.append("  first answers, per class: " + "; ".join(
                f"{cls} " + " ".join(f"{a} {n}" for a, n in sorted(acts.items())) for cls, acts in v["first_actions"].items()))
        lines += ["", "targets (issue 20), per server"]
        for server, v in f["servers"].items():
            for t in v["targets"]:
                lines.append(f"  {server:13} [{'met' if t['met'] else 'MISSED'}] {t['what']}")
    d = f.get("dns")
    if d:
        lines += ["", "Grey's policy decisions with DNS in the loop (--resolver -> dns_delay.py -> unbound), one request",
                  "in flight per connection: decisions/s, latency p50 / p99 ms, DNS queries per decision;",
                  "cached: 256 known clients again and again; uncached: a new address and HELO name per request",
                  "then Grey's CPU per decision, the most DNS queries in flight at the proxy, the client's and the",
                  "proxy's share of a core (both Python), and decisions/s as a multiple of one connection's",
                  f"{'DNS delay':10}{'mode':10}{'conns':>6}{'decisions/s':>13}{'p50 ms':>9}{'p99 ms':>9}"
                  f"{'queries':>9}{'CPU us':>8}{'in flight':>10}{'client':>8}{'proxy':>7}{'x serial':>10}"]
        for delay, modes in d.items():
            for mode, runs in modes.items():
                serial = runs.get("1", {}).get("decisions_per_s")
                for c, r in runs.items():
                    gain = f"{r['decisions_per_s'] / serial:.1f}" if serial else "-"
                    lines.append(f"{delay:10}{mode:10}{c:>6}{r['decisions_per_s']:13.0f}{r['p50_ms']:9.1f}"
                                 f"{r['p99_ms']:9.1f}{r['dns_queries_per_decision']:9.2f}{r['server_cpu_us']:8.0f}"
                                 f"{r['dns_most_in_flight']:10}{r['client_cpu']:8.2f}{r.get('proxy_cpu', math.nan):7.2f}"
                                 f"{gain:>10}")
        slow = d.get("50 ms", {}).get("uncached", {})
        if slow:
            best = max(slow.values(), key=lambda r: r["decisions_per_s"])
            lines.append(f"  at 50 ms uncached, one connection waiting in turn could make at most 1/0.05 = 20 "
                         f"decisions/s; the best run made {best['decisions_per_s']:.0f}")
    for name, why in f.get("skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)


def _share(n, total):
    return f"{n / total:.0%}" if total else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="about 2 minutes: 45 simulated minutes of first attempts, retried up to 1 h; "
                             "shorter DNS runs")
    parser.add_argument("--grey", default=os.path.join(peers.GREY_BIN, "examples", "greylist_server"),
                        help="greylist_server (default $GREY_PERF_BIN/examples/greylist_server)")
    parser.add_argument("--servers", nargs="+", default=SERVERS, choices=SERVERS)
    parser.add_argument("--scale", type=float, default=100, help="simulated seconds per real second")
    parser.add_argument("--delay", type=int, default=3, help="greylisting delay given to both, real seconds")
    parser.add_argument("--suspicious-delay", type=int, default=12, help="Grey's, real seconds")
    parser.add_argument("--span", type=float, help="simulated seconds over which messages are first sent "
                                                   "(default 6 h; --quick 45 min)")
    parser.add_argument("--horizon", type=float, help="simulated seconds a sender keeps retrying "
                                                      "(default 5 h; --quick 1 h)")
    parser.add_argument("--volume", type=float, default=1.0, help="messages per simulated hour, times this")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--no-population", dest="population", action="store_false")
    parser.add_argument("--dns-seconds", type=float, help="seconds of each DNS load run, 0: skip (default 4; --quick 2)")
    parser.add_argument("--dns-delays", type=float, nargs="+", default=[1, 50], help="ms added by the DNS proxy")
    parser.add_argument("--dns-connections", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--json", help="where the figures go (default results/population.json)")
    args = parser.parse_args()
    if args.span is None:
        args.span = 2700 if args.quick else 6 * 3600
    if args.horizon is None:
        args.horizon = 3600 if args.quick else 5 * 3600
    if args.dns_seconds is None:
        args.dns_seconds = 2 if args.quick else 4
    if not args.json:
        args.json = os.path.join(os.path.dirname(__file__), "results", "population.json")

    def terminate(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, terminate)
    figures = run(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(figures, f, indent=2)
    print(table(figures))
    say(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
