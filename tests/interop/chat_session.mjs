// chat_session.mjs PORT
//
// Interop test: a scripted chat session against the 04_chat example at
// ws://127.0.0.1:PORT/chat, driven by Node's `ws` client (what browser code
// would send). The protocol is NestJS WsAdapter's JSON envelope:
//   client -> server  {"event": E, "data": D, "id"?: number|string}
//   server -> client  {"event": E, "data": D} (+ "id" when replying to a request with one)
//
// The scenarios share one session: alice, bob (two devices) and carol stay
// connected from "connect" until the end; others come and go.
//
// Asserting that a client did NOT receive something never sleeps: once the
// action is known to be processed (its effect was seen elsewhere, or the
// actor's own request sent after it was answered), that client sends an
// onlineCount request with a fresh id, and the very next message it gets must
// be that reply (messages on one connection are ordered).
//
// Prints one line per scenario, "PASS name" or "FAIL name: why", then
// "N passed, M failed"; exit status 0 iff nothing failed.
// Every wait for a message or a connection event is limited by
// CHAT_TIMEOUT_MS (default 5000 ms); running over it is a failure.
import process from 'node:process';
import { isDeepStrictEqual } from 'node:util';
import { WebSocket } from 'ws';

function usage(msg) {
  if (msg) process.stderr.write(`chat_session.mjs: ${msg}\n`);
  process.stderr.write('usage: node chat_session.mjs PORT\n');
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv.length !== 1) usage();
if (!/^[0-9]+$/.test(argv[0]) || Number(argv[0]) < 1 || Number(argv[0]) > 65535) {
  usage(`bad port '${argv[0]}'`);
}
const BASE = `ws://127.0.0.1:${Number(argv[0])}/chat`;
const TIMEOUT_MS = Number(process.env.CHAT_TIMEOUT_MS) || 5000;

// A stray rejection from an abandoned (timed-out) wait must not kill the run.
process.on('unhandledRejection', () => {});

// ---------------------------------------------------------------- helpers

const show = (v) => JSON.stringify(v);

/** Rejects after TIMEOUT_MS with "timed out after ... waiting for WHAT". */
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

let nextId = 1;
/** A fresh request id; alternately a number and a string, both must be echoed. */
function freshId() {
  const n = nextId++;
  return n % 2 === 0 ? `req-${n}` : n;
}

/** One chat connection with an awaitable queue of received messages. */
class Conn {
  constructor(name, ws) {
    this.name = name;
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closeInfo = null;
    this.error = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        for (const w of this.waiters.splice(0)) {
          w.reject(new Error(`${this.name}: connection closed (code ${code}) while waiting for a message`
            + (this.error ? ` after error: ${this.error.message}` : '')));
        }
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data, isBinary) => {
      const raw = Buffer.isBuffer(data) ? data : Buffer.concat(data);
      const msg = { raw: raw.toString('utf8'), isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
    ws.on('error', (err) => { this.error = err; });
  }

  /** Next received message as {raw, isBinary}; bounded by TIMEOUT_MS. */
  nextRaw(what = 'a message') {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) {
      return Promise.reject(new Error(`${this.name}: connection already closed `
        + `(code ${this.closeInfo.code}) while waiting for ${what}`));
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

  /** Next message, parsed; must be a text frame holding a JSON object with a string "event". */
  async next(what) {
    const msg = await this.nextRaw(what);
    if (msg.isBinary) throw new Error(`${this.name}: got a binary message ${show(msg.raw)}`);
    let obj;
    try {
      obj = JSON.parse(msg.raw);
    } catch {
      throw new Error(`${this.name}: got a text message that is not JSON: ${show(msg.raw)}`);
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj) || typeof obj.event !== 'string') {
      throw new Error(`${this.name}: got ${msg.raw}, not an {"event": string, ...} object`);
    }
    return { obj, raw: msg.raw };
  }

  /** Sends an object as a JSON text frame (or a string as is). */
  send(payload) {
    const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
    return new Promise((resolve, reject) => {
      if (this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error(`${this.name}: cannot send, connection is not open`));
        return;
      }
      this.ws.send(text, (err) => (err ? reject(err) : resolve()));
    });
  }

