// Functional check of a benchmark server against bench/PROTOCOL.md, before its numbers are trusted:
// a server that answers the load generator quickly but wrongly would otherwise win.
// Usage (from the repository root, so node_modules resolves):
//   node bench/check_protocol.mjs PORT raw|events|socketio
// Prints one PASS/FAIL line per check and "N passed, M failed"; exits 0 iff nothing failed.
// Every wait is bounded (5 s), so a silent server fails instead of hanging the run.
import WebSocket from 'ws';
import { io as connectSocketIo } from 'socket.io-client';
import { isDeepStrictEqual } from 'node:util';

const WAIT_MS = 5000;
const HOST = '127.0.0.1';

const port = Number.parseInt(process.argv[2] ?? '', 10);
const mode = process.argv[3];
if (!Number.isInteger(port) || port < 1 || port > 65535 || !['raw', 'events', 'socketio'].includes(mode)) {
  console.error('usage: node bench/check_protocol.mjs PORT raw|events|socketio');
  process.exit(2);
}

// ---- Reporting ----

let passed = 0;
let failed = 0;

// Runs one check; the clients it opened are closed whatever happened, so a failed check does not
// leave connections that disturb the next one.
async function check(name, body) {
  const opened = [];
  try {
    const note = await body((client) => {
      opened.push(client);
      return client;
    });
    passed++;
    console.log(note ? `PASS ${name} (${note})` : `PASS ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err.message}`);
  } finally {
    for (const client of opened) client.close();
  }
}

function shorten(text, limit = 120) {
  return text.length <= limit ? text : `${text.slice(0, limit)}... (${text.length} chars)`;
}

// Rejects after WAIT_MS; `what` says what was awaited so the failure explains itself.
function bounded(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- Inbox: what a client received, handed out in arrival order ----

// A check reads "the next message" rather than installing a listener for the one it expects:
// that is what lets it tell an unexpected extra message from the expected one.
class Inbox {
  items = [];
  waiters = [];
  closedReason = null;

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(item);
    else this.items.push(item);
  }

  close(reason) {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`${reason} while waiting for ${waiter.what}`));
  }

  next(what) {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    if (this.closedReason !== null) return Promise.reject(new Error(`${this.closedReason} before ${what}`));
    const waiter = { what };
    const pending = new Promise((resolve, reject) => Object.assign(waiter, { resolve, reject }));
    this.waiters.push(waiter);
    return bounded(pending, what).catch((err) => {
      // A timed-out waiter must not swallow a message that arrives later.
      const index = this.waiters.indexOf(waiter);
      if (index >= 0) this.waiters.splice(index, 1);
      throw err;
    });
  }
}

// ---- Plain WebSocket client (raw and events) ----

class WsClient {
  // `own` takes the client before the connect is awaited, so one that never connects is still
  // closed by its check.
  static async open(label, own) {
    const client = own(new WsClient(label));
    await bounded(client.opened, `${label} to connect`);
    return client;
  }

