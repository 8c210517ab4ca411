// node_client.mjs URL [--ca CA.pem]
//
// Interop test: drives a WebSocket echo server at URL (ws:// or wss://) with
// Node's `ws` client. With --ca, that PEM is the (only) trust anchor and the
// certificate is verified normally (chain and host name).
//
// Prints one line per scenario, "PASS name" or "FAIL name: why", then
// "N passed, M failed"; exit status 0 iff nothing failed.
// Each scenario has a time limit (INTEROP_TIMEOUT_MS, default 10000 ms);
// running over it is a failure.
import fs from 'node:fs';
import process from 'node:process';
import { WebSocket } from 'ws';

function usage(msg) {
  if (msg) process.stderr.write(`node_client.mjs: ${msg}\n`);
  process.stderr.write('usage: node node_client.mjs URL [--ca CA_PEM]\n');
  process.exit(2);
}

let url = null;
let caFile = null;
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ca') {
      if (i + 1 >= argv.length) usage('--ca needs a file');
      caFile = argv[++i];
    } else if (url === null) {
      url = argv[i];
    } else {
      usage(`unexpected argument ${argv[i]}`);
    }
  }
}
if (!url || !/^wss?:\/\//i.test(url)) usage('URL must start with ws:// or wss://');

const clientOptions = {};
if (caFile) clientOptions.ca = fs.readFileSync(caFile);
const TIMEOUT_MS = Number(process.env.INTEROP_TIMEOUT_MS) || 10000;

// A stray rejection from an abandoned (timed-out) scenario must not kill the run.
process.on('unhandledRejection', () => {});

// ---------------------------------------------------------------- helpers

/** One client connection with an awaitable queue of received messages. */
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closeInfo = null;
    this.error = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString('utf8') };
        for (const w of this.waiters.splice(0)) {
          w.reject(new Error(`connection closed (code ${code}) while waiting for a message`
            + (this.error ? ` after error: ${this.error.message}` : '')));
        }
        resolve(this.closeInfo);
      });
    });
    ws.on('message', (data, isBinary) => {
      const msg = { data: Buffer.isBuffer(data) ? data : Buffer.concat(data), isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(msg);
      else this.queue.push(msg);
    });
    ws.on('error', (err) => { this.error = err; });
  }

  /** Next received message: {data: Buffer, isBinary: boolean}. */
  next() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    if (this.closeInfo) {
      return Promise.reject(new Error(`connection already closed (code ${this.closeInfo.code})`));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  send(data, options = {}) {
    return new Promise((resolve, reject) => {
      this.ws.send(data, options, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Graceful close; resolves with the close info, rejects on an unclean close. */
  async close(code = 1000, reason = '') {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    const info = await this.closed;
    if (info.code === 1006) {
      throw new Error('connection dropped without a close handshake (1006)'
        + (this.error ? `: ${this.error.message}` : ''));
    }
    return info;
  }
}

/** Per-scenario context: every socket opened through it is torn down at the end. */
class Ctx {
  constructor() { this.sockets = []; }

  /** Opens a connection; resolves to a Conn once the handshake is done. */
  open(protocols = undefined, hooks = {}) {
    const ws = new WebSocket(url, protocols, clientOptions);
    this.sockets.push(ws);
    const conn = new Conn(ws);
    if (hooks.onUpgrade) ws.on('upgrade', hooks.onUpgrade);
    return new Promise((resolve, reject) => {
      const fail = (err) => reject(err);
      ws.once('open', () => {
        ws.off('error', fail);
        resolve(conn);
      });
      ws.once('error', fail);
      ws.once('unexpected-response', (req, res) => {
        reject(new Error(`handshake got HTTP ${res.statusCode} instead of 101`));
        req.destroy();
      });
    });
  }

  cleanup() {
    for (const ws of this.sockets) {
      if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    }
  }
}

function describe(msg) {
  return `${msg.isBinary ? 'binary' : 'text'} message of ${msg.data.length} bytes`;
}

/** Throws unless msg is exactly `expected` (Buffer) with the given type. */
function expectMessage(msg, expected, isBinary, what = 'echo') {
  if (msg.isBinary !== isBinary) {
    throw new Error(`${what}: expected ${isBinary ? 'binary' : 'text'}, got ${describe(msg)}`);
  }
  if (!msg.data.equals(expected)) {
    let i = 0;
    const n = Math.min(msg.data.length, expected.length);
    while (i < n && msg.data[i] === expected[i]) i++;
    throw new Error(`${what}: expected ${expected.length} bytes, got ${msg.data.length}; `
      + `first difference at byte ${i}`);
  }
}

/** `n` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte sequences. */
function utf8Text(n) {
  const unit = Buffer.from('aé€😀', 'utf8'); // 1 + 2 + 3 + 4 = 10 bytes
  const out = Buffer.alloc(n, 0x61); // pad with 'a'
  let pos = 0;
  while (pos + unit.length <= n) { unit.copy(out, pos); pos += unit.length; }
  return out;
}

function patternBytes(n, seed = 0) {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function echoOnce(conn, payload, isBinary) {
  await conn.send(payload, { binary: isBinary });
  expectMessage(await conn.next(), Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8'),
    isBinary);
}

function waitPong(ws) {
  return new Promise((resolve) => ws.once('pong', resolve));
}

// -------------------------------------------------------------- scenarios

const scenarios = [];
const scenario = (name, fn) => scenarios.push({ name, fn });

scenario('text echo (ASCII)', async (ctx) => {
  const c = await ctx.open();
  if (c.ws.protocol !== '') throw new Error(`unexpected subprotocol '${c.ws.protocol}'`);
  await echoOnce(c, 'Hello, gateway!', false);
  await c.close();
});

scenario('text echo (multi-byte UTF-8 incl. emoji)', async (ctx) => {
  const c = await ctx.open();
  for (const s of ['héllo wörld', 'ΚΑΛΗΜΕΡΑ κόσμε', '日本語のテキスト', '😀🎉🚀 emoji 👍🏽',
    '\u0000nul and \u{10FFFF} max code point', '\uFEFFBOM first']) {
    await echoOnce(c, s, false);
  }
  await c.close();
});

scenario('binary echo (all 256 byte values)', async (ctx) => {
  const c = await ctx.open();
  const all = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) all[i] = i;
  await echoOnce(c, all, true);
  await echoOnce(c, Buffer.from(all).reverse(), true);
  await c.close();
});

scenario('empty text message', async (ctx) => {
  const c = await ctx.open();
  await echoOnce(c, '', false);
  await c.close();
});

scenario('empty binary message', async (ctx) => {
  const c = await ctx.open();
  await echoOnce(c, Buffer.alloc(0), true);
  await c.close();
});

for (const size of [125, 126, 65535, 65536, 1024 * 1024]) {
  scenario(`text ${size} bytes`, async (ctx) => {
    const c = await ctx.open();
    await echoOnce(c, utf8Text(size), false);
    await c.close();
  });
  scenario(`binary ${size} bytes`, async (ctx) => {
    const c = await ctx.open();
    await echoOnce(c, patternBytes(size, size), true);
    await c.close();
  });
}

scenario('200 messages back-to-back, echoed in order', async (ctx) => {
  const c = await ctx.open();
  const sent = [];
  for (let i = 0; i < 200; i++) {
    const isBinary = i % 2 === 1;
    const len = (i * 37) % 300; // crosses the 125/126 length boundary
    const data = isBinary
      ? Buffer.concat([Buffer.from([i]), patternBytes(len, i)])
      : Buffer.from(`#${i}:` + 'x'.repeat(len), 'utf8');
    sent.push({ data, isBinary });
    c.ws.send(data, { binary: isBinary }); // no awaiting: really back-to-back
  }
  for (let i = 0; i < 200; i++) {
    expectMessage(await c.next(), sent[i].data, sent[i].isBinary, `message #${i}`);
  }
  await c.close();
});

scenario('fragmented text message reassembled', async (ctx) => {
  const c = await ctx.open();
  c.ws.send('Hel', { fin: false });
  c.ws.send('lo, ', { fin: false });
  c.ws.send('fragmented world', { fin: true });
  expectMessage(await c.next(), Buffer.from('Hello, fragmented world'), false);
  await c.close();
});

scenario('fragmented text with a UTF-8 character split across frames', async (ctx) => {
  const c = await ctx.open();
  const whole = Buffer.from('price: 5€ 😀', 'utf8');
  const euro = whole.indexOf(0xe2);
  const emoji = whole.indexOf(0xf0);
  // Split inside the 3-byte euro sign and inside the 4-byte emoji.
  const parts = [whole.subarray(0, euro + 1), whole.subarray(euro + 1, emoji + 2),
    whole.subarray(emoji + 2)];
  c.ws.send(parts[0], { binary: false, fin: false });
  c.ws.send(parts[1], { binary: false, fin: false });
  c.ws.send(parts[2], { binary: false, fin: true });
  expectMessage(await c.next(), whole, false);
  await c.close();
});

scenario('fragmented binary message reassembled', async (ctx) => {
  const c = await ctx.open();
  const parts = [patternBytes(1000, 1), patternBytes(70000, 2), Buffer.alloc(0), patternBytes(3, 3)];
  parts.forEach((p, i) => c.ws.send(p, { binary: true, fin: i === parts.length - 1 }));
  expectMessage(await c.next(), Buffer.concat(parts), true);
  await c.close();
});

scenario('fragmented message with a ping between fragments', async (ctx) => {
  const c = await ctx.open();
  const pong = waitPong(c.ws);
  c.ws.send('first half, ', { fin: false });
  c.ws.ping('mid-message');
  c.ws.send('second half', { fin: true });
  const got = await pong;
  if (got.toString() !== 'mid-message') throw new Error(`pong payload '${got}'`);
  expectMessage(await c.next(), Buffer.from('first half, second half'), false);
  await c.close();
});

scenario('ping -> pong with the same payload', async (ctx) => {
  const c = await ctx.open();
  for (const payload of [Buffer.from('interop-ping'), Buffer.alloc(0), patternBytes(125, 7)]) {
    const pong = waitPong(c.ws);
    c.ws.ping(payload);
    const got = await pong;
    if (!got.equals(payload)) {
      throw new Error(`ping of ${payload.length} bytes answered by pong of ${got.length} bytes `
        + '(payload differs)');
    }
  }
  // The connection still works after the pings.
  await echoOnce(c, 'after ping', false);
  await c.close();
});

scenario('close 4000 "bye" -> server echoes code 4000 and reason', async (ctx) => {
  const c = await ctx.open();
  await echoOnce(c, 'before close', false);
  const info = await c.close(4000, 'bye');
  if (info.code !== 4000) throw new Error(`close event code ${info.code}, expected 4000`);
  if (info.reason !== 'bye') throw new Error(`close event reason '${info.reason}', expected 'bye'`);
});

scenario('subprotocols offered, server selects none', async (ctx) => {
  // RFC 6455 lets a server answer without Sec-WebSocket-Protocol. ws 8 is
  // stricter and aborts such handshakes with "Server sent no subprotocol", so
  // accept either outcome as long as the server did answer 101 and did not
  // pick a protocol.
  let response = null;
  const offered = ['x-gateway-unknown.v1', 'x-gateway-unknown.v2'];
  try {
    const c = await ctx.open(offered, { onUpgrade: (res) => { response = res; } });
    if (c.ws.protocol !== '') throw new Error(`protocol is '${c.ws.protocol}', expected ''`);
    await echoOnce(c, 'no subprotocol', false);
    await c.close();
  } catch (err) {
    if (!response) throw new Error(`handshake failed before a 101 response: ${err.message}`);
    if (response.headers['sec-websocket-protocol'] !== undefined) {
      throw new Error(`server selected '${response.headers['sec-websocket-protocol']}' `
        + `(offered: ${offered.join(', ')})`);
    }
    if (err.message !== 'Server sent no subprotocol') throw err;
  }
  if (response && response.headers['sec-websocket-protocol'] !== undefined) {
    throw new Error(`server selected '${response.headers['sec-websocket-protocol']}'`);
  }
});

scenario('50 concurrent connections, one echo each', async (ctx) => {
  const N = 50;
  const conns = await Promise.all(Array.from({ length: N }, () => ctx.open()));
  await Promise.all(conns.map((c, i) => echoOnce(c, `connection ${i} says hi ✓`, false)));
  await Promise.all(conns.map((c) => c.close()));
});

// ------------------------------------------------------------------ runner

async function run() {
  let passed = 0;
  let failed = 0;
  for (const { name, fn } of scenarios) {
    const ctx = new Ctx();
    let timer;
    try {
      await Promise.race([
        fn(ctx),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
        }),
      ]);
      passed++;
      process.stdout.write(`PASS ${name}\n`);
    } catch (err) {
      failed++;
      const why = String(err && err.message ? err.message : err).replace(/\s+/g, ' ');
      process.stdout.write(`FAIL ${name}: ${why}\n`);
    } finally {
      clearTimeout(timer);
      ctx.cleanup();
    }
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
}

run();
