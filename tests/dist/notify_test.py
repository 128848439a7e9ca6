"""greylist_server speaks sd_notify as a Type=notify unit needs: started with $NOTIFY_SOCKET
naming a datagram socket this test holds (a path, then an abstract name), it sends READY=1 with
a STATUS= naming its address once it listens, and RELOADING=1 (with MONOTONIC_USEC) then
READY=1 around a SIGHUP reload; the policy mode too. Loopback only; every process is stopped."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import shutil
import unittest

SERVER = os.path.abspath(os.environ.get("GREY_GREYLIST_SERVER", "build/dev/examples/greylist_server"))


class Notify(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-notify-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.config = os.path.join(self.dir, "grey.toml")
        with open(self.config, "w") as f:
            f.write('[maildir]\nlisten = "127.0.0.1:0"\n')

    def systemd(self, name):
        """A datagram socket standing in for systemd's, bound to `name` ('@' = abstract)."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind("\0" + name[1:] if name.startswith("@") else name)
        s.settimeout(15)
        self.addCleanup(s.close)
        return s

    def start(self, notify_socket, *args):
        p = subprocess.Popen([SERVER, "--config", self.config, "--store", "memory", *args], cwd=self.dir,
                             env={**os.environ, "NOTIFY_SOCKET": notify_socket},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.addCleanup(stop)
        return p

    def test_ready_with_status_then_reloading_and_ready_around_sighup(self):
        path = os.path.join(self.dir, "notify")
        systemd = self.systemd(path)
        p = self.start(path, "--listen", "127.0.0.1:0")
        ready = systemd.recv(4096).decode()
        lines = ready.split("\n")
        self.assertEqual(lines[0], "READY=1")
        self.assertRegex(lines[1], r"^STATUS=listening on 127\.0\.0\.1:\d+$")
        p.send_signal(signal.SIGHUP)
        reloading = systemd.recv(4096).decode().split("\n")
        self.assertEqual(reloading[0], "RELOADING=1")
        self.assertRegex(reloading[1], r"^MONOTONIC_USEC=\d+$")
        self.assertEqual(systemd.recv(4096).decode(), "READY=1")

    def test_an_abstract_notify_socket_and_the_policy_mode(self):
        name = f"@grey-notify-{os.getpid()}"
        systemd = self.systemd(name)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.start(name, "--policy", f"inet:127.0.0.1:{port}")
        ready = systemd.recv(4096).decode()
        self.assertEqual(ready, f"READY=1\nSTATUS=policy service on inet:127.0.0.1:{port}")


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
