"""A real MTA's client through Grey: Postfix's smtp(8), from a private Postfix instance whose
relayhost is Grey and whose smtp_tls_security_level is encrypt, delivers over STARTTLS; Grey
relays to the Maildir sink. Postfix defers rather than send in plain text under encrypt, so
a delivery is TLS, and its log says so."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import MaildirSink, Program, free_port, make_certificate

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
myhostname = client.example
mydestination =
relayhost = [127.0.0.1]:{port}
smtp_tls_security_level = encrypt
smtp_tls_loglevel = 1
maillog_file = {log}
"""


def master_cf():
    """Debian's master.cf without the port-25 listener, and with no service chrooted."""
    out, skipping = [], False
    with open("/etc/postfix/master.cf") as f:
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


class PostfixThroughGrey(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-postfix-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.chmod(self.dir, 0o755)  # Postfix's daemons run as the postfix user
        self.cert, self.key = make_certificate(self.dir)
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}",
                             "--tls-cert", self.cert, "--tls-key", self.key, "--tls-required")
        self.addCleanup(self.proxy.cleanup)
        # postfix start exits 1 without a word when the log file is outside /var.
        self.log = f"/var/log/grey-test-postfix-{os.getpid()}-{free_port()}.log"
        self.conf = os.path.join(self.dir, "postfix")
        os.makedirs(os.path.join(self.conf, "queue"))
        os.makedirs(os.path.join(self.conf, "data"))
        shutil.chown(os.path.join(self.conf, "data"), user="postfix")
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(d=self.conf, port=self.proxy.port, log=self.log))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(master_cf())
        self.addCleanup(self.stop_postfix)
        subprocess.run(["postfix", "-c", self.conf, "check"], check=True, capture_output=True, timeout=60)
        started = subprocess.run(["postfix", "-c", self.conf, "start"], capture_output=True, text=True, timeout=60)
        self.assertEqual(started.returncode, 0, started.stdout + started.stderr + self.postfix_log())

    def stop_postfix(self):
        subprocess.run(["postfix", "-c", self.conf, "stop"], capture_output=True, timeout=60)
        if os.path.exists(self.log):
            os.unlink(self.log)

    def postfix_log(self):
        if not os.path.exists(self.log):
            return ""
        with open(self.log, errors="replace") as f:
            return f.read()

    def test_postfix_delivers_through_grey_over_starttls(self):
        message = b"Subject: from postfix\n\nhello over TLS\n"
        sent = subprocess.run(["sendmail", "-C", self.conf, "-f", "alice@client.example", "bob@example.com"],
                              input=message, capture_output=True, timeout=30)
        self.assertEqual(sent.returncode, 0, sent.stderr)
        deadline = time.time() + 60
        while not self.sink.messages() and time.time() < deadline:
            time.sleep(0.2)
        [stored] = self.sink.messages()
        self.assertIn(b"Subject: from postfix\r\n", stored)
        self.assertIn(b"hello over TLS\r\n", stored)
        log = self.postfix_log()
        self.assertRegex(log, r"TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: TLSv1\.[23]")
        self.assertRegex(log, r"status=sent \(250 2\.0\.0 Stored as")


if __name__ == "__main__":
    unittest.main()
