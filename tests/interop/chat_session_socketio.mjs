// chat_session_socketio.mjs PORT [TRANSPORTS]
//
// Interop test: the scripted chat session of chat_session.mjs against the 04_chat example, replayed
// with socket.io-client (Socket.IO v5 over Engine.IO 4) at http://127.0.0.1:PORT/chat, as NestJS's
// Socket.IO adapter would serve it:
//   - a request that expected a reply in the WsAdapter envelope sends an ack: the handler's return
//     value is the ack; without an ack the return value is dropped (nothing is sent);
//   - events stay events (one argument: the data);
//   - a validation failure or a guard refusal is an "exception" event {"status":"error","message"};
//     the ack, if any, is never called;
//   - an event without a handler is ignored (no exception), its ack never called;
//   - a malformed packet ends the whole Engine.IO session, as the socket.io server does;
//   - the token comes as auth: {token} (or ?token= in the query); a refusal by the namespace's
//     middleware is a connect_error with err.message the refusal body (trimmed), err.data {status}.
//
// TRANSPORTS: polling | websocket | upgrade (default: polling, then upgrade to websocket, which is
// socket.io-client's default).
//
// The scenarios share one session: alice, bob (two devices) and carol stay connected from
// "connect" until the end; others come and go.
//
// Asserting that a client did NOT receive something never sleeps: once the action is known to be
// processed, that client sends onlineCount with an ack, and the very next thing it gets must be
// that ack (packets on one connection are ordered; every received event and ack is put in one
// queue, in the order socket.io-client handles them, by an onAny listener and an ack callback).
//
// Beyond chat_session.mjs: the token in the query, automatic reconnection (rooms are per connection),
// polling and websocket clients in one room, a WsAdapter client and a Socket.IO client in one room,
// raw ack ids, malformed packets, and a client whose process is killed (noticed at once, as the
// socket.io server notices a held poll or a WebSocket closing).
//
// One thing Socket.IO cannot fence: a client's disconnect is not acknowledged, so where the
// WsAdapter session waits for the close handshake, this one polls onlineCount until it shows the
// expected value (bounded by the timeout).
//
// Prints one line per scenario, "PASS name" or "FAIL name: why", then "N passed, M failed"; exit
// status 0 iff nothing failed. Every wait is limited by CHAT_TIMEOUT_MS (default 5000 ms).
import { spawn } from 'node:child_process';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { io } from 'socket.io-client';
import { WebSocket } from 'ws';

function usage(msg) {
  if (msg) process.stderr.write(`chat_session_socketio.mjs: ${msg}\n`);
  process.stderr.write('usage: node chat_session_socketio.mjs PORT [polling|websocket|upgrade]\n');
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv.length < 1 || argv.length > 2) usage();
if (!/^[0-9]+$/.test(argv[0]) || Number(argv[0]) < 1 || Number(argv[0]) > 65535) {
  usage(`bad port '${argv[0]}'`);
}
const PORT = Number(argv[0]);
const MODE = argv[1] ?? 'upgrade';
const TRANSPORT_SETS = {
  polling: ['polling'],
  websocket: ['websocket'],
  upgrade: ['polling', 'websocket'],
};
if (!TRANSPORT_SETS[MODE]) usage(`bad transports '${MODE}'`);
const TRANSPORTS = TRANSPORT_SETS[MODE];
const CHAT_URL = `http://127.0.0.1:${PORT}/chat`;
const WS_URL = `ws://127.0.0.1:${PORT}/chat`;
const TIMEOUT_MS = Number(process.env.CHAT_TIMEOUT_MS) || 5000;
const REFUSAL = 'a token of letters and digits is required';

// A stray rejection from an abandoned (timed-out) wait must not kill the run.
process.on('unhandledRejection', () => {});

// ---------------------------------------------------------------- helpers

const show = (v) => JSON.stringify(v);

/** Rejects after ms with "timed out after ... waiting for WHAT". */
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

/** A bounded wait for an emitter's event (or a predicate to hold already). */
function waitFor(emitter, event, what, ms = TIMEOUT_MS) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (...args) => resolve(args);
    emitter.once(event, handler);
  });
  return withTimeout(p, what, () => emitter.off(event, handler), ms);
}

/** Every client manager and raw socket opened by the run, so that the end can tear down leftovers. */
const allClients = [];

let nextTag = 1;

/**
 * One Socket.IO chat connection with an awaitable queue of what it received: events
 * {obj: {event, data}, raw} (from onAny) and acks {ack: tag, args, raw} (from ack callbacks), in
 * the order socket.io-client handled them.
 */
class Conn {
  constructor(name, sock) {
    this.name = name;
    this.sock = sock;
    this.queue = [];
    this.waiters = [];
    this.disconnects = [];   // reasons, in order
    sock.onAny((event, ...args) => {
      const item = { obj: { event, data: args[0] }, args, raw: show([event, ...args]) };
      this.push(item);
    });
    sock.on('disconnect', (reason) => {
      this.disconnects.push(reason);
      for (const w of this.waiters.splice(0)) {
        w.reject(new Error(`${this.name}: disconnected (${reason}) while waiting for a message`));
      }
    });
  }

  push(item) {
    const w = this.waiters.shift();
    if (w) w.resolve(item);
    else this.queue.push(item);
  }

  get connected() { return this.sock.connected; }

  /** Next received item; bounded by TIMEOUT_MS. */
  nextItem(what = 'a message') {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (!this.sock.connected) {
      return Promise.reject(new Error(`${this.name}: not connected (${this.disconnects.at(-1) ?? 'never was'}) `
        + `while waiting for ${what}`));
    }
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = { resolve, reject };
      this.waiters.push(waiter);
    });
    return withTimeout(p, `${what} on ${this.name}`, () => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }

  /** Next item, which must be an event with exactly one argument. */
  async next(what) {
    const item = await this.nextItem(what);
    if (item.ack !== undefined) throw new Error(`${this.name}: got ack ${item.raw} while waiting for ${what}`);
    if (item.args.length !== 1) {
      throw new Error(`${this.name}: got event ${item.raw} with ${item.args.length} arguments, expected one`);
    }
    return item;
  }

  /** An event without an ack. */
  emit(event, ...args) {
    if (!this.sock.connected) throw new Error(`${this.name}: cannot emit, not connected`);
    this.sock.emit(event, ...args);
  }

  /** An event with an ack; the ack's arrival is queued as {ack: tag}. Returns the tag. */
  emitAck(event, ...args) {
    if (!this.sock.connected) throw new Error(`${this.name}: cannot emit, not connected`);
    const tag = nextTag++;
    this.sock.emit(event, ...args, (...reply) => {
      this.push({ ack: tag, event, args: reply, raw: `ack of ${event} #${tag}: ${show(reply)}` });
    });
    return tag;
  }

  /**
   * An event with an ack that must never be called; returns a probe whose check() throws if it
   * was. (Call check() after a later request on this connection was answered.)
   */
  emitNoAck(event, ...args) {
    if (!this.sock.connected) throw new Error(`${this.name}: cannot emit, not connected`);
    const probe = { called: null };
    this.sock.emit(event, ...args, (...reply) => { probe.called = reply; });
    probe.check = () => {
      if (probe.called) {
        throw new Error(`${this.name}: the ack of ${event} ${show(args)} was called with ${show(probe.called)}, `
          + 'expected no ack');
      }
    };
    return probe;
  }

  /** Sends a raw Socket.IO packet (text after the Engine.IO message type) on the session. */
  writeRaw(packet) {
    this.sock.io.engine.write(packet);
  }

  transport() { return this.sock.io.engine?.transport?.name; }

  /** Client-side disconnect (a DISCONNECT packet, then the manager closes the session). */
  disconnect() { this.sock.disconnect(); }
}

