"""The Redis store as production runs it, end to end: greylist_server against real redis-server
processes started here on loopback ports and unix sockets, with passwords, ACL users,
databases, prefixes and TLS; and a Redis killed and started again in the middle of a load,
which the server must ride out without a restart. Every redis-server is stopped by its test."""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
import unittest

from harness import end_process, free_port, make_certificate
from test_greylist import GreylistServer

GREYLISTED = (451, "4.7.1")
UNAVAILABLE = (451, "4.3.0")
CONFIG = """
    [greylist]
    delay = 2
    auto_whitelist_after = 0
    [maildir]
    listen = "127.0.0.1:0"
    [log]
    file = "sessions.log"
"""


class Redis:
    """A redis-server of the test's own: on a loopback port (or only a unix socket, with
    port=0), with the given extra arguments; `cli()` runs redis-cli against it, logged in."""

    def __init__(self, test, *args, port=None, tls=None, cli_auth=()):
        self.dir = tempfile.mkdtemp(prefix="grey-redis-prod-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        self.port = free_port() if port is None else port
        self.args, self.tls, self.cli_auth = list(args), tls, list(cli_auth)
        self.proc = None
        test.addCleanup(self.stop)
        self.start()

    def start(self):
        if self.tls:
            where = ["--port", "0", "--tls-port", str(self.port), *self.tls]
        else:
            where = ["--port", str(self.port)]
        self.proc = subprocess.Popen(
            ["redis-server", *where, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, *self.args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if self.answers():
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def answers(self):
        try:
            if self.port:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            else:
                path = self.args[self.args.index("--unixsocket") + 1]
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(path)
            return True
        except OSError:
            return False

    def kill(self):
        """Ends it at once, as a crash would: no goodbye to its clients."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            end_process(self.proc, 10)

    def cli(self, *args, db=0):
        where = ["-p", str(self.port)] if self.port else ["-s", self.args[self.args.index("--unixsocket") + 1]]
        if self.tls:
            where += ["--tls", "--cacert", self.tls[self.tls.index("--tls-ca-cert-file") + 1]]
        p = subprocess.run(["redis-cli", *where, "-n", str(db), *self.cli_auth, "--no-auth-warning", *args],
                           capture_output=True, text=True, timeout=30)
        return p.stdout

    def keys(self, pattern="*", db=0):
        return sorted(self.cli("--scan", "--pattern", pattern, db=db).splitlines())


def rcpt(port, sender, recipient, timeout=20):
    """One session to RCPT: (code, enhanced code) of the RCPT's reply."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=timeout) as s:
        s.ehlo()
        code, _ = s.mail(sender)
        assert code == 250, code
        code, text = s.rcpt(recipient)
        return code, text.decode().split(" ", 1)[0]


class RcptLoad:
    """Threads each sending sessions to RCPT, a new triplet every time, until stopped or
    `max_sessions` each: `answers` holds (time, (code, enhanced)) or (time, exception text),
    and `started` counts the sessions begun, so that a test can check every one was answered."""

    def __init__(self, port, threads=4, max_sessions=400, pause=0.02):
        self.answers, self.started = [], 0
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.port, self.max_sessions, self.pause = port, max_sessions, pause
        self.threads = [threading.Thread(target=self._load, args=(n,)) for n in range(threads)]
        for t in self.threads:
            t.start()

    def _load(self, n):
        for i in range(self.max_sessions):
            if self.stopping.is_set():
                return
            with self.lock:
                self.started += 1
            try:
                a = rcpt(self.port, f"load{n}-{i}@example.org", f"rcpt{i}@example.com")
            except Exception as e:  # counted as a session without an answer
                a = f"{type(e).__name__}: {e}"
            with self.lock:
                self.answers.append((time.monotonic(), a))
            time.sleep(self.pause)

    def first(self, after, answer):
        """When `answer` first came after the time `after`; None if it has not."""
        with self.lock:
            return next((t for t, a in self.answers if t > after and a == answer), None)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)


class RedisProduction(unittest.TestCase):
    def server(self, store, config=CONFIG, env=None):
        s = GreylistServer(config, ["--store", store] if store else [], separate_stderr=True)
        saved = dict(os.environ)
        os.environ.update(env or {})
        try:
            s.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.addCleanup(s.cleanup)
        return s

    def reported(self, s):
        return [l for l in s.errors().splitlines() if l.startswith("grey: ")]

    def test_a_password_in_the_url_logs_in(self):
        redis = Redis(self, "--requirepass", "s3cr@t:/", cli_auth=["-a", "s3cr@t:/"])
        s = self.server(f"redis://:s3cr%40t%3A%2F@127.0.0.1:{redis.port}")
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        self.assertEqual(len(redis.keys("grey:t:*")), 1)

    def test_a_password_from_the_environment_or_a_file_logs_in(self):
        redis = Redis(self, "--requirepass", "from-elsewhere", cli_auth=["-a", "from-elsewhere"])
        s = self.server(f"redis://127.0.0.1:{redis.port}", env={"GREY_REDIS_PASSWORD": "from-elsewhere"})
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)

        secret = os.path.join(redis.dir, "password")
        with open(secret, "w") as f:
            f.write("from-elsewhere\n")
        config = CONFIG.replace("[greylist]\n", f'[greylist]\n    store = "redis://127.0.0.1:{redis.port}"\n', 1)
        s = self.server(None, config + f"""
    [greylist.redis]
    password_file = "{secret}"
""")
        self.assertEqual(rcpt(s.port, "carol@example.org", "bob@example.com"), GREYLISTED)
        self.assertEqual(len(redis.keys("grey:t:*")), 2)

    def test_an_acl_user_logs_in_and_keeps_to_its_keys(self):
        acl = os.path.join(tempfile.mkdtemp(prefix="grey-acl-"), "users.acl")
        self.addCleanup(shutil.rmtree, os.path.dirname(acl), True)
        with open(acl, "w") as f:
            f.write("user default on nopass ~* &* +@all\n"
                    "user grey on >mx-pass ~mx1:* +@all -@admin\n")
        redis = Redis(self, "--aclfile", acl)
        s = self.server(f"redis://grey:mx-pass@127.0.0.1:{redis.port}?prefix=mx1%3A")
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        self.assertEqual(len(redis.keys("mx1:t:*")), 1)
        self.assertEqual(redis.keys("grey:*"), [])

    def test_a_wrong_password_defers_with_4_3_0_and_says_so_once(self):
        redis = Redis(self, "--requirepass", "right")
        s = self.server(f"redis://:wrong@127.0.0.1:{redis.port}")
        for i in range(5):
            self.assertEqual(rcpt(s.port, f"s{i}@example.org", "bob@example.com"), UNAVAILABLE)
        s.stop()
        self.assertEqual(self.reported(s), ["grey: error: greylist store unavailable: Redis refused AUTH: wrong user or "
                                            "password, or the user is disabled"])
        self.assertEqual(redis.proc.poll(), None)

    def test_a_redis_out_of_memory_or_busy_defers_with_4_3_0_and_says_which(self):
        redis = Redis(self)
        s = self.server(f"redis://127.0.0.1:{redis.port}")
        self.assertEqual(rcpt(s.port, "a@example.org", "bob@example.com"), GREYLISTED)
        # Out of memory: the decision's write is refused.
        redis.cli("CONFIG", "SET", "maxmemory", "1")
        self.assertEqual(rcpt(s.port, "b@example.org", "bob@example.com"), UNAVAILABLE)
        self.assertEqual(rcpt(s.port, "c@example.org", "bob@example.com"), UNAVAILABLE)
        redis.cli("CONFIG", "SET", "maxmemory", "0")
        self.assertEqual(rcpt(s.port, "d@example.org", "bob@example.com"), GREYLISTED)
        # Busy: another client's script holds Redis for two seconds, past busy-reply-threshold.
        redis.cli("CONFIG", "SET", "busy-reply-threshold", "100")
        busy = subprocess.Popen(
            ["redis-cli", "-p", str(redis.port), "EVAL",
             "local s = tonumber(redis.call('TIME')[1]) "
             "while tonumber(redis.call('TIME')[1]) - s < 2 do end return 1", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(end_process, busy, 10)
        time.sleep(0.5)
        self.assertEqual(rcpt(s.port, "e@example.org", "bob@example.com"), UNAVAILABLE)
        busy.wait(timeout=10)
        self.assertEqual(rcpt(s.port, "f@example.org", "bob@example.com"), GREYLISTED)
        s.stop()
        self.assertEqual(self.reported(s), [
            "grey: error: greylist store unavailable: Redis is out of memory and refuses writes (OOM: maxmemory)",
            "grey: notice: greylist store available again",
            "grey: error: greylist store unavailable: Redis is busy running a script (BUSY)",
            "grey: notice: greylist store available again"])

    def test_a_redis_still_loading_its_data_defers_with_4_3_0_and_says_so(self):
        redis = Redis(self)
        s = self.server(f"redis://127.0.0.1:{redis.port}")
        self.assertEqual(rcpt(s.port, "a@example.org", "bob@example.com"), GREYLISTED)
        # A data set that takes seconds to load: 20,000 keys, 200 us each (key-load-delay),
        # with clients answered (LOADING) every kilobyte loaded.
        redis.cli("EVAL", "for i = 1, 20000 do redis.call('SET', 'fill:' .. i, 'x') end return 1", "0")
        redis.cli("SAVE")
        redis.kill()
        redis.args += ["--key-load-delay", "200", "--loading-process-events-interval-bytes", "1024"]
        redis.start()
        self.assertIn("loading:1", redis.cli("INFO", "persistence"))
        self.assertEqual(rcpt(s.port, "b@example.org", "bob@example.com"), UNAVAILABLE)
        deadline = time.monotonic() + 30
        while "loading:1" in redis.cli("INFO", "persistence") and time.monotonic() < deadline:
            time.sleep(0.1)
        # Loaded: the store is used again once its backoff lets it try (5 s at most).
        answer = UNAVAILABLE
        deadline = time.monotonic() + 10
        while answer == UNAVAILABLE and time.monotonic() < deadline:
            answer = rcpt(s.port, "c@example.org", "bob@example.com")
            time.sleep(0.2)
        self.assertEqual(answer, GREYLISTED)
        s.stop()
        self.assertEqual(self.reported(s), [
            "grey: error: greylist store unavailable: Redis is loading its data set (LOADING)",
            "grey: notice: greylist store available again"])

    def test_a_script_that_fails_inside_redis_defers_with_4_3_0_and_says_so(self):
        redis = Redis(self)
        s = self.server(f"redis://127.0.0.1:{redis.port}")
        self.assertEqual(rcpt(s.port, "a@example.org", "bob@example.com"), GREYLISTED)
        # Something else wrote a hash where the triplet's record goes: the script's GET fails.
        key = redis.keys("grey:t:*")[0].replace("a@example.org", "b@example.org")
        self.assertEqual(redis.cli("HSET", key, "not", "a record").strip(), "1")
        self.assertEqual(rcpt(s.port, "b@example.org", "bob@example.com"), UNAVAILABLE)
        self.assertEqual(rcpt(s.port, "c@example.org", "bob@example.com"), GREYLISTED)
        s.stop()
        self.assertEqual(self.reported(s), [
            "grey: error: greylist store unavailable: Grey's decision script failed inside Redis",
            "grey: notice: greylist store available again"])
        self.assertEqual(redis.cli("TYPE", key).strip(), "hash", "the other writer's key is left alone")

    def test_no_password_for_a_redis_that_wants_one_says_so(self):
        redis = Redis(self, "--requirepass", "right")
        s = self.server(f"redis://127.0.0.1:{redis.port}")
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), UNAVAILABLE)
        s.stop()
        self.assertEqual(len(self.reported(s)), 1)
        self.assertIn("Redis requires AUTH (NOAUTH)", self.reported(s)[0])

    def test_records_land_in_the_database_and_under_the_prefix_given(self):
        redis = Redis(self)
        s = self.server(None, CONFIG.replace("[greylist]\n", f'[greylist]\n    store = "redis://127.0.0.1:{redis.port}/5"\n', 1) + """
    [greylist.redis]
    prefix = "site-a:"
    command_timeout_ms = 500
""")
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        keys = redis.keys(db=5)
        self.assertEqual(len(keys), 1, keys)
        self.assertTrue(keys[0].startswith("site-a:t:"), keys)
        self.assertEqual(redis.keys(db=0), [])

    def test_a_unix_socket(self):
        path = os.path.join(tempfile.mkdtemp(prefix="grey-redis-sock-"), "redis.sock")
        self.addCleanup(shutil.rmtree, os.path.dirname(path), True)
        redis = Redis(self, "--unixsocket", path, "--unixsocketperm", "700", "--requirepass", "pw",
                      port=0, cli_auth=["-a", "pw"])
        s = self.server(f"redis+unix://:pw@{path}?db=2")
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        self.assertEqual(len(redis.keys("grey:t:*", db=2)), 1)

    def tls_redis(self, *extra):
        d = tempfile.mkdtemp(prefix="grey-redis-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = make_certificate(d, "localhost")
        return Redis(self, *extra, tls=["--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert,
                                        "--tls-auth-clients", "no"]), cert, key

    def test_tls_with_the_certificate_verified(self):
        redis, cert, _ = self.tls_redis("--requirepass", "pw")
        redis.cli_auth = ["-a", "pw"]
        s = self.server(f"rediss://:pw@localhost:{redis.port}?tls_ca_file={cert}")
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)
        self.assertEqual(len(redis.keys("grey:t:*")), 1)

    def test_tls_with_a_client_certificate(self):
        d = tempfile.mkdtemp(prefix="grey-redis-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = make_certificate(d, "localhost")
        redis = Redis(self, tls=["--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert,
                                 "--tls-auth-clients", "yes"])
        s = self.server(f"rediss://localhost:{redis.port}?tls_ca_file={cert}&tls_certificate={cert}&tls_key={key}")
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), GREYLISTED)

    def test_tls_to_a_certificate_that_does_not_verify_defers_with_4_3_0(self):
        redis, _, _ = self.tls_redis()
        s = self.server(f"rediss://localhost:{redis.port}")  # the system's CAs do not know it
        self.assertEqual(rcpt(s.port, "alice@example.org", "bob@example.com"), UNAVAILABLE)
        s.stop()
        self.assertEqual(len(self.reported(s)), 1)
        self.assertIn("TLS handshake with Redis failed", self.reported(s)[0])

    def test_a_bad_redis_url_or_option_stops_the_server_with_the_reason(self):
        for args, config, reason in [
            (["--store", "redis://secret@127.0.0.1"], CONFIG, r"bad Redis URL: the password goes after a colon"),
            (["--store", "redis://127.0.0.1?nope=1"], CONFIG, r"unknown Redis option 'nope'"),
            ([], CONFIG + "\n    [greylist.redis]\n    command_timeout_ms = 0\n", r"grey\.toml:\d+: 'greylist\.redis'"),
            (["--store", "redis://127.0.0.1"], CONFIG + '\n    [greylist.redis]\n    password_file = "/nonexistent"\n',
             r"cannot read the password file /nonexistent"),
        ]:
            d = tempfile.mkdtemp(prefix="grey-badconf-")
            self.addCleanup(shutil.rmtree, d, True)
            path = os.path.join(d, "grey.toml")
            with open(path, "w") as f:
                f.write(textwrap.dedent(config))
            p = subprocess.run([os.environ.get("GREY_GREYLIST_SERVER", "build/dev/examples/greylist_server"),
                                "--config", path, "--listen", "127.0.0.1:0", *args],
                               cwd=d, capture_output=True, text=True, timeout=20)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertRegex(p.stderr, reason)


