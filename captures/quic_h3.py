"""HTTP/3 over QUIC with aioquic, for record.sh's quic-443 capture (Debian 12 ships no QUIC server).

    python quic_h3.py serve --cert C --key K HOST [HOST ...]    # port 443 on each address
    python quic_h3.py get HOST NAME [PATH ...]                   # one connection, a GET per path

Not part of portwatch: it runs only while recording, from a throwaway venv with aioquic.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl

from aioquic.asyncio import connect, serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent

PORT = 443
BODY = b"hello over HTTP/3\n"


class Server(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.h3: H3Connection | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic)
        if self.h3 is None:
            return
        for ev in self.h3.handle_event(event):
            if isinstance(ev, HeadersReceived) and ev.stream_ended:
                status = b"200" if dict(ev.headers).get(b":path") == b"/" else b"404"
                body = BODY if status == b"200" else b""
                self.h3.send_headers(ev.stream_id, [(b":status", status), (b"server", b"aioquic"),
                                                    (b"content-length", str(len(body)).encode())])
                self.h3.send_data(ev.stream_id, body, end_stream=True)
                self.transmit()


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.answered: dict[int, asyncio.Event] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        for ev in self.h3.handle_event(event):
            self._answer(ev)

    def _answer(self, ev: H3Event) -> None:
        if isinstance(ev, (HeadersReceived, DataReceived)) and ev.stream_ended and ev.stream_id in self.answered:
            self.answered[ev.stream_id].set()

    async def get(self, name: str, path: str) -> None:
        stream = self._quic.get_next_available_stream_id()
        self.answered[stream] = asyncio.Event()
        self.h3.send_headers(stream, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", name.encode()),
                                      (b":path", path.encode()),
                                      (b"user-agent", b"portwatch-capture/1.0 (aioquic)")], end_stream=True)
        self.transmit()
        await asyncio.wait_for(self.answered[stream].wait(), 10)


async def run_server(hosts: list[str], cert: str, key: str) -> None:
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    config.load_cert_chain(cert, key)
    for host in hosts:
        await serve(host, PORT, configuration=config, create_protocol=Server)
    await asyncio.Future()


async def run_client(host: str, name: str, paths: list[str]) -> None:
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=name)
    config.verify_mode = ssl.CERT_NONE  # the server's certificate is self-signed
    async with connect(host, PORT, configuration=config, create_protocol=Client) as client:
        for path in paths:
            await client.get(name, path)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("hosts", nargs="+")
    g = sub.add_parser("get")
    g.add_argument("host")
    g.add_argument("name")
    g.add_argument("paths", nargs="*", default=["/"])
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(run_server(args.hosts, args.cert, args.key))
    else:
        asyncio.run(run_client(args.host, args.name, args.paths))


if __name__ == "__main__":
    main()