/** io() options for a chat client; the token goes as auth unless opts say otherwise. */
function clientOptions(token, extra = {}) {
  const o = { transports: TRANSPORTS, forceNew: true, reconnection: false, ...extra };
  if (token !== undefined && !('auth' in extra)) o.auth = { token };
  return o;
}

/** Opens a socket; resolves once connected, rejects on connect_error (message and data shown). */
async function handshake(name, opts) {
  const sock = io(CHAT_URL, opts);
  allClients.push(sock);
  const conn = new Conn(name, sock);
  const p = new Promise((resolve, reject) => {
    sock.once('connect', () => resolve(conn));
    sock.once('connect_error', (err) => reject(new Error(`${name}: connect_error ${show(err.message)} `
      + `data ${show(err.data)}`)));
  });
  try {
    await withTimeout(p, `${name}'s connect`);
  } catch (err) {
    sock.disconnect();
    throw err;
  }
  const t = conn.transport();
  if (!opts.transports.includes(t)) {
    throw new Error(`${name}: connected over ${t}, allowed were ${show(opts.transports)}`);
  }
  return conn;
}

/**
 * Connects and makes sure the server ran on_connect: a first request on the new socket is answered
 * (with nothing before the ack). 04_chat counts the user online and joins its private room in
 * on_connect; another client's request right after 'connect' could still miss that.
 */
async function connect(name, token = name, extra = {}) {
  const conn = await handshake(name, clientOptions(token, extra));
  await expectNothing(conn, 'right after connecting');
  return conn;
}

/** A connection that must be refused; resolves to the connect_error. */
async function connectRefused(label, opts) {
  const sock = io(CHAT_URL, opts);
  allClients.push(sock);
  const p = new Promise((resolve, reject) => {
    sock.once('connect', () => reject(new Error(`${label}: connected (id ${sock.id}), expected a connect_error`)));
    sock.once('connect_error', (err) => resolve(err));
  });
  try {
    return await withTimeout(p, `the refusal of ${label}`);
  } finally {
    sock.disconnect();
  }
}

function expectEqual(conn, got, expected, what) {
  if (!isDeepStrictEqual(got.obj, expected)) {
    throw new Error(`${conn.name}: expected ${what ? `${what} ` : ''}${show(expected)}, got ${got.raw}`);
  }
}

/** The next item on conn must be exactly the event `expected` ({event, data}). */
async function expectMessage(conn, expected, what) {
  const got = await conn.next(show(expected));
  expectEqual(conn, got, expected, what);
  return got;
}

/** The next item on conn must be the ack `tag`; returns its arguments. */
async function expectAck(conn, tag, what) {
  const got = await conn.nextItem(`the ack of ${what}`);
  if (got.ack !== tag) {
    throw new Error(`${conn.name}: expected the ack of ${what}, got ${got.raw}`);
  }
  return got.args;
}

/** onlineCount with an ack; returns the count. */
async function onlineCount(conn) {
  const tag = conn.emitAck('onlineCount', null);
  const args = await expectAck(conn, tag, 'onlineCount');
  if (args.length !== 1 || !Number.isInteger(args[0]) || args[0] < 0) {
    throw new Error(`${conn.name}: bad onlineCount ack ${show(args)}`);
  }
  return args[0];
}

/** Asserts that nothing is pending on conn: its next item is the ack of a fresh onlineCount. */
async function expectNothing(conn, context) {
  const tag = conn.emitAck('onlineCount', null);
  const got = await conn.nextItem('the ack of onlineCount');
  if (got.ack !== tag) {
    throw new Error(`${conn.name} received ${got.raw}${context ? ` (${context})` : ''}`
      + ' where only the ack of onlineCount was due');
  }
  if (got.args.length !== 1 || !Number.isInteger(got.args[0])) {
    throw new Error(`${conn.name}: bad onlineCount ack ${got.raw}`);
  }
}

/** Discards whatever is pending on conn (after a failed scenario); bounded by TIMEOUT_MS. */
async function drain(conn) {
  const tag = conn.emitAck('onlineCount', null);
  for (;;) {
    const got = await conn.nextItem('the ack of onlineCount while draining');
    if (got.ack === tag) return;
  }
}

/** onlineCount with an ack; returns the raw items that came before its ack. */
async function collectUntilReply(conn) {
  const tag = conn.emitAck('onlineCount', null);
  const before = [];
  for (;;) {
    const got = await conn.nextItem('the ack of onlineCount');
    if (got.ack === tag) return before;
    before.push(got.raw);
  }
}

/** The next item must be an exception event {"status": "error", "message": non-empty string}. */
async function expectException(conn, what, message) {
  const got = await conn.next(`an exception event (${what})`);
  const { obj } = got;
  const d = obj.data;
  if (obj.event !== 'exception' || d === null || typeof d !== 'object' || Array.isArray(d)
      || d.status !== 'error' || typeof d.message !== 'string' || d.message === ''
      || Object.keys(d).length !== 2) {
    throw new Error(`${conn.name}: expected an exception event {"status":"error","message":...} for `
      + `${what}, got ${got.raw}`);
  }
  if (message !== undefined && d.message !== message) {
    throw new Error(`${conn.name}: exception message for ${what} is ${show(d.message)}, expected ${show(message)}`);
  }
  return got;
}

/** Polls onlineCount on conn until it is `want` (bounded); throws with the last value otherwise. */
async function waitForCount(conn, want, what) {
  let n = -1;
  let gaveUp = false;
  try {
    await withTimeout((async () => {
      while (!gaveUp && (n = await onlineCount(conn)) !== want);
    })(), `onlineCount to become ${want} ${what}`, () => { gaveUp = true; });
  } catch (err) {
    throw new Error(`${err.message}; it was ${n}`);
  }
}

/** Waits (bounded) until conn's socket reports a disconnect; returns the reason. */
async function expectDisconnect(conn, what) {
  if (conn.disconnects.length) return conn.disconnects.at(-1);
  const [reason] = await waitFor(conn.sock, 'disconnect', `${conn.name}'s disconnect (${what})`);
  return reason;
}

/**
 * Drops conn's transport without a Socket.IO DISCONNECT: over WebSocket the TCP connection is cut
 * (no close handshake); over polling the Engine.IO session is closed (the only way to drop it).
 */
