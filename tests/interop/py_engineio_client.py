#!/usr/bin/env python3
"""py_engineio_client.py URL TRANSPORT [--path PATH]

Interop test: drives an Engine.IO v4 echo server (every message sent back as it came, text as
text and binary as binary; pingInterval 300 ms, pingTimeout 200 ms or, with GW_TEST_PATIENT set,
5 s: tests/conformance/engineio_echo.cpp or engineio_node_reference.mjs) with python-engineio's
threaded Client (tested with Debian's python3-engineio 4.3.4, which needs python3-requests for polling and
python3-websocket for WebSocket).

  URL        http://HOST:PORT
  TRANSPORT  polling   -> transports=['polling'] (stays on long-polling)
             websocket -> transports=['websocket'] (WebSocket from the start)
             upgrade   -> default transports: polling handshake, then python-engineio probes and
                          upgrades to WebSocket before connect() returns
  --path     the Engine.IO path (default /engine.io/)

Prints one line per scenario, "PASS name" or "FAIL name: why", then "N passed, M failed"; exit
status 0 iff nothing failed. Every wait is bounded; a scenario running over INTEROP_TIMEOUT_MS
(default 10000 ms) fails. INTEROP_DEBUG=1 logs every packet python-engineio sends and receives to
stderr.

python-engineio 4.3.4 hands its polling POST body to requests as a str, which encodes it as
Latin-1: non-ASCII text would go out as invalid UTF-8 (or crash the client's writer thread), so in
the polling mode the text sent is ASCII only (what comes back is decoded as UTF-8 correctly).

One deliberate deviation from the stock client: python-engineio runs each 'message' handler in a
thread of its own, so handlers may run out of order; here they run on the reading thread, in
arrival order (nothing on the wire changes), so that ordering checks test the server, not
Python's thread scheduling.
"""

import argparse
import logging
import os
import queue
import sys
import threading
import time

try:
    import engineio
    from engineio import packet as eio_packet
except ImportError:
    sys.stderr.write(f"py_engineio_client.py: python-engineio is not available to {sys.executable}\n")
    sys.exit(2)
try:
    # python-engineio's Client silently does nothing without these (it only logs an error).
    import requests  # noqa: F401  polling
    import websocket  # noqa: F401  websocket-client, for the WebSocket transport
except ImportError as exc:
    sys.stderr.write(f"py_engineio_client.py: {exc.name} is not available to {sys.executable} "
                     "(Debian: python3-requests, python3-websocket)\n")
    sys.exit(2)

TIMEOUT = (int(os.environ.get("INTEROP_TIMEOUT_MS", "0")) or 10000) / 1000.0
DEBUG = os.environ.get("INTEROP_DEBUG", "") not in ("", "0")
WAIT = min(5.0, TIMEOUT / 2)  # a single expected message / event
# The server's pingTimeout: 200 ms, or 5 s when it runs under GW_TEST_PATIENT (run_socketio_interop.sh).
PING_TIMEOUT = 5.0 if os.environ.get("GW_TEST_PATIENT") else 0.2


def parse_args():
    ap = argparse.ArgumentParser(description="python-engineio interop client for an Engine.IO echo server")
    ap.add_argument("url")
    ap.add_argument("transport", choices=["polling", "websocket", "upgrade"])
    ap.add_argument("--path", default="/engine.io/")
    return ap.parse_args()


ARGS = parse_args()
TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": None}[ARGS.transport]
# What the session must be on once connect() has returned.
FINAL_TRANSPORT = "polling" if ARGS.transport == "polling" else "websocket"
ASCII_ONLY = ARGS.transport == "polling"  # see the module docstring

LOGGER = False
if DEBUG:
    LOGGER = logging.getLogger("py_engineio_client")
    LOGGER.setLevel(logging.INFO)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(relativeCreated)8.0f %(threadName)s: %(message)s"))
    LOGGER.addHandler(_handler)


class Client(engineio.Client):
    """python-engineio's Client with in-order message delivery and a count of server PINGs."""

    def __init__(self, **kwargs):
        super().__init__(logger=LOGGER, handle_sigint=False, **kwargs)
        self.pings = 0

    def _trigger_event(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)

    def _receive_packet(self, pkt):
        if pkt.packet_type == eio_packet.PING:
            self.pings += 1
        return super()._receive_packet(pkt)


