"""What a hook sees of TLS (MailHandler::tls()), through examples/custom_policy: mail for a
--tls-domain only over TLS, and with --tls-client-ca only from a client whose certificate that
CA verifies. Clients are Python's smtplib with and without a certificate; the CA, the server's
and the clients' certificates are made now with the openssl CLI."""
import os
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import unittest

from harness import PROGRAMS, MaildirSink, Program, make_certificate


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory, name):
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", "-keyout", key, "-out", cert)
    return cert, key


def make_client_certificate(directory, name, ca):
    """A client certificate for `name` issued by `ca` (certificate, key)."""
    cert, key, request = (os.path.join(directory, f"{name}.{x}") for x in ("crt", "key", "csr"))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={name}", "-keyout", key, "-out", request)
    extensions = os.path.join(directory, f"{name}.ext")
    with open(extensions, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial", "-days", "2",
            "-extfile", extensions, "-out", cert)
    return cert, key


class ClientCertificates(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="grey-client-certs-")
        cls.server_cert = make_certificate(cls.dir, "localhost")
        cls.ca = make_ca(cls.dir, "Grey Test Client CA")
        cls.trusted = make_client_certificate(cls.dir, "trusted.client.example", cls.ca)
        cls.stranger = make_client_certificate(cls.dir, "stranger.client.example", make_ca(cls.dir, "Another CA"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def start(self, *options):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)
        self.proxy = Program("custom_policy", "--upstream", f"127.0.0.1:{self.sink.port}",
                             "--tls-cert", self.server_cert[0], "--tls-key", self.server_cert[1],
                             "--tls-domain", "secure.example", *options)
        self.addCleanup(self.proxy.cleanup)

    def send(self, recipient, certificate=None, tls=True):
        """The RCPT reply, and the DATA reply when RCPT was taken."""
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        if certificate:
            context.load_cert_chain(*certificate)
        with smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="client.example", timeout=30) as s:
            s.ehlo()
            if tls:
                s.starttls(context=context)
                s.ehlo()
            s.mail("alice@example.org")
            rcpt = s.rcpt(recipient)
            if rcpt[0] != 250:
                return rcpt, None
            return rcpt, s.data(b"Subject: for " + recipient.encode() + b"\r\n\r\nbody\r\n")

    def output(self):
        self.proxy.stop()
        return "".join(self.proxy.output)

    def test_mail_for_a_tls_domain_needs_tls_and_other_mail_does_not(self):
        self.start()
        rcpt, _ = self.send("bob@secure.example", tls=False)
        self.assertEqual(rcpt, (550, b"5.7.10 Mail for this domain must come over TLS"))
        self.assertEqual(self.send("bob@plain.example", tls=False)[1][0], 250)
        self.assertEqual(self.send("bob@secure.example")[1][0], 250)
        self.assertEqual(len(self.sink.messages()), 2)
        self.assertRegex(self.output(), r"bob@secure\.example over TLSv1\.3 TLS_\w+ from a client without a certificate")

    def test_without_a_client_ca_a_certificate_is_asked_for_and_its_subject_seen(self):
        self.start("--tls-ask-client-cert")
        self.assertEqual(self.send("bob@secure.example", certificate=self.stranger)[1][0], 250,
                         "asked, not required: nothing is verified without a CA")
        self.assertEqual(self.send("carol@secure.example")[1][0], 250, "a client without one still gets in")
        output = self.output()
        self.assertIn("bob@secure.example over TLSv1.3", output)
        self.assertRegex(output, r"bob@secure\.example over \S+ \S+ from /CN=stranger\.client\.example\n")
        self.assertIn("carol@secure.example over TLSv1.3", output)

    def test_with_a_client_ca_only_a_certificate_it_verifies_is_taken(self):
        self.start("--tls-client-ca", self.ca[0])
        self.assertEqual(self.send("bob@secure.example", certificate=self.trusted)[1][0], 250)
        self.assertEqual(self.send("carol@secure.example", certificate=self.stranger)[0],
                         (550, b"5.7.1 Mail for this domain needs a verified client certificate"))
        self.assertEqual(self.send("dave@secure.example")[0][:1], (550,), "none at all")
        self.assertEqual(self.send("erin@plain.example", certificate=self.stranger)[1][0], 250,
                         "the handshake never fails on a certificate: only the hook decides")
        self.assertEqual(len(self.sink.messages()), 2)
        self.assertRegex(self.output(), r"bob@secure\.example over \S+ \S+ from /CN=trusted\.client\.example\n")

    def test_client_certificate_options_need_a_server_certificate(self):
        for option in (["--tls-ask-client-cert"], ["--tls-client-ca", self.ca[0]]):
            run = subprocess.run([PROGRAMS["custom_policy"], "--listen", "127.0.0.1:0", *option],
                                 capture_output=True, text=True, timeout=30)
            self.assertNotEqual(run.returncode, 0)
            self.assertIn("client certificates need --tls-cert and --tls-key", run.stderr + run.stdout)


if __name__ == "__main__":
    unittest.main()
