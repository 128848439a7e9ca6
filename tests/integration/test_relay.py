"""Relaying through spam_me to real servers: the message arrives byte for byte, with its
envelope, once; a session carries several transactions."""
import smtplib
import subprocess
import time
import unittest

from harness import Client, MaildirSink, Program, SmtpSink


class Relay(unittest.TestCase):
    def setUp(self):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}")
        self.addCleanup(self.proxy.cleanup)

    def test_the_message_arrives_byte_for_byte(self):
        body = (b"Subject: exact\r\n\r\n"
                b".starts with a dot\r\n"
                b"..starts with two\r\n"
                b".\tdot and tab\r\n"
                b"\r\n"
                b"8-bit: \xc3\xa9t\xc3\xa9\r\n"
                + b"x" * 998 + b"\r\n"
                b"last line\r\n")
        with smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="client.example") as s:
            s.sendmail("alice@example.org", ["bob@example.com"], body)  # smtplib dot-stuffs
        self.assertEqual(self.sink.messages(), [body])

    def test_a_needless_transparency_dot_is_removed_not_relayed(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.open_data()
        c.send(b"Subject: t\r\n\r\n.x needed no dot\r\n..y needed one\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(self.sink.messages(), [b"Subject: t\r\n\r\nx needed no dot\r\n.y needed one\r\n"])

    def test_several_transactions_in_one_session_each_arrive_once(self):
        with smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="client.example") as s:
            s.sendmail("alice@example.org", ["bob@example.com"], b"Subject: one\r\n\r\n1\r\n")
            s.mail("alice@example.org")
            s.rcpt("carol@example.com")
            s.rset()  # abandoned upstream too
            s.sendmail("alice@example.org", ["dave@example.com"], b"Subject: two\r\n\r\n2\r\n")
            s.sendmail("<>", ["erin@example.com"], b"Subject: three\r\n\r\n3\r\n")
        self.assertEqual(sorted(self.sink.messages()), [b"Subject: one\r\n\r\n1\r\n", b"Subject: three\r\n\r\n3\r\n",
                                                        b"Subject: two\r\n\r\n2\r\n"])

    def test_pooled_upstream_connections_deliver_every_message(self):
        pooled = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", "--upstream-pool", "2")
        self.addCleanup(pooled.cleanup)
        for i in range(5):
            with smtplib.SMTP("127.0.0.1", pooled.port, local_hostname="client.example") as s:
                s.sendmail("alice@example.org", ["bob@example.com"], f"Subject: {i}\r\n\r\n{i}\r\n".encode())
        self.assertEqual(sorted(self.sink.messages()), sorted(f"Subject: {i}\r\n\r\n{i}\r\n".encode() for i in range(5)))


class Envelope(unittest.TestCase):
    def test_smtp_sink_receives_the_envelope_grey_composed(self):
        sink = SmtpSink()
        self.addCleanup(sink.cleanup)
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}")
        self.addCleanup(proxy.cleanup)
        with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example") as s:
            # smtplib adds size=N itself; smtp-sink does not offer SIZE, so Grey does not relay it.
            s.sendmail("alice@example.org", ["bob@example.com", "<Postmaster>"], b"Subject: e\r\n\r\nbody\r\n",
                       mail_options=["BODY=8BITMIME"])
        [(envelope, body)] = sink.messages()
        # Pooled by default: the connection carries many clients' mail and greets as Grey.
        self.assertIn(b"X-Helo-Args: localhost", envelope)
        self.assertIn(b"X-Mail-Args: <alice@example.org> BODY=8BITMIME", envelope)
        self.assertEqual([l for l in envelope if l.startswith(b"X-Rcpt-Args")],
                         [b"X-Rcpt-Args: <bob@example.com>", b"X-Rcpt-Args: <Postmaster>"])
        self.assertIn(b"\nSubject: e\n\nbody\n", body)

    def test_without_the_pool_the_upstream_is_greeted_with_the_clients_helo_name(self):
        sink, proxy = self.relay_one(proxy_options=("--upstream-pool", "0"))
        with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example") as s:
            s.sendmail("alice@example.org", ["bob@example.com"], b"Subject: e\r\n\r\nbody\r\n")
        [(envelope, body)] = sink.messages()
        self.assertIn(b"X-Helo-Args: client.example", envelope)

    def test_idle_pooled_connections_are_closed_after_the_idle_timeout(self):
        sink, proxy = self.relay_one(proxy_options=("--upstream-idle-seconds", "1"))
        upstream = f":{sink.port}"

        def upstream_connections():
            out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = " + upstream + " )"],
                                 capture_output=True, text=True, check=True).stdout
            return len([l for l in out.splitlines() if l.strip()])

        with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example") as s:
            s.sendmail("alice@example.org", ["bob@example.com"], b"Subject: idle\r\n\r\nbody\r\n")
        time.sleep(0.2)
        self.assertEqual(upstream_connections(), 1, "kept for the next session")
        deadline = time.time() + 5
        while upstream_connections() and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(upstream_connections(), 0, "closed once idle past its timeout, with no session to notice")

    def relay_one(self, *sink_options, proxy_options=()):
        sink = SmtpSink(*sink_options)
        self.addCleanup(sink.cleanup)
        proxy = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}", *proxy_options)
        self.addCleanup(proxy.cleanup)
        return sink, proxy

    def test_an_upstream_without_pipelining_gets_one_command_at_a_time(self):
        sink, proxy = self.relay_one("-p")  # smtp-sink does not offer PIPELINING
        with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example") as s:
            s.sendmail("alice@example.org", ["bob@example.com", "carol@example.com"], b"Subject: p\r\n\r\nbody\r\n")
        [(envelope, body)] = sink.messages()
        self.assertEqual([l for l in envelope if l.startswith(b"X-Rcpt-Args")],
                         [b"X-Rcpt-Args: <bob@example.com>", b"X-Rcpt-Args: <carol@example.com>"])

    def test_a_refused_mail_reaches_the_client_at_its_first_rcpt_and_nothing_is_relayed(self):
        # MAIL and the first RCPT leave together; the upstream's refusal of MAIL is what the
        # client hears, not the 503 its RCPT then drew.
        sink, proxy = self.relay_one("-f", "MAIL")
        c = Client(proxy.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[:2], (500, "5.3.0"))
        self.assertEqual(c.command("DATA")[0], 503)  # no recipient was accepted
        self.assertEqual(sink.messages(), [])

    def test_a_pooled_connection_carries_the_next_sessions_transaction_after_rset(self):
        sink, proxy = self.relay_one(proxy_options=("--upstream-pool", "1"))
        for i in range(3):
            with smtplib.SMTP("127.0.0.1", proxy.port, local_hostname="client.example") as s:
                s.sendmail("alice@example.org", [f"r{i}@example.com"], f"Subject: {i}\r\n\r\n{i}\r\n".encode())
        recipients = sorted(line for envelope, _ in sink.messages() for line in envelope
                            if line.startswith(b"X-Rcpt-Args"))
        self.assertEqual(recipients, [f"X-Rcpt-Args: <r{i}@example.com>".encode() for i in range(3)])

    def test_a_small_message_cut_off_before_its_dot_never_reaches_the_upstream(self):
        sink, proxy = self.relay_one()
        c = Client(proxy.port)
        c.open_data()
        c.send(b"Subject: cut\r\n\r\nheld back, then the client vanishes\r\n")
        c.close()
        self.assertEqual(sink.messages(settle=0.5), [])


if __name__ == "__main__":
    unittest.main()
