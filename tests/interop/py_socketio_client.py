#!/usr/bin/env python3
"""py_socketio_client.py URL TRANSPORT

Interop test: drives the Socket.IO v5 reference server (tests/conformance/socketio_reference.cpp
or socketio_node_reference.mjs: Socket.IO at /socket.io/, namespaces "/" and "/custom", each
emitting "auth" with the CONNECT payload on connection, answering "message" with "message-back"
and the same arguments and acknowledging "message-with-ack" with the same arguments) with
python-socketio's threaded Client (tested with Debian's python3-socketio 5.7.2 on
python3-engineio 4.3.4, which needs python3-requests for polling and python3-websocket for
WebSocket).

  URL        http://HOST:PORT
  TRANSPORT  polling   -> transports=['polling']
             websocket -> transports=['websocket']
             upgrade   -> default transports: polling handshake, then python-engineio probes and
                          upgrades to WebSocket right after it, before connect() returns

Prints one line per scenario, "PASS name" or "FAIL name: why", then "N passed, M failed"; exit
status 0 iff nothing failed. Every wait is bounded; a scenario running over INTEROP_TIMEOUT_MS
(default 10000 ms) fails. INTEROP_DEBUG=1 logs every Engine.IO packet sent and received to stderr.

Two things differ from a stock client, neither visible on the wire:
  * python-engineio runs each 'message' handler in a thread of its own, and python-socketio keeps
    the pending binary packet between them, so a binary event's attachments could be processed
    before its header; here Engine.IO messages are dispatched on the reading thread, in order;
  * reconnection is off, so that a failure is reported instead of retried.
python-engineio 4.3.4 sends its polling POST bodies as Latin-1 (see py_engineio_client.py), so in
the polling mode the strings sent are ASCII only.
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
    import socketio
except ImportError as exc:
    sys.stderr.write(f"py_socketio_client.py: {exc.name} is not available to {sys.executable} "
                     "(Debian: python3-socketio)\n")
    sys.exit(2)
try:
    # python-engineio's Client silently does nothing without these (it only logs an error).
    import requests  # noqa: F401  polling
    import websocket  # noqa: F401  websocket-client, for the WebSocket transport
except ImportError as exc:
    sys.stderr.write(f"py_socketio_client.py: {exc.name} is not available to {sys.executable} "
                     "(Debian: python3-requests, python3-websocket)\n")
    sys.exit(2)

TIMEOUT = (int(os.environ.get("INTEROP_TIMEOUT_MS", "0")) or 10000) / 1000.0
DEBUG = os.environ.get("INTEROP_DEBUG", "") not in ("", "0")
WAIT = min(5.0, TIMEOUT / 2)  # a single expected event / ack
NOPE_WAIT = 2.0  # connect()'s wait_timeout in the "/nope" scenario (it waits that long after the error)
AUTH = {"token": "abc"}
NAMESPACES = ["/", "/custom"]


def parse_args():
    ap = argparse.ArgumentParser(description="python-socketio interop client for the Socket.IO reference server")
    ap.add_argument("url")
    ap.add_argument("transport", choices=["polling", "websocket", "upgrade"])
    return ap.parse_args()


ARGS = parse_args()
TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "upgrade": None}[ARGS.transport]
FINAL_TRANSPORT = "polling" if ARGS.transport == "polling" else "websocket"
ASCII_ONLY = ARGS.transport == "polling"  # see the module docstring

LOGGER = False
if DEBUG:
    LOGGER = logging.getLogger("py_socketio_client")
    LOGGER.setLevel(logging.INFO)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(relativeCreated)8.0f %(threadName)s: %(message)s"))
    LOGGER.addHandler(_handler)


class InOrderEngineioClient(engineio.Client):
    def _trigger_event(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class Client(socketio.Client):
    """python-socketio's Client with in-order Engine.IO message dispatch; records what it gets."""

    def __init__(self):
        super().__init__(reconnection=False, handle_sigint=False, logger=LOGGER, engineio_logger=LOGGER)
        self.inboxes = {}  # (namespace, event) -> Queue of argument tuples
        self.connect_errors = queue.Queue()
        self.disconnected = []

    def _engineio_client_class(self):
        return InOrderEngineioClient

    def inbox(self, ns, event):
        return self.inboxes.setdefault((ns, event), queue.Queue())

    def record(self, ns, event):
        q = self.inbox(ns, event)
        self.on(event, lambda *args: q.put(args), namespace=ns)

    def watch(self, namespaces):
        for ns in namespaces:
            for event in ("auth", "message-back"):
                self.record(ns, event)
            self.on("connect_error", lambda *args, ns=ns: self.connect_errors.put((ns, args)), namespace=ns)
            self.on("disconnect", lambda ns=ns: self.disconnected.append(ns), namespace=ns)


