#!/usr/bin/python3
"""RFC 6455 conformance suite modelled on the Autobahn|Testsuite server cases.

Usage:
    autobahn.py [-v] [-k PATTERN]... [--deflate MODE [--messages N] [--max-message BYTES]]
                SERVER_CMD [ARGS...]

    e.g.  python3 tests/conformance/autobahn.py ./build/tests/conformance/conformance_echo
          python3 tests/conformance/autobahn.py node tests/conformance/reference_echo.mjs
          python3 tests/conformance/autobahn.py --deflate shared node \\
                  tests/conformance/reference_echo.mjs

The server command gets the extra argument "0" (port 0), or "0 --deflate MODE"
with --deflate, must print a line "listening on port N" on stdout, and must
echo text as text and binary as binary.  Every case runs on its own TCP
connection to 127.0.0.1:N.  At the end the server gets SIGTERM and must exit
with status 0 within 5 s.

Options:
    -v          verbose: print the events of every case
    -k PATTERN  run only matching case ids (may be repeated or comma-separated).
                A plain pattern matches an id exactly or as a prefix that ends at a
                non-digit ("6.4" -> 6.4.*, "6.5.1" -> 6.5.1 and 6.5.1f but not
                6.5.10); a pattern containing * ? or [ is an fnmatch glob.
    --deflate MODE
                the server runs with permessage-deflate (RFC 7692) in MODE
                (shared or dedicated, passed on to it): adds categories 12 and 13,
                which are then the default selection; -k picks from all cases.
    --messages N
                messages per 12.x/13.x case (default 30; Autobahn sends 1000).
    --max-message BYTES
                the server's message size limit, for 13.9.12-13 (skipped without).

Case ids follow Autobahn|Testsuite (categories 1-7, 9, 10, and with --deflate 12
and 13).  Extra cases that Autobahn does not have:
    6.2.5.K   "Hello-µ@ßöäüàá-UTF-8!!" sent as 2 fragments split at byte K (every K)
    6.2.6.K   the same for "κόσμε"
    6.2.7     "Hello-µ@ßöäüàá-UTF-8!!" with every byte in its own fragment
    6.X.Yf    each Markus Kuhn case 6.5-6.23 again, one byte per fragment
    7.9.10-13 close codes 1012-1015 (Autobahn <= 0.5 listed them as invalid)
    13.8.1-6  offers with an unknown, duplicated or invalid parameter: the server
              must decline them (101 without the extension), not refuse the handshake
    13.8.7    an invalid offer followed by a valid one: the valid one is taken
    13.8.8    server_max_window_bits=10: answered with <= 10 (echoes must inflate
              within that window) or declined
    13.8.9    a bare offer: the response must not name client_max_window_bits
    13.8.10   client_max_window_bits=9: we compress with a 9-bit window
    13.9.1-3  uncompressed message on a deflate connection; empty message as the
              byte 0x00 (7.2.3.6); compressed message in 3 frames around a ping
    13.9.4-6  invalid deflate data -> 1007/1002 (or TCP close); inflating to invalid
              UTF-8 -> 1007
    13.9.7-11 RSV1 on a continuation (of a compressed or an uncompressed message),
              on a ping, on a pong; RSV1+RSV2 on a data frame -> 1002
    13.9.12-13 with --max-message: inflating to exactly the limit is echoed, to one
              byte more is closed with 1009 (a close frame is required here)

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
    Where permessage-deflate was agreed, RSV1 may mark the first frame of a data
    message (never a continuation or control frame), and such messages must
    inflate under the agreed parameters.
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

permessage-deflate (categories 12 and 13):
  * Autobahn's sub-cases, sizes (16 to 131072 bytes, the last 8 with the compressed
    payload cut into 256 to 32768-byte frames) and lockstep (each echo awaited before
    the next message) are kept, but each case sends 30 messages, not 1000: both
    categories then take under 30 s on 2 cores against a server whose cost is
    mostly zlib's, half of it our own compressing; --messages changes it.
  * Autobahn sends slices of files it ships; we slice generated look-alikes with
    the same compressibility (JSON, a greyscale bitmap, German verse, HTML, a
    PDF-like file).  As in Autobahn, the verse goes as binary and 13.x uses JSON.
    Text slices have partial UTF-8 sequences at their ends blanked out.
  * Offers are Autobahn's: each allows client_no_context_takeover and
    client_max_window_bits; 13.2-13.7 request server_no_context_takeover and/or
    server_max_window_bits=8/15 (the server's side, not the client's).
  * The response is checked as RFC 7692 5 and 7.1 tell a client: one extension,
    known parameters, no duplicates, values 8-15; client_max_window_bits only if
    offered; a requested server_no_context_takeover answered; a requested
    server_max_window_bits=N answered with <= N (a missing parameter means 15).
    With several offers the response must fit one of them.
  * The server must accept an offer unless every offer in it asks for a server
    window below 15 bits (13.3, 13.5, 13.8.8): declining those passes, with a
    note, and the messages then go uncompressed (Autobahn says UNIMPLEMENTED).
  * We compress at zlib's default level, resetting between messages when the
    response says client_no_context_takeover, with an 8-bit client window raised
    to 9 as Autobahn does (zlib cannot deflate with 8 raw bits, and its 9-bit
    compressor stays within 250 bytes).  Echoes are inflated one window at a time
    so that a server exceeding server_max_window_bits is caught; with
    server_no_context_takeover every echo gets a fresh inflater.  A server may
    end messages with BFINAL blocks (7.2.3.3) and may leave some uncompressed.

Known results against the Node `ws` 8.x reference server (reference_echo.mjs):
  * 7.9.10, 7.9.11, 7.9.12 FAIL: ws treats 1012-1014 as valid close codes (they
    are IANA-registered) and echoes them; this suite follows the stricter rule.
  * 6.4.1-6.4.4 pass NON-STRICT: ws validates UTF-8 only per complete message.
  * With --deflate, 13.8.1-13.8.7 FAIL: ws answers an offer with an unknown,
    duplicated or invalid parameter with 400 Bad Request (even when a valid offer
    follows) where RFC 7692 5 says to decline it.
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
CLOSE_TOO_BIG = 1009

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
# permessage-deflate (RFC 7692), the client's side
# ----------------------------------------------------------------------------

PMD = "permessage-deflate"
PMD_PARAMS = ("server_no_context_takeover", "client_no_context_takeover",
              "server_max_window_bits", "client_max_window_bits")
SYNC_TAIL = b"\x00\x00\xff\xff"   # ends every sync flush; never sent on the wire (7.2.1)

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_OWS_RE = re.compile(r"[ \t]*")
_BITS_RE = re.compile(r"[89]|1[0-5]")   # 8..15 without leading zeroes (7.1.2)


def parse_extensions(value):
    """A Sec-WebSocket-Extensions value (RFC 6455 9.1) as [(name, [(param, value), ...])],
    value None for a parameter without one.  ValueError outside the grammar."""
    out = []
    pos = 0

    def skip_ows():
        nonlocal pos
        pos = _OWS_RE.match(value, pos).end()

    def token(what):
        nonlocal pos
        m = _TOKEN_RE.match(value, pos)
        if not m:
            raise ValueError("expected %s at offset %d" % (what, pos))
        pos = m.end()
        return m.group(0)

    while True:
        skip_ows()
        name = token("an extension name")
        params = []
        skip_ows()
        while value.startswith(";", pos):
            pos += 1
            skip_ows()
            param = token("a parameter name")
            skip_ows()
            val = None
            if value.startswith("=", pos):
                pos += 1
                skip_ows()
                m = _QUOTED_RE.match(value, pos)
                if m:
                    # 9.1: a quoted value must still be a token once unquoted.
                    val = re.sub(r"\\(.)", r"\1", m.group(1))
                    pos = m.end()
                    if not _TOKEN_RE.fullmatch(val):
                        raise ValueError("quoted value %r is not a token" % val)
                else:
                    val = token("a parameter value")
                skip_ows()
            params.append((param, val))
        out.append((name, params))
        if pos == len(value):
            return out
        if value[pos] != ",":
            raise ValueError("unexpected %r at offset %d" % (value[pos], pos))
        pos += 1


class Offer:
    """What we put in Sec-WebSocket-Extensions.  `offers` lists the well-formed
    permessage-deflate offers in it as [(param, value or None), ...]; a server may
    accept only those (RFC 7692 5 makes it decline the others).  `header` overrides
    the text sent, for offers that are malformed on purpose."""

    def __init__(self, offers, header=None):
        self.offers = [list(o) for o in offers]
        if header is None:
            header = ", ".join("; ".join([PMD] + [p if v is None else "%s=%s" % (p, v)
                                                  for p, v in o]) for o in self.offers)
        self.header = header

    def may_decline(self):
        """A server started with --deflate must take an offer it can honour.  The one
        thing RFC 7692 lets it refuse for lack of support is a server window below
        15 bits (7.1.2.1), so declining passes only if every offer asks for one."""
        return bool(self.offers) and all(
            int(dict(o).get("server_max_window_bits") or 15) < 15 for o in self.offers)


def autobahn_offer(server_no_context_takeover=False, server_max_window_bits=0):
    """One offer as Autobahn's client builds it: it always allows the server to ask for
    client_no_context_takeover and client_max_window_bits, and may request the two
    server_* parameters."""
    params = [("client_no_context_takeover", None), ("client_max_window_bits", None)]
    if server_no_context_takeover:
        params.append(("server_no_context_takeover", None))
    if server_max_window_bits:
        params.append(("server_max_window_bits", str(server_max_window_bits)))
    return params


def response_mismatch(offer, resp):
    """Why the response parameters `resp` do not accept `offer`, or None if they do."""
    o = dict(offer)
    if "client_max_window_bits" in resp:
        if "client_max_window_bits" not in o:
            return "client_max_window_bits is in the response but the offer did not allow it"
        mine, theirs = o["client_max_window_bits"], resp["client_max_window_bits"]
        if mine and theirs > int(mine):
            return "client_max_window_bits=%d exceeds the offered %s" % (theirs, mine)
    if "server_no_context_takeover" in o and "server_no_context_takeover" not in resp:
        return "the offer requested server_no_context_takeover and the response lacks it"
    if "server_max_window_bits" in o:
        # A missing parameter means the full 15-bit window (7.1.2.1).
        got = resp.get("server_max_window_bits", 15)
        if got > int(o["server_max_window_bits"]):
            return ("the offer requested server_max_window_bits=%s and the response %s"
                    % (o["server_max_window_bits"],
                       "says %d" % got if "server_max_window_bits" in resp else "lacks it"))
    return None


def agree(offer, header):
    """Check the server's Sec-WebSocket-Extensions against our offer (RFC 7692 5, 7.1);
    return the agreed Deflate or raise CaseFail."""
    def bad(why):
        raise CaseFail("handshake: Sec-WebSocket-Extensions %r: %s" % (header, why))

    try:
        exts = parse_extensions(header)
    except ValueError as e:
        bad("malformed (%s)" % e)
    if len(exts) != 1 or exts[0][0] != PMD:
        bad("we offered only %s, and the server may select it once" % PMD)
    resp = {}
    for param, val in exts[0][1]:
        if param not in PMD_PARAMS:
            bad("parameter %s is not defined for %s" % (param, PMD))
        if param in resp:
            bad("parameter %s appears twice" % param)
        if param.endswith("_no_context_takeover"):
            if val is not None:
                bad("%s must have no value" % param)
            resp[param] = True
        else:
            # In a response both window parameters need a value (7.1.2).
            if val is None or not _BITS_RE.fullmatch(val):
                bad("%s needs a value from 8 to 15, got %r" % (param, val))
            resp[param] = int(val)
    if not offer.offers:
        bad("the server accepted an offer that it must decline (%r)" % offer.header)
    reasons = []
    for o in offer.offers:
        why = response_mismatch(o, resp)
        if why is None:
            client_bits = resp.get("client_max_window_bits", 15)
            mine = dict(o).get("client_max_window_bits")
            if mine:
                client_bits = min(client_bits, int(mine))   # we promised no more than that
            return Deflate(exts[0][1], resp, client_bits)
        reasons.append(why)
    bad("does not accept %s" % ("our offer: " + reasons[0] if len(reasons) == 1 else
                                "any of our offers: " + "; ".join(reasons)))


class Deflate:
    """Our end of an agreed permessage-deflate: compress what we send, inflate what the
    server sends, each direction with the context rules the response set."""

    def __init__(self, params, resp, client_bits):
        self.params = params                 # the response's parameters, as received
        self.server_no_context = "server_no_context_takeover" in resp
        self.client_no_context = "client_no_context_takeover" in resp
        self.server_bits = resp.get("server_max_window_bits", 15)
        # zlib refuses an 8-bit window for raw deflate.  Its 9-bit compressor never reaches
        # back more than 512 - 262 = 250 bytes, so a peer with an 8-bit window can still
        # inflate it; Autobahn's Python client substitutes 9 for 8 the same way.
        self.client_bits = max(9, client_bits)
        self.compressor = None
        self.inflater = None
        self.history = b""                   # last window of inflated output, see inflate()

    def describe(self):
        return "; ".join([PMD] + [p if v is None else "%s=%s" % (p, v) for p, v in self.params])

    def compress(self, payload):
        if self.compressor is None or self.client_no_context:
            self.compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                               -self.client_bits)
        data = self.compressor.compress(payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        assert data.endswith(SYNC_TAIL)
        return data[:-len(SYNC_TAIL)]

    def inflate(self, data):
        """The server's compressed message payload, inflated; ValueError if invalid."""
        if self.inflater is None or self.server_no_context:
            self.inflater = zlib.decompressobj(-self.server_bits)
        elif self.inflater.eof:
            # The server ended its previous message with a BFINAL block (7.2.3.3 allows it).
            # With context takeover it may still refer to that message, so the new stream
            # starts with the old window as its dictionary.
            self.inflater = zlib.decompressobj(-self.server_bits, zdict=self.history)
        d = self.inflater
        data = bytes(data) + SYNC_TAIL
        try:
            if self.server_bits == 15:
                out = d.decompress(data)
            else:
                # Inflate at most one window per call: zlib checks back-references only
                # against the output it holds, so a big output buffer would let a server
                # that ignores the agreed smaller window go unnoticed.
                step = 1 << self.server_bits
                parts = []
                while True:
                    chunk = d.decompress(data, step)
                    parts.append(chunk)
                    data = d.unconsumed_tail
                    if not data and len(chunk) < step:
                        break
                out = b"".join(parts)
        except zlib.error as e:
            why = "invalid deflate data (%s)" % e
            if "too far back" in str(e):
                if self.server_no_context:
                    why += ": does the server refer to an earlier message despite " \
                           "server_no_context_takeover?"
                elif self.server_bits < 15:
                    why += ": the server's window exceeds server_max_window_bits=%d" \
                           % self.server_bits
            raise ValueError(why)
        # After a BFINAL block only the empty stored block of 7.2.1 may follow: its header
        # byte (absent if it shared the final block's last byte) and our 00 00 ff ff.
        if d.eof and d.unused_data not in (SYNC_TAIL, b"\x00" + SYNC_TAIL):
            raise ValueError("data after the final deflate block")
        if not self.server_no_context:
            self.history = (self.history + out)[-(1 << self.server_bits):]
        return out


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
    def __init__(self, port, deadline, path="/", offer=None):
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
        self.frag_compressed = False
        self.offer = offer           # Offer sent in the handshake, or None
        self.pmd = None              # Deflate once the server accepted permessage-deflate
        self.rx_compressed = 0       # messages the server sent compressed / not
        self.rx_plain = 0
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

    def message_frames(self, opcode, payload, frag=0):
        """Frames for one message, compressed if permessage-deflate was agreed.  frag > 0
        cuts the (compressed) payload into frames of that size, as Autobahn's
        auto-fragmentation does."""
        if self.pmd is None:
            return fragments(opcode, payload, frag) if frag else [frame(opcode, payload)]
        data = self.pmd.compress(payload)
        return fragments(opcode, data, frag or max(1, len(data)), rsv=4)

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
               "%s"
               "\r\n") % (path, port, key,
                          "Sec-WebSocket-Extensions: %s\r\n" % self.offer.header
                          if self.offer else "")
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
            hint = ""
            if self.offer:
                # RFC 7692 5: an offer the server cannot take is declined, and the
                # handshake goes on without the extension.
                hint = " (offer %r; an unacceptable offer must be declined, not refused)" \
                       % self.offer.header
            raise CaseFail("handshake: unexpected status line %r%s" % (lines[0], hint))
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
        ext = one("sec-websocket-extensions")
        if ext and not self.offer:
            raise CaseFail("handshake: server selected an extension we did not offer")
        if ext:
            self.pmd = agree(self.offer, ext)
            vlog("agreed: " + self.pmd.describe())
        elif self.offer:
            vlog("server declined %r" % self.offer.header)
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
            compressed = False
            if rsv == 4 and self.pmd is not None:
                # RFC 7692 6: RSV1 marks the first frame of a compressed message, and
                # nothing else: not continuations, not control frames.
                if op not in (OP_TEXT, OP_BINARY):
                    self._violation("RSV1 set on a frame with opcode %d (permessage-deflate "
                                    "allows it only on the first frame of a message)" % op)
                compressed = True
            elif rsv:
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
                self.frag_compressed = compressed
            self.frag_count += 1
            if fin:
                data = b"".join(self.frag_parts)
                op, nframes = self.frag_op, self.frag_count
                self.frag_op, self.frag_parts, self.frag_count = None, [], 0
                if self.frag_compressed:
                    try:
                        data = self.pmd.inflate(data)
                    except ValueError as e:
                        self._violation(str(e))
                    self.rx_compressed += 1
                elif self.pmd is not None:
                    self.rx_plain += 1
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


