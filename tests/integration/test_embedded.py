"""examples/embedded: a program with its own Asio loop and control socket hosts an SMTP front
(relaying to a real sink) and a tarpit, a Protocol that is not a MailHandler, on one
io_context. Both serve side by side, and the program stops them without killing anything."""
import re
import smtplib
import socket
import time
import unittest

from harness import Client, MaildirSink, Program


def read_to_end(sock):
    got = b""
    while True:
        chunk = sock.recv(100)
        if not chunk:
            return got
        got += chunk


class Embedded(unittest.TestCase):
    DRIP_MS = 40
    REFUSAL = b"554 5.7.1 Service unavailable\r\n"

    def setUp(self):
        self.sink = MaildirSink()
        self.addCleanup(self.sink.cleanup)
        self.program = Program("embedded", "--upstream", f"127.0.0.1:{self.sink.port}", "--tarpit", "127.0.0.1:0",
                               "--control", "127.0.0.1:0", "--drip", str(self.DRIP_MS))
        self.addCleanup(self.program.cleanup)
        # The lines after "listening on": where the tarpit and the control socket are.
        for _ in range(2):
            self.program.output.append(self.program.proc.stdout.readline())
        text = "".join(self.program.output)
        self.tarpit_port = int(re.search(r"tarpit on 127\.0\.0\.1:(\d+)", text).group(1))
        self.control_port = int(re.search(r"control on 127\.0\.0\.1:(\d+)", text).group(1))

    def control(self, command, lines=1):
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=30) as s:
            s.sendall(command.encode() + b"\n")
            got = b""
            while got.count(b"\n") < lines:
                chunk = s.recv(1000)
                if not chunk:
                    break
                got += chunk
            return got.decode()

    def send_one(self, subject):
        with smtplib.SMTP("127.0.0.1", self.program.port, timeout=30) as smtp:
            smtp.sendmail("alice@example.org", ["bob@example.com"],
                          f"Subject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n\r\nhello\r\n")

    def tarpit_connection(self):
        s = socket.create_connection(("127.0.0.1", self.tarpit_port), timeout=30)
        self.addCleanup(s.close)
        return s

    def test_the_front_relays_while_the_tarpit_holds_its_clients(self):
        held = [self.tarpit_connection() for _ in range(10)]
        self.send_one("beside-the-tarpit")
        messages = self.sink.messages()
        self.assertEqual(len(messages), 1)
        self.assertIn(b"Message-ID: <beside-the-tarpit@example.org>", messages[0])
        # Every held client still gets the whole refusal, one octet per drip, then the close.
        started = time.monotonic()
        for s in held:
            self.assertEqual(read_to_end(s), self.REFUSAL)
        self.assertGreaterEqual(time.monotonic() - started + 0.5,
                                len(self.REFUSAL) * self.DRIP_MS / 1000 * 0.5, "the refusal came too fast")

    def test_the_tarpit_answers_an_octet_at_a_time(self):
        s = self.tarpit_connection()
        first = s.recv(100)
        self.assertEqual(first, self.REFUSAL[:1], "one octet, not the line")

    def test_the_control_socket_reports_both_servers(self):
        status = self.control("status")
        self.assertEqual(status, f"smtp 127.0.0.1:{self.program.port} tarpit 127.0.0.1:{self.tarpit_port}\n")
        self.assertIn("unknown command", self.control("reboot"))

    def test_stop_drains_both_servers_and_the_program_ends(self):
        idle = Client(self.program.port)
        held = self.tarpit_connection()
        self.assertEqual(self.control("stop", lines=2), "stopping\nstopped\n")
        # The idle SMTP session got its 421; the tarpit's client was let go before its end.
        self.assertEqual(idle.reply()[0], 421)
        got = read_to_end(held)
        self.assertTrue(self.REFUSAL.startswith(got) and got != self.REFUSAL, got)
        self.assertEqual(self.program.proc.wait(timeout=30), 0)
        self.assertIn("stopped\n", self.program.proc.stdout.read())

    def test_sigterm_is_the_programs_own_and_stops_the_same_way(self):
        self.send_one("before-the-signal")
        self.assertEqual(self.program.stop(), 0)
        self.assertEqual(len(self.sink.messages()), 1)


if __name__ == "__main__":
    unittest.main()
