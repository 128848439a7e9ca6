"""A real MTA's client through Grey: Postfix's smtp(8), from a private Postfix instance whose
relayhost is Grey and whose smtp_tls_security_level is encrypt, delivers over STARTTLS; Grey
relays to the Maildir sink. Postfix defers rather than send in plain text under encrypt, so
a delivery is TLS, and its log says so."""
import shutil
import tempfile
import time
import unittest

from harness import MaildirSink, PrivatePostfix, Program, make_certificate


class PostfixThroughGrey(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="grey-postfix-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.cert, self.key = make_certificate(self.dir)
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}",
                             "--tls-cert", self.cert, "--tls-key", self.key, "--tls-required")
        self.addCleanup(self.proxy.cleanup)
        self.postfix = PrivatePostfix(self.dir, main_cf=f"""\
myhostname = client.example
relayhost = [127.0.0.1]:{self.proxy.port}
smtp_tls_security_level = encrypt
smtp_tls_loglevel = 1
""")
        self.addCleanup(self.postfix.stop)

    def test_postfix_delivers_through_grey_over_starttls(self):
        sent = self.postfix.sendmail("alice@client.example", "bob@example.com",
                                     b"Subject: from postfix\n\nhello over TLS\n")
        self.assertEqual(sent.returncode, 0, sent.stderr)
        deadline = time.time() + 60
        while not self.sink.messages() and time.time() < deadline:
            time.sleep(0.2)
        [stored] = self.sink.messages()
        self.assertIn(b"Subject: from postfix\r\n", stored)
        self.assertIn(b"hello over TLS\r\n", stored)
        established = r"TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: TLSv1\.[23]"
        sent = r"status=sent \(250 2\.0\.0 Stored as"
        log = self.postfix.log_once_written(established, sent)
        self.assertRegex(log, established)
        self.assertRegex(log, sent)


if __name__ == "__main__":
    unittest.main()
