"""P4, strict: RFC 5321 syntax and order with the right reply codes; a client that breaks the
protocol is answered and, for framing violations and foreign protocols, disconnected; other
sessions go on unaffected."""
import smtplib
import unittest

from harness import Client, MaildirSink, Program


class Strict(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = MaildirSink()
        cls.proxy = Program("spam_me", "--upstream", f"127.0.0.1:{cls.sink.port}")

    @classmethod
    def tearDownClass(cls):
        cls.proxy.cleanup()
        cls.sink.cleanup()

    def client(self, ehlo=True):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        if ehlo:
            self.assertEqual(c.command("EHLO client.example")[0], 250)
        return c

    def test_the_greeting_and_ehlo_advertise_what_grey_honours(self):
        c = Client(self.proxy.port)
        self.addCleanup(c.close)
        self.assertRegex(c.greeting[2][0], r"^localhost ESMTP")
        code, _, lines = c.command("EHLO client.example")
        self.assertEqual(code, 250)
        self.assertEqual(lines[1:], ["PIPELINING", "SIZE 67108864", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING"])

    def test_helo_names_with_an_underscore_are_accepted_as_windows_hosts_send_them(self):
        for verb in ("EHLO", "HELO"):
            with self.subTest(verb):
                c = self.client(ehlo=False)
                self.assertEqual(c.command(f"{verb} mail_server.example")[0], 250)
                self.assertEqual(c.command("MAIL FROM:<a@example.org>")[0], 250)
        with smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="EXCH_01.corp.example", timeout=30) as s:
            s.sendmail("alice@example.org", ["bob@example.com"], b"Subject: underscore\r\n\r\nbody\r\n")

    def test_commands_out_of_order_get_503(self):
        c = self.client(ehlo=False)
        self.assertEqual(c.command("MAIL FROM:<a@example.org>")[:2], (503, "5.5.1"))
        c = self.client()
        self.assertEqual(c.command("RCPT TO:<b@example.com>")[:2], (503, "5.5.1"))
        c = self.client()
        c.command("MAIL FROM:<a@example.org>")
        self.assertEqual(c.command("DATA")[:2], (503, "5.5.1"))
        self.assertEqual(c.command("MAIL FROM:<a@example.org>")[:2], (503, "5.5.1"))

    def test_syntax_errors_get_the_right_codes(self):
        cases = [
            ("FOO bar", (500, "5.5.1")),
            ("STARTTLS", (502, "5.5.1")),
            ("MAIL FROM: <a@example.org>", (501, "5.1.7")),
            ("MAIL FROM:<a@example.org> FOO=bar", (555, "5.5.4")),
            ("MAIL FROM:<a@example.org> SIZE=x", (501, "5.5.4")),
            ("MAIL FROM:<a@@example.org>", (501, "5.1.7")),
            ("MAIL FROM:a@example.org", (501, "5.1.7")),
            ("EHLO bad_name!", (501, "5.5.4")),
            ("DATA now", (501, "5.5.4")),
        ]
        for line, expected in cases:
            with self.subTest(line):
                c = self.client()
                self.assertEqual(c.command(line)[:2], expected)

    def test_rcpt_parameters_are_refused_with_555(self):
        c = self.client()
        c.command("MAIL FROM:<a@example.org>")
        self.assertEqual(c.command("RCPT TO:<b@example.com> NOTIFY=NEVER")[:2], (555, "5.5.4"))

    def test_size_over_the_limit_is_refused_at_mail(self):
        c = self.client()
        self.assertEqual(c.command("MAIL FROM:<a@example.org> SIZE=67108865")[:2], (552, "5.3.4"))
        self.assertEqual(c.command("MAIL FROM:<a@example.org> SIZE=67108864")[0], 250)

    def test_repeated_errors_end_the_session(self):
        c = self.client()
        self.assertEqual(c.command("FOO")[0], 500)
        self.assertEqual(c.command("BAR")[0], 500)
        self.assertEqual(c.command("BAZ")[:2], (421, "4.7.0"))
        self.assertTrue(c.closed())

    def test_a_command_line_of_512_octets_is_taken_and_513_refused(self):
        c = self.client()
        line = "NOOP " + "x" * (512 - 2 - 5)
        self.assertEqual(len(line) + 2, 512)
        self.assertEqual(c.command(line)[0], 250)
        self.assertEqual(c.command(line + "x")[:2], (500, "5.5.2"))
        self.assertTrue(c.closed())

    def test_a_nul_byte_is_refused_and_the_session_closed(self):
        c = self.client()
        self.assertEqual(c.command(b"NOOP a\x00b\r\n")[:2], (500, "5.5.2"))
        self.assertTrue(c.closed())

    def test_an_http_request_is_refused_and_the_session_closed(self):
        c = self.client(ehlo=False)
        self.assertEqual(c.command(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[:2], (554, "5.7.0"))
        self.assertTrue(c.closed())

    def test_verbs_are_case_insensitive_and_vrfy_help_noop_rset_answer(self):
        c = self.client()
        self.assertEqual(c.command("noop")[0], 250)
        self.assertEqual(c.command("VRFY bob")[:2], (252, "2.1.5"))
        self.assertEqual(c.command("help")[0], 214)
        self.assertEqual(c.command("mail from:<a@example.org>")[0], 250)
        self.assertEqual(c.command("RSET")[0], 250)
        self.assertEqual(c.command("QUIT")[:2], (221, "2.0.0"))
        self.assertTrue(c.closed())

    def test_pipelined_commands_are_answered_in_order_in_one_batch(self):
        c = self.client()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
        self.assertEqual([c.reply()[0] for _ in range(4)], [250, 250, 250, 354])
        c.send(b"Subject: p\r\n\r\npipelined\r\n.\r\nQUIT\r\n")
        self.assertEqual([c.reply()[0] for _ in range(2)], [250, 221])

    def test_bad_sessions_leave_a_concurrent_good_session_unaffected(self):
        good = smtplib.SMTP("127.0.0.1", self.proxy.port, local_hostname="good.example")
        self.addCleanup(good.close)
        good.ehlo()
        good.mail("alice@example.org")
        for bad in [b"GET / HTTP/1.0\r\n\r\n", b"EHLO x\r\nNOOP " + b"x" * 600 + b"\r\n", b"EHLO a\x00\r\n",
                    b"EHLO x\nMAIL FROM:<a@b.example>\n"]:
            c = Client(self.proxy.port)
            c.send(bad)
            self.assertTrue(c.closed())
            c.close()
        self.assertEqual(good.rcpt("bob@example.com")[0], 250)
        self.assertEqual(good.data(b"Subject: good\r\n\r\nstill fine\r\n")[0], 250)


class TalkingFirst(unittest.TestCase):
    def test_a_client_that_talks_before_the_greeting_is_refused(self):
        proxy = Program("spam_me", "--upstream", "127.0.0.1:9", "--greet-pause-ms", "300")
        self.addCleanup(proxy.cleanup)
        c = Client(proxy.port, greeting=False)
        self.addCleanup(c.close)
        c.send(b"EHLO too.early.example\r\n")
        self.assertEqual(c.reply()[:2], (554, "5.5.1"))
        self.assertTrue(c.closed())
        patient = Client(proxy.port)  # waits for the greeting: welcome
        self.addCleanup(patient.close)
        self.assertEqual(patient.greeting[0], 220)


if __name__ == "__main__":
    unittest.main()