  constructor(label) {
    this.label = label;
    this.inbox = new Inbox();
    this.ws = new WebSocket(`ws://${HOST}:${port}/`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', (err) => reject(new Error(`${label}: ${err.message}`)));
      this.ws.once('unexpected-response', (_req, res) => reject(new Error(`${label}: HTTP ${res.statusCode} instead of an upgrade`)));
    });
    this.opened.catch(() => {});
    this.ws.on('error', () => {});
    this.ws.on('message', (data, isBinary) => this.inbox.push({ data, isBinary }));
    this.ws.on('close', (code) => this.inbox.close(`${label}'s connection closed (code ${code})`));
  }

  send(data, binary = false) {
    this.ws.send(data, { binary });
  }

  sendEvent(event, data) {
    this.ws.send(JSON.stringify({ event, data }));
  }

  next(what) {
    return this.inbox.next(`${this.label}: ${what}`);
  }

  // The next message must be this exact text: byte for byte, so key order and formatting count.
  async expectText(expected, what) {
    const { data, isBinary } = await this.next(what);
    if (isBinary) throw new Error(`${this.label} got a binary frame (${data.length} bytes) for ${what}`);
    const text = data.toString('utf8');
    if (text === expected) return;
    let hint = '';
    try {
      if (isDeepStrictEqual(JSON.parse(text), JSON.parse(expected))) hint = ' (same JSON value; key order or formatting differs)';
    } catch {
      // Not JSON: the plain mismatch says enough.
    }
    throw new Error(`${this.label} got ${shorten(text)} for ${what}, expected ${shorten(expected)}${hint}`);
  }

  // The next message must be the envelope {"event":E,"data":X} with these bytes up to X, and X
  // the same JSON value. Objects inside X may come back with their keys in another order:
  // PROTOCOL.md allows it for servers whose JSON objects keep keys sorted (nlohmann::json).
  async expectEnvelope(event, value, what) {
    const { data, isBinary } = await this.next(what);
    if (isBinary) throw new Error(`${this.label} got a binary frame (${data.length} bytes) for ${what}`);
    const text = data.toString('utf8');
    const head = `{"event":${JSON.stringify(event)},"data":`;
    let same = false;
    if (text.startsWith(head) && text.endsWith('}')) {
      try {
        same = isDeepStrictEqual(JSON.parse(text.slice(head.length, -1)), value);
      } catch {
        same = false;
      }
    }
    if (!same) throw new Error(`${this.label} got ${shorten(text)} for ${what}, expected ${shorten(JSON.stringify({ event, data: value }))}`);
  }

  close() {
    this.ws.terminate();
  }
}

// ---- Socket.IO client ----

class SioClient {
  // `own` takes the client before the connect is awaited, so one that never connects is still
  // closed by its check.
  static async open(label, own) {
    const client = own(new SioClient(label));
    await bounded(client.opened, `${label} to connect`);
    return client;
  }

  constructor(label) {
    this.label = label;
    this.inbox = new Inbox();
    this.socket = connectSocketIo(`http://${HOST}:${port}`, {
      path: '/socket.io/',
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: WAIT_MS,
    });
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('connect_error', (err) => reject(new Error(`${label}: ${err.message}`)));
    });
    this.opened.catch(() => {});
    this.socket.onAny((event, ...args) => this.inbox.push({ event, args }));
    this.socket.on('disconnect', (reason) => this.inbox.close(`${label} disconnected (${reason})`));
  }

  emit(event, data) {
    this.socket.emit(event, data);
  }

  // The next event must be `event` with exactly one argument, the same JSON value as `data`.
  // Objects inside it may come back with their keys in another order, as in the events mode
  // (PROTOCOL.md): a server whose JSON objects keep keys sorted (nlohmann::json) may reorder them.
  async expectEvent(event, data, what) {
    const got = await this.inbox.next(`${this.label}: ${what}`);
    const expected = JSON.stringify([event, data]);
    const actual = JSON.stringify([got.event, ...got.args]);
    if (got.event !== event || got.args.length !== 1 || !isDeepStrictEqual(got.args[0], data))
      throw new Error(`${this.label} got ${shorten(actual)} for ${what}, expected ${shorten(expected)}`);
  }

  // Emits with an acknowledgement; resolves to the ack's arguments.
  async emitWithAck(event, data, what) {
    return bounded(new Promise((resolve) => this.socket.emit(event, data, (...args) => resolve(args))), `${this.label}: ${what}`);
  }

  close() {
    this.socket.disconnect();
  }
}

// ---- Shared payloads ----

// Keys deliberately out of alphabetical order: a server may sort them (PROTOCOL.md), but must
// keep every key and value.
const NESTED = { zeta: 1, alpha: [1, 'two', { kilo: null, bravo: true }], mike: { yankee: false, echo: -0.5 } };
const ECHO_CASES = [
  ['a string', 'hello "gateway" \\ ✓ \n'],
  ['an integer', 42],
  ['a fraction', -2.5],
  ['a nested object', NESTED],
];