class RedisRestartUnderLoad(unittest.TestCase):
    """A steady load of greylisting sessions; redis-server killed mid-load and started again on
    the same port. During the outage recipients get 451 4.3.0 (never 250, never a hang or a
    crash); afterwards greylisting resumes by itself, and every session got an answer."""

    THREADS = 4
    MAX_SESSIONS = 600  # per thread: the load is bounded whatever happens

    def test_a_redis_restart_mid_load_defers_then_recovers_without_a_restart(self):
        redis = Redis(self, "--requirepass", "pw", cli_auth=["-a", "pw"])
        # AUTH and SELECT must be done again on the new connection: both are in the URL.
        s = GreylistServer(CONFIG, ["--store", f"redis://:pw@127.0.0.1:{redis.port}/1?reconnect_max_ms=2000"],
                           separate_stderr=True).start()
        self.addCleanup(s.cleanup)

        load = RcptLoad(s.port, self.THREADS, self.MAX_SESSIONS)
        try:
            time.sleep(1.0)
            killed = time.monotonic()
            redis.kill()
            time.sleep(2.0)
            redis.start()
            restarted = time.monotonic()
            deadline = restarted + 10
            recovered = None
            while time.monotonic() < deadline and recovered is None:
                time.sleep(0.1)
                recovered = load.first(restarted, GREYLISTED)
            time.sleep(1.0)  # load on the recovered store
        finally:
            load.stop()
        answers = load.answers
        self.assertIsNone(s.proc.poll(), "greylist_server must not have exited")

        self.assertEqual(len(answers), load.started, "every session got an answer")
        failures = [a for _, a in answers if not isinstance(a, tuple)]
        self.assertEqual(failures, [])
        self.assertEqual({a for _, a in answers} - {GREYLISTED, UNAVAILABLE}, set(), "only 4.7.1 or 4.3.0")
        before = [a for t, a in answers if t < killed]
        during = [a for t, a in answers if killed + 0.1 < t < restarted]
        self.assertTrue(before and all(a == GREYLISTED for a in before), before[:5])
        self.assertTrue(during and all(a == UNAVAILABLE for a in during), during[:5])
        self.assertIsNotNone(recovered, "greylisting did not resume within 10 s of Redis's restart")
        self.assertLess(recovered - restarted, 5.0)
        # (a session answered just before `recovered` may have been counted just after it)
        after = [a for t, a in answers if t > recovered + 0.2]
        self.assertTrue(after and all(a == GREYLISTED for a in after), after[:5])

        # The new records are in database 1 of the restarted Redis (its old ones died with it).
        self.assertGreater(len(redis.keys("grey:t:*", db=1)), 0)
        s.stop()
        reported = [l for l in s.errors().splitlines() if l.startswith("grey: ")]
        self.assertEqual(len(reported), 2, reported)
        self.assertRegex(reported[0], r"^grey: error: greylist store unavailable: ")
        self.assertEqual(reported[1], "grey: notice: greylist store available again")


if __name__ == "__main__":
    unittest.main()
