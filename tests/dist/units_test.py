"""The systemd units as `cmake --install` writes them (into a temporary prefix, so ExecStart
names a program that exists): `systemd-analyze verify` finds nothing wrong — it needs no
running systemd — and each unit keeps the settings the service depends on: Type=notify (the
program's READY=1), a reload by SIGHUP, the grey user, its state directory, and the sandbox.
`systemd-analyze security --offline` then rates the exposure, which must stay low."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BINARY_DIR = os.environ.get("GREY_BINARY_DIR", "build/dev")
UNITS = ("grey.service", "grey-policy.service")
REQUIRED = [
    "Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "User=grey", "Group=grey", "StateDirectory=grey",
    "WorkingDirectory=/var/lib/grey", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
    "NoNewPrivileges=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service",
    "WantedBy=multi-user.target",
]


def settings(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is missing: scripts/install-deps.sh installs systemd")
class Units(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = tempfile.mkdtemp(prefix="grey-units-")
        subprocess.run(["cmake", "--install", BINARY_DIR, "--prefix", cls.prefix, "--component", "server"],
                       check=True, capture_output=True, timeout=120)
        cls.unitdir = os.path.join(cls.prefix, "lib", "systemd", "system")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prefix, ignore_errors=True)

    def test_install_puts_the_units_program_and_configuration_under_the_prefix(self):
        for unit in UNITS:
            self.assertTrue(os.path.isfile(os.path.join(self.unitdir, unit)), unit)
        for path in ("sbin/greylist_server", "sbin/greylist_admin", "etc/grey/grey.toml",
                     "share/man/man8/greylist_server.8.gz", "share/man/man8/greylist_admin.8.gz",
                     "share/grey/grafana/grey.json"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, path)), path)

    def test_exec_start_names_the_installed_program_and_configuration(self):
        server = os.path.join(self.prefix, "sbin", "greylist_server")
        config = os.path.join(self.prefix, "etc", "grey", "grey.toml")
        lines = settings(os.path.join(self.unitdir, "grey.service"))
        self.assertIn(f"ExecStart={server} --config {config}", lines)
        lines = settings(os.path.join(self.unitdir, "grey-policy.service"))
        self.assertIn(f"ExecStart={server} --config {config} --policy inet:127.0.0.1:10023", lines)

    def test_units_keep_readiness_reload_user_and_sandbox(self):
        for unit in UNITS:
            lines = settings(os.path.join(self.unitdir, unit))
            for setting in REQUIRED:
                self.assertIn(setting, lines, f"{unit}: {setting}")

    def test_only_the_proxy_may_bind_a_low_port(self):
        proxy = settings(os.path.join(self.unitdir, "grey.service"))
        self.assertIn("AmbientCapabilities=CAP_NET_BIND_SERVICE", proxy)
        self.assertIn("CapabilityBoundingSet=CAP_NET_BIND_SERVICE", proxy)
        policy = settings(os.path.join(self.unitdir, "grey-policy.service"))
        self.assertFalse([l for l in policy if l.startswith("AmbientCapabilities=")], "port 10023 needs no capability")
        self.assertIn("CapabilityBoundingSet=", policy)

    def test_the_policy_service_and_postgreys_are_alternatives(self):
        self.assertIn("Conflicts=postgrey.service", settings(os.path.join(self.unitdir, "grey-policy.service")))

    def test_systemd_analyze_verify_finds_nothing(self):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            *[os.path.join(self.unitdir, u) for u in UNITS]],
                           capture_output=True, text=True, timeout=120)
        print(f"systemd-analyze verify: exit {r.returncode}\n{r.stdout}{r.stderr}")
        self.assertEqual(r.returncode, 0, r.stderr)
        # Only complaints about units outside ours (the container's own) are tolerated.
        ours = [l for l in r.stderr.splitlines() if "grey" in l]
        self.assertEqual(ours, [], r.stderr)

    def test_exposure_rated_by_systemd_analyze_security_is_low(self):
        for unit in UNITS:
            r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                                os.path.join(self.unitdir, unit)], capture_output=True, text=True, timeout=120)
            m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\S+)", r.stdout)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            print(f"{unit}: exposure {m.group(1)} {m.group(2)}")
            self.assertLessEqual(float(m.group(1)), 3.0, r.stdout)


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