function dropTransport(conn) {
  const engine = conn.sock.io.engine;
  const ws = engine.transport?.name === 'websocket' ? engine.transport.ws : null;
  if (ws && typeof ws.terminate === 'function') ws.terminate();
  else engine.close();
}

// A WsAdapter client (Node `ws`, the JSON envelope), for the scenario that mixes the platforms.
class WsConn {
  constructor(name, ws) {
    this.name = name;
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code) => {
        this.closeInfo = { code };
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${name}: closed (${code}) while waiting`));
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data) => {
      const raw = data.toString('utf8');
      let obj;
      try { obj = JSON.parse(raw); } catch { obj = { unparsable: raw }; }
      const item = { obj, raw };
      const w = this.waiters.shift();
      if (w) w.resolve(item);
      else this.queue.push(item);
    });
    ws.on('error', () => {});
  }

  next(what) {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) return Promise.reject(new Error(`${this.name}: closed while waiting for ${what}`));
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = { resolve, reject };
      this.waiters.push(waiter);
    });
    return withTimeout(p, `${what} on ${this.name}`, () => {
      const i = this.waiters.indexOf(waiter);
      if (i >= 0) this.waiters.splice(i, 1);
    });
  }

  emit(event, data, id) {
    const m = { event };
    if (data !== undefined) m.data = data;
    if (id !== undefined) m.id = id;
    this.ws.send(JSON.stringify(m));
  }

  async expectNothing(context) {
    const id = `fence-${nextTag++}`;
    this.emit('onlineCount', undefined, id);
    const got = await this.next('the reply to onlineCount');
    if (got.obj.event !== 'onlineCount' || got.obj.id !== id) {
      throw new Error(`${this.name} received ${got.raw}${context ? ` (${context})` : ''} where only the reply `
        + `to onlineCount id ${id} was due`);
    }
  }

  async onlineCount() {
    const id = `count-${nextTag++}`;
    this.emit('onlineCount', undefined, id);
    const got = await this.next('the reply to onlineCount');
    if (got.obj.event !== 'onlineCount' || got.obj.id !== id || !Number.isInteger(got.obj.data)) {
      throw new Error(`${this.name}: expected the reply to onlineCount id ${id}, got ${got.raw}`);
    }
    return got.obj.data;
  }

  async close() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    await withTimeout(this.closed, `${this.name}'s close handshake`);
  }
}

async function wsConnect(name, token) {
  const ws = new WebSocket(`${WS_URL}?token=${token}`);
  allClients.push(ws);
  const conn = new WsConn(name, ws);
  const opened = new Promise((resolve, reject) => {
    ws.once('open', () => resolve(conn));
    ws.once('unexpected-response', (req, res) => {
      reject(new Error(`${name}: handshake got HTTP ${res.statusCode} instead of 101`));
      req.destroy();
    });
    ws.once('error', (err) => reject(new Error(`${name}: handshake failed: ${err.message}`)));
  });
  await withTimeout(opened, `${name}'s handshake`, () => ws.terminate());
  await conn.expectNothing('right after connecting');
  return conn;
}

// -------------------------------------------------------------- scenarios

const s = {}; // the session's long-lived connections: alice, bob1, bob2, carol
const sessionConns = () => ['alice', 'bob1', 'bob2', 'carol'].map((k) => s[k]).filter(Boolean);
const requireSession = (...names) => {
  for (const n of names) {
    if (!s[n] || !s[n].connected) throw new Error(`${n} is not connected (an earlier scenario failed)`);
  }
  return names.map((n) => s[n]);
};
let roomSeq = 0;
const freshRoom = (label) => `${label}-${++roomSeq}-${process.pid}`;

const scenarios = [];
const scenario = (name, fn) => scenarios.push({ name, fn });

for (const [label, extra] of [
  ['no auth', {}],
  ['auth without token', { auth: { user: 'alice' } }],
  ['empty token', { auth: { token: '' } }],
  ['token with a dash', { auth: { token: 'a-b' } }],
  ['token with a space', { auth: { token: 'a b' } }],
  ['token with a slash', { auth: { token: 'a/b' } }],
  ['token that is a number', { auth: { token: 42 } }],
  ['token longer than 64', { auth: { token: 'x'.repeat(65) } }],
  ['query token with a dash', { query: { token: 'a-b' } }],
  ['empty query token', { query: { token: '' } }],
]) {
  scenario(`connect refused: connect_error "${REFUSAL}" {status: 401}: ${label}`, async () => {
    const err = await connectRefused(label, clientOptions(undefined, extra));
    if (err.message !== REFUSAL || !isDeepStrictEqual(err.data, { status: 401 })) {
      throw new Error(`connect_error message ${show(err.message)} data ${show(err.data)}, expected `
        + `${show(REFUSAL)} data {"status":401}`);
    }
  });
}

scenario('connect to a namespace the server does not have: connect_error "Invalid namespace"', async () => {
  const sock = io(`http://127.0.0.1:${PORT}/nosuch`, clientOptions('alice'));
  allClients.push(sock);
  try {
    const err = await withTimeout(new Promise((resolve, reject) => {
      sock.once('connect', () => reject(new Error('connected to /nosuch')));
      sock.once('connect_error', resolve);
    }), 'the refusal of /nosuch');
    if (err.message !== 'Invalid namespace') throw new Error(`connect_error message ${show(err.message)}`);
  } finally {
    sock.disconnect();
  }
});

scenario('connect alice, bob (two devices) and carol; nobody is sent anything unasked', async () => {
  s.alice = await connect('alice');
  s.bob1 = await connect('bob1', 'bob');
  s.bob2 = await connect('bob2', 'bob');
  s.carol = await connect('carol');
  const ids = sessionConns().map((c) => c.sock.id);
  if (new Set(ids).size !== ids.length || ids.some((id) => typeof id !== 'string' || id === '')) {
    throw new Error(`socket ids not distinct non-empty strings: ${show(ids)}`);
  }
});

scenario('onlineCount counts distinct users (bob once); its value is the ack', async () => {
  const [alice, bob2] = requireSession('alice', 'bob2');
  let n = await alice.sock.timeout(TIMEOUT_MS).emitWithAck('onlineCount', null);
  if (n !== 3) throw new Error(`emitWithAck('onlineCount', null) gave ${show(n)}, expected 3`);
  n = await alice.sock.timeout(TIMEOUT_MS).emitWithAck('onlineCount');
  if (n !== 3) throw new Error(`emitWithAck('onlineCount') (no data) gave ${show(n)}, expected 3`);
  n = await bob2.sock.timeout(TIMEOUT_MS).emitWithAck('onlineCount', { any: 'thing' });
  if (n !== 3) throw new Error(`bob2: emitWithAck('onlineCount', {...}) gave ${show(n)}, expected 3`);
  const tag = alice.emitAck('onlineCount', null);
  const args = await expectAck(alice, tag, 'onlineCount');
  if (!isDeepStrictEqual(args, [3])) throw new Error(`the ack carries ${show(args)}, expected [3]`);
  await expectNothing(alice);
});

