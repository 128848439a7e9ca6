"""The rest of ESMTP through Grey: SMTPUTF8 (RFC 6531) and DSN (RFC 3461) offered only when the
upstream has them and relayed with their parameters unchanged; CHUNKING (RFC 3030) taken from
any client and relayed as correctly dot-stuffed DATA; an extension the upstream has lost since
Grey offered it gives the transaction a 4xx, never a silent downgrade."""
import smtplib
import time
import unittest

from harness import AiosmtpdUpstream, Client, MaildirSink, Program, ScriptedUpstream, SmtpSink


def ehlo_keywords(c):
    code, _, lines = c.command("EHLO client.example")
    assert code == 250
    return [l.split(" ")[0] for l in lines[1:]]


def wait_for_probe(proxy_port, keyword, present=True, timeout=5):
    """EHLO until the start-up probe's result shows (it runs as the server starts)."""
    deadline = time.time() + timeout
    while True:
        c = Client(proxy_port)
        found = keyword in ehlo_keywords(c)
        c.close()
        if found == present or time.time() > deadline:
            return found
        time.sleep(0.05)


class Smtputf8(unittest.TestCase):
    def test_offered_and_relayed_when_the_upstream_has_it(self):
        up = AiosmtpdUpstream()  # aiosmtpd with SMTPUTF8 enabled
        self.addCleanup(up.cleanup)
        p = Program("spam_me", "--upstream", f"127.0.0.1:{up.port}")
        self.addCleanup(p.cleanup)
        self.assertTrue(wait_for_probe(p.port, "SMTPUTF8"))
        c = Client(p.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<josé@exämple.org> SMTPUTF8".encode() + b"\r\n")[0], 250)
        self.assertEqual(c.command("RCPT TO:<用户@例子.测试>".encode() + b"\r\n")[0], 250)
        self.assertEqual(c.command("DATA")[0], 354)
        c.send("Subject: ünïcödé\r\n\r\nbody\r\n.\r\n".encode())
        self.assertEqual(c.reply()[0], 250)
        [(message, facts)] = up.messages()
        self.assertEqual(facts["mail_from"], "josé@exämple.org")
        self.assertEqual(facts["rcpt_tos"], ["用户@例子.测试"])
        self.assertIn("Subject: ünïcödé".encode(), message)

    def test_neither_offered_nor_accepted_when_the_upstream_lacks_it(self):
        sink = SmtpSink()  # Postfix's smtp-sink here offers no SMTPUTF8
        self.addCleanup(sink.cleanup)
        p = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}")
        self.addCleanup(p.cleanup)
        self.assertTrue(wait_for_probe(p.port, "DSN"), "the probe has run")
        c = Client(p.port)
        self.addCleanup(c.close)
        self.assertNotIn("SMTPUTF8", ehlo_keywords(c))
        self.assertEqual(c.command("MAIL FROM:<alice@example.org> SMTPUTF8")[:2], (555, "5.5.4"))
        self.assertEqual(c.command("MAIL FROM:<josé@example.org>".encode() + b"\r\n")[:2], (550, "5.6.7"))
        c = Client(p.port)  # three refusals close a session
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<josé@example.com>".encode() + b"\r\n")[:2], (553, "5.6.7"))


