// Echo server on the Node `ws` package, a peer for gateway.hpp's benchmark (bench/PROTOCOL.md).
// Usage (from the repository root, so node_modules/ws resolves):
//   node bench/peers/ws_echo.mjs PORT [raw|events] [deflate]   (PORT 0 picks a free port; raw is the default)
// raw echoes every message as it came; events speaks NestJS WsAdapter's {"event","data"} envelope
// (echo, join, broadcast). deflate turns permessage-deflate on as an application would: ws's
// defaults (context takeover both ways, zlib level 6, window 15) and threshold 1024, which ws
// applies only without context takeover (with it, every message goes compressed). Prints
// "listening on port N" once listening; exits 0 on SIGINT/SIGTERM.
import { WebSocketServer } from 'ws';

const port = Number.parseInt(process.argv[2] ?? '0', 10);
const mode = process.argv[3] ?? 'raw';
const deflate = process.argv[4] === 'deflate';
if (!Number.isInteger(port) || port < 0 || port > 65535 || (mode !== 'raw' && mode !== 'events') ||
    process.argv.length > 5 || (process.argv.length === 5 && !deflate)) {
  console.error('usage: node ws_echo.mjs PORT [raw|events] [deflate]');
  process.exit(2);
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  perMessageDeflate: deflate ? { threshold: 1024 } : false,
  maxPayload: 64 * 1024 * 1024,
  // Rooms below are the only membership list events mode needs; the server-wide set would be a
  // second one that nothing reads.
  clientTracking: false,
});

wss.on('listening', () => {
  process.stdout.write(`listening on port ${wss.address().port}\n`);
});

wss.on('error', (err) => {
  console.error(`server error: ${err.message}`);
  process.exit(1);
});

function serveRaw(ws) {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
}

// Room name -> members. A room is dropped when its last member leaves so that rooms named by
// clients cannot accumulate forever.
const rooms = new Map();

function join(ws, joined, room) {
  let members = rooms.get(room);
  if (members === undefined) {
    members = new Set();
    rooms.set(room, members);
  }
  members.add(ws);
  joined.add(room);
}

function leaveAll(ws, joined) {
  for (const room of joined) {
    const members = rooms.get(room);
    if (members === undefined) continue;
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  }
  joined.clear();
}

// JSON.stringify on the whole object writes keys in insertion order, which is the event-then-data
// order PROTOCOL.md asks for.
const envelope = (event, data) => JSON.stringify({ event, data });

function serveEvents(ws) {
  // The rooms this socket is in, so that a close only visits those rather than every room.
  const joined = new Set();
  ws.on('message', (raw, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(raw.toString('utf8'));
    } catch {
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    const { event, data } = msg;
    switch (event) {
      case 'echo':
        ws.send(envelope('echo', data));
        break;
      case 'join':
        if (typeof data !== 'string') return;
        join(ws, joined, data);
        ws.send(envelope('join', data));
        break;
      case 'broadcast': {
        const members = rooms.get('bench');
        if (members === undefined) return;
        // Encoded to bytes once: a string would be UTF-8 encoded again by every send. binary:false
        // keeps it a text frame, since ws otherwise sends a Buffer as binary.
        const bytes = Buffer.from(envelope('broadcast', data), 'utf8');
        for (const member of members) member.send(bytes, { binary: false });
        break;
      }
      default:
        break;
    }
  });
  ws.on('close', () => leaveAll(ws, joined));
}

wss.on('connection', (ws) => {
  // A peer that resets the connection must not take the process down with an unhandled 'error'.
  ws.on('error', () => {});
  if (mode === 'events') serveEvents(ws);
  else serveRaw(ws);
});

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