scenario('without an ack the handler\'s return value is dropped (no onlineCount event)', async () => {
  const [alice] = requireSession('alice');
  alice.emit('onlineCount');
  alice.emit('onlineCount', null);
  await expectNothing(alice, 'onlineCount sent without an ack');
});

scenario('ack ids are echoed exactly, 0 and large ones too (raw packets)', async () => {
  const [alice] = requireSession('alice');
  const raw = await connect('raw');
  const count = await onlineCount(raw);   // alice, bob, carol and raw
  const problems = [];
  const engine = raw.sock.io.engine;
  const packets = [];
  let wake = () => {};
  const onPacket = (p) => {
    if (p.type === 'message') {
      packets.push(p.data);
      wake();
    }
  };
  engine.on('packet', onPacket);
  const nextPacket = (what) => withTimeout(new Promise((resolve) => {
    const check = () => { if (packets.length) resolve(packets.shift()); };
    wake = check;
    check();
  }), what);
  try {
    for (const id of ['0', '1', '42', '2147483648', '9007199254740991']) {
      const want = `3/chat,${id}[${count}]`;
      raw.writeRaw(`2/chat,${id}["onlineCount"]`);
      const got = await nextPacket(`the ack with id ${id}`);
      if (got !== want) problems.push(`id ${id}: got ${show(got)}, expected ${show(want)}`);
    }
    engine.off('packet', onPacket);
    await expectNothing(raw, 'after the raw requests');
  } finally {
    engine.off('packet', onPacket);
    raw.disconnect();
  }
  await waitForCount(alice, 3, 'after raw left');
  if (problems.length) throw new Error(problems.join('; '));
});

scenario('onlineCount: a third device of bob does not count, a new user does', async () => {
  const [alice] = requireSession('alice');
  const bob3 = await connect('bob3', 'bob');
  try {
    if ((await onlineCount(alice)) !== 3) throw new Error('count changed when bob connected again');
    const dave = await connect('dave');
    try {
      const n = await onlineCount(alice);
      if (n !== 4) throw new Error(`count is ${n} with dave connected, expected 4`);
    } finally {
      dave.disconnect();
    }
    await waitForCount(alice, 3, 'after dave left');
  } finally {
    bob3.disconnect();
  }
  // bob3's disconnect is not acknowledged; bob1 and bob2 are still there: 3 however long we wait.
  // Make sure bob3 is gone before the next scenarios: a private message to bob reaches bob1, bob2.
  if ((await onlineCount(alice)) !== 3) throw new Error('count is not 3 after bob3 left');
});

scenario('a client with the token in the query (io(url, {query: {token}})) is that user', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const quentin = await connect('quentin', undefined, { query: { token: 'quentin' } });
  try {
    const n = await onlineCount(alice);
    if (n !== 4) throw new Error(`count is ${n} with quentin connected, expected 4`);
    quentin.emit('privateMessage', { toUserId: 'alice', message: 'hello via query' });
    await expectMessage(alice, { event: 'receivePrivateMessage', data: { from: 'quentin', message: 'hello via query' } });
    alice.emit('privateMessage', { toUserId: 'quentin', message: 'got it' });
    await expectMessage(quentin, { event: 'receivePrivateMessage', data: { from: 'alice', message: 'got it' } });
    for (const c of [quentin, alice, bob1, bob2, carol]) await expectNothing(c, 'private messages alice/quentin');
  } finally {
    quentin.disconnect();
  }
  await waitForCount(alice, 3, 'after quentin left');
});

scenario('message fans out to every socket, sender included', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  alice.emit('message', { text: 'hello everyone ✓' });
  const expected = { event: 'receiveMessage', data: { from: 'alice', text: 'hello everyone ✓' } };
  for (const c of [alice, bob1, bob2, carol]) await expectMessage(c, expected);
  for (const c of [alice, bob1, bob2, carol]) await expectNothing(c, 'a second copy?');
  // From bob's second device: "from" is the user id, not the device.
  bob2.emit('message', { text: 'hi from my phone' });
  const fromBob = { event: 'receiveMessage', data: { from: 'bob', text: 'hi from my phone' } };
  for (const c of [bob2, alice, bob1, carol]) await expectMessage(c, fromBob);
  // With an ack: the handler returns nothing, so no ack comes (and the broadcast goes out).
  const probe = alice.emitNoAck('message', { text: 'acked?' });
  const acked = { event: 'receiveMessage', data: { from: 'alice', text: 'acked?' } };
  for (const c of [alice, bob1, bob2, carol]) await expectMessage(c, acked);
  await expectNothing(alice, 'after a message with an ack');
  probe.check();
});

scenario('joinRoom: userJoined goes to the other members only, not to the joiner', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const room = freshRoom('lobby');
  alice.emit('joinRoom', { room });
  await expectNothing(alice, 'after joining an empty room');
  for (const c of [bob1, bob2, carol]) await expectNothing(c, `alice joined ${room}, they are not in it`);

  bob1.emit('joinRoom', { room });
  await expectMessage(alice, { event: 'userJoined', data: { userId: 'bob', room } });
  await expectNothing(bob1, 'the joiner must not get userJoined');
  for (const c of [bob2, carol]) await expectNothing(c, `bob1 joined ${room}, they are not in it`);
});

scenario('roomMessage reaches the members except the sender, not non-members', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const room = freshRoom('team');
  alice.emit('joinRoom', { room });
  await expectNothing(alice);
  carol.emit('joinRoom', { room });
  await expectMessage(alice, { event: 'userJoined', data: { userId: 'carol', room } });
  await expectNothing(carol, 'the joiner must not get userJoined');

  alice.emit('roomMessage', { room, message: 'team meeting at 3' });
  await expectMessage(carol,
    { event: 'receiveRoomMessage', data: { from: 'alice', room, message: 'team meeting at 3' } });
  await expectNothing(alice, 'the sender must not get its own roomMessage');
  for (const c of [bob1, bob2]) await expectNothing(c, `bob is not in ${room}`);

  carol.emit('roomMessage', { room, message: 'ok' });
  await expectMessage(alice, { event: 'receiveRoomMessage', data: { from: 'carol', room, message: 'ok' } });
  await expectNothing(carol, 'the sender must not get its own roomMessage');
  for (const c of [bob1, bob2]) await expectNothing(c, `bob is not in ${room}`);
});

scenario('roomMessage to a room nobody joined reaches nobody', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  alice.emit('roomMessage', { room: freshRoom('empty'), message: 'anyone?' });
  await expectNothing(alice, 'roomMessage to an empty room');
  for (const c of [bob1, bob2, carol]) await expectNothing(c, 'roomMessage to an empty room');
});

