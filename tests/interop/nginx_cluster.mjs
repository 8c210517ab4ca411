// nginx_cluster.mjs PROTOCOL VARIANT PORT
//
// Interop test: clients chat across two cluster instances through nginx at 127.0.0.1:PORT.
//   PROTOCOL  chat: the instances are 04_chat (namespace /chat, auth {token}, joinRoom,
//                   roomMessage, privateMessage; a NestJS WsAdapter client joins in at ws://…/chat);
//             peer: the instances are node_cluster_peer.mjs (namespace /: join, shout, whisper).
//   VARIANT   ip_hash: socket.io-client's default transports (polling, then the upgrade), alice
//                   from 127.0.0.1 and bob from 127.0.1.1 (ip_hash keys on the first three
//                   octets), so that they land on different instances;
//             websocket: transports ["websocket"], everybody from 127.0.0.1 (round-robin, no
//                   stickiness: a WebSocket needs none).
//             polling: transports ["polling"], everybody from 127.0.0.1 (round-robin, no
//                   stickiness): each request lands on either instance, and the one without the
//                   session forwards it to the other through the cluster.
// Each Socket.IO client adds ?client=NAME to its Engine.IO requests, so that the driver can tell
// from nginx's access log which instance served each of them; it prints "client NAME ADDRESS".
//
// Prints "PASS name" / "FAIL name: why", then "N passed, M failed"; exit status 0 iff nothing failed.
// Every wait is limited by CLUSTER_TIMEOUT_MS (default 5000).
import http from 'node:http';
import process from 'node:process';
import { isDeepStrictEqual } from 'node:util';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';

function usage(msg) {
  if (msg) process.stderr.write(`nginx_cluster.mjs: ${msg}\n`);
  process.stderr.write('usage: node nginx_cluster.mjs chat|peer ip_hash|websocket|polling PORT\n');
  process.exit(2);
}
const argv = process.argv.slice(2);
if (argv.length !== 3) usage();
const [PROTOCOL, VARIANT] = argv;
if (!['chat', 'peer'].includes(PROTOCOL)) usage(`bad protocol '${PROTOCOL}'`);
if (!['ip_hash', 'websocket', 'polling'].includes(VARIANT)) usage(`bad variant '${VARIANT}'`);
if (!/^[0-9]+$/.test(argv[2])) usage(`bad port '${argv[2]}'`);
const PORT = Number(argv[2]);
const TIMEOUT_MS = Number(process.env.CLUSTER_TIMEOUT_MS) || 5000;
const ADDRESSES = VARIANT === 'ip_hash' ? { alice: '127.0.0.1', bob: '127.0.1.1' } : { alice: '127.0.0.1', bob: '127.0.0.1' };

process.on('unhandledRejection', () => {});
const show = (v) => JSON.stringify(v);

function withTimeout(promise, what, onTimeout = () => {}, ms = TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** What a client received, in order, as {event, data}; next() waits for the next one. */
class Inbox {
  constructor(name) {
    this.name = name;
    this.queue = [];
    this.waiters = [];
  }

  push(item) {
    const w = this.waiters.shift();
    if (w) w.resolve(item);
    else this.queue.push(item);
  }

  next(what) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    let waiter;
    const p = new Promise((resolve) => {
      waiter = { resolve };
      this.waiters.push(waiter);
    });
    return withTimeout(p, `${what} on ${this.name}`, () => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }

  /** The next items must be exactly these, in this order. */
  async expect(...want) {
    for (const w of want) {
      const got = await this.next(show(w));
      if (!isDeepStrictEqual(got, w)) throw new Error(`${this.name} got ${show(got)}, expected ${show(w)}`);
    }
  }
}

const clients = [];

class SioClient extends Inbox {
  constructor(name) {
    super(name);
    const localAddress = ADDRESSES[name] ?? '127.0.0.1';
    const url = `http://127.0.0.1:${PORT}${PROTOCOL === 'chat' ? '/chat' : ''}`;
    // Polling requests go through the agent (xmlhttprequest-ssl takes `agent`), the WebSocket
    // through ws, which takes localAddress (and the agent) itself. Kept: the close waits for it.
    this.agent = new http.Agent({ keepAlive: true, localAddress });
    this.sock = io(url, {
      reconnection: false,
      transports: { websocket: ['websocket'], polling: ['polling'] }[VARIANT] ?? ['polling', 'websocket'],
      agent: this.agent,
      localAddress,
      query: { client: name },
      ...(PROTOCOL === 'chat' ? { auth: { token: name } } : {}),
    });
    this.address = localAddress;
    clients.push(this);
    this.sock.onAny((event, ...args) => this.push({ event, data: args[0] }));
  }

  async open() {
    await withTimeout(new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('connect_error', (err) => reject(new Error(`${this.name}: connect_error ${err.message}`)));
    }), `${this.name} to connect`);
    this.id = this.sock.id;
    process.stdout.write(`client ${this.name} ${this.address}\n`);
    return this;
  }

  transport() { return this.sock.io.engine?.transport?.name; }

  close() { this.sock.disconnect(); }
}

