// Socket.IO 4 server, a peer for gateway.hpp's benchmark (bench/PROTOCOL.md, "Socket.IO").
// Usage (from the repository root, so node_modules/socket.io resolves):
//   node bench/peers/socketio_server.mjs PORT [deflate]   (PORT 0 picks a free port)
// WebSocket transport only, path /socket.io/; events echo (acknowledged when asked), join,
// broadcast. deflate turns compression on (perMessageDeflate with threshold 1024, ws's defaults
// otherwise: context takeover, level 6; ws applies the threshold only without context takeover, so
// every packet goes compressed). Prints "listening on port N" once listening; exits 0 on
// SIGINT/SIGTERM.
// With REDIS_URL set (redis://host:port) it joins that Redis' cluster with
// @socket.io/redis-adapter on two node-redis clients (createAdapter(pub, sub)), as its README
// shows, so a broadcast to room "bench" reaches its members on every instance (bench/cluster.sh).
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number.parseInt(process.argv[2] ?? '0', 10);
const deflate = process.argv[3] === 'deflate';
if (!Number.isInteger(port) || port < 0 || port > 65535 || process.argv.length > 4 || (process.argv.length === 4 && !deflate)) {
  console.error('usage: node socketio_server.mjs PORT [deflate]');
  process.exit(2);
}

const httpServer = createServer();
const io = new Server(httpServer, {
  path: '/socket.io/',
  // The benchmark measures the WebSocket path; with polling allowed a client could open on
  // long-polling and the measurement would include the upgrade dance.
  transports: ['websocket'],
  // Off unless asked, as Socket.IO's default is.
  perMessageDeflate: deflate ? { threshold: 1024 } : false,
  // Same message limit as the other peers (64 MiB), instead of Socket.IO's 1 MB default.
  maxHttpBufferSize: 64 * 1024 * 1024,
  // Nothing here is a browser page that would fetch the bundled client script.
  serveClient: false,
});

io.on('connection', (socket) => {
  // A client that asked for an acknowledgement (an ack id) gets the data as the ack, else an
  // "echo" event back.
  socket.on('echo', (x, ack) => (typeof ack === 'function' ? ack(x) : socket.emit('echo', x)));
  socket.on('join', (room) => {
    // A non-string room name would be stored as a key nobody else can name; PROTOCOL.md
    // allows ignoring anything else.
    if (typeof room !== 'string') return;
    socket.join(room);
    socket.emit('join', room);
  });
  // Socket.IO encodes a room broadcast once and hands the same packet to every member.
  socket.on('broadcast', (x) => io.to('bench').emit('broadcast', x));
});

// The adapter before listening: a client must not join a room of the in-memory adapter.
const redisClients = [];
if (process.env.REDIS_URL) {
  const { createClient } = await import('redis');
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on('error', (err) => console.error(`redis: ${err.message}`));
  await Promise.all([pub.connect(), sub.connect()]);
  io.adapter(createAdapter(pub, sub));
  redisClients.push(pub, sub);
  // The adapter subscribes as it is made, without a promise to await. Redis answers a
  // connection's commands in order, so once a subscription sent after them is confirmed, theirs
  // are too: broadcasts sent after "listening" reach this node.
  const marker = `bench-ready#${process.pid}`;
  await sub.subscribe(marker, () => {});
  await sub.unsubscribe(marker);
  console.log(`cluster: ${process.env.REDIS_URL}`);
}

httpServer.on('error', (err) => {
  console.error(`server error: ${err.message}`);
  process.exit(1);
});

httpServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on port ${httpServer.address().port}\n`);
});

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  // io.close() disconnects every socket and then waits for the HTTP server to drain; a client
  // holding a half-closed TCP connection could make that wait unbounded, hence the deadline.
  setTimeout(() => process.exit(0), 1000).unref();
  io.close(() => {
    Promise.allSettled(redisClients.map((c) => c.disconnect())).then(() => process.exit(0));
  });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, stop);
