"""What a benchmark run does to a relay: loads with Postfix's smtp-source, single-session
transaction latency, idle connections, one large message streamed, a plain socket copy for
scale, greylist deferrals and policy decisions. Loopback only; every probe is bounded in count
and time."""
import os
import re
import resource
import selectors
import socket
import ssl
import subprocess
import threading
import time

SENDER = "bench@example.com"
RECIPIENT = "user@example.com"


def raise_open_file_limit():
    """Lets this process and the servers it starts hold 10,000 connections: the soft limit goes to
    the hard one, and the hard one up to 65,536 where the user may raise it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def load(port, sessions, messages, size, timeout):
    """smtp-source: `messages` messages of `size` octets over `sessions` parallel sessions, a new
    connection per message as an MTA without a connection cache makes. Returns seconds taken;
    raises if smtp-source reports any refusal or does not finish in `timeout` seconds."""
    argv = ["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size),
            "-f", SENDER, "-t", RECIPIENT, f"127.0.0.1:{port}"]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or done.stderr.strip():
        raise RuntimeError(f"smtp-source: {done.stderr.strip()[:300]}")
    return elapsed


class _Session:
    """A blocking SMTP client session, replies read whole (multi-line included)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.expect(b"220")

    def expect(self, code):
        while True:
            line = self.file.readline()
            if not line.startswith(code):
                raise RuntimeError(f"expected {code.decode()}, got {line[:200]!r}")
            if line[3:4] != b"-":
                return line

    def command(self, text, code):
        self.sock.sendall(text)
        return self.expect(code)

    def close(self):
        try:
            self.command(b"QUIT\r\n", b"221")
        finally:
            self.sock.close()