class Ctx:
    """Per-scenario context: clients opened through it are aborted at the end."""

    def __init__(self):
        self.clients = []

    def open(self):
        c = Client()
        c.inbox = queue.Queue()
        c.disconnects = 0
        c.on("message", c.inbox.put)

        def on_disconnect(c=c):
            c.disconnects += 1

        c.on("disconnect", on_disconnect)
        self.clients.append(c)
        c.connect(ARGS.url, transports=TRANSPORTS, engineio_path=ARGS.path)
        if c.state != "connected":
            raise AssertionError(f"connect() returned but the client is {c.state!r}")
        if c.transport() != FINAL_TRANSPORT:
            raise AssertionError(f"session is on {c.transport()!r} after connect(), expected {FINAL_TRANSPORT!r}"
                                 + (" (the WebSocket upgrade failed)" if ARGS.transport == "upgrade" else ""))
        return c

    def cleanup(self):
        for c in self.clients:
            if c.state == "connected":
                threading.Thread(target=c.disconnect, kwargs={"abort": True}, daemon=True).start()


def describe(m):
    if isinstance(m, str):
        return f"text {m[:40]!r}{'...' if len(m) > 40 else ''} ({len(m)} chars)"
    if isinstance(m, (bytes, bytearray)):
        return f"binary {bytes(m[:16]).hex()}{'...' if len(m) > 16 else ''} ({len(m)} bytes)"
    return f"{type(m).__name__} {m!r}"


def expect(got, want, what="echo"):
    if type(got) is not type(want) or got != want:
        raise AssertionError(f"{what}: expected {describe(want)}, got {describe(got)}")


def receive(c, what, timeout=WAIT):
    try:
        return c.inbox.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"{what}: nothing came back within {timeout:g} s "
                             f"(client state {c.state!r}, transport {c.transport()!r})") from None


def echo(c, m):
    c.send(m)
    expect(receive(c, f"echo of {describe(m)}"), m)


def close_cleanly(c):
    """disconnect() must return, and the client's reader must finish, within a few seconds.

    Over polling that needs the server to answer the pending GET once the session closes."""
    t0 = time.monotonic()
    th = threading.Thread(target=c.disconnect, daemon=True)
    th.start()
    th.join(4.0)
    if th.is_alive():
        raise AssertionError("disconnect() still blocked after 4 s (the client's read loop did not end: "
                             "pending GET / WebSocket not released by the server)")
    if c.state != "disconnected":
        raise AssertionError(f"state {c.state!r} after disconnect()")
    if c.disconnects != 1:
        raise AssertionError(f"'disconnect' fired {c.disconnects} times, expected once")
    return time.monotonic() - t0


def pattern_bytes(n, seed=0):
    return bytes((i * 131 + seed * 7 + (i >> 8) * 17) & 0xFF for i in range(n))


