#!/usr/bin/env python3
"""py_client.py URL [--ca CA.pem] [--deflate shared|dedicated]

Interop test: drives a WebSocket echo server at URL (ws:// or wss://) with
Python's `websockets` library (asyncio API, tested with 10.4). With --ca, that
PEM is the trust anchor and the certificate is verified normally.
permessage-deflate is not offered (compression=None) unless --deflate MODE
says the server's deflate mode: then the client offers it as it does by default
("permessage-deflate; client_max_window_bits", every message compressed), every
connection must agree it with the parameters that mode answers (shared: no
context takeover either way; dedicated: none, context kept both ways), and
scenarios that count the bytes on the wire are added.

Prints one line per scenario, "PASS name" or "FAIL name: why", then
"N passed, M failed"; exit status 0 iff nothing failed. Each scenario has a
time limit (INTEROP_TIMEOUT_MS, default 10000 ms); running over it fails it.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import zlib

try:
    import websockets
except ImportError:
    sys.stderr.write(f"py_client.py: the 'websockets' module is not available to {sys.executable}\n")
    sys.exit(2)

TIMEOUT = (int(os.environ.get("INTEROP_TIMEOUT_MS", "0")) or 10000) / 1000.0


def parse_args():
    ap = argparse.ArgumentParser(description="websockets interop client for an echo server")
    ap.add_argument("url")
    ap.add_argument("--ca", help="PEM file with the CA certificate to trust")
    ap.add_argument("--deflate", choices=("shared", "dedicated"),
                    help="offer permessage-deflate to a server in this deflate mode")
    args = ap.parse_args()
    if not args.url.lower().startswith(("ws://", "wss://")):
        ap.error("URL must start with ws:// or wss://")
    return args


ARGS = parse_args()
SSL_CTX = None
if ARGS.url.lower().startswith("wss://"):
    SSL_CTX = ssl.create_default_context(cafile=ARGS.ca) if ARGS.ca else ssl.create_default_context()


class CountingProtocol(websockets.WebSocketClientProtocol):
    """The client's protocol, counting the bytes that reach it (after TLS)."""

    bytes_in = 0

    def data_received(self, data):
        self.bytes_in += len(data)
        super().data_received(data)


def deflate_problem(ws):
    """What is wrong with a connection's permessage-deflate agreement for --deflate, or None."""
    answer = ws.response_headers.get("Sec-WebSocket-Extensions")
    names = [type(e).__name__ for e in ws.extensions]
    if [e.name for e in ws.extensions] != ["permessage-deflate"]:
        return f"extensions in use {names}, want permessage-deflate (answer: {answer!r})"
    params = sorted(p.strip().lower() for p in answer.split(";")[1:])
    want = ["client_no_context_takeover", "server_no_context_takeover"] if ARGS.deflate == "shared" else []
    if params != want:
        return f"Sec-WebSocket-Extensions: {answer}; a {ARGS.deflate} server answers with {want or 'no parameters'}"
    return None