scenario('one device of a user joins: the user\'s other device is another member', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const room = freshRoom('devices');
  bob1.emit('joinRoom', { room });
  await expectNothing(bob1);
  bob2.emit('joinRoom', { room });
  await expectMessage(bob1, { event: 'userJoined', data: { userId: 'bob', room } });
  await expectNothing(bob2, 'the joiner must not get userJoined');
  bob2.emit('roomMessage', { room, message: 'note to self' });
  await expectMessage(bob1, { event: 'receiveRoomMessage', data: { from: 'bob', room, message: 'note to self' } });
  await expectNothing(bob2, 'the sending device must not get its own roomMessage');
  for (const c of [alice, carol]) await expectNothing(c, `not in ${room}`);
});

scenario('leaveRoom: userLeft goes to the remaining members; the leaver hears no more', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const room = freshRoom('club');
  alice.emit('joinRoom', { room });
  await expectNothing(alice);
  bob1.emit('joinRoom', { room });
  await expectMessage(alice, { event: 'userJoined', data: { userId: 'bob', room } });
  carol.emit('joinRoom', { room });
  await expectMessage(alice, { event: 'userJoined', data: { userId: 'carol', room } });
  await expectMessage(bob1, { event: 'userJoined', data: { userId: 'carol', room } });
  await expectNothing(carol, 'the joiner must not get userJoined');

  carol.emit('leaveRoom', { room });
  await expectMessage(alice, { event: 'userLeft', data: { userId: 'carol', room } });
  await expectMessage(bob1, { event: 'userLeft', data: { userId: 'carol', room } });
  await expectNothing(carol, 'the leaver must not get userLeft');
  await expectNothing(bob2, `bob2 never joined ${room}`);

  alice.emit('roomMessage', { room, message: 'carol is gone' });
  await expectMessage(bob1, { event: 'receiveRoomMessage', data: { from: 'alice', room, message: 'carol is gone' } });
  await expectNothing(carol, 'carol left the room');
  await expectNothing(alice, 'the sender must not get its own roomMessage');

  carol.emit('leaveRoom', { room });
  await expectNothing(carol, 'leaving a room not joined');
  for (const c of [alice, bob1]) await drain(c);
});

scenario('privateMessage reaches both of bob\'s devices and nobody else', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  alice.emit('privateMessage', { toUserId: 'bob', message: 'psst, bob' });
  const expected = { event: 'receivePrivateMessage', data: { from: 'alice', message: 'psst, bob' } };
  await expectMessage(bob1, expected);
  await expectMessage(bob2, expected);
  await expectNothing(bob1, 'a second copy?');
  await expectNothing(bob2, 'a second copy?');
  await expectNothing(alice, 'the sender of a private message');
  await expectNothing(carol, 'a private message to bob');

  bob1.emit('privateMessage', { toUserId: 'carol', message: 'hi carol' });
  await expectMessage(carol, { event: 'receivePrivateMessage', data: { from: 'bob', message: 'hi carol' } });
  for (const c of [bob1, bob2, alice]) await expectNothing(c, 'a private message to carol');
});

scenario('privateMessage to a user who is not online reaches nobody', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  alice.emit('privateMessage', { toUserId: 'zed', message: 'are you there?' });
  for (const c of [alice, bob1, bob2, carol]) await expectNothing(c, 'a private message to zed');
});

scenario('joinRoom/leaveRoom cannot tap or drop a user\'s private messages', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const rooms = ['user:bob', 'bob', 'user-bob', '@bob', 'private:bob'];
  const problems = [];
  const note = (conn, got, context) => problems.push(`${conn.name} received ${got.join(' ')} ${context}`);
  for (const room of rooms) carol.emit('joinRoom', { room });
  let got = await collectUntilReply(carol);
  if (got.length) note(carol, got, 'after joining rooms');
  for (const c of [bob1, bob2]) {
    got = await collectUntilReply(c);
    if (got.length) note(c, got, `(carol joined ${rooms.map(show).join(', ')}; bob joined none of them)`);
  }
  try {
    alice.emit('privateMessage', { toUserId: 'bob', message: 'for bob only' });
    const expected = { event: 'receivePrivateMessage', data: { from: 'alice', message: 'for bob only' } };
    await expectMessage(bob1, expected);
    await expectMessage(bob2, expected);
    got = await collectUntilReply(carol);
    if (got.length) note(carol, got, `(a private message to bob; carol joined ${rooms.map(show).join(', ')})`);

    alice.emit('leaveRoom', { room: 'user:alice' });
    alice.emit('leaveRoom', { room: 'alice' });
    got = await collectUntilReply(alice);
    if (got.length) note(alice, got, 'after leaving rooms she never joined');
    bob1.emit('privateMessage', { toUserId: 'alice', message: 'can you hear me?' });
    got = await collectUntilReply(bob1);
    if (got.length) note(bob1, got, 'after sending a private message');
    const msgs = await collectUntilReply(alice);
    const want = show(['receivePrivateMessage', { from: 'bob', message: 'can you hear me?' }]);
    if (msgs.length !== 1 || !isDeepStrictEqual(JSON.parse(msgs[0]), JSON.parse(want))) {
      problems.push(`alice (after leaveRoom "user:alice" and "alice") got ${msgs.length ? msgs.join(' ') : 'nothing'}`
        + ` for bob's private message, expected ${want}`);
    }
  } finally {
    for (const room of rooms) carol.emit('leaveRoom', { room });
    for (const c of [carol, bob1, bob2, alice]) await drain(c);
  }
  if (problems.length) throw new Error(problems.join('; '));
});

scenario('secret: admin gets the data as the ack, everyone else an exception "Forbidden resource"', async () => {
  const [alice, bob1] = requireSession('alice', 'bob1');
  const admin = await connect('admin');
  try {
    let tag = admin.emitAck('secret');
    const args = await expectAck(admin, tag, 'secret');
    if (args.length !== 1 || args[0] === null || typeof args[0] !== 'object' || Array.isArray(args[0])
        || typeof args[0].secret !== 'string') {
      throw new Error(`admin: expected the ack [{"secret": string}], got ${show(args)}`);
    }
    tag = admin.emitAck('secret', { please: true });
    const again = await expectAck(admin, tag, 'secret (with data)');
    if (!isDeepStrictEqual(again, args)) throw new Error(`admin: second ack ${show(again)} differs from ${show(args)}`);
    // Without an ack: nothing comes back.
    admin.emit('secret');
    await expectNothing(admin, 'secret without an ack');

    alice.emit('secret');
    await expectException(alice, 'secret from alice', 'Forbidden resource');
    const probe = bob1.emitNoAck('secret', { please: true });
    await expectException(bob1, 'secret from bob (with an ack)', 'Forbidden resource');
    const notAdmin = await connect('Admin');
    try {
      notAdmin.emit('secret');
      await expectException(notAdmin, 'secret from "Admin"', 'Forbidden resource');
      await expectNothing(notAdmin);
    } finally {
      notAdmin.disconnect();
    }
    for (const c of [alice, bob1]) await expectNothing(c, 'after the forbidden secret');
    probe.check();
  } finally {
    admin.disconnect();
  }
  await waitForCount(alice, 3, 'after admin and Admin left');
});

