// emitter_peer.mjs REDIS_URL CLIENTS_JSON
//
// A Node Socket.IO 4 server on @socket.io/redis-adapter (node-redis 4), with socket.io-client
// clients connected to it, for tests/redis_emitter_test.cpp: whatever an emitter publishes on the
// Redis at REDIS_URL reaches these clients through the adapter, and this script says what each
// one got.
//
//  * CLIENTS_JSON: [{"name":"a","nsp":"/","rooms":["r1"]}, ...]: each client connects (WebSocket,
//    no reconnection) to its namespace and is put in its rooms before the connection completes;
//  * listens on 127.0.0.1, port 0, and prints {"ready":PORT} once every client is connected and
//    every adapter subscription is confirmed by Redis (later publishes cannot be missed);
//  * then one JSON line per thing observed:
//      {"client":"a","event":"ev","args":[...]}     an event a client received
//      {"client":"a","disconnect":"reason"}        a client was disconnected
//      {"server":"/chat","event":"ev","args":[...]} serverSideEmit reached a namespace (events
//                                                   named in SERVER_EVENTS below)
//    binary values (Buffer, ArrayBuffer, typed arrays) are written as {"$bin":"<hex>"};
//  * exits 0 on SIGTERM/SIGINT and when stdin reaches EOF (a harness that dies leaves nothing).
import http from 'node:http';
import process from 'node:process';
import { Server } from 'socket.io';
import { io as connect } from 'socket.io-client';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';

const SERVER_EVENTS = ['hello-servers', 'hello-servers-bin'];

const [redisUrl, clientsJson] = process.argv.slice(2);
if (!redisUrl || !clientsJson) {
  process.stderr.write('usage: node emitter_peer.mjs REDIS_URL CLIENTS_JSON\n');
  process.exit(2);
}
const specs = JSON.parse(clientsJson);

// Set up first, so that a harness that gives up early (closes stdin) still ends this process.
const clients = [];
let io = null, pub = null, sub = null, stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  for (const c of clients) c.close();
  if (io) io.close();
  await Promise.allSettled([pub?.quit(), sub?.quit()]);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();

function plain(v) {
  if (Buffer.isBuffer(v)) return { $bin: v.toString('hex') };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString('hex') };
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, plain(e)]));
  return v;
}
const report = (o) => process.stdout.write(JSON.stringify(o) + '\n');

pub = createClient({ url: redisUrl });
sub = pub.duplicate();
pub.on('error', (e) => process.stderr.write(`emitter_peer: redis pub: ${e}\n`));
sub.on('error', (e) => process.stderr.write(`emitter_peer: redis sub: ${e}\n`));
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = http.createServer();
io = new Server(httpServer);
io.adapter(createAdapter(pub, sub));

const namespaces = new Set(['/', ...specs.map((s) => s.nsp)]);
for (const name of namespaces) {
  const nsp = io.of(name);
  // Rooms are joined before the client is told it is connected, so "connected" means "in its rooms".
  nsp.use((socket, next) => {
    const rooms = JSON.parse(socket.handshake.query.rooms || '[]');
    if (rooms.length) socket.join(rooms);
    next();
  });
  for (const ev of SERVER_EVENTS)
    nsp.on(ev, (...args) => report({ server: name, event: ev, args: plain(args) }));
}
// The adapters subscribed on `sub` as they were created; Redis answers one connection's commands in
// order, so once this subscription is confirmed theirs are too.
await sub.subscribe('emitter_peer.ready', () => {});

await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
const port = httpServer.address().port;

clients.push(...await Promise.all(specs.map((spec) => new Promise((resolve, reject) => {
  const socket = connect(`http://127.0.0.1:${port}${spec.nsp}`, {
    transports: ['websocket'], reconnection: false, forceNew: true,
    query: { rooms: JSON.stringify(spec.rooms || []) },
  });
  socket.onAny((event, ...args) => report({ client: spec.name, event, args: plain(args) }));
  socket.on('disconnect', (reason) => report({ client: spec.name, disconnect: reason }));
  socket.once('connect', () => resolve(socket));
  socket.once('connect_error', reject);
}))));
report({ ready: port });

