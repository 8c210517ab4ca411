#!/usr/bin/python3
"""RFC 6455 conformance suite modelled on the Autobahn|Testsuite server cases.

Usage:
    autobahn.py [-v] [-k PATTERN]... SERVER_CMD [ARGS...]

    e.g.  python3 tests/conformance/autobahn.py ./build/tests/conformance/conformance_echo
          python3 tests/conformance/autobahn.py node tests/conformance/reference_echo.mjs

The server command gets the extra argument "0" (port 0), must print a line
"listening on port N" on stdout, and must echo text as text and binary as
binary.  Every case runs on its own TCP connection to 127.0.0.1:N.  At the end
the server gets SIGTERM and must exit with status 0 within 5 s.

Options:
    -v          verbose: print the events of every case
    -k PATTERN  run only matching case ids (may be repeated or comma-separated).
                A plain pattern matches an id exactly or as a prefix that ends at a
                non-digit ("6.4" -> 6.4.*, "6.5.1" -> 6.5.1 and 6.5.1f but not
                6.5.10); a pattern containing * ? or [ is an fnmatch glob.

Case ids follow Autobahn|Testsuite (categories 1-7, 9, 10).  Extra cases that
Autobahn does not have:
    6.2.5.K   "Hello-µ@ßöäüàá-UTF-8!!" sent as 2 fragments split at byte K (every K)
    6.2.6.K   the same for "κόσμε"
    6.2.7     "Hello-µ@ßöäüàá-UTF-8!!" with every byte in its own fragment
    6.X.Yf    each Markus Kuhn case 6.5-6.23 again, one byte per fragment
    7.9.10-13 close codes 1012-1015 (Autobahn <= 0.5 listed them as invalid)

Outcome semantics (mirroring Autobahn's OK / NON-STRICT / FAILED):
  * "echo" cases: the exact echoed messages / pongs must arrive in order; then we
    send close 1000 (unless the case itself sent a close) and the server must
    answer with a close frame carrying the expected code and then close TCP.
  * "fail" cases: the server must fail the connection: either a close frame with
    the required code (1002 protocol error, 1007 invalid payload) followed by TCP
    close, or a plain TCP close.  Anything echoed must match the case's OK list or
    one of its NON-STRICT alternatives (reported as NON-STRICT).
  * Server frames must be unmasked, have RSV = 0, use minimal length encodings,
    valid opcodes, valid fragmentation, valid UTF-8 text and valid close payloads.
  * Timeouts are always failures (10 s per case, 60 s in category 9).

Judgement calls / strictness beyond Autobahn:
  * 7.7.x and 7.3.3-7.3.5: the server must echo the close code (Autobahn also
    accepts 1000).  7.3.1 (empty close): an empty close or 1000 is accepted.
  * 7.9.10-12 (1012, 1013, 1014) and 7.13.x (5000, 65535) must be rejected with
    1002 (Autobahn treats 7.13.x as informational and no longer tests 1012-1015).
  * 6.4.x: we wait 0.1 s after the valid first part (the server must stay quiet)
    and up to 0.5 s after the invalid part; failing then is OK (fail-fast),
    failing only after the final part is NON-STRICT.  Autobahn waits 1 s each.
  * 5.19/5.20: instead of sleeping 1 s we wait until the first pong arrives
    before sending the rest (stronger: proves the ping was answered mid-message).
  * 9.7/9.8 send the 1000 messages pipelined (Autobahn waits for each echo).
  * Text payloads in 1.x, 9.x and 10.x contain multi-byte UTF-8 so that frame and
    chop boundaries split code points.

Known results against the Node `ws` 8.x reference server (reference_echo.mjs):
  * 7.9.10, 7.9.11, 7.9.12 FAIL: ws treats 1012-1014 as valid close codes (they
    are IANA-registered) and echoes them; this suite follows the stricter rule.
  * 6.4.1-6.4.4 pass NON-STRICT: ws validates UTF-8 only per complete message.
"""

import base64
import codecs
import fnmatch
import hashlib
import json
import math
import os
import random
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import zlib

DEFAULT_TIMEOUT = 10.0   # seconds per case
BIG_TIMEOUT = 60.0       # seconds per case in category 9
STARTUP_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 5.0
CHOP_DELAY = 0.001       # delay between octet-wise / small chops (stimulus)
FRAME_DELAY = 0.005      # delay between frames in "frame-wise chops" cases (stimulus)
FAILFAST_QUIET = 0.1     # 6.4.x: time the server must stay quiet after a valid part
FAILFAST_WAIT = 0.5      # 6.4.x: time we give the server to fail fast

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_PAYLOAD = 1007

VERBOSE = False


def vlog(msg):
    if VERBOSE:
        print("      " + msg, flush=True)


class CaseFail(Exception):
    pass


class Timeout(CaseFail):
    pass


# ----------------------------------------------------------------------------
# Frame encoding
# ----------------------------------------------------------------------------

def mask_bytes(data, key):
    """XOR data with the 4-byte key, using big-integer arithmetic (fast)."""
    n = len(data)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    x = int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")
    return x.to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None):
    """Encode one client frame (masked unless mask=False)."""
    payload = bytes(payload)
    n = len(payload)
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = bytes((b0, mbit | n))
    elif n < 65536:
        hdr = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        hdr = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if not mask:
        return hdr + payload
    if key is None:
        key = os.urandom(4)
    return hdr + key + mask_bytes(payload, key)


def fragments(opcode, payload, size, rsv=0):
    """Frames carrying payload as one message in fragments of `size` bytes; `rsv` goes on
    the first frame only (RSV1 there marks a compressed message)."""
    payload = bytes(payload)
    pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    keys = os.urandom(4 * len(pieces))
    out = []
    for i, piece in enumerate(pieces):
        out.append(frame(opcode if i == 0 else OP_CONT, piece, fin=(i == len(pieces) - 1),
                         rsv=rsv if i == 0 else 0, key=keys[4 * i:4 * i + 4]))
    return out


def split_frames(opcode, parts):
    """Frames carrying the given parts as the fragments of one message."""
    return [frame(opcode if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1))
            for i, p in enumerate(parts)]


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    return code.to_bytes(2, "big") + bytes(reason)


def utf8_valid(data):
    dec = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        step = 1 << 20
        for i in range(0, len(data), step):
            dec.decode(data[i:i + step])
        dec.decode(b"", final=True)
        return True
    except UnicodeDecodeError:
        return False


def wire_close_code_ok(code):
    """May an endpoint put this code in a close frame at all?"""
    return (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999)


# ----------------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------------

def msg(opcode, payload):
    return ("message", opcode, bytes(payload))


def text(payload):
    return msg(OP_TEXT, payload.encode() if isinstance(payload, str) else payload)


def binary(payload):
    return msg(OP_BINARY, payload)


def pong(payload=b""):
    return ("pong", bytes(payload))


def short(data, limit=40):
    if len(data) <= limit:
        return repr(bytes(data))
    return "%r...(%d bytes)" % (bytes(data[:limit]), len(data))