def add(cid, desc, fn, timeout=DEFAULT_TIMEOUT, offer=None, skip=None):
    """offer: an Offer to make in the handshake.  skip: why the case cannot run (it is
    listed as SKIP rather than left out, so that a run shows what it did not check)."""
    CASES.append((cid, desc, fn, timeout, offer, skip))


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


# ---- 12.x / 13.x permessage-deflate -------------------------------------------------
#
# Autobahn sends slices of five files it ships (a JSON file, the Lena bitmap, Goethe's
# Faust from Project Gutenberg, an HTML page, a PDF).  We make look-alikes from seeded
# generators instead: the point is data that compresses the way such files do (very well,
# poorly, and in between), at the same sizes and in the same order.

DEFLATE_MODES = ("shared", "dedicated")
DEFLATE_MESSAGES = 30     # messages per case; Autobahn sends 1000 (see --messages)

# (payload size, Autobahn's timeout in s for 1000 messages, auto-fragment size), in
# Autobahn's order: sub-cases 1-10 unfragmented, 11-18 with the compressed payload cut
# into frames.
DEFLATE_SIZES = [
    (16, 60, 0), (64, 60, 0), (256, 120, 0), (1024, 240, 0), (4096, 480, 0),
    (8192, 480, 0), (16384, 480, 0), (32768, 480, 0), (65536, 480, 0), (131072, 480, 0),
    (8192, 480, 256), (16384, 480, 256), (32768, 480, 256), (65536, 480, 256),
    (131072, 480, 256), (131072, 480, 1024), (131072, 480, 4096), (131072, 480, 32768),
]