  emit(event, data, id) {
    const m = { event };
    if (data !== undefined) m.data = data;
    if (id !== undefined) m.id = id;
    return this.send(m);
  }

  /** Graceful close; resolves once the close handshake is complete (rejects on an unclean close). */
  async close(code = 1000) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code);
    const info = await withTimeout(this.closed, `${this.name}'s close handshake`);
    if (info.code !== code) {
      throw new Error(`${this.name}: close ended with code ${info.code}, expected ${code}`
        + (this.error ? ` (${this.error.message})` : ''));
    }
    return info;
  }
}

/** Every socket opened by the run, so that the end can tear down leftovers. */
const allSockets = [];

/**
 * Opens ws://127.0.0.1:PORT/chat + query; resolves to a Conn once the handshake
 * is done and a first request on it was answered (with nothing before the reply).
 * That round trip is a fence: 04_chat runs its on_connect hook (which counts the
 * user online and joins its private room) some time after the 101, so another
 * client's request sent right after 'open' may still see the server without the
 * new socket; a request on the new socket itself is only handled after on_connect.
 */
async function connect(name, query = `?token=${name}`) {
  const conn = await handshake(name, query);
  await expectNothing(conn, 'right after connecting');
  return conn;
}

/** Opens ws://127.0.0.1:PORT/chat + query; resolves to a Conn once the handshake is done. */
function handshake(name, query) {
  const ws = new WebSocket(BASE + query);
  allSockets.push(ws);
  const conn = new Conn(name, ws);
  const opened = new Promise((resolve, reject) => {
    ws.once('open', () => resolve(conn));
    ws.once('error', (err) => reject(new Error(`${name}: handshake failed: ${err.message}`)));
    ws.once('unexpected-response', (req, res) => {
      reject(new Error(`${name}: handshake got HTTP ${res.statusCode} instead of 101`));
      req.destroy();
    });
  });
  return withTimeout(opened, `${name}'s handshake`, () => ws.terminate());
}

/** Opens a connection that must be refused; resolves to the HTTP status code. */
function connectRefused(query) {
  const ws = new WebSocket(BASE + query);
  allSockets.push(ws);
  const refused = new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`handshake with '${query}' was accepted (101), expected a refusal`));
    });
    ws.once('unexpected-response', (req, res) => {
      resolve(res.statusCode);
      req.destroy();
    });
    ws.once('error', (err) => reject(new Error(`handshake with '${query}' failed without an HTTP `
      + `response: ${err.message}`)));
  });
  return withTimeout(refused, `the refusal of '${query}'`, () => ws.terminate());
}

/** Throws unless `got` (a parsed message) deep-equals `expected` (key order does not matter). */
function expectEqual(conn, got, expected, what) {
  if (!isDeepStrictEqual(got.obj, expected)) {
    throw new Error(`${conn.name}: expected ${what ? `${what} ` : ''}${show(expected)}, got ${got.raw}`);
  }
}

/** The next message on conn must be exactly `expected`. */
async function expectMessage(conn, expected, what) {
  const got = await conn.next(show(expected));
  expectEqual(conn, got, expected, what);
  return got;
}

/** Sends a request with a fresh id; returns the parsed next message, which must carry that id. */
async function request(conn, event, data) {
  const id = freshId();
  await conn.emit(event, data, id);
  const got = await conn.next(`the reply to ${event} (id ${show(id)})`);
  if (!isDeepStrictEqual(got.obj.id, id)) {
    throw new Error(`${conn.name}: expected the reply to ${event} with id ${show(id)}, got ${got.raw}`);
  }
  return got;
}

/** Sends onlineCount with a fresh id and checks the reply; returns the count. */
async function onlineCount(conn) {
  const got = await request(conn, 'onlineCount');
  const { data } = got.obj;
  if (got.obj.event !== 'onlineCount' || !Number.isInteger(data) || data < 0
      || Object.keys(got.obj).length !== 3) {
    throw new Error(`${conn.name}: bad onlineCount reply ${got.raw}`);
  }
  return data;
}