// Invalid payloads: each gets one exception event (and no ack), nobody else hears of it, and the
// connection stays usable. The arguments after the event name, as emitted.
const invalid = [
  ['message without data', 'message', []],
  ['message with data null', 'message', [null]],
  ['message with a string for data', 'message', ['hello']],
  ['message without text', 'message', [{}]],
  ['message with a numeric text', 'message', [{ text: 5 }]],
  ['message with an array text', 'message', [{ text: ['a'] }]],
  ['message with two arguments', 'message', [{ text: 'a' }, { text: 'b' }]],
  ['joinRoom without room', 'joinRoom', [{}]],
  ['joinRoom with a numeric room', 'joinRoom', [{ room: 1 }]],
  ['leaveRoom without room', 'leaveRoom', [{ name: 'x' }]],
  ['roomMessage without message', 'roomMessage', [{ room: 'x' }]],
  ['roomMessage without room', 'roomMessage', [{ message: 'x' }]],
  ['privateMessage without toUserId', 'privateMessage', [{ message: 'x' }]],
  ['privateMessage with a numeric message', 'privateMessage', [{ toUserId: 'bob', message: 1 }]],
];
for (const [label, event, args] of invalid) {
  scenario(`invalid payload answered with an exception event: ${label}`, async () => {
    const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
    alice.emit(event, ...args);
    await expectException(alice, label);
    const probe = alice.emitNoAck(event, ...args);
    await expectException(alice, `${label} (with an ack)`);
    await expectNothing(alice, 'after the exception');
    probe.check();
    for (const c of [bob1, bob2, carol]) await expectNothing(c, `alice sent an invalid ${event}`);
  });
}

scenario('events without a handler are ignored (no exception, no ack); the connection stays usable', async () => {
  const [alice, bob1] = requireSession('alice', 'bob1');
  for (const event of ['nosuchevent', 'receiveMessage', 'Message', '']) alice.emit(event, { text: 'x' });
  await expectNothing(alice, 'after events without a handler');
  const probe = bob1.emitNoAck('doesNotExist', null);
  await expectNothing(bob1, 'after an event without a handler, with an ack');
  probe.check();
  alice.emit('message', { text: 'still here' });
  const expected = { event: 'receiveMessage', data: { from: 'alice', text: 'still here' } };
  for (const c of requireSession('alice', 'bob1', 'bob2', 'carol')) await expectMessage(c, expected);
});

// Malformed Socket.IO packets (written raw on the Engine.IO session): the server ends the session,
// as the socket.io server does; the others hear nothing of it.
for (const [label, packet] of [
  ['truncated JSON', '2/chat,["message",{"text":"x"}'],
  ['not JSON at all', '2/chat,hello'],
  ['single quotes', "2/chat,['message']"],
  ['trailing garbage', '2/chat,["onlineCount"] x'],
  ['an object, not an array', '2/chat,{"event":"message"}'],
  ['a string, not an array', '2/chat,"message"'],
  ['null', '2/chat,null'],
  ['an empty array', '2/chat,[]'],
  ['a reserved event name', '2/chat,["disconnect"]'],
  ['an unknown packet type', '9/chat,["message"]'],
  ['an empty packet', ''],
  ['an event for a namespace not joined', '2/other,["message",{"text":"x"}]'],
]) {
  scenario(`malformed packet ends the session: ${label}`, async () => {
    const [alice, bob1] = requireSession('alice', 'bob1');
    const mallory = await connect('mallory');
    try {
      mallory.writeRaw(packet);
      const reason = await expectDisconnect(mallory, `after ${show(packet)}`);
      if (reason !== 'transport close') {   // what the socket.io server's closing the session gives
        throw new Error(`mallory: disconnect reason ${show(reason)}, expected "transport close"`);
      }
      if (mallory.queue.length) throw new Error(`mallory received ${mallory.queue.map((i) => i.raw).join(' ')}`);
    } finally {
      mallory.disconnect();
    }
    await expectNothing(alice, 'mallory sent a malformed packet');
    await expectNothing(bob1, 'mallory sent a malformed packet');
    await waitForCount(alice, 3, 'after mallory was dropped');
  });
}

// The race above, made certain with a hand-driven session: the malformed packet comes by POST after
// "3probe" has told the client to pause polling, so the close packet waits for no poll; it must go
// over the WebSocket once "5" makes that the transport, with a close frame, since engine.io-client
// takes a close packet on a WebSocket as said only when the WebSocket closes (else it would wait
// for its ping timeout, 45 s).
scenario('a session the server closes while its client pauses polling for the upgrade ends on the WebSocket', async () => {
  const [alice] = requireSession('alice');
  const base = `http://127.0.0.1:${PORT}/socket.io/?EIO=4&transport=polling`;
  const body = async (what, url, init) => {
    const res = await withTimeout(fetch(url, init), what);
    const text = await res.text();
    if (res.status !== 200) throw new Error(`${what}: HTTP ${res.status} ${show(text)}`);
    return text;
  };
  const open = await body('the handshake', base);
  const { sid } = JSON.parse(open.slice(1));
  const session = `${base}&sid=${sid}`;
  await body('the CONNECT', session, { method: 'POST', body: '40/chat,{"token":"mallory"}' });
  const reply = await body('the CONNECT reply', session);
  if (!reply.startsWith('40/chat,{"sid":')) throw new Error(`CONNECT answered ${show(reply)}`);
  const ws = new WebSocket(`ws://127.0.0.1:${PORT}/socket.io/?EIO=4&transport=websocket&sid=${sid}`);
  allClients.push(ws);
  const frames = [];
  let wake = () => {};
  ws.on('message', (data) => { frames.push(data.toString()); wake(); });
  const closed = new Promise((resolve) => ws.once('close', resolve));
  await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 'the probe opening');
  ws.send('2probe');
  await withTimeout(new Promise((resolve) => { wake = () => frames.length && resolve(); wake(); }), '"3probe"');
  if (frames[0] !== '3probe') throw new Error(`the probe got ${show(frames[0])} first, expected "3probe"`);
  const poll = await body('the poll that the probe ends', session);
  if (!poll.split('\x1e').includes('6')) throw new Error(`the poll during the upgrade got ${show(poll)}, expected a noop`);
  await fetch(session, { method: 'POST', body: "42/chat,['message']" }).then((r) => r.text()).catch(() => {});
  ws.send('5');
  try {
    await withTimeout(closed, 'the WebSocket closing after "5" (the session was closed)');
  } finally {
    ws.terminate();   // failed: the session goes now rather than at its heartbeat, sparing the scenarios after it
  }
  if (frames.at(-1) !== '1') throw new Error(`the WebSocket carried ${frames.map(show).join(' ')}, expected the close packet "1" last`);
  await waitForCount(alice, 3, 'after mallory was dropped');
});