GERMAN = (
    "und die der ich nicht das zu ist sich mit ein mir es so in den du auf mich wie "
    "was dem von an als doch nur ihr noch wird wohl da dich wenn auch hier sie im nun "
    "schon wer man des uns kann mein dein sein bin hat gar nach aus wo denn bei "
    "Geist Welt Herz Nacht Himmel Erde Teufel Gott Liebe Seele Wissen Buch Zeit Augen "
    "Menschen Hand Blut Leben Natur Kraft Licht Freund Glück Träume Mädchen Straße Tür "
    "Brüder Größe Blüte Gefühl Höhle Schönheit Wärme Lüfte Fülle Gewühl Mühe Qual "
    "schön über für fröhlich müssen möcht heiß weiß süß hören spüren früh trüb "
    "ewig tief hoch still dunkel hell weit nah alt jung froh wild klar "
    "sehen gehen kommen wollen sagen wissen lassen finden halten bleiben fühlen "
    "Gretchen Faust Mephisto Wagner Marthe Kerker Garten Brunnen Kirche Dom Keller"
).split()
ENGLISH = (
    "the of and to in is you that it he was for on are as with his they at be this "
    "have from or one had by word but not what all were we when your can said there "
    "use an each which she do how their if will up other about out many then them "
    "these so some her would make like him into time has look two more write go see"
).split()
FIRST_NAMES = ("Anna Lena Jonas Lukas Marie Sophie Felix Paul Emma Hannah Jürgen Günter "
               "Käthe Jörg Björn Zoë Chloé José Nuño Ångström Søren Łukasz").split()