/**
 * Asserts that nothing is pending on conn: its next message is the reply to a
 * fresh onlineCount request. `context` says what it must not have received.
 */
async function expectNothing(conn, context) {
  const id = freshId();
  await conn.emit('onlineCount', undefined, id);
  const got = await conn.next(`the reply to onlineCount (id ${show(id)})`);
  if (got.obj.event !== 'onlineCount' || !isDeepStrictEqual(got.obj.id, id)) {
    throw new Error(`${conn.name} received ${got.raw}${context ? ` (${context})` : ''}`
      + ` where only the reply to onlineCount id ${show(id)} was due`);
  }
}

/** Discards whatever is pending on conn (after a failed scenario); bounded by TIMEOUT_MS. */
async function drain(conn) {
  const id = freshId();
  await conn.emit('onlineCount', undefined, id);
  for (;;) {
    const got = await conn.next(`the reply to onlineCount (id ${show(id)}) while draining`);
    if (got.obj.event === 'onlineCount' && isDeepStrictEqual(got.obj.id, id)) return;
  }
}

/** Sends onlineCount with a fresh id; returns the raw messages that came before its reply. */
async function collectUntilReply(conn) {
  const id = freshId();
  const before = [];
  await conn.emit('onlineCount', undefined, id);
  for (;;) {
    const got = await conn.next(`the reply to onlineCount (id ${show(id)})`);
    if (got.obj.event === 'onlineCount' && isDeepStrictEqual(got.obj.id, id)) return before;
    before.push(got.raw);
  }
}

/** The next message must be an exception event {"status": "error", "message": non-empty string}. */
async function expectException(conn, what, id, message) {
  const got = await conn.next(`an exception event (${what})`);
  const { obj } = got;
  const keys = Object.keys(obj).sort().join(',');
  const okKeys = keys === 'data,event' || (id !== undefined && keys === 'data,event,id');
  if (obj.event !== 'exception' || !okKeys || obj.data === null || typeof obj.data !== 'object'
      || obj.data.status !== 'error' || typeof obj.data.message !== 'string' || obj.data.message === ''
      || Object.keys(obj.data).length !== 2) {
    throw new Error(`${conn.name}: expected an exception event {"status":"error","message":...} for `
      + `${what}, got ${got.raw}`);
  }
  if (obj.id !== undefined && !isDeepStrictEqual(obj.id, id)) {
    throw new Error(`${conn.name}: exception for ${what} carries id ${show(obj.id)}, request had `
      + `${show(id)}: ${got.raw}`);
  }
  if (message !== undefined && obj.data.message !== message) {
    throw new Error(`${conn.name}: exception message for ${what} is ${show(obj.data.message)}, `
      + `expected ${show(message)}`);
  }
  return got;
}

// -------------------------------------------------------------- scenarios

const s = {}; // the session's long-lived connections: alice, bob1, bob2, carol
const sessionConns = () => ['alice', 'bob1', 'bob2', 'carol'].map((k) => s[k]).filter(Boolean);
const requireSession = (...names) => {
  for (const n of names) {
    if (!s[n] || s[n].closeInfo || s[n].ws.readyState !== WebSocket.OPEN) {
      throw new Error(`${n} is not connected (an earlier scenario failed)`);
    }
  }
  return names.map((n) => s[n]);
};
let roomSeq = 0;
const freshRoom = (label) => `${label}-${++roomSeq}-${process.pid}`;

const scenarios = [];
const scenario = (name, fn) => scenarios.push({ name, fn });

for (const [label, query] of [
  ['no query', ''],
  ['no token parameter', '?user=alice'],
  ['empty token', '?token='],
  ['token with a dash', '?token=a-b'],
  ['token with a space', '?token=a%20b'],
  ['token with a slash', '?token=a%2Fb'],
]) {
  scenario(`handshake refused with 401: ${label} (${query || 'none'})`, async () => {
    const status = await connectRefused(query);
    if (status !== 401) throw new Error(`HTTP ${status}, expected 401`);
  });
}