scenario('many requests back-to-back are acked in order', async () => {
  const [alice] = requireSession('alice');
  const tags = [];
  for (let i = 0; i < 100; i++) tags.push(alice.emitAck('onlineCount'));
  for (const tag of tags) {
    const args = await expectAck(alice, tag, `onlineCount #${tag}`);
    if (!isDeepStrictEqual(args, [3])) throw new Error(`ack #${tag} carries ${show(args)}, expected [3]`);
  }
});

scenario('reconnection: a dropped client reconnects by itself, must re-join its rooms, and works', async () => {
  const [alice] = requireSession('alice');
  const room = freshRoom('comeback');
  const rita = await connect('rita', 'rita', {
    reconnection: true, reconnectionDelay: 50, reconnectionDelayMax: 200, reconnectionAttempts: 20,
  });
  try {
    alice.emit('joinRoom', { room });
    await expectNothing(alice);
    rita.emit('joinRoom', { room });
    await expectMessage(alice, { event: 'userJoined', data: { userId: 'rita', room } });
    const drops = [['engine.close()', () => rita.sock.io.engine.close()]];
    if (rita.transport() === 'websocket') drops.push(['the TCP connection cut', () => dropTransport(rita)]);
    for (const [how, drop] of drops) {
      const firstId = rita.sock.id;
      const reconnected = waitFor(rita.sock, 'connect', `rita's reconnect after ${how}`);
      drop();
      await reconnected;
      if (rita.sock.id === firstId) throw new Error(`rita got the same socket id ${firstId} after ${how}`);
      if (rita.sock.recovered) throw new Error('rita says her connection state was recovered');
      await expectNothing(rita, `right after reconnecting (${how})`);
      await waitForCount(alice, 4, `with rita back (${how})`);
      // The new connection is in no room: a roomMessage does not reach it.
      alice.emit('roomMessage', { room, message: `before rejoining (${how})` });
      await expectNothing(alice);
      await expectNothing(rita, `rooms are per connection; rita did not re-join ${room} after ${how}`);
      rita.emit('joinRoom', { room });
      await expectMessage(alice, { event: 'userJoined', data: { userId: 'rita', room } });
      alice.emit('roomMessage', { room, message: `welcome back (${how})` });
      await expectMessage(rita, { event: 'receiveRoomMessage', data: { from: 'alice', room, message: `welcome back (${how})` } });
      rita.emit('privateMessage', { toUserId: 'alice', message: `back (${how})` });
      await expectMessage(alice, { event: 'receivePrivateMessage', data: { from: 'rita', message: `back (${how})` } });
      await expectNothing(rita);
      await expectNothing(alice);
    }
  } finally {
    rita.disconnect();
  }
  await waitForCount(alice, 3, 'after rita left');
});

scenario('mixed transports in one room: polling and websocket clients both get a broadcast', async () => {
  const [alice, bob1] = requireSession('alice', 'bob1');
  const room = freshRoom('mixed');
  const pat = await connect('pat', 'pat', { transports: ['polling'] });
  const wes = await connect('wes', 'wes', { transports: ['websocket'] });
  try {
    pat.emit('joinRoom', { room });
    await expectNothing(pat);
    wes.emit('joinRoom', { room });
    await expectMessage(pat, { event: 'userJoined', data: { userId: 'wes', room } });
    await expectNothing(wes);
    alice.emit('roomMessage', { room, message: 'to both transports' });
    const want = { event: 'receiveRoomMessage', data: { from: 'alice', room, message: 'to both transports' } };
    await expectMessage(pat, want);
    await expectMessage(wes, want);
    pat.emit('roomMessage', { room, message: 'from polling' });
    await expectMessage(wes, { event: 'receiveRoomMessage', data: { from: 'pat', room, message: 'from polling' } });
    wes.emit('roomMessage', { room, message: 'from websocket' });
    await expectMessage(pat, { event: 'receiveRoomMessage', data: { from: 'wes', room, message: 'from websocket' } });
    for (const c of [pat, wes, alice, bob1]) await expectNothing(c, `the traffic of ${room}`);
    if (pat.transport() !== 'polling') throw new Error(`pat is on ${pat.transport()}`);
    if (wes.transport() !== 'websocket') throw new Error(`wes is on ${wes.transport()}`);
  } finally {
    pat.disconnect();
    wes.disconnect();
  }
  await waitForCount(alice, 3, 'after pat and wes left');
});

scenario('the platforms share rooms: a WsAdapter client and a Socket.IO client in one room', async () => {
  const [alice, bob1] = requireSession('alice', 'bob1');
  const room = freshRoom('bridge');
  const dave = await wsConnect('dave (ws)', 'dave');
  const erin = await connect('erin');
  try {
    dave.emit('joinRoom', { room });
    await dave.expectNothing();
    erin.emit('joinRoom', { room });
    const joined = await dave.next('userJoined');
    if (!isDeepStrictEqual(joined.obj, { event: 'userJoined', data: { userId: 'erin', room } })) {
      throw new Error(`dave (ws): expected userJoined of erin, got ${joined.raw}`);
    }
    await expectNothing(erin, 'the joiner must not get userJoined');
    alice.emit('roomMessage', { room, message: 'hello both platforms' });
    const data = { from: 'alice', room, message: 'hello both platforms' };
    await expectMessage(erin, { event: 'receiveRoomMessage', data });
    const got = await dave.next('receiveRoomMessage');
    if (!isDeepStrictEqual(got.obj, { event: 'receiveRoomMessage', data })) {
      throw new Error(`dave (ws): expected ${show({ event: 'receiveRoomMessage', data })}, got ${got.raw}`);
    }
    dave.emit('roomMessage', { room, message: 'from ws' });
    await expectMessage(erin, { event: 'receiveRoomMessage', data: { from: 'dave', room, message: 'from ws' } });
    erin.emit('roomMessage', { room, message: 'from socket.io' });
    const back = await dave.next('receiveRoomMessage from erin');
    if (!isDeepStrictEqual(back.obj, { event: 'receiveRoomMessage', data: { from: 'erin', room, message: 'from socket.io' } })) {
      throw new Error(`dave (ws): expected erin's roomMessage, got ${back.raw}`);
    }
    dave.emit('privateMessage', { toUserId: 'erin', message: 'across platforms' });
    await expectMessage(erin, { event: 'receivePrivateMessage', data: { from: 'dave', message: 'across platforms' } });
    await dave.expectNothing('the traffic of the bridge room');
    for (const c of [erin, alice, bob1]) await expectNothing(c, `the traffic of ${room}`);
    const n = await onlineCount(alice);
    if (n !== 5) throw new Error(`count is ${n} with dave (ws) and erin, expected 5`);
    await dave.close();
  } finally {
    dave.ws.terminate();
    erin.disconnect();
  }
  await waitForCount(alice, 3, 'after dave and erin left');
});

if (MODE === 'upgrade') {
  scenario('upgrade: the session\'s connections moved from polling to websocket', async () => {
    for (const c of requireSession('alice', 'bob1', 'bob2', 'carol')) {
      if (c.transport() !== 'websocket') await waitFor(c.sock.io.engine, 'upgrade', `${c.name}'s upgrade`);
      await expectNothing(c, 'after the upgrade');
    }
  });
}

