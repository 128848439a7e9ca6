"""An upstream MTA for the TLS tests: aiosmtpd (Debian's python3-aiosmtpd, hence run with
/usr/bin/python3), offering STARTTLS when given a certificate. Each message it takes is
written to DIR as N.eml, with N.json beside it saying whether it came over TLS and with what.

    aiosmtpd_upstream.py DIR [--cert FILE --key FILE] [--require-starttls]
Prints "listening on 127.0.0.1:PORT" when ready; runs until SIGTERM."""
import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.directory, str(self.count))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json", "w") as f:
            json.dump({"tls": session.ssl is not None, "cipher": (session.ssl or {}).get("cipher"),
                       "helo": session.host_name, "mail_from": envelope.mail_from,
                       "rcpt_tos": envelope.rcpt_tos, "mail_options": envelope.mail_options}, f)
        return "250 2.0.0 Stored"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--require-starttls", action="store_true")
    args = parser.parse_args()
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # failed handshakes are the tests' point
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    recorder = Recorder(args.directory)
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = await loop.create_server(
        lambda: SMTP(recorder, tls_context=context, require_starttls=args.require_starttls,
                     data_size_limit=256 << 20, enable_SMTPUTF8=True, hostname="upstream.example"),
        sock=sock)
    print(f"listening on 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
