// node_cluster_peer.mjs PORT [REDIS_URL]   (CLUSTER_MODE=sharded: the sharded adapter;
//                                          CLUSTER_MODE=streams: @socket.io/redis-streams-adapter, with recovery;
//                                          REDIS_CLUSTER=1: REDIS_URL is a Redis Cluster node)
//
// A Node Socket.IO 4 server in a Redis cluster (@socket.io/redis-adapter over two node-redis 4
// clients, createAdapter(pub, sub)): the reference node that tests/interop/cluster_server.cpp
// mirrors, for mixed_cluster.mjs and the nginx tests. PORT 0 picks a free port; REDIS_URL comes
// from the argument, else the environment, else redis://localhost:6379; the key is the adapter's
// default, "socket.io". With REDIS_CLUSTER=1 the clients are node-redis cluster clients
// (createCluster({rootNodes: [{url: REDIS_URL}]})), as createShardedAdapter's documentation has it
// for a Redis Cluster.
//
// Namespaces "/" and "/chat" serve the same protocol:
//   on connection   auth.room (or ?room= in the query) is joined;
//   join ROOM       socket.join(ROOM); acked true;
//   say {room,text}       nsp.to(room).emit('said', {room, text, from: id, nsp}); acked true;
//   shout {room,text}     socket.to(room).emit (the sender left out), same 'said' payload; acked true;
//   announce TEXT         socket.broadcast.emit('announced', {text, from: id, nsp}); acked true;
//   whisper {to,text}     nsp.to(to).emit('whisper', {text, from: id, nsp}) (to: a socket id); acked true;
//   fetch ROOM      acked with the ids of the room's sockets on every node (fetchSockets);
//   count           acked with the number of the namespace's sockets on every node;
//   server-emit P   nsp.serverSideEmit('ping-servers', P); acked true once published;
//   whoami          acked {id, port, recovered, data}: data is {user} from auth.user at its first connection.
// A 'ping-servers' event from another node is printed on stdout as one JSON line
// {"serverSideEvent":"ping-servers","nsp":...,"payload":...}.
//
// Prints "listening on port N" once listening and subscribed (so that nothing published after that
// line is missed); exits 0 on SIGTERM or SIGINT.
import { createServer } from 'node:http';
import process from 'node:process';
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { createAdapter as createStreamsAdapter } from '@socket.io/redis-streams-adapter';
import { createClient, createCluster } from 'redis';
import { Server } from 'socket.io';

const argv = process.argv.slice(2);
if (argv.length < 1 || argv.length > 2 || !/^[0-9]+$/.test(argv[0]) || Number(argv[0]) > 65535) {
  process.stderr.write('usage: node node_cluster_peer.mjs PORT [REDIS_URL]   (PORT 0 picks a free port)\n');
  process.exit(2);
}
const PORT = Number(argv[0]);
const REDIS_URL = argv[1] || process.env.REDIS_URL || 'redis://localhost:6379';

const redisCluster = process.env.REDIS_CLUSTER === '1';
const pub = redisCluster ? createCluster({ rootNodes: [{ url: REDIS_URL }] }) : createClient({ url: REDIS_URL });
const sub = pub.duplicate();
for (const [name, client] of [['pub', pub], ['sub', sub]]) {
  client.on('error', (err) => process.stderr.write(`node_cluster_peer: redis ${name}: ${err.message}\n`));
}
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
// CLUSTER_MODE=sharded: createShardedAdapter (Redis 7's SPUBLISH and SSUBSCRIBE) instead.
// CLUSTER_MODE=streams: the streams adapter (one client; it duplicates it itself), with
// connection-state recovery, whose sessions it keeps in Redis.
const sharded = process.env.CLUSTER_MODE === 'sharded';
// In a Redis Cluster each SSUBSCRIBE goes to the master of its channel's slot, on a connection of
// its own: the promises of the adapters' subscriptions are kept, to be awaited before "listening".
const subscribing = [];
if (redisCluster) {
  const sSubscribe = sub.sSubscribe.bind(sub);
  sub.sSubscribe = (...args) => {
    const p = sSubscribe(...args);
    subscribing.push(p);
    return p;
  };
}
const streams = process.env.CLUSTER_MODE === 'streams';
const io = new Server(http, streams
  ? { adapter: createStreamsAdapter(pub), connectionStateRecovery: {} }
  : { adapter: sharded ? createShardedAdapter(pub, sub) : createAdapter(pub, sub) });

const isString = (v) => typeof v === 'string' && v.length > 0;
const reply = (ack, value) => { if (typeof ack === 'function') ack(value); };

function serve(nsp) {
  nsp.on('connection', (socket) => {
    const room = socket.handshake.auth?.room ?? socket.handshake.query?.room;
    if (isString(room)) socket.join(room);
    if (isString(socket.handshake.auth?.user) && !socket.recovered) socket.data = { user: socket.handshake.auth.user };
    socket.on('whoami', (ack) => {
      reply(ack, { id: socket.id, port: http.address().port, recovered: socket.recovered, data: socket.data ?? null });
    });

    socket.on('join', (r, ack) => {
      if (!isString(r)) return reply(ack, false);
      socket.join(r);
      reply(ack, true);
    });
    socket.on('say', (m, ack) => {
      if (!isString(m?.room)) return reply(ack, false);
      nsp.to(m.room).emit('said', { room: m.room, text: m.text, from: socket.id, nsp: nsp.name });
      reply(ack, true);
    });
    socket.on('shout', (m, ack) => {
      if (!isString(m?.room)) return reply(ack, false);
      socket.to(m.room).emit('said', { room: m.room, text: m.text, from: socket.id, nsp: nsp.name });
      reply(ack, true);
    });
    socket.on('announce', (text, ack) => {
      socket.broadcast.emit('announced', { text, from: socket.id, nsp: nsp.name });
      reply(ack, true);
    });
    socket.on('whisper', (m, ack) => {
      if (!isString(m?.to)) return reply(ack, false);
      nsp.to(m.to).emit('whisper', { text: m.text, from: socket.id, nsp: nsp.name });
      reply(ack, true);
    });
    socket.on('fetch', async (r, ack) => {
      try {
        reply(ack, (await nsp.in(r).fetchSockets()).map((s) => s.id));
      } catch (err) {
        reply(ack, { error: err.message });
      }
    });
    socket.on('count', async (ack) => {
      try {
        reply(ack, (await nsp.fetchSockets()).length);
      } catch (err) {
        reply(ack, { error: err.message });
      }
    });
    socket.on('server-emit', (payload, ack) => {
      nsp.serverSideEmit('ping-servers', payload);
      reply(ack, true);
    });
  });
  nsp.on('ping-servers', (payload) => {
    process.stdout.write(`${JSON.stringify({ serverSideEvent: 'ping-servers', nsp: nsp.name, payload })}\n`);
  });
}
serve(io.of('/'));
serve(io.of('/chat'));

// The adapters sent their (P)SUBSCRIBEs on `sub` as they were made; Redis answers one connection's
// commands in order, so once this subscription is confirmed theirs are in place too. In a Redis
// Cluster they went to several masters: each is awaited.
if (redisCluster) await Promise.all(subscribing);
else await sub.subscribe(`node_cluster_peer#ready#${process.pid}`, () => {});

http.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`listening on port ${http.address().port}\n`);
});

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await new Promise((resolve) => { io.close(() => resolve()); });
  await Promise.allSettled([pub.quit(), sub.quit()]);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