scenario('connect alice, bob (two devices) and carol; nobody is sent anything unasked', async () => {
  s.alice = await connect('alice');
  s.bob1 = await connect('bob1', '?token=bob');
  s.bob2 = await connect('bob2', '?token=bob');
  s.carol = await connect('carol');
  for (const c of sessionConns()) {
    if (c.ws.protocol !== '') throw new Error(`${c.name}: unexpected subprotocol '${c.ws.protocol}'`);
  }
});

scenario('onlineCount counts distinct users (bob once), echoing number and string ids', async () => {
  const [alice, bob2] = requireSession('alice', 'bob2');
  for (const id of [7, 'abc', 0, -3, 9007199254740991, '']) {
    await alice.emit('onlineCount', undefined, id);
    await expectMessage(alice, { event: 'onlineCount', data: 3, id }, `(id ${show(id)})`);
  }
  await bob2.emit('onlineCount', null, 'from-bob');
  await expectMessage(bob2, { event: 'onlineCount', data: 3, id: 'from-bob' });
  // Without an id the reply has no "id" either.
  await alice.emit('onlineCount');
  await expectMessage(alice, { event: 'onlineCount', data: 3 }, '(no id)');
});

scenario('onlineCount echoes any JSON number as id (fractions too, e.g. Math.random())', async () => {
  const [alice] = requireSession('alice');
  const problems = [];
  for (const text of ['0.5', '-2.25', '1e3', String(Math.random())]) {
    await alice.send(`{"event":"onlineCount","id":${text}}`);
    const got = await alice.next(`the reply to onlineCount with id ${text}`);
    if (!isDeepStrictEqual(got.obj, { event: 'onlineCount', data: 3, id: JSON.parse(text) })) {
      problems.push(`id ${text} answered by ${got.raw}`);
    }
  }
  await expectNothing(alice);
  if (problems.length) throw new Error(problems.join('; '));
});

scenario('onlineCount: a third device of bob does not count, a new user does', async () => {
  const [alice] = requireSession('alice');
  const bob3 = await connect('bob3', '?token=bob');
  try {
    if ((await onlineCount(alice)) !== 3) throw new Error('count changed when bob connected again');
    const dave = await connect('dave');
    const n = await onlineCount(alice);
    if (n !== 4) throw new Error(`count is ${n} with dave connected, expected 4`);
    await dave.close();
    await bob3.close();
  } finally {
    bob3.ws.terminate();
  }
  // Both closes completed their close handshakes: the server has seen them go.
  const n = await onlineCount(alice);
  if (n !== 3) throw new Error(`count is ${n} after dave and bob's third device left, expected 3`);
});

scenario('message fans out to every socket, sender included', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  await alice.emit('message', { text: 'hello everyone ✓' });
  const expected = { event: 'receiveMessage', data: { from: 'alice', text: 'hello everyone ✓' } };
  for (const c of [alice, bob1, bob2, carol]) await expectMessage(c, expected);
  for (const c of [alice, bob1, bob2, carol]) await expectNothing(c, 'a second copy?');
  // From bob's second device: "from" is the user id, not the device.
  await bob2.emit('message', { text: 'hi from my phone' });
  const fromBob = { event: 'receiveMessage', data: { from: 'bob', text: 'hi from my phone' } };
  for (const c of [bob2, alice, bob1, carol]) await expectMessage(c, fromBob);
});

scenario('joinRoom: userJoined goes to the other members only, not to the joiner', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const room = freshRoom('lobby');
  await alice.emit('joinRoom', { room });
  // alice was alone: nobody hears of it; her next message is the reply to a later request.
  await expectNothing(alice, 'after joining an empty room');
  for (const c of [bob1, bob2, carol]) await expectNothing(c, `alice joined ${room}, they are not in it`);

  await bob1.emit('joinRoom', { room });
  await expectMessage(alice, { event: 'userJoined', data: { userId: 'bob', room } });
  await expectNothing(bob1, 'the joiner must not get userJoined');
  for (const c of [bob2, carol]) await expectNothing(c, `bob1 joined ${room}, they are not in it`);
});