class Ctx:
    """Per-scenario context: clients opened through it are torn down at the end."""

    def __init__(self):
        self.clients = []

    def client(self, namespaces=NAMESPACES):
        c = Client()
        c.watch(namespaces)
        self.clients.append(c)
        return c

    def open(self, namespaces=NAMESPACES):
        c = self.client(namespaces)
        # python-socketio waits 1 s for the namespaces' CONNECT replies unless told otherwise.
        c.connect(ARGS.url, auth=AUTH, namespaces=list(namespaces), transports=TRANSPORTS, wait_timeout=WAIT)
        got = set(c.namespaces)
        if got != set(namespaces):
            raise AssertionError(f"connected namespaces {sorted(got)}, expected {sorted(namespaces)}")
        if c.transport() != FINAL_TRANSPORT:
            raise AssertionError(f"session is on {c.transport()!r} after connect(), expected {FINAL_TRANSPORT!r}"
                                 + (" (the WebSocket upgrade failed)" if ARGS.transport == "upgrade" else ""))
        return c

    def cleanup(self):
        for c in self.clients:
            if c.eio.state == "connected":
                threading.Thread(target=c.eio.disconnect, kwargs={"abort": True}, daemon=True).start()


def describe(v):
    s = repr(v)
    return s if len(s) <= 120 else s[:117] + "..."