// ---- raw ----

async function rawChecks() {
  const printable = (n) => Array.from({ length: n }, (_, i) => String.fromCharCode(32 + (i % 95))).join('');
  const bytes = (n) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) & 0xff));
  const cases = [
    ['text', printable(64), false],
    ['binary', bytes(256), true],
    ['text of 70000 bytes', printable(70000), false],
    ['binary of 70000 bytes', bytes(70000), true],
  ];
  for (const [name, payload, binary] of cases) {
    await check(`raw: ${name} echoes unchanged`, async (own) => {
      const c = await WsClient.open('client', own);
      c.send(payload, binary);
      const { data, isBinary } = await c.next(`the ${name} echo`);
      if (isBinary !== binary) throw new Error(`came back as ${isBinary ? 'binary' : 'text'}`);
      const sent = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
      if (!data.equals(sent)) throw new Error(`came back as ${data.length} different bytes (sent ${sent.length})`);
    });
  }
}

// ---- events ----

const envelope = (event, data) => JSON.stringify({ event, data });

async function eventsChecks() {
  for (const [name, value] of ECHO_CASES) {
    await check(`events: echo of ${name} round-trips`, async (own) => {
      const c = await WsClient.open('client', own);
      c.sendEvent('echo', value);
      await c.expectEnvelope('echo', value, 'the echo reply');
    });
  }

  // An echo request already has the reply's exact bytes, so a raw echo server would pass the
  // checks above. A request with data first and spaces tells a server that parses and
  // re-serializes from one that only bounces bytes.
  await check('events: echo request written data-first with spaces gets the canonical reply', async (own) => {
    const c = await WsClient.open('client', own);
    c.send('{ "data" : [1, {"b": 2}], "event" : "echo" }');
    await c.expectText(envelope('echo', [1, { b: 2 }]), 'the echo reply');
  });

  await check('events: join, then broadcast from a non-member reaches both members and not the sender', async (own) => {
    const a = await WsClient.open('member A', own);
    const b = await WsClient.open('member B', own);
    const sender = await WsClient.open('sender', own);
    for (const member of [a, b]) {
      member.sendEvent('join', 'bench');
      await member.expectText(envelope('join', 'bench'), 'the join reply');
    }
    const payload = { from: 'outside', n: 1 };
    sender.sendEvent('broadcast', payload);
    await Promise.all([a, b].map((m) => m.expectText(envelope('broadcast', payload), 'the broadcast')));
    // Anything the server sent the sender about its broadcast is queued before the reply to a
    // later echo, so this tells "nothing" from "something" without sleeping.
    sender.sendEvent('echo', 'after the broadcast');
    await sender.expectText(envelope('echo', 'after the broadcast'), 'its echo reply (the first message it receives)');
  });

  await check('events: broadcast from a member reaches it once, and the other member', async (own) => {
    const a = await WsClient.open('member A', own);
    const b = await WsClient.open('member B', own);
    for (const member of [a, b]) {
      member.sendEvent('join', 'bench');
      await member.expectText(envelope('join', 'bench'), 'the join reply');
    }
    const payload = ['from', 'inside'];
    a.sendEvent('broadcast', payload);
    await Promise.all([a, b].map((m) => m.expectText(envelope('broadcast', payload), 'the broadcast')));
    a.sendEvent('echo', 'after');
    await a.expectText(envelope('echo', 'after'), 'its echo reply (no second copy of the broadcast first)');
  });

  await check('events: malformed input leaves the connection and server working', async (own) => {
    const c = await WsClient.open('client', own);
    c.send('not json');
    c.send('[1,2]');
    c.send('null');
    c.send('{"event":"no-such-event","data":1}');
    c.send('{"data":1}');
    c.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]), true);
    c.sendEvent('echo', 'still here');
    // PROTOCOL.md lets a server answer such input rather than ignore it, so replies before the
    // echo are counted, not failed.
    const expected = envelope('echo', 'still here');
    let others = 0;
    for (;;) {
      const { data, isBinary } = await c.next('the echo after malformed input');
      if (!isBinary && data.toString('utf8') === expected) break;
      if (++others > 10) throw new Error('more than 10 other messages before the echo reply');
    }
    const fresh = await WsClient.open('a new client', own);
    fresh.sendEvent('echo', 1);
    await fresh.expectText(envelope('echo', 1), 'the echo reply');
    return others === 0 ? 'all ignored' : `${others} replies to it before the echo`;
  });
}