LAST_NAMES = ("Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann "
              "Schäfer Koch Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann "
              "Krüger Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann Köhler").split()
CITIES = ("Berlin Hamburg München Köln Frankfurt Stuttgart Düsseldorf Leipzig Dortmund Essen "
          "Bremen Dresden Hannover Nürnberg Würzburg Lübeck Göttingen Saarbrücken").split()


def zipf_words(rng, words, n):
    """n words, frequent ones first in `words` drawn more often, as in real text."""
    return rng.choices(words, weights=[1.0 / (i + 1) for i in range(len(words))], k=n)


def sentence(rng, words, lo, hi):
    ws = zipf_words(rng, words, rng.randint(lo, hi))
    ws[0] = ws[0][:1].upper() + ws[0][1:]
    return " ".join(ws) + rng.choice(".....!?")


def gen_json(rng):
    tags = zipf_words(rng, ENGLISH, 40)
    parts, size, i = [], 0, 0
    while size < 200_000:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        item = {
            "_id": "%024x" % rng.getrandbits(96),
            "index": i,
            "guid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "isActive": rng.random() < 0.5,
            "balance": "%d.%03d,%02d €" % (rng.randint(1, 9), rng.randint(0, 999),
                                            rng.randint(0, 99)),
            "age": rng.randint(18, 90),
            "eyeColor": rng.choice(["blau", "braun", "grün", "grau"]),
            "name": "%s %s" % (first, last),
            "email": "%s.%s@example.de" % (first.lower(), last.lower()),
            "phone": "+49 (%d) %d-%04d" % (rng.randint(30, 999), rng.randint(100, 999),
                                         rng.randint(0, 9999)),
            "address": "%sstraße %d, %05d %s" % (rng.choice(LAST_NAMES), rng.randint(1, 200),
                                                rng.randint(1000, 99999), rng.choice(CITIES)),
            "about": " ".join(sentence(rng, GERMAN, 6, 16) for _ in range(rng.randint(2, 5))),
            "registered": "20%02d-%02d-%02dT%02d:%02d:%02d +01:00" % (
                rng.randint(0, 24), rng.randint(1, 12), rng.randint(1, 28),
                rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)),
            "latitude": round(rng.uniform(47, 55), 6),
            "longitude": round(rng.uniform(6, 15), 6),
            "tags": rng.sample(tags, 5),
            "friends": [{"id": k,
                         "name": "%s %s" % (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))}
                        for k in range(3)],
            "greeting": "Hallo, %s! Sie haben %d ungelesene Nachrichten."
                        % (first, rng.randint(1, 20)),
        }
        part = json.dumps(item, ensure_ascii=False, indent=2)
        parts.append(part)
        size += len(part.encode())
        i += 1
    return ("[\n" + ",\n".join(parts) + "\n]\n").encode()


