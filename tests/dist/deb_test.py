"""The Debian package end to end, from a build tree that is already built (ctest's own, so
nothing is compiled again): cpack makes grey and libgrey-dev, lintian finds no error in either,
dpkg -i installs them (postinst makes the grey user and /var/lib/grey; the Grafana dashboard is
in /usr/share/grey/grafana), the installed greylist_server runs from the installed files with
the installed /etc/grey/grey.toml — flags move it to loopback ports and a Postfix smtp-sink
upstream — greylists a message, relays the retry, and greylist_admin reads the same store;
then dpkg -P removes every file, the state directory and the units, and nothing of the package
is left running.

Skipped (exit 77) unless root with dpkg, cpack, lintian and smtp-sink, in a sanitizer build
(the package is tested from the dev build), or when a grey package is already installed (it
would be replaced). Whatever happens, the packages it installed are purged and the processes
it started stopped."""
import glob
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import free_port, wait_for_port  # noqa: E402

BINARY_DIR = os.path.abspath(os.environ.get("GREY_BINARY_DIR", "build/dev"))
PACKAGES = ("grey", "libgrey-dev")
SERVER = "/usr/sbin/greylist_server"
ADMIN = "/usr/sbin/greylist_admin"
CONFIG = "/etc/grey/grey.toml"
INSTALLED = [SERVER, ADMIN, CONFIG, "/lib/systemd/system/grey.service", "/lib/systemd/system/grey-policy.service",
             "/usr/share/man/man8/greylist_server.8.gz", "/usr/share/man/man8/greylist_admin.8.gz",
             "/usr/share/doc/grey/copyright", "/usr/include/grey/grey.hpp", "/usr/lib/cmake/grey/greyConfig.cmake",
             "/usr/share/grey/grafana/grey.json"]
DASHBOARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "dist", "grafana", "grey.json")
SKIP = 77


def skip(why):
    print(f"SKIPPED: {why}")
    sys.exit(SKIP)


def run(*command, check=True, timeout=180):
    r = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(command)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def installed(package):
    r = run("dpkg-query", "-W", "-f=${Status}", package, check=False)
    return r.returncode == 0 and "install ok installed" in r.stdout


