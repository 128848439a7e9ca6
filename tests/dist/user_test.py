"""greylist_server --user NAME, started as root as a service manager other than systemd would
start it: it binds its ports as root (one below 1024, which only root may bind), makes its
store and Maildir as the user, then runs with every uid and gid the user's — /proc/PID/status
says so — and still greylists, relays and delivers. An unknown user stops it before it listens.
Skipped unless run as root. Loopback only; every process started is stopped."""
import os
import pwd
import grp
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import end_process, free_port  # noqa: E402

SERVER = os.path.abspath(os.environ.get("GREY_GREYLIST_SERVER", "build/dev/examples/greylist_server"))
USER = "nobody"


def free_low_port():
    """A port below 1024 that nothing on 127.0.0.1 uses (bounded search)."""
    for port in range(700, 1000):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port below 1024 on 127.0.0.1")


def ids(pid):
    """{'Uid': [real, effective, saved, fs], 'Gid': [...], 'Groups': [...]} from /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(v) for v in value.split()]
    return out


def send(port, helo="client.example"):
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=10) as s:
        s.ehlo()
        assert s.mail("alice@example.org")[0] == 250
        code = s.rcpt("bob@example.com")[0]
        if code == 250:
            assert s.data(b"Subject: t\r\n\r\nhello\r\n")[0] == 250
        else:
            s.rset()
        return code


@unittest.skipUnless(os.geteuid() == 0, "needs root: --user switches from root to another user")
class RunAsUser(unittest.TestCase):
    def setUp(self):
        self.user = pwd.getpwnam(USER)
        self.dir = tempfile.mkdtemp(prefix="grey-user-")
        # The state directory belongs to the user, as /var/lib/grey does to grey.
        os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        os.chmod(self.dir, 0o750)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.proc = None
        self.addCleanup(self.stop)

    def start(self, *args, config=""):
        path = os.path.join(self.dir, "grey.toml")
        with open(path, "w") as f:
            f.write("[greylist]\ndelay = 1\nauto_whitelist_after = 0\n[maildir]\nlisten = \"127.0.0.1:0\"\n" + config)
        self.proc = subprocess.Popen([SERVER, "--config", path, "--user", USER, *args], cwd=self.dir,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        deadline = time.time() + 15
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.fail("greylist_server exited: " + "".join(self.lines))
            self.lines.append(line)
            if line.startswith("running as user"):
                return
        self.fail("greylist_server did not say it runs as the user: " + "".join(self.lines))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            end_process(self.proc, 15)
        if self.proc and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def assert_runs_as_user(self):
        status = ids(self.proc.pid)
        self.assertEqual(status["Uid"], [self.user.pw_uid] * 4, status)
        self.assertEqual(status["Gid"], [self.user.pw_gid] * 4, status)
        self.assertNotIn(0, status["Groups"], status)

    def test_binds_a_low_port_as_root_then_serves_as_the_user(self):
        port = free_low_port()
        self.start("--listen", f"127.0.0.1:{port}")
        self.assertIn(f"listening on 127.0.0.1:{port}\n", self.lines)
        self.assertIn(f"running as user {USER}\n", self.lines)
        self.assert_runs_as_user()
        # The store and the Maildir were made as the user, so it can write them now.
        for made in ("greylist.db", "Maildir/new"):
            self.assertEqual(os.stat(os.path.join(self.dir, made)).st_uid, self.user.pw_uid, made)
        self.assertEqual(send(port), 451)
        time.sleep(1.2)
        self.assertEqual(send(port), 250)
        new = os.path.join(self.dir, "Maildir", "new")
        deadline = time.time() + 5
        while not os.listdir(new) and time.time() < deadline:
            time.sleep(0.05)
        delivered = os.listdir(new)
        self.assertEqual(len(delivered), 1)
        self.assertEqual(os.stat(os.path.join(new, delivered[0])).st_uid, self.user.pw_uid)
        self.assert_runs_as_user()
        self.stop()
        self.assertEqual(self.proc.returncode, 0)

    def test_the_policy_service_gives_root_up_too(self):
        port = free_port()
        self.start("--policy", f"inet:127.0.0.1:{port}", "--reputation", "off")
        self.assert_runs_as_user()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.7\n"
                      b"sender=alice@example.org\nrecipient=bob@example.com\n\n")
            answer = b""
            while not answer.endswith(b"\n\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer.startswith(b"action=DEFER_IF_PERMIT"), answer)

    def test_a_group_of_its_own_leaves_no_supplementary_groups(self):
        group = grp.getgrnam("nogroup")
        self.start("--listen", "127.0.0.1:0", "--group", "nogroup")
        status = ids(self.proc.pid)
        self.assertEqual(status["Gid"], [group.gr_gid] * 4, status)
        self.assertEqual(status["Groups"], [group.gr_gid], status)

    def test_an_unknown_user_stops_it_before_it_listens(self):
        r = subprocess.run([SERVER, "--listen", "127.0.0.1:0", "--store", "memory", "--user", "no-such-user-grey"],
                           cwd=self.dir, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user named 'no-such-user-grey'", r.stderr)
        self.assertNotIn("listening on", r.stdout)


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