def gen_image(rng):
    """A 512x512 8-bit greyscale BMP (the size of Autobahn's Lena file): soft shapes plus
    sensor noise, which deflate squeezes only a little, as with a photograph."""
    w = h = 512
    header = (b"BM" + (14 + 40 + 1024 + w * h).to_bytes(4, "little") + bytes(4)
              + (14 + 40 + 1024).to_bytes(4, "little")
              + (40).to_bytes(4, "little") + w.to_bytes(4, "little") + h.to_bytes(4, "little")
              + (1).to_bytes(2, "little") + (8).to_bytes(2, "little") + bytes(4)
              + (w * h).to_bytes(4, "little") + (2835).to_bytes(4, "little") * 2
              + (256).to_bytes(4, "little") * 2)
    palette = b"".join(bytes((v, v, v, 0)) for v in range(256))
    cols = [45 * math.sin(x / 41.0) + 20 * math.sin(x / 9.3) for x in range(w)]
    rows = [40 * math.cos(y / 57.0) + 15 * math.sin(y / 13.1) for y in range(h)]
    diag = [25 * math.sin(k / 23.0) for k in range(w + 2 * h)]
    noise = rng.randbytes(w * h)
    pixels = bytearray(w * h)
    for y in range(h):
        ry, base = rows[y], y * w
        for x in range(w):
            v = 128 + cols[x] + ry + diag[x + 2 * y] + (noise[base + x] % 15) - 7
            pixels[base + x] = 0 if v < 0 else 255 if v > 255 else int(v)
    return header + palette + bytes(pixels)


def gen_verse(rng):
    """A verse drama in German (Autobahn uses Goethe's Faust I)."""
    speakers = ["FAUST", "MEPHISTOPHELES", "WAGNER", "MARGARETE", "MARTHE", "SCHÜLER",
                "CHOR DER ENGEL", "HEXE", "VALENTIN", "LIESCHEN"]
    out = ["Der Tragödie erster Teil\r\n\r\n\r\nNacht\r\n\r\n"
           "In einem hochgewölbten, engen gotischen Zimmer.\r\n\r\n"]
    size = 0
    while size < 220_000:
        parts = []
        if rng.random() < 0.1:
            parts.append("(%s)\r\n\r\n" % sentence(rng, GERMAN, 4, 12))
        parts.append("%s:\r\n" % rng.choice(speakers))
        for _ in range(rng.randint(1, 12)):
            line = sentence(rng, GERMAN, 4, 9)[:-1] + rng.choice([",", ",", ".", "!", "?", ";", ""])
            parts.append("    " + line + "\r\n")
        parts.append("\r\n")
        chunk = "".join(parts)
        out.append(chunk)
        size += len(chunk.encode())
    return "".join(out).encode()


def gen_html(rng):
    words = GERMAN + ENGLISH
    out = ['<!DOCTYPE html>\n<html lang="de">\n<head>\n  <meta charset="utf-8">\n'
           '  <title>Archiv – Nachrichten und Berichte</title>\n'
           '  <link rel="stylesheet" href="/static/css/main.css">\n'
           '  <style>\n    body { font-family: Georgia, serif; margin: 0 auto; max-width: 60em; }\n'
           '    .meta { color: #666; font-size: 0.9em; }\n'
           '    table.data td { padding: 0.2em 0.6em; text-align: right; }\n  </style>\n'
           '</head>\n<body>\n  <header class="site-header">\n    <nav>\n      <ul>\n']
    for w in zipf_words(rng, GERMAN[40:], 12):
        out.append('        <li><a href="/rubrik/%s" class="nav-link">%s</a></li>\n'
                   % (w.lower(), w))
    out.append("      </ul>\n    </nav>\n  </header>\n  <main>\n")
    size, n = 0, 0
    while size < 150_000:
        n += 1
        title = sentence(rng, words, 3, 8)[:-1]
        y, m, d = rng.randint(5, 24), rng.randint(1, 12), rng.randint(1, 28)
        parts = ['    <article class="post" id="post-%d">\n' % n,
                 '      <h2><a href="/artikel/%d/%s">%s</a></h2>\n'
                 % (n, "-".join(title.lower().split()[:5]), title),
                 '      <p class="meta">Veröffentlicht am <time datetime="20%02d-%02d-%02d">'
                 '%d.%d.20%02d</time> von <a href="/autor/%d">%s %s</a></p>\n'
                 % (y, m, d, d, m, y, rng.randint(1, 99), rng.choice(FIRST_NAMES),
                    rng.choice(LAST_NAMES))]
        for _ in range(rng.randint(1, 5)):
            parts.append("      <p>%s</p>\n" % " ".join(sentence(rng, words, 5, 18)
                                                     for _ in range(rng.randint(1, 6))))
        if rng.random() < 0.3:
            parts.append('      <table class="data">\n        <thead><tr><th>Stadt</th>'
                         '<th>2022</th><th>2023</th><th>Änderung</th></tr></thead>\n'
                         '        <tbody>\n')
            for _ in range(rng.randint(3, 10)):
                a, b = rng.randint(1000, 99999), rng.randint(1000, 99999)
                parts.append("          <tr><td>%s</td><td>%d</td><td>%d</td>"
                             "<td>%+.1f %%</td></tr>\n"
                             % (rng.choice(CITIES), a, b, 100.0 * (b - a) / a))
            parts.append("        </tbody>\n      </table>\n")
        parts.append('      <ul class="tags">%s</ul>\n    </article>\n' % "".join(
            '<li><a href="/tag/%s">%s</a></li>' % (t.lower(), t)
            for t in zipf_words(rng, words, rng.randint(1, 4))))
        chunk = "".join(parts)
        out.append(chunk)
        size += len(chunk.encode())
    out.append("  </main>\n  <footer><p>&copy; 2024 Beispiel-Verlag</p></footer>\n"
               "</body>\n</html>\n")
    return "".join(out).encode()