// ---- socketio ----

async function socketIoChecks() {
  await check('socketio: connects over the websocket transport', async (own) => {
    const c = await SioClient.open('client', own);
    const transport = c.socket.io.engine.transport.name;
    if (transport !== 'websocket') throw new Error(`transport is ${transport}`);
  });

  for (const [name, value] of ECHO_CASES) {
    await check(`socketio: echo of ${name} round-trips`, async (own) => {
      const c = await SioClient.open('client', own);
      c.emit('echo', value);
      await c.expectEvent('echo', value, 'the echo reply');
    });
  }

  for (const [name, value] of ECHO_CASES) {
    await check(`socketio: echo of ${name} with an ack id is acknowledged with it, and not emitted`, async (own) => {
      const c = await SioClient.open('client', own);
      const args = await c.emitWithAck('echo', value, 'the acknowledgement');
      if (args.length !== 1 || !isDeepStrictEqual(args[0], value))
        throw new Error(`acknowledged with ${shorten(JSON.stringify(args))}, expected [${shorten(JSON.stringify(value))}]`);
      // An echo event emitted besides the ack would come before the reply to this later echo.
      c.emit('echo', 'after the ack');
      await c.expectEvent('echo', 'after the ack', 'the echo reply (the first event it receives)');
    });
  }

  await check('socketio: an event without a handler is ignored and the socket keeps working', async (own) => {
    const c = await SioClient.open('client', own);
    c.emit('no-such-event', 1);
    c.emit('echo', 'still here');
    await c.expectEvent('echo', 'still here', 'the echo reply (the first event it receives)');
  });

  await check('socketio: join, then broadcast from a non-member reaches both members and not the sender', async (own) => {
    const a = await SioClient.open('member A', own);
    const b = await SioClient.open('member B', own);
    const sender = await SioClient.open('sender', own);
    for (const member of [a, b]) {
      member.emit('join', 'bench');
      await member.expectEvent('join', 'bench', 'the join reply');
    }
    const payload = { from: 'outside', n: 1 };
    sender.emit('broadcast', payload);
    await Promise.all([a, b].map((m) => m.expectEvent('broadcast', payload, 'the broadcast')));
    sender.emit('echo', 'after the broadcast');
    await sender.expectEvent('echo', 'after the broadcast', 'its echo reply (the first event it receives)');
  });

  await check('socketio: broadcast from a member reaches it once, and the other member', async (own) => {
    const a = await SioClient.open('member A', own);
    const b = await SioClient.open('member B', own);
    for (const member of [a, b]) {
      member.emit('join', 'bench');
      await member.expectEvent('join', 'bench', 'the join reply');
    }
    const payload = ['from', 'inside'];
    a.emit('broadcast', payload);
    await Promise.all([a, b].map((m) => m.expectEvent('broadcast', payload, 'the broadcast')));
    a.emit('echo', 'after');
    await a.expectEvent('echo', 'after', 'its echo reply (no second copy of the broadcast first)');
  });
}

// ---- main ----

// Belt and braces: each wait is bounded, but a bug here must not hang a benchmark run either.
setTimeout(() => {
  console.log('FAIL checker: did not finish within 60 s');
  process.exit(1);
}, 60_000).unref();

if (mode === 'raw') await rawChecks();
else if (mode === 'events') await eventsChecks();
else await socketIoChecks();

console.log(`${passed} passed, ${failed} failed`);
// Explicit exit: a client whose close handshake the server never answers would keep the loop alive.
process.exit(failed === 0 ? 0 : 1);