class WsClient extends Inbox {
  constructor(name) {
    super(name);
    this.ws = new WebSocket(`ws://127.0.0.1:${PORT}/chat?token=${name}`);
    clients.push(this);
    this.ws.on('message', (bytes) => {
      const obj = JSON.parse(bytes.toString('utf8'));
      this.push({ event: obj.event, data: obj.data });
    });
    this.ws.on('error', () => {});
  }

  async open() {
    await withTimeout(new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (req, res) => reject(new Error(`${this.name}: HTTP ${res.statusCode}`)));
      this.ws.once('error', (err) => reject(new Error(`${this.name}: ${err.message}`)));
    }), `${this.name} to connect`);
    return this;
  }

  emit(event, data) { this.ws.send(JSON.stringify({ event, data })); }

  close() { this.ws.close(1000); }
}

// The two protocols, as far as this test needs them. In both, a room message leaves the sender out.
const chat = {
  async join(cl, room) {
    if (cl instanceof WsClient) return cl.emit('joinRoom', { room });
    cl.sock.emit('joinRoom', { room });
    await cl.sock.timeout(TIMEOUT_MS).emitWithAck('onlineCount');   // handled after the join
  },
  joined: (who, room) => ({ event: 'userJoined', data: { userId: who.name, room } }),
  say(cl, room, text) {
    if (cl instanceof WsClient) cl.emit('roomMessage', { room, message: text });
    else cl.sock.emit('roomMessage', { room, message: text });
  },
  heard: (from, room, text) => ({ event: 'receiveRoomMessage', data: { from: from.name, room, message: text } }),
  whisper: (from, to, text) => from.sock.emit('privateMessage', { toUserId: to.name, message: text }),
  whispered: (from, text) => ({ event: 'receivePrivateMessage', data: { from: from.name, message: text } }),
};
const peer = {
  async join(cl, room) {
    if ((await cl.sock.timeout(TIMEOUT_MS).emitWithAck('join', room)) !== true) throw new Error(`${cl.name}: join not acked`);
  },
  joined: null,
  say: (cl, room, text) => cl.sock.emit('shout', { room, text }),
  heard: (from, room, text) => ({ event: 'said', data: { room, text, from: from.id, nsp: '/' } }),
  whisper: (from, to, text) => from.sock.emit('whisper', { to: to.id, text }),
  whispered: (from, text) => ({ event: 'whisper', data: { text, from: from.id, nsp: '/' } }),
};
const P = PROTOCOL === 'chat' ? chat : peer;

const scenarios = [];
const scenario = (name, fn) => scenarios.push({ name, fn });
const c = {};
const room = 'lobby';

scenario(`alice (from ${ADDRESSES.alice}) and bob (from ${ADDRESSES.bob}) connect through nginx`, async () => {
  c.alice = await new SioClient('alice').open();
  c.bob = await new SioClient('bob').open();
});

if (VARIANT === 'ip_hash') {
  scenario('both upgrade to WebSocket through nginx', async () => {
    for (const cl of [c.alice, c.bob]) {
      if (cl.transport() !== 'websocket') await withTimeout(new Promise((r) => cl.sock.io.engine.once('upgrade', r)), `${cl.name}'s upgrade`);
    }
  });
}

if (VARIANT === 'polling') {
  scenario('both stay on polling, and an ack comes back through either instance', async () => {
    for (const cl of [c.alice, c.bob]) {
      if (cl.transport() !== 'polling') throw new Error(`${cl.name} uses ${cl.transport()}`);
      // Several round trips: with two instances in turn, some requests are forwarded.
      for (let i = 0; i < 4; i++) {
        if (PROTOCOL === 'chat') {
          const n = await cl.sock.timeout(TIMEOUT_MS).emitWithAck('onlineCount');
          if (typeof n !== 'number') throw new Error(`${cl.name}: onlineCount acked ${show(n)}`);
        } else {
          if ((await cl.sock.timeout(TIMEOUT_MS).emitWithAck('join', `warm-up ${i}`)) !== true) throw new Error(`${cl.name}: join not acked`);
        }
      }
    }
  });
}