class Dsn(unittest.TestCase):
    def test_dsn_parameters_reach_the_upstream_unchanged(self):
        sink = SmtpSink()  # offers DSN
        self.addCleanup(sink.cleanup)
        p = Program("spam_me", "--upstream", f"127.0.0.1:{sink.port}")
        self.addCleanup(p.cleanup)
        self.assertTrue(wait_for_probe(p.port, "DSN"))
        with smtplib.SMTP("127.0.0.1", p.port, local_hostname="client.example", timeout=30) as s:
            s.ehlo()
            self.assertTrue(s.has_extn("dsn"))
            s.sendmail("alice@example.org", ["bob@example.com"], b"Subject: dsn\r\n\r\nbody\r\n",
                       mail_options=["RET=HDRS", "ENVID=QQ314159+2Bx"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob+2Bx@example.com"])
        [(envelope, body)] = sink.messages()
        self.assertIn(b"X-Mail-Args: <alice@example.org> RET=HDRS ENVID=QQ314159+2Bx", envelope)
        self.assertIn(b"X-Rcpt-Args: <bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@example.com",
                      envelope)

    def test_dsn_is_not_offered_and_its_parameters_refused_when_the_upstream_lacks_it(self):
        up = AiosmtpdUpstream()  # aiosmtpd has no DSN
        self.addCleanup(up.cleanup)
        p = Program("spam_me", "--upstream", f"127.0.0.1:{up.port}")
        self.addCleanup(p.cleanup)
        self.assertTrue(wait_for_probe(p.port, "SMTPUTF8"), "the probe has run")
        c = Client(p.port)
        self.addCleanup(c.close)
        self.assertNotIn("DSN", ehlo_keywords(c))
        self.assertEqual(c.command("MAIL FROM:<alice@example.org> RET=HDRS")[:2], (555, "5.5.4"))
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com> NOTIFY=NEVER")[:2], (555, "5.5.4"))

    def test_an_upstream_that_lost_dsn_since_it_was_offered_gets_the_transaction_refused_for_now(self):
        # The first connection (the probe) offers DSN, later ones do not.
        up = ScriptedUpstream(extensions=lambda n, tls: ["PIPELINING", "8BITMIME"] + (["DSN"] if n == 1 else []))
        self.addCleanup(up.close)
        p = Program("spam_me", "--upstream", f"127.0.0.1:{up.port}", "--upstream-pool", "0")
        self.addCleanup(p.cleanup)
        self.assertTrue(wait_for_probe(p.port, "DSN"))
        c = Client(p.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org> RET=FULL")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com> NOTIFY=FAILURE")[:2], (451, "4.3.0"))
        self.assertEqual(up.messages, [])
        self.assertNotIn("DSN", ehlo_keywords(c), "what the upstream offers now is offered now")


class Chunking(unittest.TestCase):
    def setUp(self):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}")
        self.addCleanup(self.proxy.cleanup)

    def client(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        self.assertIn("CHUNKING", ehlo_keywords(c))
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
        return c

    def bdat(self, c, chunk, last=False):
        return c.command(f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode() + chunk)

    def test_a_message_in_chunks_arrives_whole_with_its_dots_intact(self):
        c = self.client()
        self.assertEqual(self.bdat(c, b"Subject: chunks\r\n\r\nfirst line\r\n.\r\n..two dots\r\nhalf a ")[:2],
                         (250, "2.0.0"))
        self.assertEqual(self.bdat(c, b"line\r\n.leading dot\r\n", last=True)[0], 250)
        [message] = self.sink.messages()
        self.assertEqual(message, b"Subject: chunks\r\n\r\nfirst line\r\n.\r\n..two dots\r\nhalf a line\r\n"
                                  b".leading dot\r\n")

    def test_chunks_pipelined_in_one_write_are_each_answered(self):
        c = self.client()
        c.send(b"BDAT 12\r\nSubject: p\r\nBDAT 8 LAST\r\n\r\nbody\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(self.sink.messages(), [b"Subject: p\r\n\r\nbody\r\n"])

    def test_a_message_not_ending_in_crlf_gets_one(self):
        c = self.client()
        self.assertEqual(self.bdat(c, b"Subject: tail\r\n\r\nno end", last=True)[0], 250)
        self.assertEqual(self.sink.messages(), [b"Subject: tail\r\n\r\nno end\r\n"])

    def test_a_bare_lf_in_a_chunk_fails_the_message_and_nothing_is_delivered(self):
        c = self.client()
        self.assertEqual(self.bdat(c, b"Subject: smuggle\r\n\r\nx\n.\nMAIL FROM:<evil@example.org>\r\n")[:2],
                         (500, "5.5.2"))
        self.assertEqual(self.bdat(c, b"more\r\n", last=True)[:2], (500, "5.5.2"), "later chunks of it too")
        self.assertEqual(c.command("NOOP")[0], 250, "the session goes on: BDAT framing is by count")
        self.assertEqual(self.sink.messages(), [])

    def test_bdat_out_of_order_is_refused_and_its_octets_skipped(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        self.assertEqual(c.command(b"BDAT 12\r\nNOOP\r\nNOOP\r\n")[:2], (503, "5.5.1"))
        self.assertEqual(c.command("NOOP")[0], 250, "the octets were the chunk's, not commands")

    def test_data_inside_a_bdat_message_is_refused(self):
        c = self.client()
        self.assertEqual(self.bdat(c, b"Subject: x\r\n")[0], 250)
        self.assertEqual(c.command("DATA")[:2], (503, "5.5.1"))
        self.assertEqual(c.command("RSET")[0], 250)
        self.assertEqual(self.sink.messages(), [])

    def test_an_empty_message_ends_with_bdat_0_last(self):
        c = self.client()
        self.assertEqual(self.bdat(c, b"Subject: e\r\n\r\nbody\r\n")[0], 250)
        self.assertEqual(self.bdat(c, b"", last=True)[0], 250)
        self.assertEqual(self.sink.messages(), [b"Subject: e\r\n\r\nbody\r\n"])

    def test_a_chunk_larger_than_the_message_size_limit_is_refused_and_the_connection_closed(self):
        c = self.client()
        self.assertEqual(c.command(f"BDAT {1 << 40}")[:2], (552, "5.3.4"))
        self.assertTrue(c.closed())


if __name__ == "__main__":
    unittest.main()