def gen_pdf(rng):
    """About 1 MB shaped like a PDF: object dictionaries, text content streams, and
    already-compressed font and image streams that deflate cannot shrink."""
    out = [b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"]
    offsets = []
    size = len(out[0])

    def obj(body):
        nonlocal size
        offsets.append(size)
        data = b"%d 0 obj\n" % len(offsets) + body + b"\nendobj\n"
        out.append(data)
        size += len(data)

    def stream(dictionary, data):
        obj(b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")

    obj(b"<< /Type /Catalog /Pages 2 0 R /Lang (de-DE) >>")
    obj(b"<< /Type /Pages /Kids [] /Count 0 >>")
    obj(b"<< /Type /Font /Subtype /Type1 /BaseFont /Times-Roman /Encoding /WinAnsiEncoding >>")
    stream(b"/Subtype /Type1C /Filter /FlateDecode", rng.randbytes(30_000))
    while size < 1_000_000:
        ops = [b"BT\n/F1 10 Tf\n12 TL\n56 780 Td\n"]
        for _ in range(rng.randint(20, 60)):
            line = sentence(rng, GERMAN, 6, 12).encode("latin-1", "replace")
            ops.append(b"(" + line.replace(b"(", b"\\(").replace(b")", b"\\)") + b") Tj T*\n")
        ops.append(b"ET\n")
        stream(b"", b"".join(ops))
        if rng.random() < 0.6:
            stream(b"/Filter /FlateDecode", rng.randbytes(rng.randint(2_000, 12_000)))
        if rng.random() < 0.3:
            jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
            stream(b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
                   b"/BitsPerComponent 8 /Filter /DCTDecode"
                   % (rng.randint(100, 900), rng.randint(100, 900)),
                   jpeg + rng.randbytes(rng.randint(10_000, 40_000)))
        obj(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font "
            b"<< /F1 3 0 R >> >> /Contents %d 0 R >>" % (len(offsets) - 1))
    xref = b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1) + b"".join(
        b"%010d 00000 n \n" % off for off in offsets)
    out.append(xref + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
               % (len(offsets) + 1, size))
    return b"".join(out)


# (name, opcode, generator, description): Autobahn's 12.1-12.5 in its order.  Autobahn
# sends its Faust text as binary, so the verse goes as binary too.
CORPORA = [
    ("json", OP_TEXT, gen_json, "JSON text"),
    ("image", OP_BINARY, gen_image, "8-bit greyscale bitmap"),
    ("verse", OP_BINARY, gen_verse, "German verse, as binary"),
    ("html", OP_TEXT, gen_html, "HTML text"),
    ("pdf", OP_BINARY, gen_pdf, "PDF-like binary"),
]
_corpus_cache = {}


def corpus(name):
    if name not in _corpus_cache:
        _, _, gen, _ = next(c for c in CORPORA if c[0] == name)
        _corpus_cache[name] = gen(random.Random("gateway-" + name))
    return _corpus_cache[name]


def clip_utf8(data):
    """data with the partial UTF-8 sequences at its ends blanked out (same length), so
    that any slice of a UTF-8 text is a valid text message."""
    b = bytearray(data)
    i = 0
    while i < len(b) and 0x80 <= b[i] < 0xC0:
        b[i] = 0x20
        i += 1
    for k in range(1, min(4, len(b)) + 1):
        c = b[-k]
        if c < 0x80:
            break
        if c >= 0xC0:
            if (2 if c < 0xE0 else 3 if c < 0xF0 else 4) > k:
                b[len(b) - k:] = b" " * k
            break
    return bytes(b)


def corpus_messages(name, opcode, size, count):
    """Like Autobahn: consecutive slices of the corpus, wrapping round at its end."""
    data = corpus(name)
    pos = 0
    for _ in range(count):
        parts, left = [], size
        while left:
            take = min(left, len(data) - pos)
            parts.append(data[pos:pos + take])
            left -= take
            pos = (pos + take) % len(data)
        m = b"".join(parts)
        yield clip_utf8(m) if opcode == OP_TEXT else m


def note_rx(c):
    """Result note: how the server answered the offer and whether it compressed."""
    if c.pmd is None:
        return "declined the offer; messages went uncompressed"
    if c.rx_plain:
        return "%d of %d echoes uncompressed" % (c.rx_plain, c.rx_plain + c.rx_compressed)
    return ""


def require_deflate(c):
    if c.pmd is None and not c.offer.may_decline():
        raise CaseFail("server declined permessage-deflate (offer %r)" % c.offer.header)


def exchange(c, opcode, payloads, frag=0):
    """Autobahn's 12.x/13.x loop: send one message, wait for its echo, repeat."""
    for i, p in enumerate(payloads, 1):
        c.send(c.message_frames(opcode, p, frag))
        try:
            ev = c.next_event()
        except Timeout:
            raise CaseFail("timeout waiting for the echo of message #%d" % i)
        want = msg(opcode, p)
        if ev != want:
            raise CaseFail("echo of message #%d: got %s, expected %s%s"
                           % (i, describe(ev), describe(want), diff_detail(want, ev)))


def deflate_echo(name, opcode, size, frag, count):
    def run(c):
        require_deflate(c)
        exchange(c, opcode, corpus_messages(name, opcode, size, count), frag)
        notes = [n for n in (note_rx(c), expect(c)) if n]
        return "; ".join(notes)
    return run


def deflate_timeout(secs, count):
    """Autobahn's timeout scaled to our message count, on top of the usual one."""
    return DEFAULT_TIMEOUT + secs * count / 1000.0


def size_desc(size, frag, count):
    return "%d messages of %d bytes%s" % (
        count, size, ", compressed payload in %d-byte frames" % frag if frag else "")


def build_cat12(count):
    offer = Offer([autobahn_offer()])
    for j, (name, opcode, _, kind) in enumerate(CORPORA, 1):
        for i, (size, secs, frag) in enumerate(DEFLATE_SIZES, 1):
            add("12.%d.%d" % (j, i), "%s, %s, default offer" % (kind, size_desc(size, frag, count)),
                deflate_echo(name, opcode, size, frag, count), deflate_timeout(secs, count),
                offer=offer)


# Autobahn's 13.1-13.7 offers.  Every offer allows client_no_context_takeover and
# client_max_window_bits; what varies is what the client requests for the server.
CAT13_OFFERS = [
    ([autobahn_offer()], "default offer"),
    ([autobahn_offer(True)], "offer server_no_context_takeover"),
    ([autobahn_offer(False, 8)], "offer server_max_window_bits=8"),
    ([autobahn_offer(False, 15)], "offer server_max_window_bits=15"),
    ([autobahn_offer(True, 8)], "offer server_no_context_takeover, server_max_window_bits=8"),
    ([autobahn_offer(True, 15)], "offer server_no_context_takeover, server_max_window_bits=15"),
    ([autobahn_offer(True, 8), autobahn_offer(True), autobahn_offer()],
     "3 offers: as 13.5, as 13.2, default"),
]


def build_cat13(count):
    for j, (offers, what) in enumerate(CAT13_OFFERS, 1):
        offer = Offer(offers)
        for i, (size, secs, frag) in enumerate(DEFLATE_SIZES, 1):
            add("13.%d.%d" % (j, i), "JSON text, %s, %s" % (size_desc(size, frag, count), what),
                deflate_echo("json", OP_TEXT, size, frag, count), deflate_timeout(secs, count),
                offer=offer)


# ---- 13.8.x / 13.9.x: permessage-deflate cases Autobahn does not have ---------------

DEFAULT_OFFER = Offer([autobahn_offer()])


def declined_case(header):
    """RFC 7692 5: an offer with an unknown, duplicated or invalid parameter is declined
    (101 without the extension); the connection then works uncompressed."""
    def run(c):
        if c.pmd is not None:
            raise CaseFail("server accepted the invalid offer %r" % header)
        p = b"Hello, uncompressed world!"
        c.send(frame(OP_TEXT, p))
        return expect(c, [text(p)])
    return run


def negotiated_echo(count, size=4096, frag=0):
    """The offer must be accepted (or declined where Offer.may_decline allows), then
    JSON slices are echoed: compressed, and inflated under the agreed windows."""
    def run(c):
        require_deflate(c)
        exchange(c, OP_TEXT, corpus_messages("json", OP_TEXT, size, count), frag)
        notes = [n for n in ((c.pmd.describe() if c.pmd else ""), note_rx(c), expect(c)) if n]
        return "; ".join(notes)
    return run


def deflate_fail(frames_of, codes, echoes=()):
    """Send frames_of(c) on a deflate connection; the server must fail the connection."""
    def run(c):
        require_deflate(c)
        c.send(frames_of(c))
        alts = [([], NO_ECHO_BEFORE_FAIL)] if echoes else []
        return expect(c, list(echoes), alts=alts, close="fail", codes=codes)
    return run


HELLO_DEFLATE = b"Hello, compressed world! " * 4


def c13_9_1(c):
    require_deflate(c)
    c.send(frame(OP_TEXT, HELLO))
    return expect(c, [text(HELLO)])


def c13_9_2(c):
    # 7.2.3.6: an empty message may be sent as the single byte 0x00, which with the
    # appended 00 00 ff ff is an empty stored block.
    require_deflate(c)
    c.send(frame(OP_TEXT, b"\x00", rsv=4))
    return expect(c, [text(b"")])


def c13_9_3(c):
    require_deflate(c)
    payload = next(corpus_messages("json", OP_TEXT, 3000, 1))
    data = c.pmd.compress(payload)
    a, b = len(data) // 3, 2 * len(data) // 3
    c.send([frame(OP_TEXT, data[:a], fin=False, rsv=4), frame(OP_PING, b"ping in between"),
            frame(OP_CONT, data[a:b], fin=False), frame(OP_CONT, data[b:])])
    return expect(c, [pong(b"ping in between"), text(payload)])


def rsv1_on_continuation(compressed):
    def frames_of(c):
        first = c.message_frames(OP_TEXT, HELLO_DEFLATE)
        if compressed:
            data = c.pmd.compress(HELLO_DEFLATE)
            bad = [frame(OP_TEXT, data[:10], fin=False, rsv=4), frame(OP_CONT, data[10:], rsv=4)]
        else:
            bad = [frame(OP_TEXT, b"Hello, ", fin=False), frame(OP_CONT, b"world!", rsv=4)]
        return first + bad + [frame(OP_PING)]
    return deflate_fail(frames_of, (CLOSE_PROTOCOL_ERROR,), echoes=[text(HELLO_DEFLATE)])


def limit_case(limit, over):
    """A binary message of zeros that inflates to `limit` (+1 if over) bytes."""
    def run(c):
        require_deflate(c)
        payload = bytes(limit + (1 if over else 0))
        c.send(c.message_frames(OP_BINARY, payload))
        if not over:
            return "; ".join(n for n in (note_rx(c), expect(c, [binary(payload)])) if n)
        note = expect(c, close="fail", codes=(CLOSE_TOO_BIG,))
        if not note.startswith("close"):
            raise CaseFail("server closed TCP without the close frame 1009")
        return note
    return run


def build_deflate_extras(max_message):
    def offer_of(header, good=()):
        return Offer(good, header=header)

    invalid = [
        ("permessage-deflate; x_unknown_param", "unknown parameter"),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover",
         "duplicate parameter"),
        ("permessage-deflate; server_max_window_bits=7", "server_max_window_bits=7"),
        ("permessage-deflate; server_max_window_bits", "server_max_window_bits without a value"),
        ("permessage-deflate; client_max_window_bits=16", "client_max_window_bits=16"),
        ("permessage-deflate; server_no_context_takeover=1", "server_no_context_takeover=1"),
    ]
    for i, (header, what) in enumerate(invalid, 1):
        add("13.8.%d" % i, "offer with %s -> 101 without the extension" % what,
            declined_case(header), offer=offer_of(header))
    second = [("client_max_window_bits", None)]
    add("13.8.7", "invalid offer, then a valid one -> the second is taken",
        negotiated_echo(10), offer=offer_of(
            "permessage-deflate; x_unknown_param, permessage-deflate; client_max_window_bits",
            [second]))
    add("13.8.8", "offer server_max_window_bits=10 -> answered with <= 10 or declined; "
        "echoes inflate within the window",
        negotiated_echo(10, size=16384), offer=Offer([[("server_max_window_bits", "10"),
                                                       ("client_max_window_bits", None)]]))
    add("13.8.9", "bare offer -> no client_max_window_bits in the response",
        negotiated_echo(10), offer=Offer([[]]))
    add("13.8.10", "offer client_max_window_bits=9 -> we compress with a 9-bit window",
        negotiated_echo(10, size=16384), offer=Offer([[("client_max_window_bits", "9")]]))

    fail_deflate = (CLOSE_INVALID_PAYLOAD, CLOSE_PROTOCOL_ERROR)
    add("13.9.1", "uncompressed text (RSV1 clear) on a deflate connection -> echoed",
        c13_9_1, offer=DEFAULT_OFFER)
    add("13.9.2", "empty compressed text sent as the single byte 0x00 -> empty echo",
        c13_9_2, offer=DEFAULT_OFFER)
    add("13.9.3", "compressed text in 3 frames with a ping in between -> pong, echo",
        c13_9_3, offer=DEFAULT_OFFER)
    add("13.9.4", "compressed text with an invalid deflate block type -> fail (1007/1002)",
        deflate_fail(lambda c: [frame(OP_TEXT, b"\xff\xff\xff\xff", rsv=4)], fail_deflate),
        offer=DEFAULT_OFFER)
    add("13.9.5", "compressed text, stored block with LEN != ~NLEN -> fail (1007/1002)",
        deflate_fail(lambda c: [frame(OP_TEXT, b"\x00\x05\x00\x00\x00hello", rsv=4)],
                     fail_deflate), offer=DEFAULT_OFFER)
    add("13.9.6", "compressed text inflating to invalid UTF-8 -> 1007",
        deflate_fail(lambda c: c.message_frames(OP_TEXT, INVALID_KOSME),
                     (CLOSE_INVALID_PAYLOAD,)), offer=DEFAULT_OFFER)
    add("13.9.7", "compressed text, then compressed text with RSV1 on its continuation -> 1002",
        rsv1_on_continuation(True), offer=DEFAULT_OFFER)
    add("13.9.8", "compressed text, then uncompressed text with RSV1 on its continuation -> 1002",
        rsv1_on_continuation(False), offer=DEFAULT_OFFER)
    add("13.9.9", "ping with RSV1 -> 1002",
        deflate_fail(lambda c: [frame(OP_PING, b"ping", rsv=4)], (CLOSE_PROTOCOL_ERROR,)),
        offer=DEFAULT_OFFER)
    add("13.9.10", "pong with RSV1 -> 1002",
        deflate_fail(lambda c: [frame(OP_PONG, b"pong", rsv=4)], (CLOSE_PROTOCOL_ERROR,)),
        offer=DEFAULT_OFFER)
    add("13.9.11", "compressed text with RSV1 and RSV2 -> 1002",
        deflate_fail(lambda c: [frame(OP_TEXT, c.pmd.compress(HELLO_DEFLATE), rsv=6)],
                     (CLOSE_PROTOCOL_ERROR,)), offer=DEFAULT_OFFER)
    skip = None if max_message else "needs --max-message BYTES (the server's message limit)"
    limit = max_message or 0
    add("13.9.12", "compressed binary inflating to exactly --max-message bytes -> echoed",
        limit_case(limit, False), offer=DEFAULT_OFFER, skip=skip)
    add("13.9.13", "compressed binary inflating to --max-message + 1 bytes -> 1009",
        limit_case(limit, True), offer=DEFAULT_OFFER, skip=skip)