scenario('disconnects: onlineCount goes down once a user\'s last socket is gone', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  if ((await onlineCount(alice)) !== 3) throw new Error('expected 3 users before the disconnects');

  carol.disconnect();
  await waitForCount(alice, 2, 'after carol disconnected');

  // bob's second device leaves: bob is still online on the first.
  bob2.disconnect();
  let n = await onlineCount(alice);
  if (n !== 2) throw new Error(`count is ${n} after one of bob's two devices left, expected 2`);
  alice.emit('privateMessage', { toUserId: 'bob', message: 'still there?' });
  await expectMessage(bob1, { event: 'receivePrivateMessage', data: { from: 'alice', message: 'still there?' } });
  alice.emit('message', { text: 'who is left?' });
  const expected = { event: 'receiveMessage', data: { from: 'alice', text: 'who is left?' } };
  for (const c of [alice, bob1]) await expectMessage(c, expected);
  n = await onlineCount(alice);
  if (n !== 2) throw new Error(`count is ${n} after one of bob's two devices left, expected 2`);

  // A client whose transport goes away without a DISCONNECT packet.
  const dave = await connect('dave');
  n = await onlineCount(alice);
  if (n !== 3) throw new Error(`count is ${n} with dave connected, expected 3`);
  dropTransport(dave);
  await waitForCount(alice, 2, `after dave's transport (${dave.transport() ?? 'gone'}) dropped`);
});

scenario('the last users leave', async () => {
  const [alice, bob1] = requireSession('alice', 'bob1');
  bob1.disconnect();
  await waitForCount(alice, 1, 'with only alice left');
  alice.disconnect();
  const reason = alice.disconnects.at(-1);
  if (reason !== 'io client disconnect') throw new Error(`alice's disconnect reason is ${show(reason)}`);
  // Nobody is left to ask: a WsAdapter client watches alice go (and leaves with a close handshake,
  // so that the run ends with no session the server has not seen end).
  const zoe = await wsConnect('zoe (ws)', 'zoe');
  try {
    let n = -1;
    let gaveUp = false;
    await withTimeout((async () => {
      while (!gaveUp && (n = await zoe.onlineCount()) !== 1);
    })(), 'onlineCount to become 1 (zoe alone) after alice disconnected', () => { gaveUp = true; })
      .catch((err) => { throw new Error(`${err.message}; it was ${n}`); });
    await zoe.close();
  } finally {
    zoe.ws.terminate();
  }
});

scenario('a client that vanishes (its process killed, its TCP connections cut) is noticed at once', async () => {
  // The socket.io server notices a polling client's held GET closing (and a WebSocket's TCP close)
  // at once; the ping timeout (45 s by default) is only for peers that go silent.
  // Everybody else has left: the observer is a WsAdapter client (it leaves with a close handshake).
  const watcher = await wsConnect('watcher (ws)', 'watcher');
  const count = () => watcher.onlineCount();
  const before = await count();
  const code = `
    import http from 'node:http';
    import { io } from 'socket.io-client';
    // GET requests whose bytes the kernel has taken: on loopback the server has them then, so a
    // kill after that cuts a GET the server holds (a client killed between two requests is only
    // noticed by the heartbeat). The agent wraps each socket's write to count them.
    let flushed = 0;
    const waiters = [];
    class Watching extends http.Agent {
      createConnection(options, cb) {
        const sock = super.createConnection(options, cb);
        const write = sock.write;
        sock.write = function (chunk, ...rest) {
          if (!String(chunk).startsWith('GET ')) return write.call(this, chunk, ...rest);
          const done = () => { flushed++; for (const w of waiters.splice(0)) w(); };
          const i = rest.findIndex((a) => typeof a === 'function');
          if (i >= 0) { const next = rest[i]; rest[i] = (...a) => { done(); next(...a); }; } else rest.push(done);
          return write.call(this, chunk, ...rest);
        };
        return sock;
      }
    }
    const s = io(${show(CHAT_URL)}, { ...${show(clientOptions('victor'))}, agent: new Watching() });
    s.on('connect', async () => {
      await s.timeout(${TIMEOUT_MS}).emitWithAck('onlineCount');
      const engine = s.io.engine;
      // Upgrading: ready once on the WebSocket (its TCP close is what the server notices).
      if (${show(MODE)} === 'upgrade' && engine.transport.name !== 'websocket') {
        await new Promise((done) => engine.once('upgrade', done));
      }
      if (engine.transport.name === 'polling') {
        // A fresh GET: a request's ack ends the one held now, and the client polls again at once,
        // synchronously after the response (before the ack's await resumes); the new GET's bytes
        // are written later, and counted then.
        let want = Infinity;
        engine.transport.on('poll', () => { want = flushed + 1; });
        await s.timeout(${TIMEOUT_MS}).emitWithAck('onlineCount');
        while (flushed < want) await new Promise((w) => waiters.push(w));
      }
      process.stdout.write('ready\\n');
    });
    s.on('connect_error', (e) => { process.stdout.write('refused ' + e.message + '\\n'); });
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    // A new Node process loads socket.io-client before it connects: a longer wait than one reply.
    const [line] = await waitFor(child.stdout, 'data', 'victor (a child process) to connect', 3 * TIMEOUT_MS);
    if (!String(line).startsWith('ready')) throw new Error(`victor: ${String(line).trim()}`);
    const n = await count();
    if (n !== before + 1) throw new Error(`count is ${n} with victor connected, expected ${before + 1}`);
    child.kill('SIGKILL');
    let m = -1;
    let gaveUp = false;
    await withTimeout((async () => {
      while (!gaveUp && (m = await count()) !== before);
    })(), `onlineCount to become ${before} after victor's process was killed`, () => { gaveUp = true; })
      .catch((err) => { throw new Error(`${err.message}; it was ${m}`); });
    await watcher.close();
  } finally {
    child.kill('SIGKILL');
    watcher.ws.terminate();
  }
});

// ------------------------------------------------------------------ runner

async function run() {
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of scenarios) {
    try {
      await withTimeout(fn(), 'the scenario (overall)', () => {}, 10 * TIMEOUT_MS);
      passed++;
      process.stdout.write(`PASS ${name}\n`);
    } catch (err) {
      failed++;
      const why = String(err && err.message ? err.message : err).replace(/\s+/g, ' ');
      process.stdout.write(`FAIL ${name}: ${why}\n`);
      // Leave the session clean for the next scenario; a connection that cannot be drained is
      // dropped, so that the scenarios needing it fail at once.
      for (const c of sessionConns()) {
        if (c.connected) await drain(c).catch(() => c.disconnect());
      }
    }
  }
  for (const c of allClients) {
    if (c instanceof WebSocket) {
      if (c.readyState !== WebSocket.CLOSED) c.terminate();
    } else {
      c.io.opts.reconnection = false;
      c.io.reconnection(false);
      c.disconnect();
    }
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
}

run();