scenario('roomMessage reaches the members except the sender, not non-members', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const room = freshRoom('team');
  await alice.emit('joinRoom', { room });
  await expectNothing(alice);
  await carol.emit('joinRoom', { room });
  await expectMessage(alice, { event: 'userJoined', data: { userId: 'carol', room } });
  await expectNothing(carol, 'the joiner must not get userJoined');

  await alice.emit('roomMessage', { room, message: 'team meeting at 3' });
  await expectMessage(carol,
    { event: 'receiveRoomMessage', data: { from: 'alice', room, message: 'team meeting at 3' } });
  await expectNothing(alice, 'the sender must not get its own roomMessage');
  for (const c of [bob1, bob2]) await expectNothing(c, `bob is not in ${room}`);

  await carol.emit('roomMessage', { room, message: 'ok' });
  await expectMessage(alice, { event: 'receiveRoomMessage', data: { from: 'carol', room, message: 'ok' } });
  await expectNothing(carol, 'the sender must not get its own roomMessage');
  for (const c of [bob1, bob2]) await expectNothing(c, `bob is not in ${room}`);
});

scenario('roomMessage to a room nobody joined reaches nobody', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  await alice.emit('roomMessage', { room: freshRoom('empty'), message: 'anyone?' });
  await expectNothing(alice, 'roomMessage to an empty room');
  for (const c of [bob1, bob2, carol]) await expectNothing(c, 'roomMessage to an empty room');
});

scenario('one device of a user joins: the user\'s other device is another member', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const room = freshRoom('devices');
  await bob1.emit('joinRoom', { room });
  await expectNothing(bob1);
  await bob2.emit('joinRoom', { room });
  await expectMessage(bob1, { event: 'userJoined', data: { userId: 'bob', room } });
  await expectNothing(bob2, 'the joiner must not get userJoined');
  await bob2.emit('roomMessage', { room, message: 'note to self' });
  await expectMessage(bob1, { event: 'receiveRoomMessage', data: { from: 'bob', room, message: 'note to self' } });
  await expectNothing(bob2, 'the sending device must not get its own roomMessage');
  for (const c of [alice, carol]) await expectNothing(c, `not in ${room}`);
});

scenario('leaveRoom: userLeft goes to the remaining members; the leaver hears no more', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const room = freshRoom('club');
  await alice.emit('joinRoom', { room });
  await expectNothing(alice);
  await bob1.emit('joinRoom', { room });
  await expectMessage(alice, { event: 'userJoined', data: { userId: 'bob', room } });
  await carol.emit('joinRoom', { room });
  await expectMessage(alice, { event: 'userJoined', data: { userId: 'carol', room } });
  await expectMessage(bob1, { event: 'userJoined', data: { userId: 'carol', room } });
  await expectNothing(carol, 'the joiner must not get userJoined');

  await carol.emit('leaveRoom', { room });
  await expectMessage(alice, { event: 'userLeft', data: { userId: 'carol', room } });
  await expectMessage(bob1, { event: 'userLeft', data: { userId: 'carol', room } });
  await expectNothing(carol, 'the leaver must not get userLeft');
  await expectNothing(bob2, `bob2 never joined ${room}`);

  await alice.emit('roomMessage', { room, message: 'carol is gone' });
  await expectMessage(bob1, { event: 'receiveRoomMessage', data: { from: 'alice', room, message: 'carol is gone' } });
  await expectNothing(carol, 'carol left the room');
  await expectNothing(alice, 'the sender must not get its own roomMessage');

  // Leaving a room one is not in (again) is no error. (What the members hear of
  // it is not specified: 04_chat tells them userLeft again.)
  await carol.emit('leaveRoom', { room });
  await expectNothing(carol, 'leaving a room not joined');
  for (const c of [alice, bob1]) await drain(c);
});

