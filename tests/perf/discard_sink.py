"""An SMTP server for the 1 GiB stream: answers every command with 250, reads message text in
1 MiB blocks looking only for the CRLF.CRLF that ends it, and reports the octets it took in its
250 reply ("250 ok N") so the sender can check that every byte arrived.

    python3 discard_sink.py PORT
"""
import socket
import sys
import threading

END = b"\r\n.\r\n"


def take_message(conn, buffered):
    """Reads up to and including CRLF.CRLF; returns (octets of text, bytes after the end)."""
    data = b"\r\n" + buffered  # the CRLF of the DATA line may begin the terminator
    taken = -2
    while True:
        at = data.find(END)
        if at >= 0:
            return taken + at + 2, data[at + len(END):]
        keep = data[-(len(END) - 1):]
        taken += len(data) - len(keep)
        chunk = conn.recv(1 << 20)
        if not chunk:
            raise ConnectionError("closed inside DATA")
        data = keep + chunk


def serve(conn):
    with conn:
        conn.sendall(b"220 discard-sink ESMTP\r\n")
        pending = b""
        while True:
            while b"\r\n" not in pending:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                pending += chunk
            line, pending = pending.split(b"\r\n", 1)
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-discard-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                octets, pending = take_message(conn, pending)
                conn.sendall(b"250 ok %d\r\n" % octets)
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")


def main():
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