class Ctx:
    """Per-scenario context; connections opened through it are torn down at the end."""

    def __init__(self):
        self.conns = []

    async def open(self, **kwargs):
        options = dict(max_size=None, compression=None, close_timeout=TIMEOUT / 2, ping_interval=None)
        if ARGS.deflate:
            options.update(compression="deflate", create_protocol=CountingProtocol)
        if SSL_CTX is not None:
            options["ssl"] = SSL_CTX
        options.update(kwargs)
        ws = await websockets.connect(ARGS.url, **options)
        self.conns.append(ws)
        if ARGS.deflate and (problem := deflate_problem(ws)):
            raise AssertionError(problem)
        return ws

    def cleanup(self):
        for ws in self.conns:
            transport = getattr(ws, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.abort()


def describe(msg):
    if isinstance(msg, str):
        return f"text message of {len(msg.encode('utf-8', 'surrogatepass'))} bytes"
    return f"binary message of {len(msg)} bytes"


def expect(got, expected, what="echo"):
    """Fails unless got equals expected and has the same type (str = text, bytes = binary)."""
    if type(got) is not type(expected):
        kind = "text" if isinstance(expected, str) else "binary"
        raise AssertionError(f"{what}: expected {kind}, got {describe(got)}")
    if got != expected:
        a = got.encode() if isinstance(got, str) else got
        b = expected.encode() if isinstance(expected, str) else expected
        i = 0
        n = min(len(a), len(b))
        while i < n and a[i] == b[i]:
            i += 1
        raise AssertionError(f"{what}: expected {len(b)} bytes, got {len(a)}; first difference at byte {i}")


async def echo_once(ws, payload):
    await ws.send(payload)
    expect(await ws.recv(), payload)


async def close_cleanly(ws, code=1000, reason=""):
    await ws.close(code, reason)
    if ws.close_code in (None, 1006):
        raise AssertionError(f"connection dropped without a close handshake (code {ws.close_code})")


def utf8_text(n):
    """A str whose UTF-8 encoding is exactly n bytes, mixing 1- to 4-byte characters."""
    unit = "aé€😀"  # 1 + 2 + 3 + 4 = 10 bytes
    return unit * (n // 10) + "a" * (n % 10)


def pattern_bytes(n, seed=0):
    # Cheap deterministic non-repeating-ish bytes.
    block = bytes((i * 131 + seed * 7 + (i >> 8) * 17) & 0xFF for i in range(min(n, 65537)))
    reps, rest = divmod(n, len(block)) if block else (0, 0)
    return block * reps + block[:rest]


# ----------------------------------------------------------------- scenarios

SCENARIOS = []


def scenario(name):
    def register(fn):
        SCENARIOS.append((name, fn))
        return fn
    return register


@scenario("text echo (ASCII)")
async def _(ctx):
    ws = await ctx.open()
    await echo_once(ws, "Hello, gateway!")
    await close_cleanly(ws)


@scenario("text echo (multi-byte UTF-8 incl. emoji)")
async def _(ctx):
    ws = await ctx.open()
    for s in ["héllo wörld", "ΚΑΛΗΜΕΡΑ κόσμε", "日本語のテキスト", "😀🎉🚀 emoji 👍🏽",
              "\x00nul and \U0010FFFF max code point", "\ufeffBOM first"]:
        await echo_once(ws, s)
    await close_cleanly(ws)


@scenario("binary echo (all 256 byte values)")
async def _(ctx):
    ws = await ctx.open()
    await echo_once(ws, bytes(range(256)))
    await echo_once(ws, bytes(reversed(range(256))))
    await close_cleanly(ws)


@scenario("empty text and empty binary messages")
async def _(ctx):
    ws = await ctx.open()
    await echo_once(ws, "")
    await echo_once(ws, b"")
    await close_cleanly(ws)


def _size_scenarios():
    for size in (125, 126, 65535, 65536, 1024 * 1024):
        @scenario(f"text {size} bytes")
        async def _text(ctx, size=size):
            ws = await ctx.open()
            await echo_once(ws, utf8_text(size))
            await close_cleanly(ws)

        @scenario(f"binary {size} bytes")
        async def _binary(ctx, size=size):
            ws = await ctx.open()
            await echo_once(ws, pattern_bytes(size, size))
            await close_cleanly(ws)


_size_scenarios()


@scenario("200 messages back-to-back, echoed in order")
async def _(ctx):
    ws = await ctx.open()
    sent = []
    for i in range(200):
        n = (i * 37) % 300  # crosses the 125/126 length boundary
        sent.append(bytes([i]) + pattern_bytes(n, i) if i % 2 else f"#{i}:" + "x" * n)

    async def sender():
        for m in sent:
            await ws.send(m)

    async def receiver():
        for i, m in enumerate(sent):
            expect(await ws.recv(), m, f"message #{i}")

    await asyncio.gather(sender(), receiver())
    await close_cleanly(ws)


@scenario("fragmented messages reassembled")
async def _(ctx):
    ws = await ctx.open()
    # websockets sends an iterable as one fragmented message.
    await ws.send(["Hel", "lo, ", "", "fragmented wörld 😀"])
    expect(await ws.recv(), "Hello, fragmented wörld 😀")
    parts = [pattern_bytes(1000, 1), pattern_bytes(70000, 2), pattern_bytes(3, 3)]
    await ws.send(parts)
    expect(await ws.recv(), b"".join(parts))
    await close_cleanly(ws)


@scenario("ping -> pong with the same payload")
async def _(ctx):
    ws = await ctx.open()
    for payload in (b"interop-ping", b"", pattern_bytes(125, 9)):
        # The waiter only completes when a pong carrying this payload arrives.
        waiter = await ws.ping(payload)
        try:
            await asyncio.wait_for(waiter, TIMEOUT / 2)
        except asyncio.TimeoutError:
            raise AssertionError(f"no pong carrying the {len(payload)}-byte ping payload "
                                 f"within {TIMEOUT / 2:g} s") from None
    await echo_once(ws, "after ping")
    await close_cleanly(ws)


@scenario('close 4001 "python bye" -> server echoes code 4001')
async def _(ctx):
    ws = await ctx.open()
    await echo_once(ws, "before close")
    await ws.close(code=4001, reason="python bye")
    if ws.close_code != 4001:
        raise AssertionError(f"close_code {ws.close_code}, expected 4001")
    # RFC 6455 does not require the reason to be echoed, so only the code is checked.


@scenario("subprotocols offered, server selects none")
async def _(ctx):
    ws = await ctx.open(subprotocols=["x-gateway-unknown.v1", "x-gateway-unknown.v2"])
    if ws.subprotocol is not None:
        raise AssertionError(f"server selected {ws.subprotocol!r}")
    await echo_once(ws, "no subprotocol")
    await close_cleanly(ws)


@scenario("20 concurrent connections, one echo each")
async def _(ctx):
    conns = await asyncio.gather(*(ctx.open() for _ in range(20)))
    await asyncio.gather(*(echo_once(ws, f"connection {i} says hi ✓") for i, ws in enumerate(conns)))
    await asyncio.gather(*(close_cleanly(ws) for ws in conns))


# ------------------------------------------------- permessage-deflate (--deflate)

def record(i):
    """A JSON record as a chat or a dashboard sends them: similar from one message to the next."""
    return json.dumps({
        "seq": i, "user": f"user-{i % 7}", "room": "lobby", "kind": "presence" if i % 3 == 0 else "message",
        "text": f"message number {i} about the weather in région {i % 13}: ☀ then 🌧",
        "tags": ["interop", "deflate", f"t{i % 5}"], "at": 1700000000000 + i * 250,
    }, ensure_ascii=False, separators=(",", ":"))


def _deflate_scenarios():
    @scenario("deflate: long JSON text, compressed on the wire")
    async def _(ctx):
        ws = await ctx.open()
        text = json.dumps([json.loads(record(i)) for i in range(1500)], ensure_ascii=False)
        before = ws.bytes_in
        await echo_once(ws, text)
        size, n = len(text.encode()), ws.bytes_in - before
        if n > size / 4:
            raise AssertionError(f"the echo of {size} bytes of JSON took {n} bytes on the wire")
        await close_cleanly(ws)

    @scenario("deflate: 1 MiB of text and of binary shrink on the wire")
    async def _(ctx):
        ws = await ctx.open()
        for payload in (utf8_text(1 << 20), bytes((i * 7) % 251 for i in range(1 << 20))):
            before = ws.bytes_in
            await echo_once(ws, payload)
            if (n := ws.bytes_in - before) > 64 * 1024:
                raise AssertionError(f"the echo of a compressible 1 MiB message took {n} bytes on the wire")
        await close_cleanly(ws)

    @scenario("deflate: 1000 similar messages on one connection, in order")
    async def _(ctx):
        ws = await ctx.open()
        sent = [record(i).encode() if i % 5 == 4 else record(i) for i in range(1000)]
        before = ws.bytes_in

        async def sender():
            for m in sent:
                await ws.send(m)

        async def receiver():
            for i, m in enumerate(sent):
                expect(await ws.recv(), m, f"message #{i}")

        await asyncio.gather(sender(), receiver())
        got = ws.bytes_in - before
        # What the echoes would take compressed one by one (no context takeover) at our server's
        # level 6, with 2 bytes of frame header each.
        alone = 0
        for m in sent:
            z = zlib.compressobj(6, zlib.DEFLATED, -15)
            alone += len(z.compress(m.encode() if isinstance(m, str) else m) + z.flush(zlib.Z_SYNC_FLUSH)) - 4 + 2
        # The server's context takeover (dedicated mode) lets each message refer to the ones before.
        if ARGS.deflate == "dedicated" and got > alone / 2:
            raise AssertionError(f"the echoes took {got} bytes, {alone} one by one: no sign of context takeover")
        await close_cleanly(ws)
        return f"{got} bytes for the echoes, {alone} compressed one by one"


if ARGS.deflate:
    _deflate_scenarios()


# -------------------------------------------------------------------- runner

async def main():
    passed = failed = 0
    for name, fn in SCENARIOS:
        ctx = Ctx()
        try:
            note = await asyncio.wait_for(fn(ctx), TIMEOUT)
        except asyncio.TimeoutError:
            failed += 1
            print(f"FAIL {name}: timed out after {TIMEOUT:g} s", flush=True)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
            failed += 1
            why = " ".join(f"{type(exc).__name__}: {exc}".split())
            print(f"FAIL {name}: {why}", flush=True)
        else:
            passed += 1
            print(f"PASS {name}" + (f" ({note})" if note else ""), flush=True)
        finally:
            ctx.cleanup()
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
