"""A UDP DNS proxy that answers late: each query is forwarded to the upstream server (the
benchmark's loopback unbound) --delay-ms after it arrived, and the answer passed back as it
comes. What a resolver far away looks like to Grey, on loopback. Every query waits its own
timer, so the proxy adds latency without queueing queries behind each other.

    python3 dns_delay.py --listen PORT --upstream PORT --delay-ms 50

On SIGUSR1 it prints `queries N answers M most_in_flight K` on standard output: the queries and
answers counted since it started, and the most queries it held at once (received, not yet
answered) since the last report; on SIGTERM or SIGINT the same, and it exits."""
import argparse
import asyncio
import signal


class Proxy:
    def __init__(self, delay, upstream):
        self.delay, self.upstream = delay, upstream
        self.pending = {}  # our query ID -> (the client's ID, the client's address)
        self.next_id = 0
        self.queries = self.answers = 0
        self.most_in_flight = 0
        self.to_clients = self.to_upstream = None

    def query(self, data, addr):
        if len(data) < 12:
            return
        self.queries += 1
        # A fresh ID per forwarded query: two clients may use the same one.
        for _ in range(65536):
            self.next_id = (self.next_id + 1) & 0xFFFF
            if self.next_id not in self.pending:
                break
        our = self.next_id
        self.pending[our] = (data[:2], addr)
        self.most_in_flight = max(self.most_in_flight, len(self.pending))
        asyncio.get_running_loop().call_later(self.delay, self.forward, our.to_bytes(2, "big") + data[2:])

    def forward(self, data):
        self.to_upstream.sendto(data)

    def answer(self, data):
        if len(data) < 12:
            return
        entry = self.pending.pop(int.from_bytes(data[:2], "big"), None)
        if entry:
            self.answers += 1
            self.to_clients.sendto(entry[0] + data[2:], entry[1])

    def report(self):
        print(f"queries {self.queries} answers {self.answers} most_in_flight {self.most_in_flight}", flush=True)
        self.most_in_flight = len(self.pending)


class _Clients(asyncio.DatagramProtocol):
    def __init__(self, proxy):
        self.proxy = proxy

    def datagram_received(self, data, addr):
        self.proxy.query(data, addr)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, proxy):
        self.proxy = proxy

    def datagram_received(self, data, addr):
        self.proxy.answer(data)


async def serve(port, upstream, delay_ms):
    loop = asyncio.get_running_loop()
    proxy = Proxy(delay_ms / 1000, upstream)
    proxy.to_clients, _ = await loop.create_datagram_endpoint(lambda: _Clients(proxy), local_addr=("127.0.0.1", port))
    proxy.to_upstream, _ = await loop.create_datagram_endpoint(lambda: _Upstream(proxy),
                                                               remote_addr=("127.0.0.1", upstream))
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, proxy.report)
    print("ready", flush=True)
    await stop.wait()
    proxy.report()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=int, required=True, help="UDP port on 127.0.0.1")
    parser.add_argument("--upstream", type=int, required=True, help="the DNS server's UDP port on 127.0.0.1")
    parser.add_argument("--delay-ms", type=float, default=50)
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.upstream, args.delay_ms))


if __name__ == "__main__":
    main()