def _message(size):
    line = b"x" * 76 + b"\r\n"
    return b"Subject: latency\r\n\r\n" + line * (size // len(line)) + b".\r\n"


def transaction_latencies(port, seconds, max_count, size=1024):
    """One session, transactions one after another, each command waiting for its reply as a
    client without PIPELINING does. Returns each transaction's seconds, MAIL to the final 250."""
    session = _Session(port)
    session.command(b"EHLO bench.example\r\n", b"250")
    message = _message(size)
    mail = f"MAIL FROM:<{SENDER}>\r\n".encode()
    rcpt = f"RCPT TO:<{RECIPIENT}>\r\n".encode()
    samples = []
    deadline = time.perf_counter() + seconds
    while len(samples) < max_count and (len(samples) < 20 or time.perf_counter() < deadline):
        start = time.perf_counter()
        session.command(mail, b"250")
        session.command(rcpt, b"250")
        session.command(b"DATA\r\n", b"354")
        session.command(message, b"250")
        samples.append(time.perf_counter() - start)
    session.close()
    return samples


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def idle_connections(port, count, timeout=60):
    """Opens up to `count` connections that each read the greeting and then stay idle. Returns
    (the sockets, how many got their greeting); the caller measures, then closes them."""
    selector = selectors.DefaultSelector()
    sockets, greeted = [], 0
    pending = 0
    deadline = time.time() + timeout
    opened = 0
    while (opened < count or pending) and time.time() < deadline:
        while opened < count and pending < 256:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            selector.register(s, selectors.EVENT_READ)
            sockets.append(s)
            opened += 1
            pending += 1
        for key, _ in selector.select(timeout=1):
            s = key.fileobj
            selector.unregister(s)
            pending -= 1
            try:
                if s.recv(512).startswith(b"220"):
                    greeted += 1
            except OSError:
                pass
    selector.close()
    return sockets, greeted


def tls_idle_connections(port, count, timeout=120):
    """Opens up to `count` connections that each say EHLO, STARTTLS, finish the handshake and
    EHLO again inside TLS, and then stay idle: what an MTA holding a cached TLS session to Grey
    leaves. Returns (the TLS sockets, how many got that far); the caller measures, then closes
    them. One at a time, blocking: the handshakes, not the client, are what is measured here,
    and only memory is."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sockets = []
    deadline = time.time() + timeout
    for _ in range(count):
        if time.time() > deadline:
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            reader = s.makefile("rb")
            reader.readline()
            s.sendall(b"EHLO bench.example\r\n")
            while not reader.readline().startswith(b"250 "):
                pass
            s.sendall(b"STARTTLS\r\n")
            if not reader.readline().startswith(b"220"):
                s.close()
                continue
            t = context.wrap_socket(s, server_hostname="localhost")
            t.sendall(b"EHLO bench.example\r\n")
            answer = b""
            while b"\r\n250 " not in b"\r\n" + answer:
                answer += t.recv(4096)
            sockets.append(t)
        except OSError:
            break
    return sockets, len(sockets)


def stream(port, size):
    """One session sending one message of `size` octets (76-octet lines) in 1 MiB writes. Returns
    MiB/s from DATA's 354 to the final 250, after checking that the 250 came."""
    session = _Session(port)
    session.command(b"EHLO bench.example\r\n", b"250")
    session.command(f"MAIL FROM:<{SENDER}>\r\n".encode(), b"250")
    session.command(f"RCPT TO:<{RECIPIENT}>\r\n".encode(), b"250")
    session.command(b"DATA\r\n", b"354")
    line = b"x" * 76 + b"\r\n"
    block = line * ((1 << 20) // len(line))
    start = time.perf_counter()
    sent = 0
    while sent < size:
        session.sock.sendall(block)
        sent += len(block)
    reply = session.command(b".\r\n", b"250")
    elapsed = time.perf_counter() - start
    session.close()
    return sent / elapsed / 2**20, sent, reply


def plain_copy(size):
    """For scale: `size` octets through one loopback TCP connection, 1 MiB writes and reads, the
    reader discarding. Returns MiB/s."""
    server = socket.create_server(("127.0.0.1", 0))
    received = []

    def reader():
        conn, _ = server.accept()
        buffer = bytearray(1 << 20)
        n = 0
        while (k := conn.recv_into(buffer)) > 0:
            n += k
        received.append(n)
        conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    block = bytes(1 << 20)
    with socket.create_connection(server.getsockname()) as s:
        start = time.perf_counter()
        for _ in range(size >> 20):
            s.sendall(block)
        s.shutdown(socket.SHUT_WR)
        thread.join()
        elapsed = time.perf_counter() - start
    server.close()
    assert received == [size], received
    return size / elapsed / 2**20


def deferrals(program, port, seconds):
    """First-sight deferrals per second of a greylisting server, made by `program`, the
    first_sight client (C++: a Python client could not keep up). Returns (rate, sessions that
    were not deferred)."""
    done = subprocess.run([program, "--port", str(port), "--seconds", str(seconds)],
                          capture_output=True, text=True, timeout=seconds + 60)
    m = re.match(r"deferred (\d+) other (\d+) seconds \S+ rate (\d+)", done.stdout)
    if not m:
        raise RuntimeError(f"first_sight: {done.stdout}{done.stderr}")
    return int(m.group(3)), int(m.group(2))


def policy_requests(program, port, seconds, connections, pipeline=1, expect="DEFER_IF_PERMIT"):
    """First-sight policy decisions per second of a Postfix policy server, made by `program`, the
    policy_requests client (C++, one thread). Returns the rate, the answers by action, and the
    share of a core the client used; raises if any answer was not `expect` (DEFER_IF_PERMIT,
    or DUNNO from the ceiling peer) or any connection failed: such a run is not a figure."""
    done = subprocess.run([program, "--port", str(port), "--seconds", str(seconds),
                           "--connections", str(connections), "--pipeline", str(pipeline), "--expect", expect],
                          capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"^answers (\d+) expected (\d+) other (\d+) failures (\d+) seconds \S+ rate (\d+) "
                  r"client_cpu (\S+)$", done.stdout, re.M)
    if not m:
        raise RuntimeError(f"policy_requests: {done.stdout}{done.stderr}"[:500])
    actions = dict((a, int(n)) for a, n in re.findall(r"^action (\S+) (\d+)$", done.stdout, re.M))
    answers, other, failures = int(m.group(1)), int(m.group(3)), int(m.group(4))
    if other or failures or not answers:
        raise RuntimeError(f"{answers} answers {actions}, {failures} connections failed: "
                           f"{done.stderr.strip()[:300]}")
    return {"requests_per_s": int(m.group(5)), "answers": answers, "actions": actions,
            "client_cpu": float(m.group(6))}