def running_installed_programs():
    """PIDs of processes whose program is one of the package's."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                exe = os.readlink(f"/proc/{entry}/exe")
            except OSError:
                continue
            if exe.removesuffix(" (deleted)") in (SERVER, ADMIN):
                pids.append(int(entry))
    return pids


def send(port):
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=10) as s:
        s.ehlo()
        assert s.mail("alice@example.org")[0] == 250
        code, text = s.rcpt("bob@example.com")
        if code == 250:
            code, text = s.data(b"Subject: packaged\r\n\r\nhello from the .deb\r\n")
        else:
            s.rset()
        return code if code == 250 else f"{code} {text.decode(errors='replace')}"


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}")


def build_packages(out):
    start = time.time()
    r = run("cpack", "-G", "DEB", "-B", out, "--config", os.path.join(BINARY_DIR, "CPackConfig.cmake"), timeout=300)
    debs = {}
    for path in glob.glob(os.path.join(out, "*.deb")):
        name = run("dpkg-deb", "-f", path, "Package").stdout.strip()
        debs[name] = path
    check(sorted(debs) == sorted(PACKAGES), f"cpack made {', '.join(sorted(debs))} in {time.time() - start:.0f}s")
    listing = run("dpkg-deb", "-c", debs["grey"]).stdout
    check(re.search(r" \./usr/share/grey/grafana/grey\.json$", listing, re.M),
          "the grey package carries the Grafana dashboard, /usr/share/grey/grafana/grey.json")
    for name, path in sorted(debs.items()):
        print(run("dpkg-deb", "-I", path).stdout)
    return debs, r


def lint(debs):
    """No lintian errors; the warnings and the rest are printed for the record."""
    r = run("lintian", "--allow-root", "--tag-display-limit", "0", "--display-info", "--pedantic", *debs.values(),
            check=False, timeout=300)
    tags = [l for l in r.stdout.splitlines() if re.match(r"^[EWIPXNO]: ", l)]
    print("lintian:\n" + ("\n".join(tags) if tags else "(nothing)"))
    errors = [l for l in tags if l.startswith("E: ")]
    check(not errors, "lintian: no errors")
    # Built with Debian's hardening flags (examples/CMakeLists.txt): relocations bound at start.
    # Fortified calls need an optimised build, which a Debug tree is not.
    check(not [l for l in tags if "hardening-no-bindnow" in l or "hardening-no-relro" in l],
          "lintian: the programs are linked with -z relro -z now")


def serve_and_send(smtp_sink_dir):
    """Starts the installed server as root with --user grey, as an init system without systemd
    would; returns nothing, raises on any failure; stops what it started."""
    upstream = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-d", os.path.join(smtp_sink_dir, "%H%M%S."),
                             f"127.0.0.1:{upstream}", "16"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        wait_for_port(upstream)
        server = subprocess.Popen([SERVER, "--config", CONFIG, "--listen", "127.0.0.1:0",
                                   "--upstream", f"127.0.0.1:{upstream}", "--delay", "1", "--user", "grey"],
                                  cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        port, lines, deadline = None, [], time.time() + 15
        while time.time() < deadline:
            line = server.stdout.readline()
            if not line:
                raise AssertionError("the installed greylist_server exited: " + "".join(lines))
            lines.append(line)
            m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
            port = int(m.group(1)) if m else port
            if line.startswith("running as user grey"):
                break
        check(port is not None, f"the installed greylist_server listens on 127.0.0.1:{port}, as user grey")
        grey = pwd.getpwnam("grey")
        with open(f"/proc/{server.pid}/status") as f:
            uids = re.search(r"^Uid:\s+(.*)$", f.read(), re.M).group(1).split()
        check(uids == [str(grey.pw_uid)] * 4, f"it runs with the grey user's uids {uids}")
        first = send(port)
        check(first.startswith("451 4.7.1"), f"the first attempt is greylisted ({first})")
        time.sleep(1.2)
        retry = send(port)
        check(retry == 250, f"the retry after --delay 1 is relayed ({retry})" + ("" if retry == 250 else "".join(lines)))
        deadline = time.time() + 5
        while not os.listdir(smtp_sink_dir) and time.time() < deadline:
            time.sleep(0.05)
        check(len(os.listdir(smtp_sink_dir)) == 1, "the upstream smtp-sink received the message")
        check(os.stat("/var/lib/grey/greylist.db").st_uid == grey.pw_uid,
              "the store is /var/lib/grey/greylist.db, the grey user's")
        listing = run(ADMIN, "--config", CONFIG, "list").stdout
        check("bob@example.com" in listing and "passed" in listing,
              "the installed greylist_admin reads the same store through /etc/grey/grey.toml")
        server.send_signal(signal.SIGTERM)
        check(server.wait(timeout=20) == 0, "SIGTERM stops it, exit 0")
    finally:
        for p in (server, sink):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if server and server.stdout:
            server.stdout.close()


def main():
    if os.environ.get("GREY_SANITIZED"):
        skip("a sanitizer build: the package is tested from the dev build")
    if os.geteuid() != 0:
        skip("needs root to install a package")
    for tool in ("dpkg", "cpack", "lintian", "smtp-sink", "systemd-analyze"):
        if not shutil.which(tool):
            skip(f"{tool} is missing: scripts/install-deps.sh installs it")
    for package in PACKAGES:
        if installed(package):
            skip(f"{package} is installed on this machine: not replacing it")
    if not os.path.exists(os.path.join(BINARY_DIR, "CPackConfig.cmake")):
        skip(f"no CPackConfig.cmake in {BINARY_DIR}")

    work = tempfile.mkdtemp(prefix="grey-deb-")
    os.chmod(work, 0o755)  # smtp-sink, as nobody, writes in a folder below
    user_existed = True
    try:
        pwd.getpwnam("grey")
    except KeyError:
        user_existed = False
    try:
        debs, _ = build_packages(os.path.join(work, "out"))
        lint(debs)
        run("dpkg", "-i", debs["grey"], debs["libgrey-dev"], timeout=300)
        check(all(installed(p) for p in PACKAGES), "dpkg -i installed grey and libgrey-dev")
        for path in INSTALLED:
            check(os.path.exists(path), f"installed: {path}")
        with open(DASHBOARD, "rb") as a, open("/usr/share/grey/grafana/grey.json", "rb") as b:
            check(a.read() == b.read(), "the installed dashboard is dist/grafana/grey.json")
        conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "grey").stdout
        check(CONFIG in conffiles, f"{CONFIG} is a conffile")
        grey = pwd.getpwnam("grey")
        check(os.stat("/var/lib/grey").st_uid == grey.pw_uid, "postinst made the grey user and /var/lib/grey")
        r = run("systemd-analyze", "verify", "--man=no", "/lib/systemd/system/grey.service",
                "/lib/systemd/system/grey-policy.service", check=False)
        check(r.returncode == 0, f"systemd-analyze verify of the installed units{(': ' + r.stderr) if r.stderr else ''}")
        sink_dir = os.path.join(work, "sink")
        os.mkdir(sink_dir)
        os.chmod(sink_dir, 0o1777)  # smtp-sink drops to nobody
        serve_and_send(sink_dir)

        run("dpkg", "-P", *PACKAGES, timeout=300)
        check(not any(installed(p) for p in PACKAGES), "dpkg -P removed both packages")
        for path in INSTALLED + ["/etc/grey", "/var/lib/grey", "/usr/include/grey", "/usr/lib/cmake/grey",
                                 "/usr/share/grey"]:
            check(not os.path.exists(path), f"gone: {path}")
        check(running_installed_programs() == [], "no installed program is left running")
    finally:
        for pid in running_installed_programs():
            os.kill(pid, signal.SIGKILL)
        left = [p for p in PACKAGES if installed(p) or run("dpkg-query", "-W", p, check=False).returncode == 0]
        if left:
            run("dpkg", "-P", *left, check=False, timeout=300)
        if not user_existed:
            run("deluser", "--system", "--quiet", "grey", check=False)
            run("delgroup", "--system", "--quiet", "grey", check=False)
        shutil.rmtree(work, ignore_errors=True)
    print("the package built, installed, served and purged cleanly")


if __name__ == "__main__":
    main()