def same(a, b):
    """Equal, with the same types throughout (bytes stay bytes, ints stay ints, ...)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def expect(got, want, what):
    if not same(got, want):
        raise AssertionError(f"{what}: expected {describe(want)}, got {describe(got)}")


def receive(c, ns, event, timeout=WAIT):
    try:
        return c.inbox(ns, event).get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no {event!r} on {ns!r} within {timeout:g} s "
                             f"(Engine.IO state {c.eio.state!r}, transport {c.transport()!r})") from None


def nothing_more(c, ns, event, wait=0.2):
    try:
        extra = c.inbox(ns, event).get(timeout=wait)
    except queue.Empty:
        return
    raise AssertionError(f"an extra {event!r} on {ns!r}: {describe(extra)}")


def call(c, event, data, ns):
    try:
        return c.call(event, data, namespace=ns, timeout=WAIT)
    except socketio.exceptions.TimeoutError:
        raise AssertionError(f"no ack for {event!r} on {ns!r} within {WAIT:g} s "
                             f"(Engine.IO state {c.eio.state!r})") from None


def close_cleanly(c, namespaces=NAMESPACES):
    """disconnect() sends DISCONNECT for each namespace and CLOSE; the client's reader must end
    within a few seconds (over polling the server has to release the pending GET)."""
    c.disconnect()
    task = c.eio.read_loop_task
    if task is not None:
        task.join(4.0)
        if task.is_alive():
            raise AssertionError("the Engine.IO read loop still runs 4 s after disconnect() "
                                 "(pending GET / WebSocket not released by the server)")
    if c.connected or c.eio.state != "disconnected":
        raise AssertionError(f"after disconnect(): connected={c.connected}, Engine.IO state {c.eio.state!r}")
    if sorted(c.disconnected) != sorted(namespaces):
        raise AssertionError(f"'disconnect' fired for {sorted(c.disconnected)}, expected {sorted(namespaces)}")


TEXT = "plain ASCII" if ASCII_ONLY else "ünïcödé ✓ 😀"


# ----------------------------------------------------------------- scenarios

SCENARIOS = []


def scenario(name):
    def register(fn):
        SCENARIOS.append((name, fn))
        return fn
    return register


@scenario('connect "/" and "/custom" with auth; "auth" echoes the payload on both')
def _(ctx):
    c = ctx.open()
    for ns in NAMESPACES:
        expect(receive(c, ns, "auth"), (AUTH,), f'"auth" on {ns!r}')
        sid = c.get_sid(ns)
        if not isinstance(sid, str) or not sid:
            raise AssertionError(f"namespace {ns!r} has sid {sid!r}")
    if c.get_sid("/") == c.get_sid("/custom"):
        raise AssertionError("both namespaces got the same sid")
    nothing_more(c, "/", "auth")
    close_cleanly(c)


@scenario('"message" with several args -> "message-back" with the same, on both namespaces')
def _(ctx):
    c = ctx.open()
    args = (1, "two", {"three": [3, 3.5, None, True, False]}, [4, 5], TEXT, -7, "")
    for ns in NAMESPACES:
        c.emit("message", args, namespace=ns)
        expect(receive(c, ns, "message-back"), args, f'"message-back" on {ns!r}')
    for ns in NAMESPACES:
        nothing_more(c, ns, "message-back")
    close_cleanly(c)


@scenario('"message" with one list arg, one object arg, no args: arity preserved')
def _(ctx):
    c = ctx.open()
    ns = "/custom"
    for data, want in [([1, 2, 3], ([1, 2, 3],)), ({"k": "v"}, ({"k": "v"},)), ("solo", ("solo",)), (None, ())]:
        c.emit("message", data, namespace=ns)
        expect(receive(c, ns, "message-back"), want, f'"message-back" for emit data {data!r}')
    close_cleanly(c)


@scenario('"message" x20 in a row: "message-back" in order')
def _(ctx):
    c = ctx.open()
    for i in range(20):
        c.emit("message", (i, f"#{i}"), namespace="/")
    for i in range(20):
        expect(receive(c, "/", "message-back"), (i, f"#{i}"), f'"message-back" #{i}')
    nothing_more(c, "/", "message-back")
    close_cleanly(c)


@scenario('call("message-with-ack") -> the same values as the ack, ids from 1 per namespace')
def _(ctx):
    c = ctx.open()
    for ns in NAMESPACES:
        expect(call(c, "message-with-ack", (1, "2", {"3": [4]}), ns), (1, "2", {"3": [4]}), f"ack on {ns!r}")
        expect(call(c, "message-with-ack", TEXT, ns), TEXT, f"single-value ack on {ns!r}")
        expect(call(c, "message-with-ack", ([1, 2],), ns), [1, 2], f"list ack on {ns!r}")
        expect(call(c, "message-with-ack", None, ns), None, f"empty ack on {ns!r}")
        # python-socketio numbers acks 1, 2, 3, ... per namespace: four calls used 1..4.
        nxt = next(c.callbacks[ns][0])
        if nxt != 5:
            raise AssertionError(f"ack id counter on {ns!r} at {nxt}, expected 5")
    close_cleanly(c)


@scenario("binary args (bytes) round-trip as bytes: message-back and ack")
def _(ctx):
    c = ctx.open()
    blob = bytes(range(256))
    args = (b"\x00\x01\xfe\xff", "text", {"blob": blob, "list": [b"a", 1, b""]}, 42)
    for ns in NAMESPACES:
        c.emit("message", args, namespace=ns)
        expect(receive(c, ns, "message-back"), args, f'binary "message-back" on {ns!r}')
        expect(call(c, "message-with-ack", args, ns), args, f"binary ack on {ns!r}")
        expect(call(c, "message-with-ack", blob, ns), blob, f"single-bytes ack on {ns!r}")
    close_cleanly(c)


@scenario("idle for 1.5 s (several 300 ms ping cycles): still connected and answering")
def _(ctx):
    c = ctx.open()
    time.sleep(1.5)
    if not c.connected or c.eio.state != "connected" or c.disconnected:
        raise AssertionError(f"dropped while idle: connected={c.connected}, Engine.IO state {c.eio.state!r}, "
                             f"disconnected namespaces {c.disconnected}")
    expect(call(c, "message-with-ack", "awake", "/custom"), "awake", "ack after idling")
    close_cleanly(c)


@scenario('namespace "/nope" does not exist: connect() raises ConnectionError')
def _(ctx):
    c = ctx.client(["/nope"])
    t0 = time.monotonic()
    try:
        # After the CONNECT_ERROR, python-socketio still waits wait_timeout for the namespace.
        c.connect(ARGS.url, auth=AUTH, namespaces=["/nope"], transports=TRANSPORTS, wait_timeout=NOPE_WAIT)
    except socketio.exceptions.ConnectionError as exc:
        why = str(exc)
    else:
        raise AssertionError(f"connect() succeeded; connected namespaces {sorted(c.namespaces)}")
    took = time.monotonic() - t0
    try:
        ns, args = c.connect_errors.get(timeout=0.5)
    except queue.Empty:
        raise AssertionError(f"ConnectionError ({why}) but no connect_error from the server for '/nope'") from None
    if ns != "/nope" or len(args) != 1 or not isinstance(args[0], dict) or not isinstance(args[0].get("message"), str):
        raise AssertionError(f"connect_error on {ns!r} with {describe(args)}, expected one {{'message': str}} on '/nope'")
    if took > NOPE_WAIT + WAIT:
        raise AssertionError(f"connect() took {took:.1f} s to fail")
    # python-socketio disconnects the Engine.IO session itself after the failure.
    task = c.eio.read_loop_task
    if task is not None:
        task.join(4.0)
        if task.is_alive():
            raise AssertionError("the Engine.IO read loop still runs 4 s after the failed connect")


@scenario("disconnect() cleanly, then a fresh connection works")
def _(ctx):
    c = ctx.open()
    expect(call(c, "message-with-ack", "hi", "/"), "hi", "ack before disconnect")
    close_cleanly(c)
    c2 = ctx.open(["/custom"])
    expect(receive(c2, "/custom", "auth"), (AUTH,), '"auth" on the second connection')
    close_cleanly(c2, ["/custom"])


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
