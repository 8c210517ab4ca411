#!/usr/bin/env python3
"""py_server.py

A Python `websockets` echo server (asyncio API, tested with 10.4) that
gateway.hpp's C++ client is tested against; it speaks as
tests/interop/node_server.mjs does:

 * listens on 127.0.0.1, port 0 (ephemeral), and prints
   "listening on port N" once it is listening;
 * accepts permessage-deflate as websockets does by default (its server
   answers with server_max_window_bits=12 and compresses every message);
 * echoes text as text and binary as binary;
 * text "close-me"    -> closes the connection with 4002 "server says bye";
 * text "ping-me"     -> sends a ping with payload "abc"; once the client's
   pong for it arrives, sends the text "pong:abc";
 * text "protocol?"   -> answers with the agreed subprotocol (or "none");
 * text "extensions?" -> answers with the Sec-WebSocket-Extensions value of its
   handshake response (or "none" when nothing was agreed);
 * text "bytes?"      -> answers with the number of bytes read from the
   client so far, which shows whether the client compressed;
 * if the client offers subprotocol "chat.v2" it is selected, otherwise none;
 * exits 0 on SIGTERM/SIGINT, and also when its stdin reaches EOF, so a harness
   that dies cannot leave it running (keep a pipe open to its stdin).
"""

import asyncio
import signal
import sys

try:
    import websockets
except ImportError:
    sys.stderr.write(f"py_server.py: the 'websockets' module is not available to {sys.executable}\n")
    sys.exit(2)


class CountingProtocol(websockets.WebSocketServerProtocol):
    """The server's protocol, counting the bytes that reach it from the client."""

    bytes_in = 0

    def data_received(self, data):
        self.bytes_in += len(data)
        super().data_received(data)


async def serve_one(ws, _path=None):
    try:
        async for msg in ws:
            if msg == "close-me":
                await ws.close(4002, "server says bye")
                return
            if msg == "ping-me":
                await (await ws.ping(b"abc"))
                await ws.send("pong:abc")
            elif msg == "protocol?":
                await ws.send(ws.subprotocol or "none")
            elif msg == "extensions?":
                await ws.send(ws.response_headers.get("Sec-WebSocket-Extensions", "none") if ws.extensions else "none")
            elif msg == "bytes?":
                await ws.send(str(ws.bytes_in))
            else:
                await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main():
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def done():
        if not stop.done():
            stop.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done)

    def stdin_readable():
        if not sys.stdin.buffer.raw.read(65536):
            loop.remove_reader(sys.stdin.fileno())
            done()

    loop.add_reader(sys.stdin.fileno(), stdin_readable)

    async with websockets.serve(serve_one, "127.0.0.1", 0, create_protocol=CountingProtocol,
                                subprotocols=["chat.v2"], max_size=64 << 20, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on port {port}", flush=True)
        await stop
        # Connections still open are dropped rather than closed: the test is over.
        for ws in list(server.websockets):
            ws.transport.abort()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
