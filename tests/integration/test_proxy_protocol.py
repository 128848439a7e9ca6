"""The PROXY protocol on a listener (HAProxy's proxy-protocol.txt): HAProxy itself in front of
Grey with send-proxy (v1) and send-proxy-v2; headers written by hand; the address a header
carries becomes the session's client for the upstream's XCLIENT, the greylist and its log
line, and the per-address limit. A header from an untrusted source, a missing one or a
malformed one: the connection is closed without a session, and other sessions go on."""
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import Client, Program, ScriptedUpstream, free_port, wait_for_port

XCLIENT = "XCLIENT NAME ADDR PORT PROTO HELO"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(source, source_port, destination="127.0.0.1", destination_port=25, command=0x21, tlvs=b""):
    addresses = socket.inet_aton(source) + socket.inet_aton(destination) + struct.pack("!HH", source_port,
                                                                                         destination_port)
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([command, 0x11]) + struct.pack("!H", len(body)) + body


class HAProxy:
    """HAProxy in TCP mode on a port of its own, sending the PROXY header to `grey_port`."""

    def __init__(self, grey_port, send_proxy):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="grey-haproxy-")
        config = os.path.join(self.dir, "haproxy.cfg")
        with open(config, "w") as f:
            f.write(f"""defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
listen smtp
    bind 127.0.0.1:{self.port}
    server grey 127.0.0.1:{grey_port} {send_proxy}
""")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", config], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port, 10)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class ProxyProtocol(unittest.TestCase):
    def start(self, *flags, trusted="127.0.0.1/32"):
        self.up = ScriptedUpstream(extensions=lambda n, tls: ["PIPELINING", XCLIENT])
        self.addCleanup(self.up.close)
        self.proxy_port = free_port()
        self.grey = Program("spam_me", "--upstream", f"127.0.0.1:{self.up.port}", "--upstream-pool", "0",
                            "--proxy-listen", f"127.0.0.1:{self.proxy_port}", "--proxy-from", trusted, *flags)
        self.addCleanup(self.grey.cleanup)
        wait_for_port(self.proxy_port, 5)

    def relay_one(self, port, source="127.0.0.1", header=b""):
        """A transaction through `port` from `source`, after `header`: the ADDR the upstream's
        XCLIENT was given, or None when the connection was closed unanswered."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        sock.sendall(header)
        c = Client.__new__(Client)
        c.sock, c.buf = sock, b""
        try:
            c.greeting = c.reply()
            if c.greeting is None:
                return None
            c.command("EHLO client.example")
            c.command("MAIL FROM:<alice@example.org>")
            self.assertEqual(c.command("RCPT TO:<bob@example.com>")[0], 250)
            c.command("QUIT")
        finally:
            sock.close()
        xclients = [c for _, c in self.up.all_commands if c.startswith("XCLIENT")]
        return re.search(r"ADDR=(\S+)", xclients[-1]).group(1)

    def test_haproxy_send_proxy_v1_and_v2_carry_the_real_client(self):
        self.start()
        for send_proxy in ("send-proxy", "send-proxy-v2"):
            with self.subTest(send_proxy):
                haproxy = HAProxy(self.proxy_port, send_proxy)
                try:
                    self.assertEqual(self.relay_one(haproxy.port, source="127.0.0.2"), "127.0.0.2")
                    self.assertEqual(self.relay_one(haproxy.port, source="127.0.0.3"), "127.0.0.3")
                finally:
                    haproxy.stop()

    def test_headers_by_hand(self):
        self.start()
        self.assertEqual(self.relay_one(self.proxy_port, header=b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\n"),
                         "192.0.2.7")
        self.assertEqual(self.relay_one(self.proxy_port, header=b"PROXY TCP6 2001:db8::7 ::1 40000 25\r\n"),
                         "IPV6:2001:db8::7")
        tlv = bytes([0x04]) + struct.pack("!H", 3) + b"abc"  # a NOOP TLV, skipped
        self.assertEqual(self.relay_one(self.proxy_port, header=v2_header("198.51.100.9", 40001, tlvs=tlv)),
                         "198.51.100.9")
        # UNKNOWN and LOCAL (a health check): the connection's own ends.
        self.assertEqual(self.relay_one(self.proxy_port, header=b"PROXY UNKNOWN\r\n"), "127.0.0.1")
        self.assertEqual(self.relay_one(self.proxy_port, header=v2_header("198.51.100.9", 1, command=0x20)),
                         "127.0.0.1")

    def test_missing_malformed_untrusted_or_late_headers_close_the_connection_unanswered(self):
        self.start()
        refused = {
            "no header": (b"EHLO client.example\r\n", "127.0.0.1"),
            "malformed": (b"PROXY TCP4 192.0.2.7 127.0.0.1 040000 25\r\n", "127.0.0.1"),
            "family mismatch": (b"PROXY TCP4 2001:db8::1 127.0.0.1 1 25\r\n", "127.0.0.1"),
            "bad v2 version": (V2_SIGNATURE + b"\x11\x11\x00\x0c" + b"\x00" * 12, "127.0.0.1"),
            "untrusted source": (b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\n", "127.0.0.2"),
        }
        survivor = socket.create_connection(("127.0.0.1", self.proxy_port), timeout=10)
        survivor.sendall(b"PROXY TCP4 192.0.2.8 127.0.0.1 40000 25\r\n")
        self.assertTrue(survivor.recv(100).startswith(b"220 "))
        for what, (header, source) in refused.items():
            with self.subTest(what):
                sock = socket.create_connection(("127.0.0.1", self.proxy_port), timeout=10,
                                                source_address=(source, 0))
                sock.sendall(header)
                try:
                    self.assertEqual(sock.recv(100), b"", "closed with nothing said")
                except ConnectionResetError:
                    pass
                sock.close()
        survivor.sendall(b"NOOP\r\n")
        self.assertTrue(survivor.recv(100).startswith(b"250"), "other sessions go on")
        survivor.close()
        self.assertFalse(any(c.startswith("XCLIENT") for _, c in self.up.all_commands))

    def test_a_header_that_never_comes_times_out(self):
        self.start()
        sock = socket.create_connection(("127.0.0.1", self.proxy_port), timeout=30)
        sock.sendall(b"PROXY TCP4 192.0.2.7")
        started = time.time()
        self.assertEqual(sock.recv(100), b"")
        self.assertLess(time.time() - started, 20)
        sock.close()

    def test_the_per_address_limit_counts_the_real_client(self):
        self.start("--max-connections-per-ip", "1")
        held = []
        for address in ("192.0.2.1", "192.0.2.2"):
            sock = socket.create_connection(("127.0.0.1", self.proxy_port), timeout=10)
            sock.sendall(f"PROXY TCP4 {address} 127.0.0.1 40000 25\r\n".encode())
            self.assertTrue(sock.recv(100).startswith(b"220 "), f"{address}: one connection each")
            held.append(sock)
        again = socket.create_connection(("127.0.0.1", self.proxy_port), timeout=10)
        again.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 40001 25\r\n")
        self.assertTrue(again.recv(100).startswith(b"421 4.7.0"), "a second one from 192.0.2.1")
        for sock in held + [again]:
            sock.close()


class GreylistBehindHAProxy(unittest.TestCase):
    def test_the_greylist_and_its_log_see_the_real_client(self):
        up = ScriptedUpstream(extensions=lambda n, tls: ["PIPELINING"])
        self.addCleanup(up.close)
        proxy_port = free_port()
        log = tempfile.NamedTemporaryFile(prefix="grey-log-", delete=False)
        self.addCleanup(os.unlink, log.name)
        grey = Program("greylist_server", "--upstream", f"127.0.0.1:{up.port}", "--store", "memory",
                       "--proxy-listen", f"127.0.0.1:{proxy_port}", "--proxy-from", "127.0.0.1/32",
                       "--log", log.name)
        self.addCleanup(grey.cleanup)
        wait_for_port(proxy_port, 5)
        haproxy = HAProxy(proxy_port, "send-proxy-v2")
        self.addCleanup(haproxy.stop)
        c = Client(haproxy.port, source="127.0.0.5")
        self.addCleanup(c.close)
        c.command("EHLO client.example")
        c.command("MAIL FROM:<alice@example.org>")
        self.assertEqual(c.command("RCPT TO:<bob@example.com>")[:2], (451, "4.7.1"))
        c.command("QUIT")
        deadline = time.time() + 5
        text = ""
        while "127.0.0.5" not in text and time.time() < deadline:
            time.sleep(0.1)
            with open(log.name) as f:
                text = f.read()
        self.assertRegex(text, r"\| client\.example \| 127\.0\.0\.5 \| alice@example\.org \| bob@example\.com greylisted")


if __name__ == "__main__":
    unittest.main()