def describe(ev):
    if ev is None:
        return "nothing"
    kind = ev[0]
    if kind == "message":
        return "%s message %s" % ("text" if ev[1] == OP_TEXT else "binary", short(ev[2]))
    if kind in ("ping", "pong"):
        return "%s %s" % (kind, short(ev[1]))
    if kind == "close":
        return "close frame (%s)" % fmt_close(ev[1], ev[2])
    if kind == "eof":
        return "TCP close" + (" (reset)" if ev[1] else "")
    return repr(ev)


def fmt_close(code, reason):
    if code is None:
        return "no status code"
    return "code %d%s" % (code, (", reason " + short(reason)) if reason else "")


def diff_detail(want, got):
    """Explain how two events with the same kind differ."""
    if want[0] != got[0]:
        return ""
    a, b = want[-1], got[-1]
    if want[0] == "message" and want[1] != got[1]:
        return " (wrong message type)"
    if len(a) != len(b):
        return " (length %d, expected %d)" % (len(b), len(a))
    for i in range(len(a)):
        if a[i] != b[i]:
            return " (first difference at byte %d)" % i
    return ""


# ----------------------------------------------------------------------------
# Connection
# ----------------------------------------------------------------------------

class Conn:
    def __init__(self, port, deadline, path="/"):
        self.deadline = deadline
        self.rbuf = bytearray()
        self.eof = False
        self.reset = False
        self.send_dead = None        # reason string once we can no longer send
        self.close_sent = False
        self.server_closed = False   # received the server's close frame
        self.frag_op = None
        self.frag_parts = []
        self.frag_count = 0
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=max(0.1, deadline - time.monotonic()))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ)
        self._handshake(port, path)

    def close(self):
        try:
            self.sel.close()
        finally:
            self.sock.close()

    # -- low level I/O ---------------------------------------------------

    def _read_once(self):
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionResetError, ConnectionAbortedError):
            self.eof = True
            self.reset = True
            return
        if data:
            self.rbuf += data
        else:
            self.eof = True

    def _recv(self, deadline):
        if self.eof:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not self.sel.select(remaining):
            raise Timeout("timeout")
        self._read_once()

    def send_raw(self, data):
        """Send bytes, reading whatever arrives meanwhile (avoids deadlock on big
        echoes).  If the server has gone away, stop sending and remember why."""
        if self.send_dead:
            return False
        mv = memoryview(data)
        off = 0
        want_write = False
        while off < len(mv):
            if self.eof:
                self.send_dead = "server closed TCP while we were sending"
                break
            try:
                off += self.sock.send(mv[off:])
                continue
            except (BlockingIOError, InterruptedError):
                pass
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
                self.send_dead = "send failed: %s" % e.__class__.__name__
                break
            if not want_write:
                self.sel.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
                want_write = True
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout("timeout while sending (server not reading?)")
            for _key, mask in self.sel.select(remaining):
                if mask & selectors.EVENT_READ:
                    self._read_once()
        if want_write:
            self.sel.modify(self.sock, selectors.EVENT_READ)
        if self.send_dead:
            vlog("stopped sending: " + self.send_dead)
            return False
        return True

    def send(self, frames, chop=None, delay=0.0, framewise=False):
        """Send frames: all at once, frame-wise (separate writes with a small delay)
        or chopped into `chop`-byte writes with `delay` between them."""
        if isinstance(frames, (bytes, bytearray)):
            frames = [frames]
        for f in frames:
            if len(f) >= 2 and (f[0] & 0x0F) == OP_CLOSE:
                self.close_sent = True
        if framewise:
            for f in frames:
                if not self.send_raw(f):
                    return False
                time.sleep(FRAME_DELAY)
            return True
        data = b"".join(frames)
        if chop is None:
            return self.send_raw(data)
        for i in range(0, len(data), chop):
            if not self.send_raw(data[i:i + chop]):
                return False
            if delay:
                time.sleep(delay)
        return True

    def send_close(self, code=CLOSE_NORMAL, reason=b""):
        self.send(frame(OP_CLOSE, close_payload(code, reason)))

    # -- handshake -------------------------------------------------------

    def _handshake(self, port, path):
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\n"
               "Host: 127.0.0.1:%d\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "User-Agent: gateway-conformance/1\r\n"
               "\r\n") % (path, port, key)
        self.send_raw(req.encode())
        if self.send_dead:
            raise CaseFail("handshake: " + self.send_dead)
        while True:
            end = self.rbuf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if self.eof:
                raise CaseFail("handshake: server closed the connection")
            if len(self.rbuf) > 65536:
                raise CaseFail("handshake: response headers too long")
            try:
                self._recv(self.deadline)
            except Timeout:
                raise CaseFail("handshake: timeout waiting for the HTTP response")
        head = bytes(self.rbuf[:end]).decode("latin-1")
        del self.rbuf[:end + 4]
        lines = head.split("\r\n")
        if not re.match(r"HTTP/1\.1 101\b", lines[0]):
            raise CaseFail("handshake: unexpected status line %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())

        def one(name):
            v = headers.get(name)
            return ",".join(v) if v else None

        up = one("upgrade")
        if up is None or up.lower() != "websocket":
            raise CaseFail("handshake: bad Upgrade header %r" % up)
        conn = one("connection") or ""
        if "upgrade" not in [t.strip().lower() for t in conn.split(",")]:
            raise CaseFail("handshake: bad Connection header %r" % conn)
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        if one("sec-websocket-accept") != accept:
            raise CaseFail("handshake: bad Sec-WebSocket-Accept %r (expected %r)"
                           % (one("sec-websocket-accept"), accept))
        if one("sec-websocket-extensions"):
            raise CaseFail("handshake: server selected an extension we did not offer")
        if one("sec-websocket-protocol"):
            raise CaseFail("handshake: server selected a subprotocol we did not offer")

    # -- frame parsing ---------------------------------------------------

    def _violation(self, what):
        raise CaseFail("server protocol violation: " + what)

    def _parse_frame(self):
        """Parse one server frame from rbuf; None if incomplete."""
        buf = self.rbuf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b1 & 0x80:
            self._violation("server frame has the MASK bit set")
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return None
            n = int.from_bytes(buf[2:4], "big")
            pos = 4
            if n < 126:
                self._violation("non-minimal 16-bit length %d" % n)
        elif n == 127:
            if len(buf) < 10:
                return None
            n = int.from_bytes(buf[2:10], "big")
            pos = 10
            if n >> 63:
                self._violation("64-bit length with the high bit set")
            if n < 65536:
                self._violation("non-minimal 64-bit length %d" % n)
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos:pos + n])
        del buf[:pos + n]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload

    def _try_event(self):
        while True:
            fr = self._parse_frame()
            if fr is None:
                return None
            fin, rsv, op, payload = fr
            if self.server_closed:
                self._violation("server sent %s after its close frame"
                                % ("opcode %d frame" % op))
            if rsv:
                self._violation("server frame has RSV bits 0x%x set" % rsv)
            if op >= 8:
                if op not in (OP_CLOSE, OP_PING, OP_PONG):
                    self._violation("reserved control opcode %d" % op)
                if not fin:
                    self._violation("fragmented control frame (opcode %d)" % op)
                if len(payload) > 125:
                    self._violation("control frame payload of %d bytes" % len(payload))
                if op == OP_CLOSE:
                    self.server_closed = True
                    if len(payload) == 0:
                        return ("close", None, b"")
                    if len(payload) == 1:
                        self._violation("close frame with a 1-byte payload")
                    code = int.from_bytes(payload[:2], "big")
                    if not wire_close_code_ok(code):
                        self._violation("close frame with code %d, which must not be sent" % code)
                    if not utf8_valid(payload[2:]):
                        self._violation("close reason is not valid UTF-8")
                    return ("close", code, payload[2:])
                return ("ping" if op == OP_PING else "pong", payload)
            if op not in (OP_CONT, OP_TEXT, OP_BINARY):
                self._violation("reserved data opcode %d" % op)
            if op == OP_CONT:
                if self.frag_op is None:
                    self._violation("continuation frame without a message to continue")
                self.frag_parts.append(payload)
            else:
                if self.frag_op is not None:
                    self._violation("new data frame inside a fragmented message")
                self.frag_op = op
                self.frag_parts = [payload]
            self.frag_count += 1
            if fin:
                data = b"".join(self.frag_parts)
                op, nframes = self.frag_op, self.frag_count
                self.frag_op, self.frag_parts, self.frag_count = None, [], 0
                if op == OP_TEXT and not utf8_valid(data):
                    self._violation("text message is not valid UTF-8")
                if nframes > 1:
                    vlog("server sent a message in %d frames" % nframes)
                return ("message", op, data)

    def next_event(self, deadline=None):
        """Next message / pong / close / eof.  Pings from the server are answered."""
        deadline = self.deadline if deadline is None else min(deadline, self.deadline)
        while True:
            ev = self._try_event()
            if ev is not None:
                if ev[0] == "ping":
                    vlog("server sent ping %s; answering" % short(ev[1]))
                    if not self.close_sent:
                        self.send(frame(OP_PONG, ev[1]))
                    continue
                vlog("got " + describe(ev))
                return ev
            if self.eof:
                if self.rbuf:
                    self._violation("TCP closed in the middle of a frame")
                vlog("got " + describe(("eof", self.reset)))
                return ("eof", self.reset)
            self._recv(deadline)

    def poll_event(self, seconds):
        """Event within `seconds`, or None (used only for stimulus delays)."""
        try:
            return self.next_event(time.monotonic() + seconds)
        except Timeout:
            if time.monotonic() >= self.deadline:
                raise
            return None

    def wait_eof(self):
        """After the close frames: the server must close TCP and send nothing more."""
        while True:
            if self.rbuf:
                if self.eof and len(self.rbuf) < 2:
                    self._violation("stray bytes after the close frame")
                self._try_event()   # raises "after its close frame"
                self._violation("stray bytes after the close frame")
            if self.eof:
                return
            try:
                self._recv(self.deadline)
            except Timeout:
                raise CaseFail("timeout: server did not close the TCP connection "
                               "after the close frame")