scenario('bob joining the room is told to alice', async () => {
  await P.join(c.alice, room);
  await P.join(c.bob, room);
  if (P.joined) await c.alice.expect(P.joined(c.bob, room));
});

scenario('a room message from alice reaches bob once, and not alice', async () => {
  P.say(c.alice, room, 'hello bob');
  P.say(c.alice, room, 'fence 1');   // after the first, from the same instance: bob's next item
  await c.bob.expect(P.heard(c.alice, room, 'hello bob'), P.heard(c.alice, room, 'fence 1'));
});

scenario('a room message from bob reaches alice once, and not bob', async () => {
  P.say(c.bob, room, 'hello alice');
  P.say(c.bob, room, 'fence 2');
  await c.alice.expect(P.heard(c.bob, room, 'hello alice'), P.heard(c.bob, room, 'fence 2'));
});

scenario('a private message from bob reaches alice', async () => {
  P.whisper(c.bob, c.alice, 'psst');
  P.say(c.bob, room, 'fence 3');
  await c.alice.expect(P.whispered(c.bob, 'psst'), P.heard(c.bob, room, 'fence 3'));
});

if (PROTOCOL === 'chat') {
  scenario('a WsAdapter client through nginx (ws://…/chat) shares the room with both', async () => {
    c.dave = await new WsClient('dave').open();
    await P.join(c.dave, room);
    await c.alice.expect(P.joined(c.dave, room));
    await c.bob.expect(P.joined(c.dave, room));
    P.say(c.alice, room, 'hello dave');
    await c.dave.expect(P.heard(c.alice, room, 'hello dave'));
    await c.bob.expect(P.heard(c.alice, room, 'hello dave'));
    P.say(c.dave, room, 'hello from ws');
    await c.alice.expect(P.heard(c.dave, room, 'hello from ws'));
    await c.bob.expect(P.heard(c.dave, room, 'hello from ws'));
  });
}

scenario('nothing else arrived', async () => {
  P.say(c.alice, room, 'last fence');
  await c.bob.expect(P.heard(c.alice, room, 'last fence'));
  if (c.dave) await c.dave.expect(P.heard(c.alice, room, 'last fence'));
  P.say(c.bob, room, 'last fence');
  await c.alice.expect(P.heard(c.bob, room, 'last fence'));
  if (c.dave) await c.dave.expect(P.heard(c.bob, room, 'last fence'));
  for (const cl of clients) if (cl.queue.length) throw new Error(`${cl.name} has ${show(cl.queue)} left`);
});

async function run() {
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of scenarios) {
    try {
      await withTimeout(fn(), 'the scenario (overall)', () => {}, 4 * TIMEOUT_MS);
      passed++;
      process.stdout.write(`PASS ${name}\n`);
    } catch (err) {
      failed++;
      process.stdout.write(`FAIL ${name}: ${String(err?.message ?? err).replace(/\s+/g, ' ')}\n`);
      break;   // the scenarios build on each other
    }
  }
  // Closed before exiting, so that nginx logs every connection before the driver stops it.
  await Promise.all(clients.map((cl) => withTimeout(new Promise((resolve) => {
    if (cl instanceof WsClient) {
      if (cl.ws.readyState === WebSocket.CLOSED) return resolve();
      cl.ws.once('close', resolve);
    } else {
      const engine = cl.sock.io.engine;
      if (!engine || engine.readyState === 'closed') return resolve();
      // Over polling the engine says 'close' as it sends the close packet, with that POST and the
      // held GET still on their way: wait until the agent has no request in flight, or nginx logs
      // them as 499 (the client went away before the answer).
      const polling = engine.transport?.name === 'polling';
      engine.once('close', () => {
        if (!polling) return resolve();
        const check = () => {
          if (Object.values(cl.agent.sockets).some((list) => list.length > 0)) return;
          cl.agent.off('free', check);
          resolve();
        };
        cl.agent.on('free', check);
        check();
      });
    }
    cl.close();
  }), `${cl.name} to close`).catch(() => {})));
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
}

run();