scenario('privateMessage reaches both of bob\'s devices and nobody else', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  await alice.emit('privateMessage', { toUserId: 'bob', message: 'psst, bob' });
  const expected = { event: 'receivePrivateMessage', data: { from: 'alice', message: 'psst, bob' } };
  await expectMessage(bob1, expected);
  await expectMessage(bob2, expected);
  await expectNothing(bob1, 'a second copy?');
  await expectNothing(bob2, 'a second copy?');
  await expectNothing(alice, 'the sender of a private message');
  await expectNothing(carol, 'a private message to bob');

  await bob1.emit('privateMessage', { toUserId: 'carol', message: 'hi carol' });
  await expectMessage(carol, { event: 'receivePrivateMessage', data: { from: 'bob', message: 'hi carol' } });
  for (const c of [bob1, bob2, alice]) await expectNothing(c, 'a private message to carol');
});

scenario('privateMessage to a user who is not online reaches nobody', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  await alice.emit('privateMessage', { toUserId: 'zed', message: 'are you there?' });
  for (const c of [alice, bob1, bob2, carol]) await expectNothing(c, 'a private message to zed');
});

scenario('joinRoom/leaveRoom cannot tap or drop a user\'s private messages', async () => {
  // The spec: privateMessage goes to every socket of that user and nobody
  // else; joinRoom and leaveRoom are about chat rooms, whatever their names.
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  const rooms = ['user:bob', 'bob', 'user-bob', '@bob', 'private:bob'];
  const problems = [];
  const note = (conn, got, context) => problems.push(`${conn.name} received ${got.join(' ')} ${context}`);
  for (const room of rooms) await carol.emit('joinRoom', { room });
  let got = await collectUntilReply(carol);
  if (got.length) note(carol, got, 'after joining rooms');
  for (const c of [bob1, bob2]) {
    got = await collectUntilReply(c);
    if (got.length) note(c, got, `(carol joined ${rooms.map(show).join(', ')}; bob joined none of them)`);
  }
  try {
    await alice.emit('privateMessage', { toUserId: 'bob', message: 'for bob only' });
    const expected = { event: 'receivePrivateMessage', data: { from: 'alice', message: 'for bob only' } };
    await expectMessage(bob1, expected);
    await expectMessage(bob2, expected);
    got = await collectUntilReply(carol);
    if (got.length) note(carol, got, `(a private message to bob; carol joined ${rooms.map(show).join(', ')})`);

    // alice leaving a "room" must not unsubscribe her from her own private messages.
    await alice.emit('leaveRoom', { room: 'user:alice' });
    await alice.emit('leaveRoom', { room: 'alice' });
    got = await collectUntilReply(alice);
    if (got.length) note(alice, got, 'after leaving rooms she never joined');
    await bob1.emit('privateMessage', { toUserId: 'alice', message: 'can you hear me?' });
    got = await collectUntilReply(bob1);
    if (got.length) note(bob1, got, 'after sending a private message');
    const msgs = await collectUntilReply(alice);
    const want = JSON.stringify({ event: 'receivePrivateMessage', data: { from: 'bob', message: 'can you hear me?' } });
    if (msgs.length !== 1 || !isDeepStrictEqual(JSON.parse(msgs[0]), JSON.parse(want))) {
      problems.push(`alice (after leaveRoom "user:alice" and "alice") got ${msgs.length ? msgs.join(' ') : 'nothing'}`
        + ` for bob's private message, expected ${want}`);
    }
  } finally {
    for (const room of rooms) await carol.emit('leaveRoom', { room });
    for (const c of [carol, bob1, bob2, alice]) await drain(c);
  }
  if (problems.length) throw new Error(problems.join('; '));
});

