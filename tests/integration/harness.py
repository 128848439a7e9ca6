"""Shared pieces of the loopback integration tests: start Grey's programs and real peers
(Postfix's smtp-sink, maildir_sink), talk SMTP raw, read dumps and process figures. Loopback
only; every process started is stopped by the test that started it."""
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

PROGRAMS = {name: os.path.abspath(os.environ.get(var, f"build/dev/examples/{name}"))
            for name, var in [("spam_me", "GREY_SPAM_ME"), ("maildir_sink", "GREY_MAILDIR_SINK"),
                              ("custom_policy", "GREY_CUSTOM_POLICY"), ("embedded", "GREY_EMBEDDED"),
                              ("greylist_server", "GREY_GREYLIST_SERVER"),
                              ("greylist_admin", "GREY_GREYLIST_ADMIN"),
                              ("seed_default", "GREY_SEED_DEFAULT")]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def end_process(proc, timeout=10):
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds; waits for it."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Program:
    """One of Grey's programs, started on an ephemeral port; `port` is where it listens."""

    def __init__(self, name, *args, cwd=None):
        self.dir = cwd or tempfile.mkdtemp(prefix=f"grey-{name}-")
        self.proc = subprocess.Popen([PROGRAMS[name], "--listen", "127.0.0.1:0", *args], cwd=self.dir,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output = []
        deadline = time.time() + 10
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{name} exited: {''.join(self.output)}")
            self.output.append(line)
            m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return
        raise RuntimeError(f"{name} did not start")

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            end_process(self.proc, timeout)
        if not self.proc.stdout.closed:
            self.output += self.proc.stdout.readlines()
            self.proc.stdout.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MaildirSink(Program):
    def __init__(self, *args):
        super().__init__("maildir_sink", "--maildir", "Maildir", *args)

    def messages(self):
        new = os.path.join(self.dir, "Maildir", "new")
        found = []
        for name in sorted(os.listdir(new)):
            with open(os.path.join(new, name), "rb") as f:
                found.append(f.read())
        return found


class SmtpSink:
    """Postfix's smtp-sink, a real SMTP server, dumping each transaction to a file."""

    def __init__(self, *options):
        self.dir = tempfile.mkdtemp(prefix="grey-smtp-sink-")
        os.chmod(self.dir, 0o1777)  # smtp-sink run as root drops to nobody
        self.port = free_port()
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d", os.path.join(self.dir, "%H%M%S."),
                                      *options, f"127.0.0.1:{self.port}", "256"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_port(self.port)

    def messages(self, settle=0.3):
        """[(envelope lines, body lines)] of every transaction the sink completed."""
        time.sleep(settle)
        out = []
        for name in sorted(os.listdir(self.dir)):
            with open(os.path.join(self.dir, name), "rb") as f:
                data = f.read()
            head, _, body = data.partition(b"Received: ")
            out.append(([l for l in head.split(b"\n") if l], body))
        return out

    def cleanup(self):
        end_process(self.proc, 10)
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    """SMTP spoken by hand, for what smtplib will not send: malformed lines, smuggling."""

    def __init__(self, port, timeout=10, greeting=True, source="127.0.0.1"):
        # Any 127/8 address is this host's: a source of 127.0.0.2 plays another client.
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.buf = b""
        self.greeting = self.reply() if greeting else None

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """(code, enhanced or '', [text lines]) of the next reply; None when the peer closed."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None if not lines else (int(lines[-1][:3]), "", lines)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("latin-1"))
            if len(line) < 4 or line[3:4] == b" ":
                break
        code = int(lines[-1][:3])
        m = re.match(r"\d{3}[ -](\d\.\d{1,3}\.\d{1,3}) ", lines[-1] + " ")
        return code, m.group(1) if m else "", [l[4:] for l in lines]

    def command(self, line):
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line)
        return self.reply()

    def open_data(self, sender="alice@example.org", recipients=("bob@example.com",), helo="client.example"):
        """EHLO, MAIL, RCPT for each recipient, DATA: each must be accepted (AssertionError if not),
        so that what follows is message text."""
        for line, expected in ([f"EHLO {helo}", 250], [f"MAIL FROM:<{sender}>", 250],
                               *[[f"RCPT TO:<{r}>", 250] for r in recipients], ["DATA", 354]):
            reply = self.command(line)
            if reply is None or reply[0] != expected:
                raise AssertionError(f"{line}: {reply}")

    def closed(self, timeout=5):
        """True when the server has closed the connection (after any pending bytes)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-aiosmtpd is installed for this one


class AiosmtpdUpstream:
    def __init__(self, *args):
        self.dir = tempfile.mkdtemp(prefix="grey-aiosmtpd-")
        script = os.path.join(os.path.dirname(__file__), "aiosmtpd_upstream.py")
        self.proc = subprocess.Popen([SYSTEM_PYTHON, script, self.dir, *args], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on 127.0.0.1:"):
            raise RuntimeError(f"aiosmtpd upstream did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def messages(self):
        """[(message bytes, facts)] in arrival order."""
        out = []
        for n in range(1, 10000):
            base = os.path.join(self.dir, str(n))
            if not os.path.exists(base + ".json"):
                break
            with open(base + ".eml", "rb") as m, open(base + ".json") as j:
                out.append((m.read(), json.load(j)))
        return out

    def cleanup(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class ScriptedUpstream(threading.Thread):
    """A small SMTP server whose EHLO offers what `extensions` says for each connection (by
    default PIPELINING, 8BITMIME and STARTTLS). After its 220 to STARTTLS it sends `behind_220`
    (a reply an attacker slipped in) and then does the handshake, or with handshake=False sends
    plain text and hangs up. `commands` records what the latest connection received, with
    whether TLS was up; `messages` every message, with whether it came over TLS. A message sent
    with BDAT is recorded as the octets of its chunks, each chunk answered by `chunk_reply`.
    `greeting(connection number)` is the greeting each connection gets (220 by default); a
    greeting other than 220 is followed by a hang-up, and None means none at all: the connection
    is held open, silent, until the client closes it."""

    def __init__(self, cert=None, key=None, behind_220=b"", handshake=True, extensions=None, chunk_reply=None,
                 greeting=None):
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context = None
        if cert:
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.context.load_cert_chain(cert, key)
        self.behind_220, self.handshake = behind_220, handshake
        # extensions(connection number, tls) -> the EHLO keywords offered on that connection
        self.extensions = extensions or (lambda n, tls: ["PIPELINING", "8BITMIME"] + ([] if tls else ["STARTTLS"]))
        # chunk_reply(chunk number in the message, from 1) -> the reply to that BDAT chunk
        self.chunk_reply = chunk_reply or (lambda n: b"250 2.0.0 Chunk OK\r\n")
        self.greeting = greeting or (lambda n: b"220 scripted.example ESMTP\r\n")
        self.xclient_reply = b"220 scripted.example ESMTP\r\n"  # XCLIENT_README: a new greeting
        self.all_commands = []  # of every connection: (connection number, command)
        self.connections = 0
        self.by_connection = {}  # connection number -> [(command, tls)]
        self.messages = []
        self.start()

    def run(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            # Each connection on its own thread: Grey may keep one open in its pool while it
            # opens another.
            self.connections += 1  # numbered in the order accepted
            self.by_connection[self.connections] = []
            threading.Thread(target=self.serve_and_close, args=(conn, self.connections), daemon=True).start()

    @property
    def commands(self):
        """What the latest connection received: (command, whether TLS was up)."""
        return self.by_connection[self.connections] if self.connections else []

    def serve_and_close(self, conn, number):
        try:
            self.serve(conn, number)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def serve(self, conn, number):
        tls = False
        chunks = []  # of the BDAT message being received
        reader = conn.makefile("rb")
        greeting = self.greeting(number)
        if greeting is None:
            conn.settimeout(60)  # bounded: the client gives up long before
            while conn.recv(4096):
                pass
            return
        conn.sendall(greeting)
        if not greeting.startswith(b"220"):
            return
        while line := reader.readline():
            verb = line.strip().split(b" ")[0].upper()
            self.by_connection[number].append((line.strip().decode(), tls))
            self.all_commands.append((number, line.strip().decode()))
            if verb == b"EHLO":
                lines = ["scripted.example", *self.extensions(number, tls)]
                conn.sendall("".join(f"250{' ' if i == len(lines) - 1 else '-'}{l}\r\n"
                                     for i, l in enumerate(lines)).encode())
            elif verb == b"STARTTLS":
                conn.sendall(b"220 2.0.0 Go ahead\r\n" + self.behind_220)
                if not self.handshake:
                    return
                conn = self.context.wrap_socket(conn, server_side=True)
                reader, tls = conn.makefile("rb"), True
            elif verb == b"DATA":
                conn.sendall(b"354 Go on\r\n")
                body = b""
                while (chunk := reader.readline()) not in (b".\r\n", b""):
                    body += chunk
                self.messages.append((body, tls))
                conn.sendall(b"250 2.0.0 Queued\r\n")
            elif verb == b"XCLIENT":
                conn.sendall(self.xclient_reply)
            elif verb == b"BDAT":
                size, last = int(line.split()[1]), line.strip().upper().endswith(b" LAST")
                chunks.append(reader.read(size))
                reply = self.chunk_reply(len(chunks))
                if last and reply.startswith(b"2"):
                    self.messages.append((b"".join(chunks), tls))
                if last or not reply.startswith(b"2"):
                    chunks = []
                conn.sendall(reply)
            elif verb == b"RSET":
                chunks = []
                conn.sendall(b"250 2.0.0 Reset\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 Bye\r\n")
                return
            else:
                conn.sendall(b"250 2.0.0 OK\r\n")

    def close(self):
        self.listener.close()


class PrivatePostfix:
    """A Postfix instance of its own (`postfix -c DIR start`), loopback only, logging to a file:
    Debian's master.cf without the port-25 listener and with no service chrooted, plus
    `master_cf` lines; `main_cf` settings added to the directories it needs. A fresh machine
    has no /etc/postfix/main.cf, and this needs none. stop() when done."""

    MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
maillog_file = {log}
"""

    def __init__(self, directory, main_cf="", master_cf=""):
        os.chmod(directory, 0o755)  # Postfix's daemons run as the postfix user
        self.conf = os.path.join(directory, "postfix")
        # postfix start exits 1 without a word when the log file is outside /var.
        self.log = f"/var/log/grey-test-postfix-{os.getpid()}-{free_port()}.log"
        os.makedirs(os.path.join(self.conf, "queue"))
        os.makedirs(os.path.join(self.conf, "data"))
        shutil.chown(os.path.join(self.conf, "data"), user="postfix")
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(self.MAIN_CF.format(d=self.conf, log=self.log) + main_cf)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(self._debian_master_cf() + master_cf)
        subprocess.run(["postfix", "-c", self.conf, "check"], check=True, capture_output=True, timeout=60)
        started = subprocess.run(["postfix", "-c", self.conf, "start"], capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            self.stop()
            raise RuntimeError(f"postfix did not start: {started.stdout}{started.stderr}{self.read_log()}")

    @staticmethod
    def _debian_master_cf():
        source = "/etc/postfix/master.cf"
        if not os.path.exists(source):
            source = "/usr/share/postfix/master.cf.dist"
        out, skipping = [], False
        with open(source) as f:
            for line in f:
                fields = line.split()
                if line.startswith("smtp") and len(fields) > 1 and fields[1] == "inet":
                    skipping = True
                    continue
                if skipping and line[:1] in (" ", "\t"):
                    continue
                skipping = False
                if line[:1].isalpha() and len(fields) >= 8:
                    fields[4] = "n"
                    line = " ".join(fields) + "\n"
                out.append(line)
        return "".join(out)

    @property
    def pid(self):
        """The master process's."""
        with open(os.path.join(self.conf, "queue", "pid", "master.pid")) as f:
            return int(f.read().split()[0])

    def sendmail(self, sender, recipient, message):
        return subprocess.run(["sendmail", "-C", self.conf, "-f", sender, recipient],
                              input=message, capture_output=True, timeout=30)

    def read_log(self):
        if not os.path.exists(self.log):
            return ""
        with open(self.log, errors="replace") as f:
            return f.read()

    def log_once_written(self, *patterns, timeout=30):
        """The log, once every pattern appears in it or the timeout passes: Postfix's daemons
        hand their lines to postlogd, which writes them a moment after the SMTP reply."""
        deadline = time.time() + timeout
        log = self.read_log()
        while not all(re.search(p, log) for p in patterns) and time.time() < deadline:
            time.sleep(0.1)
            log = self.read_log()
        return log

    def stop(self):
        subprocess.run(["postfix", "-c", self.conf, "stop"], capture_output=True, timeout=60)
        if os.path.exists(self.log):
            os.unlink(self.log)


def postfix_smtpd(test, main_cf="", hostname="upstream.example"):
    """For a unittest.TestCase: a private Postfix whose only SMTP listener is an smtpd on a
    loopback port of its own, taking mail from 127.0.0.0/8 and relaying it to a Maildir sink,
    plus `main_cf` settings. All are cleaned up with the test. (postfix, smtpd port, sink)."""
    directory = tempfile.mkdtemp(prefix="grey-postfix-")
    test.addCleanup(shutil.rmtree, directory, True)
    sink = MaildirSink()
    test.addCleanup(sink.cleanup)
    port = free_port()
    postfix = PrivatePostfix(directory, main_cf=f"""\
myhostname = {hostname}
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink.port}
""" + main_cf, master_cf=f"127.0.0.1:{port} inet n - n - - smtpd\n")
    test.addCleanup(postfix.stop)
    return postfix, port, sink


def make_certificate(directory, name="localhost"):
    """A self-signed certificate and its key for `name`, made now with the openssl CLI:
    (certificate path, key path)."""
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def scrape(port, path="/metrics"):
    """A GET of a program's metrics endpoint: (Content-Type, body)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def metric_value(text, name, labels=""):
    """The value of one sample in Prometheus text, `labels` as written: '{code="500"}'."""
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    if not m:
        raise AssertionError(f"{name}{labels} not in the scrape")
    return float(m.group(1))


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")
