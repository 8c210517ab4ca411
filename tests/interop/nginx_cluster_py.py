#!/usr/bin/env python3
"""nginx_cluster_py.py PORT

Interop test: two python-socketio clients (Debian's python3-socketio 5.7.2) chat through nginx at
127.0.0.1:PORT over long-polling only, in front of two 04_chat instances in one cluster with
round-robin and no stickiness (tests/interop/run_nginx_cluster.sh polling): each of their
requests lands on either instance, and the one without the session forwards it to the other.
Namespace /chat, auth {token}, joinRoom, roomMessage, onlineCount (acknowledged).

Each client adds ?client=NAME to its Engine.IO requests and prints "client NAME 127.0.0.1", so that
the driver can check nginx's access log. Prints "PASS name" / "FAIL name: why", then "N passed, M
failed"; exit status 0 iff nothing failed, 2 when python-socketio is missing. Every wait is bounded
by CLUSTER_TIMEOUT_MS (default 5000). python-engineio 4.3.4 sends POST bodies as Latin-1: ASCII only.
"""

import logging
import os
import queue
import sys

try:
    import socketio
    import requests  # noqa: F401  python-engineio's polling transport needs it
except ImportError as exc:
    sys.stderr.write(f"nginx_cluster_py.py: {exc.name} is not available to {sys.executable} (Debian: python3-socketio)\n")
    sys.exit(2)

TIMEOUT = (int(os.environ.get("CLUSTER_TIMEOUT_MS", "0")) or 5000) / 1000.0
if os.environ.get("INTEROP_DEBUG", "") not in ("", "0"):   # every request and packet, timed, on stderr
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)8.0f %(threadName)s %(name)s %(message)s")
NSP = "/chat"


class Client:
    def __init__(self, port, name):
        self.name = name
        self.inbox = queue.Queue()
        debug = logging.getLogger().isEnabledFor(logging.INFO)
        self.sio = socketio.Client(reconnection=False, logger=debug, engineio_logger=debug)
        for event in ("userJoined", "receiveRoomMessage"):
            self.sio.on(event, self._taker(event), namespace=NSP)
        self.sio.connect(f"http://127.0.0.1:{port}/?client={name}", namespaces=[NSP], transports=["polling"],
                         auth={"token": name}, wait_timeout=TIMEOUT)
        print(f"client {name} 127.0.0.1", flush=True)

    def _taker(self, event):
        return lambda data: self.inbox.put({"event": event, "data": data})

    def expect(self, want):
        try:
            got = self.inbox.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"{self.name}: nothing within {TIMEOUT} s, expected {want}") from None
        if got != want:
            raise AssertionError(f"{self.name} got {got}, expected {want}")

    def join(self, room):
        self.sio.emit("joinRoom", {"room": room}, namespace=NSP)
        count = self.sio.call("onlineCount", namespace=NSP, timeout=TIMEOUT)   # acked after the join
        if not isinstance(count, int):
            raise AssertionError(f"{self.name}: onlineCount acked {count!r}")

    def say(self, room, text):
        self.sio.emit("roomMessage", {"room": room, "message": text}, namespace=NSP)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.stderr.write("usage: nginx_cluster_py.py PORT\n")
        return 2
    port = int(sys.argv[1])
    c = {}
    room = "py"

    def connect():
        c["carol"] = Client(port, "carol")
        c["erin"] = Client(port, "erin")
        if c["carol"].sio.transport() != "polling" or c["erin"].sio.transport() != "polling":
            raise AssertionError("a client left polling")

    def join():
        c["carol"].join(room)
        c["erin"].join(room)
        c["carol"].expect({"event": "userJoined", "data": {"userId": "erin", "room": room}})

    def both_ways():
        c["carol"].say(room, "hello erin")
        c["erin"].expect({"event": "receiveRoomMessage", "data": {"from": "carol", "room": room, "message": "hello erin"}})
        c["erin"].say(room, "hello carol")
        c["carol"].expect({"event": "receiveRoomMessage", "data": {"from": "erin", "room": room, "message": "hello carol"}})
        for cl in c.values():
            if not cl.inbox.empty():
                raise AssertionError(f"{cl.name} has {cl.inbox.get()} left")

    scenarios = [("carol and erin connect over polling through nginx", connect),
                 ("both join a room, with acks through either instance", join),
                 ("room messages both ways", both_ways)]
    passed = failed = 0
    for name, fn in scenarios:
        try:
            fn()
            passed += 1
            print(f"PASS {name}", flush=True)
        except Exception as exc:  # noqa: BLE001  every failure is reported the same way
            failed += 1
            print(f"FAIL {name}: {' '.join(str(exc).split())}", flush=True)
            break
    for cl in c.values():
        try:
            # Engine.IO's close itself: python-socketio's disconnect() queues the namespace's
            # DISCONNECT and the close packet, and python-engineio 4.3.4's write loop may stop after
            # POSTing the first (its state is no longer "connected"), so the session would linger
            # until the server's next ping, and the process with it (its held GET).
            cl.sio.eio.disconnect()
        except Exception:  # noqa: BLE001  already gone
            pass
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