scenario('secret: admin gets the data, everyone else "Forbidden resource"', async () => {
  const [alice, bob1] = requireSession('alice', 'bob1');
  const admin = await connect('admin');
  try {
    await admin.emit('secret');
    const got = await admin.next('the reply to secret');
    if (got.obj.event !== 'secret' || got.obj.data === null || typeof got.obj.data !== 'object'
        || Array.isArray(got.obj.data) || Object.keys(got.obj).sort().join(',') !== 'data,event') {
      throw new Error(`admin: expected {"event":"secret","data":{...}}, got ${got.raw}`);
    }
    const id = freshId();
    await admin.emit('secret', undefined, id);
    await expectMessage(admin, { event: 'secret', data: got.obj.data, id }, '(with id)');

    await alice.emit('secret');
    await expectException(alice, 'secret from alice', undefined, 'Forbidden resource');
    const bid = freshId();
    await bob1.emit('secret', { please: true }, bid);
    await expectException(bob1, 'secret from bob', bid, 'Forbidden resource');
    // A user whose name merely contains "admin" is not admin.
    const notAdmin = await connect('Admin');
    await notAdmin.emit('secret');
    await expectException(notAdmin, 'secret from "Admin"', undefined, 'Forbidden resource');
    await notAdmin.close();
    // Refused requests leave the connections usable.
    for (const c of [alice, bob1]) await expectNothing(c, 'after the forbidden secret');
    await admin.close();
  } finally {
    admin.ws.terminate();
  }
});

// Invalid payloads: each gets one exception event, nobody else hears of it,
// and the connection stays usable.
const invalid = [
  ['message without data', { event: 'message' }],
  ['message with data null', { event: 'message', data: null }],
  ['message with a string for data', { event: 'message', data: 'hello' }],
  ['message without text', { event: 'message', data: {} }],
  ['message with a numeric text', { event: 'message', data: { text: 5 } }],
  ['message with an array text', { event: 'message', data: { text: ['a'] } }],
  ['joinRoom without room', { event: 'joinRoom', data: {} }],
  ['joinRoom with a numeric room', { event: 'joinRoom', data: { room: 1 } }],
  ['leaveRoom without room', { event: 'leaveRoom', data: { name: 'x' } }],
  ['roomMessage without message', { event: 'roomMessage', data: { room: 'x' } }],
  ['roomMessage without room', { event: 'roomMessage', data: { message: 'x' } }],
  ['privateMessage without toUserId', { event: 'privateMessage', data: { message: 'x' } }],
  ['privateMessage with a numeric message', { event: 'privateMessage', data: { toUserId: 'bob', message: 1 } }],
];
for (const [label, payload] of invalid) {
  scenario(`invalid payload answered with an exception event: ${label}`, async () => {
    const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
    await alice.send(payload);
    await expectException(alice, label);
    // With an id, the exception may echo it (and then it must be the same id).
    const id = freshId();
    await alice.send({ ...payload, id });
    await expectException(alice, `${label} (id ${show(id)})`, id);
    await expectNothing(alice, 'after the exception');
    for (const c of [bob1, bob2, carol]) await expectNothing(c, `alice sent an invalid ${payload.event}`);
  });
}

scenario('unknown events answered with an exception event; the connection stays usable', async () => {
  const [alice, bob1] = requireSession('alice', 'bob1');
  for (const event of ['nosuchevent', 'receiveMessage', 'Message', '']) {
    await alice.emit(event, { text: 'x' });
    await expectException(alice, `unknown event ${show(event)}`);
  }
  const id = freshId();
  await bob1.emit('doesNotExist', null, id);
  await expectException(bob1, 'unknown event with id', id);
  await alice.emit('message', { text: 'still here' });
  const expected = { event: 'receiveMessage', data: { from: 'alice', text: 'still here' } };
  for (const c of requireSession('alice', 'bob1', 'bob2', 'carol')) await expectMessage(c, expected);
});

for (const [label, text] of [
  ['truncated object', '{"event":"message","data":{"text":"x"}'],
  ['not JSON at all', 'hello'],
  ['single quotes', "{'event':'message'}"],
  ['trailing garbage', '{"event":"onlineCount"} x'],
  ['empty text', ''],
]) {
  scenario(`malformed JSON answered with an exception event: ${label}`, async () => {
    const [alice, bob1] = requireSession('alice', 'bob1');
    await alice.send(text);
    await expectException(alice, `malformed JSON ${show(text)}`);
    await expectNothing(alice, 'after the malformed JSON');
    await expectNothing(bob1, 'alice sent malformed JSON');
  });
}