def text_of(n):
    # Not JSON (python-engineio json-decodes text messages that parse as JSON objects/arrays/etc.).
    unit = "hello world 0123456789 " if ASCII_ONLY else "héllo wörld ✓ 😀 "
    s = unit * (n // len(unit) + 1)
    return "x" + s[: n - 1]


# ----------------------------------------------------------------- scenarios

SCENARIOS = []


def scenario(name):
    def register(fn):
        SCENARIOS.append((name, fn))
        return fn
    return register


@scenario("handshake: sid, pingInterval 300 ms, pingTimeout 200 ms (5 s under GW_TEST_PATIENT), expected transport")
def _(ctx):
    c = ctx.open()
    if not isinstance(c.sid, str) or not c.sid:
        raise AssertionError(f"sid {c.sid!r}")
    if (c.ping_interval, c.ping_timeout) != (0.3, PING_TIMEOUT):
        raise AssertionError(f"pingInterval/pingTimeout {c.ping_interval}/{c.ping_timeout} s, expected 0.3/{PING_TIMEOUT:g}")
    if ARGS.transport != "websocket" and "websocket" not in (c.upgrades or []):
        raise AssertionError(f"polling handshake advertises upgrades {c.upgrades!r}, expected 'websocket'")
    close_cleanly(c)


@scenario("text echo" + (" (ASCII: see the docstring)" if ASCII_ONLY else " (ASCII, multi-byte UTF-8, emoji)"))
def _(ctx):
    c = ctx.open()
    texts = ["Hello, gateway!", "a 'quoted' \"string\" with \\ and /", "tab\there, newline\nthere"]
    if not ASCII_ONLY:
        texts += ["héllo wörld", "日本語のテキスト", "😀🎉🚀 emoji 👍🏽", "x\u2028y\u2029z"]
    for s in texts:
        echo(c, s)
    close_cleanly(c)


@scenario("binary echo (all 256 byte values)")
def _(ctx):
    c = ctx.open()
    echo(c, bytes(range(256)))
    echo(c, bytes(reversed(range(256))))
    echo(c, b"\x00")
    close_cleanly(c)


@scenario("empty text and empty binary messages")
def _(ctx):
    c = ctx.open()
    echo(c, "")
    echo(c, b"")
    echo(c, "after the empty ones")
    close_cleanly(c)


@scenario("100 KB text and 100 KB binary")
def _(ctx):
    c = ctx.open()
    echo(c, text_of(100_000))
    echo(c, pattern_bytes(100_000, 3))
    close_cleanly(c)


@scenario("50 messages in a row come back in order")
def _(ctx):
    c = ctx.open()
    sent = [f"message #{i}" + ("" if ASCII_ONLY else " ✓") if i % 3 else bytes([i]) + pattern_bytes(i * 7, i) for i in range(50)]
    for m in sent:
        c.send(m)
    for i, m in enumerate(sent):
        expect(receive(c, f"message #{i} of 50"), m, f"message #{i} of 50")
    try:
        extra = c.inbox.get(timeout=0.3)
    except queue.Empty:
        pass
    else:
        raise AssertionError(f"a 51st message came back: {describe(extra)}")
    close_cleanly(c)


@scenario("100 round trips one after another")
def _(ctx):
    c = ctx.open()
    for i in range(100):
        echo(c, f"round trip #{i}" if i % 2 else bytes([i % 256]) * (i + 1))
    close_cleanly(c)


@scenario("heartbeat keeps an idle session alive for 1.5 s")
def _(ctx):
    c = ctx.open()
    time.sleep(1.5)
    if c.state != "connected" or c.disconnects:
        raise AssertionError(f"session dropped while idle (state {c.state!r}, {c.pings} PINGs seen)")
    # 300 ms interval: about 5 PINGs in 1.5 s; allow for a slow start.
    if c.pings < 3:
        raise AssertionError(f"only {c.pings} PING(s) from the server in 1.5 s (pingInterval 300 ms)")
    echo(c, "still here")
    close_cleanly(c)


@scenario("client disconnect() ends the session promptly")
def _(ctx):
    c = ctx.open()
    echo(c, "bye soon")
    took = close_cleanly(c)
    if took > 2.0:
        raise AssertionError(f"disconnect() took {took:.1f} s")


# -------------------------------------------------------------------- runner

def run(fn):
    """Runs fn(ctx) on a daemon thread, bounded by TIMEOUT; returns None or a failure reason."""
    ctx = Ctx()
    result = []

    def body():
        try:
            fn(ctx)
        except Exception as exc:  # noqa: BLE001 - every failure is reported, none is fatal
            result.append(" ".join(f"{type(exc).__name__}: {exc}".split()))
        else:
            result.append(None)

    th = threading.Thread(target=body, daemon=True)
    th.start()
    th.join(TIMEOUT)
    ctx.cleanup()
    if th.is_alive():
        return f"timed out after {TIMEOUT:g} s"
    return result[0]


def main():
    passed = failed = 0
    for name, fn in SCENARIOS:
        why = run(fn)
        label = f"[{ARGS.transport}] {name}"
        if why is None:
            passed += 1
            print(f"PASS {label}", flush=True)
        else:
            failed += 1
            print(f"FAIL {label}: {why}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # python-engineio's reader/writer threads are not daemons; one left blocked must not hang us.
    os._exit(code)