# ----------------------------------------------------------------------------
# Expectation engine
# ----------------------------------------------------------------------------

def finish_fail(c, ev, codes):
    """ev is the event that ended the data phase of a 'fail' case."""
    if ev[0] == "eof":
        return "TCP closed without close frame"
    code = ev[1]
    if code not in codes:
        raise CaseFail("server closed with %s, expected %s"
                       % (fmt_close(code, ev[2]), "/".join(map(str, codes))))
    if not c.close_sent:
        c.send_close(code)   # answer the close, as a client should (errors ignored)
    c.wait_eof()
    return "close %d" % code


def expect(c, events=(), alts=(), close="normal", codes=(CLOSE_NORMAL,),
           allow_empty_close=False):
    """Read the server's reaction and check it.

    events: the strict (OK) list of expected messages/pongs, in order.
    alts:   NON-STRICT alternatives, list of (events, explanation).
    close:  "normal": after the events we send close 1000 (unless the case did)
                      and the server must reply with a code in `codes`, then
                      close TCP.
            "fail":   the server must fail the connection (close frame with a code
                      in `codes` and TCP close, or just TCP close).
    Returns a note for the result line.
    """
    events = list(events)
    cands = [(None, events)] + [(why, list(evs)) for evs, why in alts]
    got = 0
    if close == "normal" and not events and not c.close_sent:
        c.send_close(CLOSE_NORMAL)
    while True:
        try:
            ev = c.next_event()
        except Timeout:
            if got < len(events):
                raise CaseFail("timeout waiting for %s (got %d of %d expected events)"
                               % (describe(events[got]), got, len(events)))
            if close == "fail":
                raise CaseFail("timeout: server did not fail the connection")
            raise CaseFail("timeout waiting for the server's close frame")
        if ev[0] in ("message", "pong"):
            i = got
            got += 1
            nxt = [(why, lst) for why, lst in cands if i < len(lst) and lst[i] == ev]
            if not nxt:
                want = [lst[i] for _, lst in cands if i < len(lst)]
                if want:
                    raise CaseFail("event #%d: got %s, expected %s%s"
                                   % (got, describe(ev), describe(want[0]),
                                      diff_detail(want[0], ev)))
                raise CaseFail("unexpected %s (event #%d)" % (describe(ev), got))
            cands = nxt
            if (close == "normal" and not c.close_sent and got == len(events)
                    and any(why is None for why, _ in cands)):
                c.send_close(CLOSE_NORMAL)
            continue
        break   # close frame or TCP close

    done = [(why, lst) for why, lst in cands if len(lst) == got]
    if not done:
        missing = min((lst for _, lst in cands), key=len)
        if got < len(missing):
            raise CaseFail("server sent %s before %s (got %d of %d expected events)"
                           % (describe(ev), describe(missing[got]), got, len(missing)))
        raise CaseFail("unexpected event sequence")
    notes = []
    if not any(why is None for why, _ in done):
        notes.append("NON-STRICT: " + done[0][0])

    if close == "fail":
        notes.insert(0, finish_fail(c, ev, codes))
        return "; ".join(notes)

    if ev[0] == "eof":
        raise CaseFail("server closed TCP without a close frame")
    if not c.close_sent:
        raise CaseFail("server closed unexpectedly (%s)" % fmt_close(ev[1], ev[2]))
    code = ev[1]
    if code is None:
        if not allow_empty_close:
            raise CaseFail("server's close frame has no status code, expected %s"
                           % "/".join(map(str, codes)))
    elif code not in codes:
        raise CaseFail("server replied with close %s, expected %s"
                       % (fmt_close(code, ev[2]), "/".join(map(str, codes))))
    c.wait_eof()
    return "; ".join(notes)


def echo(c, opcode, payload, **send_opts):
    c.send(frame(opcode, payload), **send_opts)
    return expect(c, [msg(opcode, payload)])