scenario('JSON that is not an event envelope: exception event, connection usable', async () => {
  const [alice] = requireSession('alice');
  for (const text of ['[1,2]', '"message"', '42', 'null', '{"data":{"text":"x"}}', '{"event":5}']) {
    await alice.send(text);
    await expectException(alice, `envelope ${text}`);
  }
  await expectNothing(alice, 'after the bad envelopes');
});

scenario('many requests back-to-back are answered in order with their ids', async () => {
  const [alice] = requireSession('alice');
  const ids = [];
  for (let i = 0; i < 100; i++) {
    const id = freshId();
    ids.push(id);
    alice.ws.send(JSON.stringify({ event: 'onlineCount', id })); // no awaiting: really back-to-back
  }
  for (const id of ids) await expectMessage(alice, { event: 'onlineCount', data: 3, id });
});

scenario('disconnects: onlineCount goes down once a user\'s last socket is gone', async () => {
  const [alice, bob1, bob2, carol] = requireSession('alice', 'bob1', 'bob2', 'carol');
  if ((await onlineCount(alice)) !== 3) throw new Error('expected 3 users before the disconnects');

  // carol closes (close handshake complete = the server has seen her go): 3 -> 2.
  await carol.close();
  let n = await onlineCount(alice);
  if (n !== 2) throw new Error(`count is ${n} after carol closed, expected 2`);

  // bob's second device closes: bob is still online on the first.
  await bob2.close();
  n = await onlineCount(alice);
  if (n !== 2) throw new Error(`count is ${n} after one of bob's two devices closed, expected 2`);
  await alice.emit('privateMessage', { toUserId: 'bob', message: 'still there?' });
  await expectMessage(bob1, { event: 'receivePrivateMessage', data: { from: 'alice', message: 'still there?' } });
  await alice.emit('message', { text: 'who is left?' });
  const expected = { event: 'receiveMessage', data: { from: 'alice', text: 'who is left?' } };
  for (const c of [alice, bob1]) await expectMessage(c, expected);

  // A client that vanishes without a close handshake: the server notices the
  // TCP close. Nothing tells us when, so poll with requests (bounded by the timeout).
  const dave = await connect('dave');
  n = await onlineCount(alice);
  if (n !== 3) throw new Error(`count is ${n} with dave connected, expected 3`);
  dave.ws.terminate();
  let gaveUp = false;
  await withTimeout((async () => {
    while (!gaveUp && (n = await onlineCount(alice)) === 3);
  })(), 'onlineCount to go down after dave dropped', () => { gaveUp = true; });
  if (n !== 2) throw new Error(`count is ${n} after dave dropped, expected 2`);
});

scenario('the last users leave with a clean close handshake', async () => {
  const [alice, bob1] = requireSession('alice', 'bob1');
  await bob1.close();
  const n = await onlineCount(alice);
  if (n !== 1) throw new Error(`count is ${n} with only alice left, expected 1`);
  await alice.close(4000);
});

// ------------------------------------------------------------------ runner

async function run() {
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of scenarios) {
    try {
      // Every wait inside has its own limit; this only guards against a scenario stuck elsewhere.
      await withTimeout(fn(), 'the scenario (overall)', () => {}, 10 * TIMEOUT_MS);
      passed++;
      process.stdout.write(`PASS ${name}\n`);
    } catch (err) {
      failed++;
      const why = String(err && err.message ? err.message : err).replace(/\s+/g, ' ');
      process.stdout.write(`FAIL ${name}: ${why}\n`);
      // Leave the session clean for the next scenario: drop whatever is still
      // pending. A connection that cannot be drained is dropped, so that the
      // scenarios needing it fail at once instead of each waiting for a timeout.
      for (const c of sessionConns()) {
        if (!c.closeInfo && c.ws.readyState === WebSocket.OPEN) {
          await drain(c).catch(() => c.ws.terminate());
        }
      }
    }
  }
  for (const ws of allSockets) {
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
}

run();