def build_all(deflate=False, count=0, max_message=None):
    build_cat1()
    build_cat2()
    build_cat3()
    build_cat4()
    build_cat5()
    build_cat6()
    build_cat7()
    build_cat9()
    build_cat10()
    if deflate:
        build_cat12(count)
        build_cat13(count)
        build_deflate_extras(max_message)
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
    def __init__(self, cmd, extra=()):
        self.cmd = cmd + ["0"] + list(extra)
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


def run_case(port, cid, desc, fn, timeout, offer):
    start = time.monotonic()
    c = None
    try:
        c = Conn(port, start + timeout, offer=offer)
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


def positive_int(text, option):
    if not text.isdigit() or int(text) == 0:
        print("%s needs a positive integer, got %r" % (option, text), file=sys.stderr)
        sys.exit(2)
    return int(text)


def main(argv):
    global VERBOSE
    patterns = []
    deflate = None
    count = DEFLATE_MESSAGES
    max_message = None
    args = list(argv)
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a == "--":
            break
        opt, eq, val = a.partition("=")
        if opt in ("--deflate", "--messages", "--max-message"):
            if not eq:
                if not args:
                    usage()
                val = args.pop(0)
            if opt == "--deflate":
                if val not in DEFLATE_MODES:
                    print("--deflate takes %s, got %r" % ("|".join(DEFLATE_MODES), val),
                          file=sys.stderr)
                    return 2
                deflate = val
            elif opt == "--messages":
                count = positive_int(val, opt)
            else:
                max_message = positive_int(val, opt)
        elif a == "-v":
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
    if deflate is None and (count != DEFLATE_MESSAGES or max_message is not None):
        print("--messages and --max-message apply only with --deflate", file=sys.stderr)
        return 2

    build_all(deflate is not None, count, max_message)
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    if deflate is not None and not patterns:
        cases = [c for c in CASES if c[0].split(".")[0] in ("12", "13")]
    else:
        cases = [c for c in CASES if selected(c[0], patterns)]
    if not cases:
        print("no case matches %s" % ",".join(patterns), file=sys.stderr)
        return 2

    passed = failed = skipped = 0
    t0 = time.monotonic()
    server = Server(args, ["--deflate", deflate] if deflate else [])
    try:
        try:
            port = server.wait_port()
        except (RuntimeError, OSError) as e:
            print("FAIL server-start %s: %s" % (" ".join(server.cmd), e), flush=True)
            server.kill()
            print("0 passed, 1 failed")
            return 1
        vlog("server listening on port %d" % port)
        for cid, desc, fn, timeout, offer, skip in cases:
            if skip:
                skipped += 1
                print("SKIP %s %s: %s" % (cid, desc, skip), flush=True)
                continue
            if VERBOSE:
                print("---- %s %s" % (cid, desc), flush=True)
            if not server.alive():
                ok, note, dt = False, "server process exited (status %s)" % server.proc.returncode, 0.0
            else:
                ok, note, dt = run_case(port, cid, desc, fn, timeout, offer)
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
    print("%d passed, %d failed%s" % (passed, failed,
                                      ", %d skipped" % skipped if skipped else ""), flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