# ----------------------------------------------------------------------------
# Payload generators
# ----------------------------------------------------------------------------

_TEXT_PATTERN = "Hello-µ@ßöäüàá-UTF-8!! κόσμε 𤭢 €uro ".encode()
_text_cache = {}
_bin_cache = {}


def make_text(n):
    """n bytes of valid UTF-8 with multi-byte sequences at shifting offsets."""
    if n not in _text_cache:
        data = (_TEXT_PATTERN * (n // len(_TEXT_PATTERN) + 1))[:n]
        try:
            data.decode()
        except UnicodeDecodeError as e:
            data = data[:e.start] + b"*" * (n - e.start)
        _text_cache[n] = data
    return _text_cache[n]


def make_binary(n):
    if n not in _bin_cache:
        _bin_cache[n] = random.Random(n).randbytes(n)
    return _bin_cache[n]


def make_payload(opcode, n):
    return make_text(n) if opcode == OP_TEXT else make_binary(n)


# ----------------------------------------------------------------------------
# Case registry
# ----------------------------------------------------------------------------

CASES = []


def add(cid, desc, fn, timeout=DEFAULT_TIMEOUT):
    CASES.append((cid, desc, fn, timeout))


KIB = 1024
MIB = 1024 * 1024
HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode()
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"          # κόσμε
INVALID_KOSME = KOSME + b"\xed\xa0\x80" + b"edited"              # contains a surrogate


# ---- 1.x framing ------------------------------------------------------------

def build_cat1():
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for sub, op, kind in ((1, OP_TEXT, "text"), (2, OP_BINARY, "binary")):
        for i, n in enumerate(sizes, 1):
            add("1.%d.%d" % (sub, i), "%s message, payload length %d" % (kind, n),
                lambda c, op=op, n=n: echo(c, op, make_payload(op, n)))
        add("1.%d.8" % sub, "%s message, payload length 65536, sent in 997-byte chops" % kind,
            lambda c, op=op: echo(c, op, make_payload(op, 65536), chop=997, delay=CHOP_DELAY))


# ---- 2.x pings / pongs ---------------------------------------------------------

def ping_case(payload, **opts):
    def run(c):
        c.send(frame(OP_PING, payload), **opts)
        return expect(c, [pong(payload)])
    return run


def c2_5(c):
    c.send(frame(OP_PING, b"\xfe" * 126))
    return expect(c, close="fail", codes=(CLOSE_PROTOCOL_ERROR,))


def c2_7(c):
    c.send(frame(OP_PONG))
    return expect(c)


def c2_8(c):
    c.send(frame(OP_PONG, b"unsolicited pong payload"))
    return expect(c)


def c2_9(c):
    c.send([frame(OP_PONG, b"unsolicited pong payload"), frame(OP_PING, b"ping payload")])
    return expect(c, [pong(b"ping payload")])


def ten_pings(**opts):
    def run(c):
        payloads = [b"payload-%d" % i for i in range(10)]
        c.send([frame(OP_PING, p) for p in payloads], **opts)
        return expect(c, [pong(p) for p in payloads])
    return run


def build_cat2():
    add("2.1", "ping without payload", ping_case(b""))
    add("2.2", "ping with small text payload", ping_case(b"Hello, world!"))
    add("2.3", "ping with small binary payload", ping_case(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"))
    add("2.4", "ping with 125-byte binary payload", ping_case(b"\xfe" * 125))
    add("2.5", "ping with 126-byte payload -> fail", c2_5)
    add("2.6", "ping with 125-byte payload, octet-wise chops",
        ping_case(b"\xfe" * 125, chop=1, delay=CHOP_DELAY))
    add("2.7", "unsolicited pong without payload -> ignored", c2_7)
    add("2.8", "unsolicited pong with payload -> ignored", c2_8)
    add("2.9", "unsolicited pong, then ping -> only the ping is answered", c2_9)
    add("2.10", "10 pings with payload -> 10 pongs", ten_pings())
    add("2.11", "10 pings with payload, octet-wise chops -> 10 pongs",
        ten_pings(chop=1, delay=CHOP_DELAY))


# ---- 3.x reserved bits ---------------------------------------------------------

NO_ECHO_BEFORE_FAIL = "echo of the valid message before the violation was not received"


def rsv_after_text(rsv, **opts):
    def run(c):
        p = b"Hello, world!"
        c.send([frame(OP_TEXT, p), frame(OP_TEXT, p, rsv=rsv), frame(OP_PING)], **opts)
        return expect(c, [text(p)], alts=[([], NO_ECHO_BEFORE_FAIL)],
                      close="fail", codes=(CLOSE_PROTOCOL_ERROR,))
    return run


def single_fail(f, codes=(CLOSE_PROTOCOL_ERROR,), **opts):
    def run(c):
        c.send(f() if callable(f) else f, **opts)
        return expect(c, close="fail", codes=codes)
    return run


def build_cat3():
    add("3.1", "text message with RSV=1 -> fail",
        single_fail(lambda: frame(OP_TEXT, b"Hello, world!", rsv=1)))
    add("3.2", "text, text with RSV=2, ping -> echo, fail, no pong", rsv_after_text(2))
    add("3.3", "text, text with RSV=3, ping, frame-wise chops -> echo, fail, no pong",
        rsv_after_text(3, framewise=True))
    add("3.4", "text, text with RSV=4, ping, octet-wise chops -> echo, fail, no pong",
        rsv_after_text(4, chop=1, delay=CHOP_DELAY))
    add("3.5", "binary message with RSV=5 -> fail",
        single_fail(lambda: frame(OP_BINARY, bytes(range(256)), rsv=5)))
    add("3.6", "ping with RSV=6 -> fail",
        single_fail(lambda: frame(OP_PING, b"Hello, world!", rsv=6)))
    add("3.7", "close with RSV=7 -> fail",
        single_fail(lambda: frame(OP_CLOSE, close_payload(CLOSE_NORMAL), rsv=7)))


# ---- 4.x reserved opcodes --------------------------------------------------------

def opcode_after_text(op, payload, **opts):
    def run(c):
        p = b"Hello, world!"
        c.send([frame(OP_TEXT, p), frame(op, payload), frame(OP_PING)], **opts)
        return expect(c, [text(p)], alts=[([], NO_ECHO_BEFORE_FAIL)],
                      close="fail", codes=(CLOSE_PROTOCOL_ERROR,))
    return run


def build_cat4():
    for sub, ops in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        kind = "non-control" if sub == 1 else "control"
        o1, o2, o3, o4, o5 = ops
        add("4.%d.1" % sub, "reserved %s opcode %d -> fail" % (kind, o1),
            single_fail(lambda o1=o1: frame(o1)))
        add("4.%d.2" % sub, "reserved %s opcode %d with payload -> fail" % (kind, o2),
            single_fail(lambda o2=o2: frame(o2, b"reserved opcode payload")))
        add("4.%d.3" % sub, "text, reserved opcode %d, ping -> echo, fail" % o3,
            opcode_after_text(o3, b""))
        add("4.%d.4" % sub, "text, reserved opcode %d with payload, ping -> echo, fail" % o4,
            opcode_after_text(o4, b"reserved opcode payload"))
        add("4.%d.5" % sub, "text, reserved opcode %d with payload, ping, octet-wise chops" % o5,
            opcode_after_text(o5, b"reserved opcode payload", chop=1, delay=CHOP_DELAY))


# ---- 5.x fragmentation --------------------------------------------------------------

def frag_control(op):
    return single_fail(lambda: [frame(op, b"fragment1", fin=False),
                                frame(OP_CONT, b"fragment2", fin=True)])


def frag_text(**opts):
    def run(c):
        c.send([frame(OP_TEXT, b"fragment1", fin=False), frame(OP_CONT, b"fragment2")], **opts)
        return expect(c, [text(b"fragment1fragment2")])
    return run


def frag_text_ping(**opts):
    def run(c):
        c.send([frame(OP_TEXT, b"fragment1", fin=False), frame(OP_PING, b"ping payload"),
                frame(OP_CONT, b"fragment2")], **opts)
        return expect(c, [pong(b"ping payload"), text(b"fragment1fragment2")])
    return run


def orphan_cont(first_fin, **opts):
    def run(c):
        c.send([frame(OP_CONT, b"non-continuation payload", fin=first_fin),
                frame(OP_TEXT, b"Hello, world!", fin=False),
                frame(OP_CONT, b"continuation payload")], **opts)
        return expect(c, close="fail", codes=(CLOSE_PROTOCOL_ERROR,))
    return run


def c5_15(c):
    c.send([frame(OP_TEXT, b"fragment1", fin=False), frame(OP_CONT, b"fragment2"),
            frame(OP_CONT, b"fragment3", fin=False), frame(OP_TEXT, b"fragment4")])
    return expect(c, [text(b"fragment1fragment2")], alts=[([], NO_ECHO_BEFORE_FAIL)],
                  close="fail", codes=(CLOSE_PROTOCOL_ERROR,))


def repeated_orphans(first_fin):
    def run(c):
        fs = []
        for _ in range(2):
            fs += [frame(OP_CONT, b"fragment1", fin=first_fin),
                   frame(OP_TEXT, b"fragment2", fin=False),
                   frame(OP_CONT, b"fragment3")]
        c.send(fs)
        return expect(c, close="fail", codes=(CLOSE_PROTOCOL_ERROR,))
    return run


def c5_18(c):
    c.send([frame(OP_TEXT, b"fragment1", fin=False), frame(OP_TEXT, b"fragment2")])
    return expect(c, close="fail", codes=(CLOSE_PROTOCOL_ERROR,))


def pings_in_long_message(framewise):
    def run(c):
        frags = [b"fragment%d" % i for i in range(1, 6)]
        c.send([frame(OP_TEXT, frags[0], fin=False), frame(OP_CONT, frags[1], fin=False),
                frame(OP_PING, b"pongme 1!")], framewise=framewise)
        # Autobahn waits 1 s here; we instead require the pong to arrive while the
        # message is still incomplete.
        ev = c.next_event()
        if ev != pong(b"pongme 1!"):
            raise CaseFail("expected pong 'pongme 1!' before the message was complete, got %s"
                           % describe(ev))
        c.send([frame(OP_CONT, frags[2], fin=False), frame(OP_CONT, frags[3], fin=False),
                frame(OP_PING, b"pongme 2!"), frame(OP_CONT, frags[4])], framewise=framewise)
        return expect(c, [pong(b"pongme 2!"), text(b"".join(frags))])
    return run


def build_cat5():
    add("5.1", "ping fragmented into 2 frames -> fail", frag_control(OP_PING))
    add("5.2", "pong fragmented into 2 frames -> fail", frag_control(OP_PONG))
    add("5.3", "text message in 2 fragments", frag_text())
    add("5.4", "text message in 2 fragments, frame-wise chops", frag_text(framewise=True))
    add("5.5", "text message in 2 fragments, octet-wise chops",
        frag_text(chop=1, delay=CHOP_DELAY))
    add("5.6", "text in 2 fragments with ping in between", frag_text_ping())
    add("5.7", "text in 2 fragments with ping in between, frame-wise chops",
        frag_text_ping(framewise=True))
    add("5.8", "text in 2 fragments with ping in between, octet-wise chops",
        frag_text_ping(chop=1, delay=CHOP_DELAY))
    add("5.9", "continuation (FIN=1) with nothing to continue, then fragmented text -> fail",
        orphan_cont(True))
    add("5.10", "as 5.9, frame-wise chops", orphan_cont(True, framewise=True))
    add("5.11", "as 5.9, octet-wise chops", orphan_cont(True, chop=1, delay=CHOP_DELAY))
    add("5.12", "continuation (FIN=0) with nothing to continue, then fragmented text -> fail",
        orphan_cont(False))
    add("5.13", "as 5.12, frame-wise chops", orphan_cont(False, framewise=True))
    add("5.14", "as 5.12, octet-wise chops", orphan_cont(False, chop=1, delay=CHOP_DELAY))
    add("5.15", "fragmented text, then orphan continuation (FIN=0), then text -> echo, fail", c5_15)
    add("5.16", "2x: orphan continuation (FIN=0), text FIN=0, continuation -> fail",
        repeated_orphans(False))
    add("5.17", "2x: orphan continuation (FIN=1), text FIN=0, continuation -> fail",
        repeated_orphans(True))
    add("5.18", "text FIN=0 followed by text (not continuation) -> fail", c5_18)
    add("5.19", "text in 5 fragments with 2 pings in between, pong before completion",
        pings_in_long_message(False))
    add("5.20", "as 5.19, frame-wise chops", pings_in_long_message(True))


# ---- 6.x UTF-8 ------------------------------------------------------------------

def utf8_case(payload, valid, sender):
    """sender(c, payload) transmits payload as one text message."""
    def run(c):
        sender(c, payload)
        if valid:
            return expect(c, [text(payload)])
        return expect(c, close="fail", codes=(CLOSE_INVALID_PAYLOAD,))
    return run


def send_one_frame(c, payload):
    c.send(frame(OP_TEXT, payload))


def send_bytewise_fragments(c, payload):
    c.send(split_frames(OP_TEXT, [payload[i:i + 1] for i in range(len(payload))] or [b""]))


def send_octet_chops(c, payload):
    c.send(frame(OP_TEXT, payload), chop=1, delay=CHOP_DELAY)


def kuhn_groups():
    """Test sequences after Markus Kuhn's UTF-8-test.txt, grouped as Autobahn 6.5-6.23.
    Returns [(title, [(valid, bytes), ...]), ...]."""
    groups = []
    groups.append(("valid UTF-8 sequences", [
        (True, b"hello\x24world"), (True, b"hello\xc2\xa2world"),
        (True, b"hello\xe2\x82\xacworld"), (True, b"hello\xf0\xa4\xad\xa2world"),
        (True, KOSME)]))
    groups.append(("prefixes of a valid multi-byte string",
                   [(utf8_valid(KOSME[:i]), KOSME[:i]) for i in range(1, len(KOSME) + 1)]))
    groups.append(("first possible sequence of each length", [
        (True, b"\x00"), (True, b"\xc2\x80"), (True, b"\xe0\xa0\x80"), (True, b"\xf0\x90\x80\x80")]))
    groups.append(("first possible 5/6-byte sequence (invalid)", [
        (False, b"\xf8\x88\x80\x80\x80"), (False, b"\xfc\x84\x80\x80\x80\x80")]))
    groups.append(("last possible sequence of each length", [
        (True, b"\x7f"), (True, b"\xdf\xbf"), (True, b"\xef\xbf\xbf"), (True, b"\xf4\x8f\xbf\xbf")]))
    groups.append(("last possible 4/5/6-byte sequence (invalid, > U+10FFFF)", [
        (False, b"\xf7\xbf\xbf\xbf"), (False, b"\xfb\xbf\xbf\xbf\xbf"),
        (False, b"\xfd\xbf\xbf\xbf\xbf\xbf")]))
    groups.append(("other boundary conditions", [
        (True, b"\xed\x9f\xbf"), (True, b"\xee\x80\x80"), (True, b"\xef\xbf\xbd"),
        (True, b"\xf4\x8f\xbf\xbf"), (False, b"\xf4\x90\x80\x80")]))
    groups.append(("unexpected continuation bytes", [
        (False, b"\x80"), (False, b"\xbf"), (False, b"\x80\xbf"), (False, b"\x80\xbf\x80"),
        (False, b"\x80\xbf\x80\xbf"), (False, b"\x80\xbf\x80\xbf\x80"),
        (False, b"\x80\xbf\x80\xbf\x80\xbf"), (False, bytes(range(0x80, 0xbf)))]))
    groups.append(("lonely start bytes followed by spaces", [
        (False, b"".join(bytes((b, 0x20)) for b in range(lo, hi)))
        for lo, hi in ((0xc0, 0xdf), (0xe0, 0xef), (0xf0, 0xf7), (0xf8, 0xfb), (0xfc, 0xfd))]))
    incomplete = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80",
                  b"\xfc\x80\x80\x80\x80", b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf",
                  b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    groups.append(("sequences with the last continuation byte missing",
                   [(False, s) for s in incomplete]))
    groups.append(("concatenation of incomplete sequences", [(False, b"".join(incomplete))]))
    groups.append(("impossible bytes 0xFE / 0xFF", [
        (False, b"\xfe"), (False, b"\xff"), (False, b"\xfe\xfe\xff\xff")]))
    groups.append(("overlong ASCII '/'", [
        (False, b"\xc0\xaf"), (False, b"\xe0\x80\xaf"), (False, b"\xf0\x80\x80\xaf"),
        (False, b"\xf8\x80\x80\x80\xaf"), (False, b"\xfc\x80\x80\x80\x80\xaf")]))
    groups.append(("maximum overlong sequences", [
        (False, b"\xc1\xbf"), (False, b"\xe0\x9f\xbf"), (False, b"\xf0\x8f\xbf\xbf"),
        (False, b"\xf8\x87\xbf\xbf\xbf"), (False, b"\xfc\x83\xbf\xbf\xbf\xbf")]))
    groups.append(("overlong NUL", [
        (False, b"\xc0\x80"), (False, b"\xe0\x80\x80"), (False, b"\xf0\x80\x80\x80"),
        (False, b"\xf8\x80\x80\x80\x80"), (False, b"\xfc\x80\x80\x80\x80\x80")]))
    singles = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
               b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"]
    groups.append(("single UTF-16 surrogates", [(False, s) for s in singles]))
    highs = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"]
    lows = [b"\xed\xb0\x80", b"\xed\xbf\xbf"]
    groups.append(("paired UTF-16 surrogates", [(False, h + l) for h in highs for l in lows]))
    nonchars = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"]
    for z1 in (0xf0, 0xf1, 0xf2, 0xf3, 0xf4):
        for z2 in (0x8f, 0x9f, 0xaf, 0xbf):
            if z1 == 0xf4 and z2 != 0x8f:
                continue          # > U+10FFFF
            for z3 in (0xbe, 0xbf):
                if z1 == 0xf0 and z2 == 0x8f:
                    continue      # overlong
                nonchars.append(bytes((z1, z2, 0xbf, z3)))
    groups.append(("non-characters (valid UTF-8)", [(True, s) for s in nonchars]))
    groups.append(("Unicode specials (valid UTF-8)", [
        (True, bytes((0xef, 0xbf, b))) for b in range(0xb9, 0xc0)]))
    # Self-check of the table against Python's strict decoder.
    for title, seqs in groups:
        for valid, s in seqs:
            assert utf8_valid(s) == valid, (title, s)
    return groups


def failfast_case(parts, one_frame):
    """6.4.x: invalid text sent in 3 parts (frames, or chops of one frame)."""
    def run(c):
        payload = b"".join(parts)
        if one_frame:
            whole = frame(OP_TEXT, payload)
            hl = len(whole) - len(payload)
            cut1, cut2 = hl + len(parts[0]), hl + len(parts[0]) + len(parts[1])
            chunks = [whole[:cut1], whole[cut1:cut2], whole[cut2:]]
        else:
            chunks = split_frames(OP_TEXT, parts)
        c.send(chunks[0])
        ev = c.poll_event(FAILFAST_QUIET)
        if ev is not None:
            raise CaseFail("server reacted to the valid first part: %s" % describe(ev))
        c.send(chunks[1])
        ev = c.poll_event(FAILFAST_WAIT)
        note = "failed fast"
        if ev is None:
            c.send(chunks[2])
            note = "NON-STRICT: failed only after the complete message, not fail-fast"
            try:
                ev = c.next_event()
            except Timeout:
                raise CaseFail("timeout: server did not fail the connection")
        if ev[0] not in ("close", "eof"):
            raise CaseFail("got %s, expected the connection to be failed" % describe(ev))
        return finish_fail(c, ev, (CLOSE_INVALID_PAYLOAD,)) + "; " + note
    return run


def build_cat6():
    add("6.1.1", "empty text message", lambda c: echo(c, OP_TEXT, b""))

    def c6_1_2(c):
        c.send(split_frames(OP_TEXT, [b"", b"", b""]))
        return expect(c, [text(b"")])

    def c6_1_3(c):
        c.send(split_frames(OP_TEXT, [b"", b"middle frame payload", b""]))
        return expect(c, [text(b"middle frame payload")])

    add("6.1.2", "empty text message in 3 empty fragments", c6_1_2)
    add("6.1.3", "text in 3 fragments, first and last empty", c6_1_3)

    def c6_2_2(c):
        c.send(split_frames(OP_TEXT, ["Hello-µ@ßöä".encode(), "üàá-UTF-8!!".encode()]))
        return expect(c, [text(HELLO)])

    add("6.2.1", "valid UTF-8 text in one frame", utf8_case(HELLO, True, send_one_frame))
    add("6.2.2", "valid UTF-8 text in 2 fragments split at a code point boundary", c6_2_2)
    add("6.2.3", "valid UTF-8 text, octet-wise chops", utf8_case(HELLO, True, send_octet_chops))
    add("6.2.4", "valid UTF-8 'κόσμε', octet-wise chops", utf8_case(KOSME, True, send_octet_chops))

    def split_at(payload, k):
        def run(c):
            c.send(split_frames(OP_TEXT, [payload[:k], payload[k:]]))
            return expect(c, [text(payload)])
        return run

    for k in range(1, len(HELLO)):
        add("6.2.5.%d" % k, "valid UTF-8 text in 2 fragments split at byte %d" % k,
            split_at(HELLO, k))
    for k in range(1, len(KOSME)):
        add("6.2.6.%d" % k, "'κόσμε' in 2 fragments split at byte %d" % k, split_at(KOSME, k))
    add("6.2.7", "valid UTF-8 text, one byte per fragment",
        utf8_case(HELLO, True, send_bytewise_fragments))

    add("6.3.1", "invalid UTF-8 text in one frame -> 1007",
        utf8_case(INVALID_KOSME, False, send_one_frame))
    add("6.3.2", "invalid UTF-8 text, octet-wise chops -> 1007",
        utf8_case(INVALID_KOSME, False, send_octet_chops))

    # 6.4.x fail-fast: the payload becomes invalid at byte 12 (0xF4 0x90 = > U+10FFFF).
    p1, p2, p3 = KOSME, b"\xf4\x90\x80\x80", b"edited"
    whole = p1 + p2 + p3
    add("6.4.1", "invalid UTF-8 in 3 frames, invalid in the 2nd -> fail fast",
        failfast_case([p1, p2, p3], False))
    add("6.4.2", "as 6.4.1, 2nd frame ends at the offending byte",
        failfast_case([whole[:12], whole[12:13], whole[13:]], False))
    add("6.4.3", "as 6.4.1, but 3 chops of a single frame",
        failfast_case([p1, p2, p3], True))
    add("6.4.4", "as 6.4.2, but 3 chops of a single frame",
        failfast_case([whole[:12], whole[12:13], whole[13:]], True))

    for gi, (title, seqs) in enumerate(kuhn_groups(), 5):
        for si, (valid, s) in enumerate(seqs, 1):
            what = "valid" if valid else "invalid"
            add("6.%d.%d" % (gi, si), "%s: %s %s" % (title, what, s.hex()),
                utf8_case(s, valid, send_one_frame))
            add("6.%d.%df" % (gi, si), "%s: %s %s, one byte per fragment" % (title, what, s.hex()),
                utf8_case(s, valid, send_bytewise_fragments))


# ---- 7.x close handling --------------------------------------------------------------

def c7_1_1(c):
    c.send([frame(OP_TEXT, b"Hello World!"), frame(OP_CLOSE, close_payload(CLOSE_NORMAL))])
    return expect(c, [text(b"Hello World!")])


def c7_1_2(c):
    c.send([frame(OP_CLOSE, close_payload(CLOSE_NORMAL))] * 2)
    return expect(c)


def c7_1_3(c):
    c.send([frame(OP_CLOSE, close_payload(CLOSE_NORMAL)), frame(OP_PING, b"ping")])
    return expect(c)


def c7_1_4(c):
    c.send([frame(OP_CLOSE, close_payload(CLOSE_NORMAL)), frame(OP_TEXT, b"Hello World!")])
    return expect(c)


def c7_1_5(c):
    c.send([frame(OP_TEXT, b"fragment1", fin=False),
            frame(OP_CLOSE, close_payload(CLOSE_NORMAL)),
            frame(OP_CONT, b"fragment2")])
    return expect(c)


def c7_1_6(c):
    big = (b"BAsd7&jh23" * (256 * KIB // 10 + 1))[:256 * KIB]
    c.send([frame(OP_TEXT, big), frame(OP_TEXT, b"Hello World!"),
            frame(OP_CLOSE, close_payload(CLOSE_NORMAL)), frame(OP_PING)])
    return expect(c, [text(big), text(b"Hello World!")],
                  alts=[([text(big)], "close processed before the 2nd message was echoed"),
                        ([], "close processed before the messages were echoed")])


def close_case(payload, close="normal", codes=(CLOSE_NORMAL,), allow_empty=False):
    def run(c):
        c.send(frame(OP_CLOSE, payload))
        return expect(c, close=close, codes=codes, allow_empty_close=allow_empty)
    return run


def build_cat7():
    add("7.1.1", "text message then close -> echo, close 1000", c7_1_1)
    add("7.1.2", "close twice -> single close reply", c7_1_2)
    add("7.1.3", "close then ping -> no pong", c7_1_3)
    add("7.1.4", "close then text -> no echo", c7_1_4)
    add("7.1.5", "text fragment, close, final fragment -> no echo", c7_1_5)
    add("7.1.6", "256 KiB text, text, close, ping -> echoes, close, no pong", c7_1_6)
    add("7.3.1", "close with empty payload -> empty close or 1000",
        close_case(b"", allow_empty=True))
    add("7.3.2", "close with 1-byte payload -> 1002",
        close_case(b"\x03", close="fail", codes=(CLOSE_PROTOCOL_ERROR,)))
    add("7.3.3", "close 1000 without reason -> 1000", close_case(close_payload(1000)))
    add("7.3.4", "close 1000 with reason -> 1000", close_case(close_payload(1000, b"Hello World!")))
    add("7.3.5", "close 1000 with 123-byte reason -> 1000",
        close_case(close_payload(1000, b"*" * 123)))
    add("7.3.6", "close with 124-byte reason (payload 126) -> 1002",
        close_case(close_payload(1000, b"*" * 124), close="fail", codes=(CLOSE_PROTOCOL_ERROR,)))
    add("7.5.1", "close with invalid UTF-8 reason -> 1007",
        close_case(close_payload(1000, INVALID_KOSME), close="fail",
                   codes=(CLOSE_INVALID_PAYLOAD,)))
    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
    for i, code in enumerate(valid, 1):
        add("7.7.%d" % i, "close with valid code %d -> echoed" % code,
            close_case(close_payload(code), codes=(code,)))
    invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 1012, 1013, 1014, 1015]
    for i, code in enumerate(invalid, 1):
        add("7.9.%d" % i, "close with invalid code %d -> 1002" % code,
            close_case(close_payload(code), close="fail", codes=(CLOSE_PROTOCOL_ERROR,)))
    add("7.13.1", "close with code 5000 -> 1002",
        close_case(close_payload(5000), close="fail", codes=(CLOSE_PROTOCOL_ERROR,)))
    add("7.13.2", "close with code 65535 -> 1002",
        close_case(close_payload(65535), close="fail", codes=(CLOSE_PROTOCOL_ERROR,)))


# ---- 9.x limits / performance ------------------------------------------------------------

def fmt_size(n):
    return "%d MiB" % (n // MIB) if n >= MIB else "%d KiB" % (n // KIB)


def big_fragmented(op, n, size):
    def run(c):
        payload = make_payload(op, n)
        c.send(fragments(op, payload, size))
        return expect(c, [msg(op, payload)])
    return run


def many_messages(op, n, count=1000):
    def run(c):
        payloads = [make_payload(op, n)] * count
        c.send([frame(op, p) for p in payloads])
        return expect(c, [msg(op, p) for p in payloads])
    return run


def build_cat9():
    for op, kind, single, frag, chopped, many in ((OP_TEXT, "text", 1, 3, 5, 7),
                                                  (OP_BINARY, "binary", 2, 4, 6, 8)):
        for i, n in enumerate([64 * KIB, 256 * KIB, MIB, 4 * MIB, 8 * MIB, 16 * MIB], 1):
            add("9.%d.%d" % (single, i), "%s message of %s in one frame" % (kind, fmt_size(n)),
                lambda c, op=op, n=n: echo(c, op, make_payload(op, n)), BIG_TIMEOUT)
        sizes = [64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB]
        for i, s in enumerate(sizes, 1):
            add("9.%d.%d" % (frag, i), "4 MiB %s message in fragments of %d bytes" % (kind, s),
                big_fragmented(op, 4 * MIB, s), BIG_TIMEOUT)
        for i, s in enumerate([64, 128, 256, 512, 1024, 2048], 1):
            add("9.%d.%d" % (chopped, i), "1 MiB %s message sent in %d-byte chops" % (kind, s),
                lambda c, op=op, s=s: echo(c, op, make_payload(op, MIB), chop=s), BIG_TIMEOUT)
        for i, n in enumerate([0, 16, 64, 256, 1024, 4096], 1):
            add("9.%d.%d" % (many, i), "1000 pipelined %s messages of %d bytes" % (kind, n),
                many_messages(op, n), BIG_TIMEOUT)


# ---- 10.x misc ----------------------------------------------------------------------

def build_cat10():
    def c10_1_1(c):
        payload = make_text(65536)
        c.send(fragments(OP_TEXT, payload, 1300))
        return expect(c, [text(payload)])
    add("10.1.1", "65536-byte text message auto-fragmented into 1300-byte frames", c10_1_1)


def build_all():
    build_cat1()
    build_cat2()
    build_cat3()
    build_cat4()
    build_cat5()
    build_cat6()
    build_cat7()
    build_cat9()
    build_cat10()
    CASES.sort(key=case_sort_key)


def case_sort_key(case):
    key = []
    for part in case[0].split("."):
        m = re.match(r"(\d+)(.*)", part)
        key.append((int(m.group(1)), m.group(2)))
    return key


# ----------------------------------------------------------------------------
# Server process
# ----------------------------------------------------------------------------

class Server:
    def __init__(self, cmd):
        self.cmd = cmd + ["0"]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.port = None
        self.drainer = None

    def wait_port(self):
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError("no 'listening on port N' line within %.0f s" % STARTUP_TIMEOUT)
                if not sel.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    rc = self.proc.wait()
                    raise RuntimeError("server exited with status %s before listening" % rc)
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.decode("utf-8", "replace").rstrip("\r")
                    vlog("server: " + line)
                    m = re.search(r"listening on port (\d+)", line)
                    if m:
                        self.port = int(m.group(1))
                        self.drainer = threading.Thread(target=self._drain, daemon=True)
                        self.drainer.start()
                        return self.port
        finally:
            sel.close()

    def _drain(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            if VERBOSE:
                for line in chunk.decode("utf-8", "replace").splitlines():
                    vlog("server: " + line)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM; returns None on clean exit, else a failure reason."""
        if self.proc.poll() is not None:
            return "server had already exited with status %s" % self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "server did not exit within %.0f s of SIGTERM" % SHUTDOWN_TIMEOUT
        if rc != 0:
            return "server exited with status %d after SIGTERM" % rc
        return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------

def selected(cid, patterns):
    if not patterns:
        return True
    for p in patterns:
        if any(ch in p for ch in "*?["):
            if fnmatch.fnmatchcase(cid, p):
                return True
        elif cid == p or (cid.startswith(p) and not cid[len(p)].isdigit()):
            return True
    return False


def run_case(port, cid, desc, fn, timeout):
    start = time.monotonic()
    c = None
    try:
        c = Conn(port, start + timeout)
        note = fn(c)
        return True, note or "", time.monotonic() - start
    except CaseFail as e:
        return False, str(e) or "timeout", time.monotonic() - start
    except OSError as e:
        return False, "socket error: %s" % e, time.monotonic() - start
    except Exception as e:  # a bug in the suite must not hide the summary line
        return False, "internal error: %r" % e, time.monotonic() - start
    finally:
        if c is not None:
            c.close()


def usage():
    print(__doc__.split("\nOptions:")[0].strip(), file=sys.stderr)
    sys.exit(2)


def main(argv):
    global VERBOSE
    patterns = []
    args = list(argv)
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a == "--":
            break
        if a == "-v":
            VERBOSE = True
        elif a == "-k" and args:
            patterns += [p for p in args.pop(0).split(",") if p]
        elif a.startswith("-k") and len(a) > 2:
            patterns += [p for p in a[2:].split(",") if p]
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            usage()
    if not args:
        usage()

    build_all()
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    cases = [c for c in CASES if selected(c[0], patterns)]
    if not cases:
        print("no case matches %s" % ",".join(patterns), file=sys.stderr)
        return 2

    passed = failed = 0
    t0 = time.monotonic()
    server = Server(args)
    try:
        try:
            port = server.wait_port()
        except (RuntimeError, OSError) as e:
            print("FAIL server-start %s: %s" % (" ".join(server.cmd), e), flush=True)
            server.kill()
            print("0 passed, 1 failed")
            return 1
        vlog("server listening on port %d" % port)
        for cid, desc, fn, timeout in cases:
            if VERBOSE:
                print("---- %s %s" % (cid, desc), flush=True)
            if not server.alive():
                ok, note, dt = False, "server process exited (status %s)" % server.proc.returncode, 0.0
            else:
                ok, note, dt = run_case(port, cid, desc, fn, timeout)
            if ok:
                passed += 1
                print("PASS %s %s%s" % (cid, desc, (" [%s]" % note) if note else ""), flush=True)
            else:
                failed += 1
                print("FAIL %s %s: %s" % (cid, desc, note), flush=True)
            vlog("%.3f s" % dt)
        reason = server.stop()
        if reason is None:
            passed += 1
            print("PASS shutdown SIGTERM -> exit status 0 within %.0f s" % SHUTDOWN_TIMEOUT)
        else:
            failed += 1
            print("FAIL shutdown SIGTERM -> exit status 0 within %.0f s: %s"
                  % (SHUTDOWN_TIMEOUT, reason))
    finally:
        server.kill()
    vlog("total %.1f s" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
