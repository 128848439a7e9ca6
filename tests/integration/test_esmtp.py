"""The rest of ESMTP through Grey: SMTPUTF8 (RFC 6531) and DSN (RFC 3461) offered only when the
upstream has them and relayed with their parameters unchanged; CHUNKING (RFC 3030) taken from
any client and relayed as BDAT to an upstream that has it, as correctly dot-stuffed DATA to
one that has not; BINARYMIME only with an upstream that has it; an extension the upstream has lost since
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
        self.assertEqual(facts["mail_options"], ["SMTPUTF8"], "relayed with the parameter")
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

    def test_chunks_that_add_up_to_more_than_the_limit_fail_the_message_not_the_session(self):
        self.proxy.cleanup()
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.sink.port}", "--max-message-size", "10000")
        self.addCleanup(self.proxy.cleanup)
        c = self.client()
        line = b"y" * 98 + b"\r\n"
        self.assertEqual(self.bdat(c, line * 60)[0], 250, "6,000 octets: under the limit")
        self.assertEqual(self.bdat(c, line * 60)[:2], (552, "5.3.4"), "12,000 in all: over it")
        self.assertEqual(self.bdat(c, line, last=True)[:2], (552, "5.3.4"), "the message stays failed to its end")
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250, "the session goes on")
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
        self.assertEqual(self.bdat(c, b"Subject: small\r\n\r\nfits\r\n", last=True)[0], 250)
        self.assertEqual(self.sink.messages(), [b"Subject: small\r\n\r\nfits\r\n"], "only the message that fits")


CHUNKING_UPSTREAM = ["PIPELINING", "8BITMIME", "CHUNKING"]


class ChunkingRelayed(unittest.TestCase):
    """To an upstream that offers CHUNKING, a BDAT message goes on as BDAT, byte for byte."""

    def start(self, extensions=CHUNKING_UPSTREAM, chunk_reply=None):
        self.up = ScriptedUpstream(extensions=lambda n, tls: extensions, chunk_reply=chunk_reply)
        self.addCleanup(self.up.close)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.up.port}", "--upstream-pool", "0")
        self.addCleanup(self.proxy.cleanup)

    def client(self, mail="MAIL FROM:<alice@example.org>"):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        ehlo_keywords(c)
        self.assertEqual(c.command(mail)[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
        return c

    def bdat(self, c, chunk, last=False):
        return c.command(f"BDAT {len(chunk)}{' LAST' if last else ''}\r\n".encode() + chunk)

    def upstream_verbs(self):
        return [command.split(" ")[0] for command, _ in self.up.commands]

    def test_chunks_go_on_as_bdat_unchanged(self):
        self.start()
        c = self.client()
        first = b"Subject: chunks\r\n\r\n.\r\n..two dots\r\nhalf a "
        self.assertEqual(self.bdat(c, first)[0], 250)
        self.assertEqual(self.bdat(c, b"line\r\nno end", last=True)[:2], (250, "2.0.0"))
        c.command("QUIT")
        self.assertEqual(self.up.messages, [(first + b"line\r\nno end", False)],
                         "no dot-stuffing and no CRLF added: BDAT carries the octets as they are")
        self.assertIn("BDAT", self.upstream_verbs())
        self.assertNotIn("DATA", self.upstream_verbs())

    def test_a_large_message_goes_on_in_several_chunks_each_answered(self):
        self.start()
        c = self.client()
        line = b"x" * 78 + b"\r\n"
        body = line * (3 * 1024 * 1024 // len(line))
        self.assertEqual(self.bdat(c, body[:1000000])[0], 250)
        self.assertEqual(self.bdat(c, body[1000000:], last=True)[0], 250)
        c.command("QUIT")
        self.assertEqual(self.up.messages, [(body, False)])
        chunks = [command for command, _ in self.up.commands if command.startswith("BDAT")]
        self.assertGreater(len(chunks), 2, "the relay cuts its own chunks, the memory it holds bounded")
        self.assertTrue(chunks[-1].endswith(" LAST"))
        self.assertEqual(sum(int(command.split()[1]) for command in chunks), len(body))

    def test_a_bare_lf_is_refused_and_the_upstream_never_gets_last(self):
        self.start()
        c = self.client()
        self.assertEqual(self.bdat(c, b"Subject: ok\r\n\r\n" + (b"y" * 78 + b"\r\n") * 300)[0], 250)
        self.assertEqual(self.bdat(c, b"x\n.\nMAIL FROM:<evil@example.org>\r\n", last=True)[:2], (500, "5.5.2"))
        self.assertEqual(c.command("NOOP")[0], 250)
        c.command("QUIT")
        self.assertEqual(self.up.messages, [])
        self.assertFalse(any(command.endswith("LAST") for command, _ in self.up.commands))

    def test_a_chunk_the_upstream_refuses_fails_the_message_with_its_reply(self):
        replies = [b"552 5.3.4 Too much\r\n"]  # for the first chunk; then 250s
        self.start(chunk_reply=lambda n: replies.pop() if replies else b"250 2.0.0 OK\r\n")
        c = self.client()
        self.assertEqual(self.bdat(c, (b"z" * 78 + b"\r\n") * 500)[0], 250, "the chunk was received")
        self.assertEqual(self.bdat(c, b"tail\r\n", last=True)[:2], (552, "5.3.4"))
        # The session goes on, and so does the upstream connection, after an RSET.
        self.assertEqual(c.command("MAIL FROM:<alice@example.org>")[0], 250)
        self.assertEqual(c.command("RCPT TO:<carol@example.com>")[0], 250)
        self.assertEqual(self.bdat(c, b"Subject: again\r\n", last=True)[0], 250)
        c.command("QUIT")
        self.assertEqual(self.up.messages, [(b"Subject: again\r\n", False)])
        self.assertIn("RSET", self.upstream_verbs())

    def test_data_still_goes_on_as_data(self):
        self.start()
        c = self.client()
        self.assertEqual(c.command("DATA")[0], 354)
        self.assertEqual(c.command(b"Subject: d\r\n\r\n..dot\r\n.\r\n")[0], 250)
        c.command("QUIT")
        self.assertEqual(self.up.messages, [(b"Subject: d\r\n\r\n..dot\r\n", False)])

    def test_without_chunking_upstream_bdat_becomes_dot_stuffed_data(self):
        self.start(extensions=["PIPELINING", "8BITMIME"])
        c = self.client()
        self.assertEqual(self.bdat(c, b".lead\r\nend", last=True)[0], 250)
        c.command("QUIT")
        self.assertEqual(self.up.messages, [(b"..lead\r\nend\r\n", False)])
        self.assertNotIn("BDAT", self.upstream_verbs())


class BinaryMime(unittest.TestCase):
    """BINARYMIME (RFC 3030 §3): offered only when the upstream has it and CHUNKING; its body,
    any octets, goes on in BDAT chunks alone."""

    def start(self, extensions):
        self.up = ScriptedUpstream(extensions=lambda n, tls: extensions)
        self.addCleanup(self.up.close)
        self.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{self.up.port}", "--upstream-pool", "0")
        self.addCleanup(self.proxy.cleanup)

    def test_a_binary_body_reaches_the_upstream_byte_for_byte(self):
        self.start(CHUNKING_UPSTREAM + ["BINARYMIME"])
        self.assertTrue(wait_for_probe(self.proxy.port, "BINARYMIME"))
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        self.assertIn("BINARYMIME", ehlo_keywords(c))
        self.assertEqual(c.command("MAIL FROM:<alice@example.org> BODY=BINARYMIME")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
        body = b"Content-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)) * 300 + b"\n.\n\r"
        self.assertEqual(c.command(f"BDAT {len(body)} LAST\r\n".encode() + body)[0], 250)
        c.command("QUIT")
        self.assertEqual(self.up.messages, [(body, False)])
        self.assertIn(("MAIL FROM:<alice@example.org> BODY=BINARYMIME", False), self.up.commands)

    def test_data_after_body_binarymime_is_refused(self):
        self.start(CHUNKING_UPSTREAM + ["BINARYMIME"])
        self.assertTrue(wait_for_probe(self.proxy.port, "BINARYMIME"))
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        ehlo_keywords(c)
        self.assertEqual(c.command("MAIL FROM:<alice@example.org> BODY=BINARYMIME")[0], 250)
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
        self.assertEqual(c.command("DATA")[:2], (503, "5.5.1"))
        self.assertEqual(self.up.messages, [])

    def test_not_offered_nor_accepted_when_the_upstream_lacks_it(self):
        # DSN, relayed too, shows when the start-up probe has been answered.
        for extensions in (CHUNKING_UPSTREAM + ["DSN"], ["PIPELINING", "BINARYMIME", "DSN"]):
            with self.subTest(upstream=extensions):
                self.start(extensions)
                self.assertTrue(wait_for_probe(self.proxy.port, "DSN"))
                c = Client(self.proxy.port)
                self.assertNotIn("BINARYMIME", ehlo_keywords(c))
                self.assertEqual(c.command("MAIL FROM:<alice@example.org> BODY=BINARYMIME")[:2], (555, "5.5.4"))
                c.close()


if __name__ == "__main__":
    unittest.main()
